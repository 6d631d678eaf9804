package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// systemBlobInfoCacheDir is where containers/image keeps the blob-info cache
// of processes running as root (a fixed path: HOME, TMPDIR and XDG_* do not
// move it, and skopeo 1.9 has no flag for it).
const systemBlobInfoCacheDir = "/var/lib/containers/cache"

// commandTimeout bounds every peer command run by this package.
const commandTimeout = 5 * time.Minute

// Skopeo runs skopeo with args, isolated from the machine's configuration,
// and returns its stdout. On failure it fails the test with the full stderr.
//
// Isolation, for every invocation:
//   - global flags --insecure-policy (no /etc/containers/policy.json),
//     --registries-conf with a private registries.conf marking every running
//     StartRegistry registry insecure (plain HTTP; skopeo 1.9 ignores
//     CONTAINERS_REGISTRIES_CONF), and --registries.d with an empty directory;
//   - a private HOME, TMPDIR, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, XDG_DATA_HOME,
//     an empty REGISTRY_AUTH_FILE and an empty CONTAINERS_CONF;
//   - an empty blob-info cache. containers/image (skopeo 1.9) keeps a root
//     process's cache at /var/lib/containers/cache/blob-info-cache-v1.boltdb
//     whatever the environment says, and uses it to reuse blobs it has seen
//     elsewhere (cross-repository mounts, even when a different compression
//     was asked for; oracles.md §3.4). As root, skopeo therefore runs in a
//     private mount namespace (unshare(CLONE_NEWNS), propagation private) in
//     which a fresh temporary directory is bind-mounted over
//     /var/lib/containers/cache; the machine's cache is neither read nor
//     written (the directory itself is created if absent). Not as root the
//     cache lives under XDG_DATA_HOME, which is private already. If mount
//     namespaces are not permitted, skopeo runs with _CONTAINERS_ROOTLESS_UID
//     set, which makes containers/image take the XDG_DATA_HOME location too.
func Skopeo(t testing.TB, args ...string) (stdout string) {
	t.Helper()
	res := runSkopeo(t, args)
	if res.err != nil {
		t.Fatalf("skopeo %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), res.err, res.stderr, res.stdout)
	}
	return res.stdout
}

// RunSkopeo is Skopeo for commands that are expected to fail: it runs
// skopeo with the same isolation and returns stdout, stderr and the error
// (wrapped exit status) instead of failing the test.
func RunSkopeo(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	res := runSkopeo(t, args)
	return res.stdout, res.stderr, res.err
}

// skopeoResult is the outcome of one isolated skopeo invocation.
type skopeoResult struct {
	stdout, stderr string
	err            error
	// cacheDir is the directory that stood in for the blob-info cache.
	cacheDir string
	// isolation is the cache isolation used (skopeoCache*).
	isolation string
}

// Blob-info cache isolation methods.
const (
	skopeoCacheMountNamespace = "mount-namespace"
	skopeoCacheXDG            = "xdg-data-home"
	skopeoCacheRootlessUIDEnv = "rootless-uid-env"
)

// forceSkopeoCacheIsolation overrides the choice of isolation (tests only).
var forceSkopeoCacheIsolation string

func runSkopeo(t testing.TB, args []string) skopeoResult {
	t.Helper()
	RequireTool(t, "skopeo")
	skopeoPath, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("finding skopeo: %v", err)
	}

	dir := t.TempDir()
	paths := map[string]string{}
	for _, name := range []string{"home", "tmp", "run", "config", "data", "registries.d", "cache"} {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatalf("preparing skopeo environment: %v", err)
		}
		paths[name] = p
	}
	registriesConf := filepath.Join(dir, "registries.conf")
	authFile := filepath.Join(dir, "auth.json")
	containersConf := filepath.Join(dir, "containers.conf")
	for name, content := range map[string]string{
		registriesConf: skopeoRegistriesConf(liveRegistryHosts()),
		authFile:       `{"auths":{}}` + "\n",
		containersConf: "",
	} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatalf("preparing skopeo environment: %v", err)
		}
	}

	env := cleanEnv("CONTAINERS_", "REGISTRIES_CONFIG_PATH", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_", "HOME", "TMPDIR", "_CONTAINERS_")
	env = append(env,
		"HOME="+paths["home"],
		"TMPDIR="+paths["tmp"],
		"XDG_RUNTIME_DIR="+paths["run"],
		"XDG_CONFIG_HOME="+paths["config"],
		"XDG_DATA_HOME="+paths["data"],
		"REGISTRY_AUTH_FILE="+authFile,
		"CONTAINERS_CONF="+containersConf,
		"CONTAINERS_REGISTRIES_CONF="+registriesConf,
	)
	fullArgs := append([]string{
		"--insecure-policy",
		"--registries-conf", registriesConf,
		"--registries.d", paths["registries.d"],
	}, args...)

	res := skopeoResult{isolation: skopeoCacheIsolation()}
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	var cmd *exec.Cmd
	switch res.isolation {
	case skopeoCacheMountNamespace:
		res.cacheDir = paths["cache"]
		cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", bindCacheScript, "sh", res.cacheDir, skopeoPath}, fullArgs...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	case skopeoCacheRootlessUIDEnv:
		res.cacheDir = filepath.Join(paths["data"], "containers", "cache")
		env = append(env, "_CONTAINERS_ROOTLESS_UID=65534")
		cmd = exec.CommandContext(ctx, skopeoPath, fullArgs...)
	default: // skopeoCacheXDG
		res.cacheDir = filepath.Join(paths["data"], "containers", "cache")
		cmd = exec.CommandContext(ctx, skopeoPath, fullArgs...)
	}
	cmd.Env = env
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	res.stdout, res.stderr = stdout.String(), stderr.String()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		res.err = fmt.Errorf("running skopeo (cache isolation %s): %w", res.isolation, err)
	}
	t.Logf("skopeo %s (%.2fs)", strings.Join(args, " "), time.Since(start).Seconds())
	return res
}

// bindCacheScript runs inside the private mount namespace: $1 is the
// stand-in cache directory, the rest is the skopeo command line.
const bindCacheScript = `set -e
mkdir -p ` + systemBlobInfoCacheDir + `
mount --bind "$1" ` + systemBlobInfoCacheDir + `
shift
exec "$@"`

// skopeoRegistriesConf returns a registries.conf that marks hosts insecure
// and allows no unqualified search.
func skopeoRegistriesConf(hosts []string) string {
	var b strings.Builder
	b.WriteString("unqualified-search-registries = []\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", h)
	}
	return b.String()
}

var (
	skopeoIsolationOnce sync.Once
	skopeoIsolation     string
)

// skopeoCacheIsolation picks how to keep skopeo away from the machine's
// blob-info cache (see Skopeo).
func skopeoCacheIsolation() string {
	if forceSkopeoCacheIsolation != "" {
		return forceSkopeoCacheIsolation
	}
	skopeoIsolationOnce.Do(func() {
		if os.Geteuid() != 0 {
			skopeoIsolation = skopeoCacheXDG
			return
		}
		probe := exec.Command("/bin/sh", "-c", "exit 0")
		probe.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		if err := probe.Run(); err != nil {
			skopeoIsolation = skopeoCacheRootlessUIDEnv
			return
		}
		skopeoIsolation = skopeoCacheMountNamespace
	})
	return skopeoIsolation
}

// cleanEnv returns os.Environ() without the variables whose names equal, or
// (for prefixes ending in "_") start with, one of drop.
func cleanEnv(drop ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		for _, d := range drop {
			if name == d || (strings.HasSuffix(d, "_") && strings.HasPrefix(name, d)) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// measurement is one run of one case.
type measurement struct {
	secs    float64
	cpu     float64 // user + system seconds of the child and its waited-for descendants
	rssKiB  int64   // the child's ru_maxrss (its own and its waited-for descendants')
	tmpPeak int64   // largest total size seen under the case's temporary directory
	stdout  []byte
	stderr  []byte
}

// measure runs cmd, timing it from Start to the end of Wait, and samples the
// size of tmpDir (when set) every 20 ms while it runs.
func measure(cmd *exec.Cmd, tmpDir string) (*measurement, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var peak atomic.Int64
	done := make(chan struct{})
	polled := make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(polled)
		for {
			if tmpDir != "" {
				if n := dirSize(tmpDir); n > peak.Load() {
					peak.Store(n)
				}
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	secs := time.Since(start).Seconds()
	close(done)
	<-polled
	m := &measurement{secs: secs, tmpPeak: peak.Load(), stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rssKiB = int64(ru.Maxrss) // int32 on 32-bit platforms
		m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, lastLine(stderr.String()))
	}
	return m, nil
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// environ returns os.Environ() without the named variables, plus extra.
func environ(drop []string, extra ...string) []string {
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
	return append(env, extra...)
}

// layerOf reads an OCI layout's only image and returns its manifest digest
// and its layer descriptors.
func layerOf(layout string) (string, []v1.Descriptor, error) {
	var idx v1.Index
	if err := readJSON(filepath.Join(layout, "index.json"), &idx); err != nil {
		return "", nil, err
	}
	if len(idx.Manifests) != 1 {
		return "", nil, fmt.Errorf("%s: %d manifests in index.json, want 1", layout, len(idx.Manifests))
	}
	var man v1.Manifest
	if err := readJSON(filepath.Join(layout, "blobs", "sha256", idx.Manifests[0].Digest.Encoded()), &man); err != nil {
		return "", nil, err
	}
	if len(man.Layers) == 0 {
		return "", nil, fmt.Errorf("%s: no layers", layout)
	}
	return idx.Manifests[0].Digest.String(), man.Layers, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// blobPath is the file of a blob in an OCI layout.
func blobPath(layout string, d v1.Descriptor) string {
	return filepath.Join(layout, "blobs", "sha256", d.Digest.Encoded())
}

// ---- skopeo, isolated as internal/testenv.Skopeo does it ----

// blobInfoCacheDir is where containers/image keeps a root process's
// blob-info cache, whatever the environment says.
const blobInfoCacheDir = "/var/lib/containers/cache"

// bindCacheScript runs in a private mount namespace: $1 stands in for the
// blob-info cache, the rest is the command line.
const bindCacheScript = `set -e
mkdir -p ` + blobInfoCacheDir + `
mount --bind "$1" ` + blobInfoCacheDir + `
shift
exec "$@"`

// skopeoCmd returns a skopeo command isolated from the machine's
// configuration and blob-info cache: private HOME, TMPDIR, XDG dirs,
// registries.conf, registries.d, auth file and containers.conf; as root a
// fresh directory bind-mounted over the blob-info cache in a private mount
// namespace (not as root the cache follows XDG_DATA_HOME, private already).
// dir must exist and be empty.
func skopeoCmd(dir string, args ...string) (*exec.Cmd, error) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		return nil, err
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, d := range []string{"home", "tmp", "run", "config", "data", "registries.d", "cache"} {
		if err := os.Mkdir(p(d), 0o700); err != nil {
			return nil, err
		}
	}
	for name, content := range map[string]string{
		"registries.conf": "unqualified-search-registries = []\n",
		"auth.json":       `{"auths":{}}` + "\n",
		"containers.conf": "",
	} {
		if err := os.WriteFile(p(name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	env := environ([]string{"CONTAINERS_", "REGISTRIES_CONFIG_PATH", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_", "HOME", "TMPDIR", "_CONTAINERS_"},
		"HOME="+p("home"), "TMPDIR="+p("tmp"), "XDG_RUNTIME_DIR="+p("run"), "XDG_CONFIG_HOME="+p("config"),
		"XDG_DATA_HOME="+p("data"), "REGISTRY_AUTH_FILE="+p("auth.json"), "CONTAINERS_CONF="+p("containers.conf"),
		"CONTAINERS_REGISTRIES_CONF="+p("registries.conf"))
	full := append([]string{"--insecure-policy", "--registries-conf", p("registries.conf"), "--registries.d", p("registries.d")}, args...)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("/bin/sh", append([]string{"-c", bindCacheScript, "sh", p("cache"), skopeo}, full...)...)
		// Go makes the new namespace's mounts private before exec.
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	} else {
		cmd = exec.Command(skopeo, full...)
	}
	cmd.Env, cmd.Dir = env, dir
	return cmd, nil
}

// ---- a private containerd for ctr-remote, as internal/testenv.StartContainerd does it ----

const containerdNamespace = "fmtconv-bench"

const containerdConfig = `version = 2
root = "%[1]s/root"
state = "%[1]s/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "%[1]s/c.sock"

[ttrpc]
  address = "%[1]s/c.sock.ttrpc"
`

type containerd struct {
	dir, address string
	cmd          *exec.Cmd
	exited       chan struct{}
}

// startContainerd starts a private containerd with everything in a fresh
// directory under /tmp (short socket paths) and waits until ctr answers.
func startContainerd() (*containerd, error) {
	for _, tool := range []string{"containerd", "ctr", "ctr-remote"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("containerd needs root")
	}
	dir, err := os.MkdirTemp("/tmp", "benchctrd")
	if err != nil {
		return nil, err
	}
	c := &containerd{dir: dir, address: filepath.Join(dir, "c.sock"), exited: make(chan struct{})}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(containerdConfig, dir)), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	c.cmd = exec.Command("containerd", "--config", cfg)
	c.cmd.Env = environ([]string{"CONTAINERD_"})
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Pdeathsig kills the daemon if this process dies; it fires when the
	// forking thread exits, so fork from a locked thread that lives until Wait.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-c.exited:
			c.stop()
			return nil, errors.New("containerd exited before it was ready")
		default:
		}
		if conn, err := net.DialTimeout("unix", c.address, time.Second); err == nil {
			conn.Close()
			if _, err := c.run(nil, "ctr", "version"); err == nil {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, errors.New("containerd not ready after 15 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdFor returns a ctr or ctr-remote command against this daemon.
func (c *containerd) cmdFor(tool string, args ...string) *exec.Cmd {
	cmd := exec.Command(tool, append([]string{"--address", c.address, "--namespace", containerdNamespace}, args...)...)
	cmd.Env = environ([]string{"CONTAINERD_"})
	return cmd
}

// run runs a ctr-like tool to completion and returns its stdout.
func (c *containerd) run(stdin io.Reader, tool string, args ...string) (string, error) {
	cmd := c.cmdFor(tool, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, lastLine(errb.String()))
	}
	return out.String(), nil
}

// stop terminates the daemon (SIGTERM, SIGKILL after 5 s) and removes its
// directory. Nothing is mounted: images are imported without unpacking.
func (c *containerd) stop() {
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	_ = os.RemoveAll(c.dir)
}

// importLayout imports an OCI layout (its files streamed as an OCI archive)
// as baseName:<ref name>, without unpacking.
func (c *containerd) importLayout(layout, baseName string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, layout)) }()
	_, err := c.run(pr, "ctr", "image", "import", "--base-name", baseName, "--no-unpack", "-")
	pr.Close()
	return err
}

// manifestLayer returns the manifest digest of image ref and its layer
// descriptors, read from containerd's content store.
func (c *containerd) manifestLayer(ref string) (string, []v1.Descriptor, error) {
	out, err := c.run(nil, "ctr", "image", "ls", "name=="+ref)
	if err != nil {
		return "", nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		return "", nil, fmt.Errorf("ctr image ls %s: %q", ref, out)
	}
	fields := strings.Fields(lines[1])
	if len(fields) < 3 {
		return "", nil, fmt.Errorf("ctr image ls %s: %q", ref, out)
	}
	dgst := fields[2]
	body, err := c.run(nil, "ctr", "content", "get", dgst)
	if err != nil {
		return "", nil, err
	}
	var man v1.Manifest
	if err := json.Unmarshal([]byte(body), &man); err != nil || len(man.Layers) == 0 {
		return "", nil, fmt.Errorf("manifest %s of %s: %v", dgst, ref, err)
	}
	return dgst, man.Layers, nil
}

// tarDir writes the files under dir as a tar stream (names relative to dir).
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ContainerdNamespace is the containerd namespace all Containerd helpers use.
const ContainerdNamespace = "fmtconv"

// Containerd is a private containerd 1.6 daemon started by StartContainerd:
// its root, state, sockets and log live in one temporary directory, CRI and
// the snapshotters that cannot work here are disabled ("native" and
// "overlayfs" remain). It is stopped and its directory removed in t.Cleanup.
type Containerd struct {
	// Address is the gRPC socket path, for ctr --address.
	Address string
	// Dir is the temporary directory holding config.toml, root/, state/,
	// the sockets and containerd.log.
	Dir string
	// LogPath is containerd's log (stdout and stderr).
	LogPath string

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the daemon has exited
	waitErr error         // valid once exited is closed
}

// maxSocketPath keeps unix socket paths below sun_path's 108 bytes.
const maxSocketPath = 100

// containerdConfig is containerd's config.toml; %[1]s is the directory.
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

// StartContainerd starts a private containerd (see Containerd) and waits
// until `ctr version` answers (typically 0.1-0.2 s). Cleanup sends SIGTERM
// (then SIGKILL after 5 s), waits, unmounts anything still mounted under the
// directory and removes it. Requires containerd and ctr (RequireTool policy)
// and root.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	RequireTool(t, "containerd", "ctr")
	if os.Geteuid() != 0 {
		missing(t, "PEER MISSING: containerd needs root (running as uid %d)", os.Geteuid())
	}

	dir, err := os.MkdirTemp("", "ctrd")
	if err == nil && len(dir)+len("/c.sock.ttrpc") > maxSocketPath {
		_ = os.Remove(dir)
		dir, err = os.MkdirTemp("/tmp", "ctrd")
	}
	if err != nil {
		t.Fatalf("starting containerd: creating its directory: %v", err)
	}
	c := &Containerd{
		Address: filepath.Join(dir, "c.sock"),
		Dir:     dir,
		LogPath: filepath.Join(dir, "containerd.log"),
		exited:  make(chan struct{}),
	}
	// Registered first, so it runs last: after the daemon has stopped.
	t.Cleanup(func() {
		if err := removeContainerdDir(dir); err != nil {
			t.Errorf("containerd cleanup: %v", err)
		}
	})

	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(fmt.Sprintf(containerdConfig, dir)), 0o600); err != nil {
		t.Fatalf("starting containerd: writing config: %v", err)
	}
	logFile, err := os.Create(c.LogPath)
	if err != nil {
		t.Fatalf("starting containerd: creating log: %v", err)
	}
	defer logFile.Close() // the child has its own descriptor

	start := time.Now()
	c.cmd = exec.Command("containerd", "--config", configPath)
	c.cmd.Env = cleanEnv("CONTAINERD_")
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	// Pdeathsig kills the daemon if the test binary dies without running
	// cleanups (e.g. go test -timeout). It fires when the thread that forked
	// the child exits, so fork from a locked thread that lives until Wait
	// returns.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd log (%s), last lines:\n%s", c.LogPath, tailFile(c.LogPath, 40))
		}
		c.stop(t)
	})

	if err := c.waitReady(15 * time.Second); err != nil {
		t.Fatalf("starting containerd: %v\ncontainerd log:\n%s", err, tailFile(c.LogPath, 40))
	}
	t.Logf("containerd ready in %.3fs (%s)", time.Since(start).Seconds(), dir)
	return c
}

// waitReady polls the socket, then asks `ctr version`.
func (c *Containerd) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("containerd exited before it was ready: %v", c.waitErr)
		default:
		}
		if conn, err := net.DialTimeout("unix", c.Address, time.Second); err == nil {
			conn.Close()
			_, stderr, err := c.run("ctr", []string{"version"})
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("ctr version: %w: %s", err, stderr)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("socket %s not answering after %v: %w", c.Address, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop terminates the daemon: SIGTERM, SIGKILL after 5 s, then waits.
func (c *Containerd) stop(t testing.TB) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		t.Logf("containerd did not stop within 5s of SIGTERM; killing it")
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// removeContainerdDir unmounts whatever is still mounted under dir (deepest
// first; the native and overlayfs snapshotters mount during unpack) and
// removes dir.
func removeContainerdDir(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := syscall.Unmount(m, 0); err != nil {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("removing %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("listing mounts: %w", err)
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/self/mountinfo: %w", err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts, nil
}

// unescapeMountinfo undoes the octal escapes (\040 etc.) of mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Ctr runs `ctr --address <socket> --namespace fmtconv args...` and returns
// its stdout. On failure it fails the test with the full stderr.
func (c *Containerd) Ctr(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := c.run("ctr", args)
	if err != nil {
		t.Fatalf("ctr %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, stderr, stdout)
	}
	return stdout
}

// CtrRemote runs stargz-snapshotter's `ctr-remote --address <socket>
// --namespace fmtconv args...` (e.g. `image convert --estargz --oci SRC DST`)
// and returns its stdout. On failure it fails the test with the full stderr.
func (c *Containerd) CtrRemote(t testing.TB, args ...string) string {
	t.Helper()
	RequireTool(t, "ctr-remote")
	stdout, stderr, err := c.run("ctr-remote", args)
	if err != nil {
		t.Fatalf("ctr-remote %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, stderr, stdout)
	}
	return stdout
}

// PullAndUnpack pulls ref from a plain-HTTP registry into containerd and
// unpacks it with the native snapshotter: `ctr image pull --plain-http
// --snapshotter native --all-platforms REF`. ref is "host:port/repo:tag"
// (Registry.ImageName); a "docker://" prefix (Registry.Ref) is accepted.
//
// --all-platforms makes ctr fetch and unpack every platform the image
// declares, so images for other architectures and every entry of an index
// are checked too. Unpacking decompresses every layer and verifies it
// against the config's rootfs.diff_ids; a mismatch, a corrupt stream or an
// unreadable tar makes ctr fail, and PullAndUnpack returns an error holding
// ctr's stderr (e.g. `wrong diff id calculated on extraction "sha256:..."`).
func (c *Containerd) PullAndUnpack(t testing.TB, ref string) error {
	t.Helper()
	ref = strings.TrimPrefix(ref, "docker://")
	stdout, stderr, err := c.run("ctr", []string{"image", "pull", "--plain-http", "--snapshotter", "native", "--all-platforms", ref})
	if err != nil {
		return fmt.Errorf("containerd pull and unpack of %s: %w: %s", ref, err, strings.TrimSpace(stderr))
	}
	if !strings.Contains(stdout, "unpacking ") {
		return fmt.Errorf("containerd pull of %s unpacked nothing (no platform matched?): %s", ref, strings.TrimSpace(stdout))
	}
	return nil
}

// MountImage mounts the unpacked, read-only root filesystem of ref (pulled
// with PullAndUnpack, native snapshotter) on a fresh directory and returns
// its path; it is unmounted in t.Cleanup. For an image index the mounted
// platform is the host's. It fails the test on error.
func (c *Containerd) MountImage(t testing.TB, ref string) string {
	t.Helper()
	ref = strings.TrimPrefix(ref, "docker://")
	target := t.TempDir()
	c.Ctr(t, "image", "mount", "--snapshotter", "native", ref, target)
	t.Cleanup(func() {
		if _, stderr, err := c.run("ctr", []string{"image", "unmount", target}); err != nil {
			if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmounting image %s at %s: ctr: %s; unmount: %v", ref, target, strings.TrimSpace(stderr), err)
			}
		}
	})
	return target
}

// run runs a ctr-compatible binary against this daemon.
func (c *Containerd) run(binary string, args []string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	full := append([]string{"--address", c.Address, "--namespace", ContainerdNamespace}, args...)
	cmd := exec.CommandContext(ctx, binary, full...)
	cmd.Env = cleanEnv("CONTAINERD_")
	cmd.WaitDelay = 10 * time.Second
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return outBuf.String(), errBuf.String(), fmt.Errorf("running %s %s: %w", binary, strings.Join(args, " "), err)
	}
	return outBuf.String(), errBuf.String(), nil
}

// tailFile returns the last n lines of path (for diagnostics).
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

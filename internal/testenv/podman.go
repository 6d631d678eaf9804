package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Podman is podman 4.x with a private overlay store in which partial pulls are on
// (research/oracles.md §4), so it can act as the lazy-pull reader oracle.
type Podman struct {
	Dir string
	env []string
}

// StartPodman prepares a private podman configuration: the overlay driver (only it implements
// partial pulls), enable_partial_images, the loopback registries marked insecure, and its own
// graph root, removed (after unmounting what podman left mounted) in Cleanup.
func StartPodman(t testing.TB, registries ...*Registry) *Podman {
	t.Helper()
	RequireTool(t, "podman")
	dir, err := os.MkdirTemp("", "podman")
	if err != nil {
		t.Fatal(err)
	}
	p := &Podman{Dir: dir}
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	storage := write("storage.conf", fmt.Sprintf(`[storage]
driver = "overlay"
runroot = "%[1]s/runroot"
graphroot = "%[1]s/root"
[storage.options]
pull_options = {enable_partial_images = "true", use_hard_links = "false", ostree_repos = ""}
[storage.options.overlay]
mountopt = "nodev"
`, dir))
	var regs strings.Builder
	regs.WriteString("unqualified-search-registries = []\n")
	for _, r := range registries {
		fmt.Fprintf(&regs, "[[registry]]\nlocation = %q\ninsecure = true\n", r.Host)
	}
	registriesConf := write("registries.conf", regs.String())
	containers := write("containers.conf", "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\nnetns = \"none\"\n[engine]\nruntime = \"runc\"\n")
	p.env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+storage, "CONTAINERS_REGISTRIES_CONF="+registriesConf,
		"CONTAINERS_CONF="+containers, "HOME="+dir, "XDG_RUNTIME_DIR="+filepath.Join(dir, "xdg"))
	t.Cleanup(func() {
		p.run("system", "reset", "--force")
		if err := removeContainerdDir(dir); err != nil { // unmounts what is left, then removes
			t.Errorf("cleaning up podman's store: %v", err)
		}
	})
	return p
}

func (p *Podman) run(args ...string) (string, string, error) {
	cmd := exec.Command("podman", args...)
	cmd.Env = p.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// PullPartial pulls image with debug logging and reports whether podman retrieved every layer
// partially ("Retrieved partial blob") and, if not, podman's reasons. A pull that falls back to a
// full download still succeeds, which is why the log has to be read.
func (p *Podman) PullPartial(t testing.TB, image string) (partial int, fallbacks []string) {
	t.Helper()
	_, stderr, err := p.run("--log-level=debug", "pull", "--tls-verify=false", image)
	if err != nil {
		t.Fatalf("podman pull %s: %v\n%s", image, err, lastLines(stderr, 30))
	}
	for _, line := range strings.Split(stderr, "\n") {
		switch {
		case strings.Contains(line, "Retrieved partial blob"):
			partial++
		case strings.Contains(line, "Failed to retrieve partial blob"):
			fallbacks = append(fallbacks, line)
		}
	}
	return partial, fallbacks
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

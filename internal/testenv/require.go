package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// modulePath is the module whose go.mod marks the repository root.
const modulePath = "github.com/fmtconv/fmtconv"

// setupHint tells a developer how to get the peers.
const setupHint = "install with scripts/setup-peers.sh (as root, Debian bookworm)"

// InCI reports whether the tests run in CI, i.e. whether the environment
// variable CI holds a true value ("true", "1", ...). In CI a missing peer or
// fixture fails the test instead of skipping it.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// missing applies the missing-peer policy: Fatalf in CI, Skipf elsewhere.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format+" [CI=true: failing instead of skipping]", args...)
		return
	}
	t.Skipf(format, args...)
}

// RequireTool checks that every named executable is on PATH. If any is
// missing, the test is skipped with a "PEER MISSING: ... install with
// scripts/setup-peers.sh" message, or fails under CI=true (see InCI).
func RequireTool(t testing.TB, names ...string) {
	t.Helper()
	var absent []string
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			absent = append(absent, name)
		}
	}
	if len(absent) > 0 {
		missing(t, "PEER MISSING: %s not found on PATH; %s", strings.Join(absent, ", "), setupHint)
	}
}

// RequireFile checks that path exists (a file or a directory). If it does
// not, the test is skipped with a "FIXTURE MISSING" message, or fails under
// CI=true (see InCI). Other stat errors always fail the test.
func RequireFile(t testing.TB, path string) {
	t.Helper()
	_, err := os.Stat(path)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
		missing(t, "FIXTURE MISSING: %s does not exist", path)
	default:
		t.Fatalf("checking fixture: %v", err)
	}
}

// Root returns the repository root: the nearest directory, from the current
// directory upwards, holding the go.mod of module github.com/fmtconv/fmtconv.
// It fails the test if there is none.
func Root(t testing.TB) string {
	t.Helper()
	root, err := findRoot()
	if err != nil {
		t.Fatalf("finding the repository root: %v", err)
	}
	return root
}

// findRoot searches upwards from the working directory, then from this
// source file's directory (for tests that changed directory).
func findRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if isModuleRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("no go.mod for module %s above %v", modulePath, starts)
}

// isModuleRoot reports whether dir/go.mod declares modulePath.
func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// SharedDir returns <root>/../shared, the directory the shared fixtures are
// read from (in place: never copy them). If it does not exist, the fixture
// policy of RequireFile applies.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Clean(filepath.Join(Root(t), "..", "shared"))
	RequireFile(t, dir)
	return dir
}

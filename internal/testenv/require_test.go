package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyTB records Skipf/Fatalf instead of stopping the test.
type policyTB struct {
	testing.TB
	skipped, fatal string
}

func (p *policyTB) Helper() {}
func (p *policyTB) Skipf(format string, args ...any) {
	p.skipped = fmt.Sprintf(format, args...)
}
func (p *policyTB) Fatalf(format string, args ...any) {
	p.fatal = fmt.Sprintf(format, args...)
}

func TestRequireToolPolicy(t *testing.T) {
	const absent = "fmtconv-no-such-peer"
	for _, tc := range []struct {
		ci        string
		wantFatal bool
	}{{"", false}, {"false", false}, {"true", true}, {"1", true}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			p := &policyTB{TB: t}
			RequireTool(p, "sh", absent)
			msg := p.skipped
			if tc.wantFatal {
				msg = p.fatal
				if p.skipped != "" {
					t.Errorf("skipped in CI: %q", p.skipped)
				}
			} else if p.fatal != "" {
				t.Errorf("failed outside CI: %q", p.fatal)
			}
			if !strings.Contains(msg, "PEER MISSING: "+absent) || !strings.Contains(msg, "scripts/setup-peers.sh") || strings.Contains(msg, "sh,") {
				t.Errorf("message %q", msg)
			}

			p = &policyTB{TB: t}
			RequireTool(p, "sh")
			if p.skipped != "" || p.fatal != "" {
				t.Errorf("present tool reported missing: %q %q", p.skipped, p.fatal)
			}

			p = &policyTB{TB: t}
			RequireFile(p, filepath.Join(t.TempDir(), "nope.tar"))
			if got := p.skipped + p.fatal; !strings.Contains(got, "FIXTURE MISSING") {
				t.Errorf("missing fixture message %q", got)
			}
			if tc.wantFatal != (p.fatal != "") {
				t.Errorf("fixture policy: fatal=%q skipped=%q", p.fatal, p.skipped)
			}
		})
	}
}

func TestRootAndSharedDir(t *testing.T) {
	root := Root(t)
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(data), "module "+modulePath) {
		t.Fatalf("Root = %s: go.mod %v", root, err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv", "require.go")); err != nil {
		t.Errorf("Root = %s does not hold this package: %v", root, err)
	}
	// From another working directory too (falls back to this file's location).
	t.Chdir(t.TempDir())
	if got := Root(t); got != root {
		t.Errorf("Root from elsewhere = %s, want %s", got, root)
	}
	if _, err := os.Stat(filepath.Join(root, "..", "shared")); err == nil {
		if got, want := SharedDir(t), filepath.Clean(filepath.Join(root, "..", "shared")); got != want {
			t.Errorf("SharedDir = %s, want %s", got, want)
		}
	}
}

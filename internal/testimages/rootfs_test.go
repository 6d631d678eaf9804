package testimages

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/internal/tree"
)

// The realistic root filesystem holds what this machine's files hold, as tar sees them,
// and its upper layers change it as documented.
func TestRootFS(t *testing.T) {
	start := time.Now()
	r, err := BuildRootFS(RootFSOptions{})
	if errors.Is(err, ErrRootFSTooSmall) && !testenv.InCI() {
		t.Skipf("SKIP: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built in %v: %s; base %.1f MiB, update %d B, app %.1f MiB; missing from the machine: %v",
		time.Since(start), r.Stats, float64(len(r.Layers[0].Tar))/(1<<20), len(r.Layers[1].Tar), float64(len(r.Layers[2].Tar))/(1<<20), r.Stats.Missing())
	if r.Stats.Bytes > 120<<20 {
		t.Errorf("base holds %d MiB, more than the budgets allow", r.Stats.Bytes>>20)
	}
	var layers [][]byte
	for _, l := range r.Layers {
		layers = append(layers, l.Tar)
	}
	merged, err := tree.ApplyOCI(layers...)
	if err != nil {
		t.Fatal(err)
	}
	base, err := tree.Read(bytes.NewReader(r.Layers[0].Tar))
	if err != nil {
		t.Fatal(err)
	}
	// the base, as tar sees it: every entry's metadata comes from the machine
	if n := base["etc"]; n.Type != tar.TypeDir || n.ModTime.IsZero() {
		t.Errorf("etc: %+v", n)
	}
	// update: the opaque directory holds only its two new files
	var opaque string
	for _, e := range r.Layers[1].Entries {
		if strings.HasSuffix(e.Name, "/.wh..wh..opq") {
			opaque = strings.TrimSuffix(e.Name, "/.wh..wh..opq")
		}
	}
	if opaque == "" {
		t.Fatal("no opaque directory in the update layer")
	}
	var inOpaque []string
	for p := range merged {
		if strings.HasPrefix(p, opaque+"/") {
			inOpaque = append(inOpaque, p)
		}
	}
	if len(inOpaque) != 2 || merged[opaque].Mode != 0o750 {
		t.Errorf("opaque %s: %v, mode %o", opaque, inOpaque, merged[opaque].Mode)
	}
	// whiteouts took effect, the app layer is there, and nothing of the base got lost otherwise
	if _, ok := merged["etc/fmtconv-old"]; ok {
		t.Error("etc/fmtconv-old survived the app layer's whiteout")
	}
	for _, p := range []string{"etc/fmtconv-release", "opt/app/bin/app", "usr/local/bin/app", "var/shared"} {
		if _, ok := merged[p]; !ok {
			t.Errorf("%s missing", p)
		}
	}
	if g := merged["opt/app/bin/app"].Group; g != "opt/app/bin/app\x00opt/app/bin/app-alias" {
		t.Errorf("app hard links: %q", g)
	}
	removed := 0
	for p := range base {
		if _, ok := merged[p]; !ok {
			removed++
		}
	}
	if removed < 4 || len(merged) < len(base)-removed {
		t.Errorf("%d of %d base names removed", removed, len(base))
	}
	// the same machine gives the same bytes
	again, err := BuildRootFS(RootFSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Layers {
		if !bytes.Equal(r.Layers[i].Tar, again.Layers[i].Tar) {
			t.Errorf("layer %s differs between two builds", r.Layers[i].Name)
		}
	}
}

// A machine with too little gives ErrRootFSTooSmall with what was found.
func TestRootFSTooSmall(t *testing.T) {
	dir := t.TempDir()
	_, err := BuildRootFS(RootFSOptions{Root: dir})
	if !errors.Is(err, ErrRootFSTooSmall) || !strings.Contains(err.Error(), "0 files") {
		t.Fatalf("err = %v", err)
	}
}

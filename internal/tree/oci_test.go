package tree

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testimages"
)

func layerTar(t *testing.T, name string) []byte {
	t.Helper()
	l, ok := testimages.LayerByName(name)
	if !ok {
		t.Fatalf("no catalogue layer %s", name)
	}
	return l.Tar
}

// One layer applied is the layer read (Diff resolves its hard links); the whiteouts
// layer on top of basic removes what it names, empties links/ and keeps the opaque
// directories themselves.
func TestApplyOCI(t *testing.T) {
	basic, wh := layerTar(t, testimages.LayerBasic), layerTar(t, testimages.LayerWhiteouts)
	one, err := ApplyOCI(basic)
	if err != nil {
		t.Fatal(err)
	}
	read, err := Read(bytes.NewReader(basic))
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(read, one, Options{}); len(d) != 0 {
		t.Fatalf("basic applied differs from basic read: %v", d)
	}
	if g := one["links/hardlink-to-file"].Group; g != "data/size-513\x00links/hardlink-to-file" || one["data/size-513"].Group != g {
		t.Fatalf("hard-link group %q", g)
	}
	two, err := ApplyOCI(basic, wh)
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"long", testimages.LongName, "etc/hostname", "data/size-511", "links/relative", "links/hardlink-to-file", "unicode/日本語.txt", ".wh.long", "links/.wh..wh..opq"} {
		if _, ok := two[gone]; ok {
			t.Errorf("%s survived", gone)
		}
	}
	for _, kept := range []string{"links", "links/after-opaque", "new-dir", "etc/added", "etc/passwd", "data/size-513", "unicode/emoji-🙂.txt"} {
		if _, ok := two[kept]; !ok {
			t.Errorf("%s missing", kept)
		}
	}
	if g := two["data/size-513"].Group; g != "" {
		t.Errorf("data/size-513 still in group %q after its other name was hidden", g)
	}
	for p := range two {
		if strings.HasPrefix(p, "links/") && p != "links/after-opaque" {
			t.Errorf("%s survived the opaque directory", p)
		}
	}
	if len(two) != len(one)-countUnder(one, "long")-10+3 { // 10 removed names, 3 added
		t.Errorf("%d entries after whiteouts, %d before", len(two), len(one))
	}
}

func countUnder(tr Tree, dir string) int {
	n := 0
	for p := range tr {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			n++
		}
	}
	return n
}

// Replacing a file and a directory, links sharing the inode of their moment, implicit parents.
func TestApplyOCIReplacements(t *testing.T) {
	mk := func(es ...testimages.Entry) []byte { return testimages.MustBuildTar(es, testimages.Ending{}) }
	f := func(name, c string) testimages.Entry {
		return testimages.Entry{Type: tar.TypeReg, Name: name, Mode: 0o644, Content: testimages.String(c)}
	}
	got, err := ApplyOCI(
		mk(f("a/x", "1"), testimages.Entry{Type: tar.TypeLink, Name: "l1", Linkname: "a/x"}, f("d/inner", "i")),
		mk(f("a/x", "2"), testimages.Entry{Type: tar.TypeLink, Name: "l2", Linkname: "a/x"}, f("d", "file now")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got["l1"].Group != "a/x\x00l2" && got["l1"].Group != "" {
		t.Fatalf("l1 group %q", got["l1"].Group)
	}
	if got["a/x"].Group != "a/x\x00l2" || got["l1"].Group != "" || got["a"].ModTime.Unix() != 0 || got["a"].Mode != 0o755 {
		t.Errorf("groups %q %q, implicit a %+v", got["a/x"].Group, got["l1"].Group, got["a"])
	}
	if _, ok := got["d/inner"]; ok || got["d"].Type != tar.TypeReg {
		t.Errorf("directory d not replaced: %+v", got["d"])
	}
	if _, err := ApplyOCI(mk(testimages.Entry{Type: tar.TypeLink, Name: "dangling", Linkname: "nothing"})); err == nil {
		t.Error("a hard link to nothing was accepted")
	}
}

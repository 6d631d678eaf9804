package tree

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/internal/testimages"
)

func TestDiffSeesEveryAttribute(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	a, err := Read(bytes.NewReader(l.Tar))
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(a, a, Options{}); len(d) != 0 {
		t.Fatalf("a tree differs from itself: %v", d)
	}
	// One file, the same in every run (not map order), that is its inode's only name: a
	// change to a hard-linked file shows under each of its names.
	linked := map[string]bool{}
	for _, n := range a {
		if n.Type == '1' {
			linked[n.Linkname] = true
		}
	}
	var name string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if n := a[k]; n.Type == '0' && n.Size > 0 && n.Group == "" && !linked[k] {
			name = k
			break
		}
	}
	if name == "" {
		t.Fatal("the layer has no regular file with one name")
	}
	for _, mutate := range []func(*Node){
		func(n *Node) { n.Mode ^= 0o4000 },
		func(n *Node) { n.UID++ },
		func(n *Node) { n.ModTime = n.ModTime.Add(time.Nanosecond) },
		func(n *Node) { n.SHA256 = "x" },
		func(n *Node) { n.Xattrs = map[string]string{"user.x": "1"} },
	} {
		b := Tree{}
		for k, v := range a {
			b[k] = v
		}
		n := b[name]
		mutate(&n)
		b[name] = n
		if d := Diff(a, b, Options{}); len(d) != 1 {
			t.Fatalf("a change was not seen exactly once: %v", d)
		}
	}
}

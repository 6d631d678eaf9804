package tree

import (
	"archive/tar"
	"bytes"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"
)

// OCI whiteout names (image-spec "Representing changes").
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
)

// ApplyOCI is a reference OCI layer applier (image-spec "Applying changesets"): it extracts
// layer tars in order onto an empty root and returns the tree a container sees, in the form
// Resolved gives (every name of a hard-linked inode a copy of it, with Group set).
//
// In each layer the whiteouts apply to the lower layers first (".wh.<name>" removes <name>
// and what is below it, ".wh..wh..opq" everything below its directory, other ".wh..wh."
// names are ignored), then the entries are extracted in order: a directory over a directory
// changes only its metadata, anything else replaces what was at the path (a directory with
// its contents), a hard link shares the inode its target has at that moment, and missing
// parents are created as directories 0755 owned by root with mtime 0. Whiteout files never
// appear in the result.
func ApplyOCI(layers ...[]byte) (Tree, error) {
	type inode struct{ n Node }
	fs := map[string]*inode{}
	removeAll := func(p string) { // p and what is below it
		for k := range fs {
			if k == p || strings.HasPrefix(k, p+"/") {
				delete(fs, k)
			}
		}
	}
	type entry struct {
		name string
		node Node
	}
	for li, l := range layers {
		var ents []entry
		err := readEntries(bytes.NewReader(l), func(name string, n Node) error {
			ents = append(ents, entry{name, n})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", li, err)
		}
		for _, e := range ents {
			dir, base := path.Split(e.name)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case base == WhiteoutOpaque: // empties the directory, which stays
				for k := range fs {
					if dir == "" || strings.HasPrefix(k, dir+"/") {
						delete(fs, k)
					}
				}
			case strings.HasPrefix(base, WhiteoutPrefix+WhiteoutPrefix):
			case strings.HasPrefix(base, WhiteoutPrefix):
				removeAll(path.Join(dir, base[len(WhiteoutPrefix):]))
			}
		}
		for _, e := range ents {
			p := e.name
			if p == "" || strings.HasPrefix(path.Base(p), WhiteoutPrefix) {
				continue
			}
			for d := path.Dir(p); d != "."; d = path.Dir(d) {
				if _, ok := fs[d]; !ok {
					fs[d] = &inode{Node{Type: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0).UTC()}}
				}
			}
			old, n := fs[p], e.node
			switch {
			case n.Type == tar.TypeLink:
				target := fs[n.Linkname]
				if target == nil || target.n.Type == tar.TypeDir {
					return nil, fmt.Errorf("layer %d: hard link %s to %s, which is missing or a directory", li, p, n.Linkname)
				}
				if old != nil && old.n.Type == tar.TypeDir {
					removeAll(p)
				}
				fs[p] = target
			case n.Type == tar.TypeDir && old != nil && old.n.Type == tar.TypeDir:
				old.n = n
			default:
				if old != nil && old.n.Type == tar.TypeDir {
					removeAll(p)
				}
				fs[p] = &inode{n}
			}
		}
	}
	out := Tree{}
	names := map[*inode][]string{}
	for p, in := range fs {
		if in.n.Type != tar.TypeDir {
			names[in] = append(names[in], p)
		}
	}
	for p, in := range fs {
		n := in.n
		if g := names[in]; len(g) > 1 {
			n.Group = LinkGroup(g)
		}
		out[p] = n
	}
	return out, nil
}

// Expect reports every difference between want and got (Diff) with t.Errorf, the first
// 20 of them one by one, each prefixed with what; it returns the number of entries of want.
func Expect(t testing.TB, what string, want, got Tree, o Options) int {
	t.Helper()
	diffs := Diff(want, got, o)
	for i, d := range diffs {
		if i == 20 {
			t.Errorf("%s: %d more differences", what, len(diffs)-i)
			break
		}
		t.Errorf("%s: %s", what, d)
	}
	return len(want)
}

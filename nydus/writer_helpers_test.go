package nydus

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/internal/tree"
)

// Helpers of the writer tests (Pack, Merge): packing in memory, comparing
// trees with hard links resolved, a reference OCI layer applier, reading
// extracted or mounted trees.

// pack runs Pack into memory and checks what the result says about the bytes.
func pack(t testing.TB, tarb []byte, o PackOptions) (*PackResult, []byte) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Pack(context.Background(), &buf, bytes.NewReader(tarb), o)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	blob := buf.Bytes()
	sum := sha256.Sum256(blob)
	if res.BlobID != hex.EncodeToString(sum[:]) || res.Digest.Encoded() != res.BlobID || res.Size != int64(len(blob)) {
		t.Fatalf("result %s / %s / %d does not describe the %d bytes written (sha256 %x)", res.BlobID, res.Digest, res.Size, len(blob), sum)
	}
	return res, blob
}

// openPacked opens the bootstrap inlined in a packed blob.
func openPacked(t testing.TB, blob []byte) *FS {
	t.Helper()
	f, err := OpenLayer(bytes.NewReader(blob), int64(len(blob)), nil)
	if err != nil {
		t.Fatalf("OpenLayer: %v", err)
	}
	return f
}

// fsTree reads a bootstrap's files as a tree (through ToTar and tree.Read).
func fsTree(t testing.TB, f *FS) tree.Tree {
	t.Helper()
	tb, err := f.TarBytes(nil)
	if err != nil {
		t.Fatalf("ToTar: %v", err)
	}
	tr, err := tree.Read(bytes.NewReader(tb))
	if err != nil {
		t.Fatalf("tree.Read of ToTar output: %v", err)
	}
	return tr
}

func tarTree(t testing.TB, tarb []byte) tree.Tree {
	t.Helper()
	tr, err := tree.Read(bytes.NewReader(tarb))
	if err != nil {
		t.Fatalf("tree.Read: %v", err)
	}
	return tr
}

// normalize resolves hard links: a link entry becomes a copy of the entry it
// names (extraction makes them one inode; which name a tar writes first is
// not a property of the tree), and the link groups are returned as sorted,
// ";"-joined lists of paths.
func normalize(in tree.Tree) (tree.Tree, string) {
	out := tree.Tree{}
	groups := map[string][]string{}
	for p, n := range in {
		if n.Type != tar.TypeLink {
			out[p] = n
			continue
		}
		root := n.Linkname
		for i := 0; i < 40 && in[root].Type == tar.TypeLink; i++ {
			root = in[root].Linkname
		}
		out[p] = in[root]
		if len(groups[root]) == 0 {
			groups[root] = []string{root}
		}
		groups[root] = append(groups[root], p)
	}
	return out, groupString(groups)
}

func groupString(groups map[string][]string) string {
	var gs []string
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
		g = slices.Clone(g)
		sort.Strings(g)
		gs = append(gs, strings.Join(g, ","))
	}
	sort.Strings(gs)
	return strings.Join(gs, ";")
}

// sameTree fails the test unless two trees (hard links resolved) and their
// link groups are equal; it returns the number of entries compared.
func sameTree(t testing.TB, what string, want, got tree.Tree, o tree.Options) int {
	t.Helper()
	w, wg := normalize(want)
	g, gg := normalize(got)
	diffs := tree.Diff(w, g, o)
	for i, d := range diffs {
		if i == 20 {
			t.Errorf("%s: %d more differences", what, len(diffs)-i)
			break
		}
		t.Errorf("%s: %s", what, d)
	}
	if wg != gg {
		t.Errorf("%s: hard-link groups differ:\n want %s\n got  %s", what, wg, gg)
	}
	return len(w)
}

// ---------------------------------------------------------------------------
// A reference OCI layer applier (image-spec "Applying changesets"), on trees.
// ---------------------------------------------------------------------------

type refNode struct{ n tree.Node }

type refFS map[string]*refNode

func (fs refFS) removeAll(p string) {
	delete(fs, p)
	for k := range fs {
		if strings.HasPrefix(k, p+"/") {
			delete(fs, k)
		}
	}
}

// ociApply applies layer tars in order to an empty root: in each layer the
// whiteouts (".wh.<name>" removes <name> and what is below it;
// ".wh..wh..opq" removes everything below its directory; other ".wh..wh."
// names are ignored) apply to the lower layers first, then the entries are
// extracted: a directory over a directory changes only its metadata, anything
// else replaces what was at the path; a hard link shares the inode its target
// has at that moment; missing parents are created as directories 0755 owned
// by root with mtime 0. It returns the tree with hard links resolved and the
// link groups.
func ociApply(t testing.TB, layers ...[]byte) (tree.Tree, string) {
	t.Helper()
	fs := refFS{}
	type ent struct {
		hdr  *tar.Header
		node tree.Node
	}
	for li, l := range layers {
		var ents []ent
		tr := tar.NewReader(bytes.NewReader(l))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", li, err)
			}
			if h.Typeflag == tar.TypeXGlobalHeader {
				continue
			}
			// one-entry tar through tree.Read gives the node as the comparisons see it
			var one bytes.Buffer
			tw := tar.NewWriter(&one)
			h2 := *h
			h2.Name = "x"
			if h2.Typeflag == tar.TypeLink {
				h2.Linkname = tree.Clean(h.Linkname)
			}
			if err := tw.WriteHeader(&h2); err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(tw, tr); err != nil {
				t.Fatal(err)
			}
			tw.Close()
			tt, err := tree.Read(&one)
			if err != nil {
				t.Fatal(err)
			}
			ents = append(ents, ent{h, tt["x"]})
		}
		for _, e := range ents {
			p := tree.Clean(e.hdr.Name)
			dir, base := path.Split(p)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case base == WhiteoutOpaqueDir:
				for k := range fs {
					if dir == "" || strings.HasPrefix(k, dir+"/") {
						delete(fs, k)
					}
				}
			case strings.HasPrefix(base, WhiteoutPrefix+WhiteoutPrefix):
			case strings.HasPrefix(base, WhiteoutPrefix):
				fs.removeAll(path.Join(dir, base[len(WhiteoutPrefix):]))
			}
		}
		for _, e := range ents {
			p := tree.Clean(e.hdr.Name)
			if p == "" {
				continue
			}
			if strings.HasPrefix(path.Base(p), WhiteoutPrefix) {
				continue
			}
			for d := path.Dir(p); d != "."; d = path.Dir(d) {
				if _, ok := fs[d]; !ok {
					fs[d] = &refNode{tree.Node{Type: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0).UTC()}}
				}
			}
			old := fs[p]
			n := e.node
			switch {
			case n.Type == tar.TypeLink:
				target := fs[n.Linkname]
				if target == nil {
					t.Fatalf("layer %d: hard link %s to missing %s", li, p, n.Linkname)
				}
				if old != nil && old.n.Type == tar.TypeDir {
					fs.removeAll(p)
				}
				fs[p] = target
			case n.Type == tar.TypeDir && old != nil && old.n.Type == tar.TypeDir:
				old.n = n
			default:
				if old != nil && old.n.Type == tar.TypeDir {
					fs.removeAll(p)
				}
				fs[p] = &refNode{n}
			}
		}
	}
	out := tree.Tree{}
	groups := map[*refNode][]string{}
	for p, r := range fs {
		out[p] = r.n
		if r.n.Type != tar.TypeDir {
			groups[r] = append(groups[r], p)
		}
	}
	gm := map[string][]string{}
	for _, g := range groups {
		gm[g[0]] = g
	}
	return out, groupString(gm)
}

// sameAsRef compares a tree (with link entries) against the reference.
func sameAsRef(t testing.TB, what string, ref tree.Tree, refGroups string, got tree.Tree, gotGroups string, o tree.Options) int {
	t.Helper()
	diffs := tree.Diff(ref, got, o)
	for i, d := range diffs {
		if i == 20 {
			t.Errorf("%s: %d more differences", what, len(diffs)-i)
			break
		}
		t.Errorf("%s: %s", what, d)
	}
	if refGroups != gotGroups {
		t.Errorf("%s: hard-link groups differ:\n want %s\n got  %s", what, refGroups, gotGroups)
	}
	return len(ref)
}

// ---------------------------------------------------------------------------
// Trees on disk (fsck.erofs --extract output, kernel mounts).
// ---------------------------------------------------------------------------

// dirTree reads a directory as a tree (hard links as copies, grouped by inode
// number) with xattrs (not of symlinks) and nanosecond mtimes.
func dirTree(t testing.TB, root string, withXattrs bool) (tree.Tree, string) {
	t.Helper()
	out := tree.Tree{}
	byIno := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := tree.Node{Mode: int64(st.Mode & ModePermMask), UID: int(st.Uid), GID: int(st.Gid), ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC()}
		switch m := fi.Mode(); {
		case m.IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.Type, n.Size, n.SHA256 = tar.TypeReg, int64(len(b)), hex.EncodeToString(s[:])
		case m.IsDir():
			n.Type = tar.TypeDir
		case m&fs.ModeSymlink != 0:
			n.Type = tar.TypeSymlink
			if n.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case m&fs.ModeCharDevice != 0, m&fs.ModeDevice != 0:
			n.Type = tar.TypeBlock
			if m&fs.ModeCharDevice != 0 {
				n.Type = tar.TypeChar
			}
			dev := st.Rdev
			n.Devmajor = int64((dev>>8)&0xfff | (dev>>32)&^0xfff)
			n.Devminor = int64(dev&0xff | (dev>>12)&^0xff)
		case m&fs.ModeNamedPipe != 0:
			n.Type = tar.TypeFifo
		default:
			return fmt.Errorf("%s: unexpected mode %v", rel, m)
		}
		if n.Type != tar.TypeDir && st.Nlink > 1 {
			byIno[st.Ino] = append(byIno[st.Ino], rel)
		}
		if withXattrs && n.Type != tar.TypeSymlink {
			for _, x := range listXattrs(t, p) {
				if n.Xattrs == nil {
					n.Xattrs = map[string]string{}
				}
				n.Xattrs[x.Name] = string(x.Value)
			}
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	gm := map[string][]string{}
	for _, g := range byIno {
		sort.Strings(g)
		gm[g[0]] = g
	}
	return out, groupString(gm)
}

func listXattrs(t testing.TB, p string) []Xattr {
	buf := make([]byte, 64<<10)
	n, err := syscall.Listxattr(p, buf)
	if err != nil {
		if errors.Is(err, syscall.ENOTSUP) {
			return nil
		}
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var out []Xattr
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := syscall.Getxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		out = append(out, Xattr{name, v[:m]})
	}
	return out
}

// mapTree applies fn to every node.
func mapTree(in tree.Tree, fn func(p string, n tree.Node) tree.Node) tree.Tree {
	out := tree.Tree{}
	for p, n := range in {
		out[p] = fn(p, n)
	}
	return out
}

// rawDevices writes the raw device of every blob of f into dir and returns the paths.
func rawDevices(t testing.TB, f *FS, dir string) []string {
	t.Helper()
	var out []string
	for i := range f.blobs {
		p := filepath.Join(dir, fmt.Sprintf("blob%d.raw", i))
		fh, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		size, err := f.WriteRawDevice(i, fh)
		if err == nil {
			err = fh.Truncate(size)
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("raw device of blob %d: %v", i, err)
		}
		out = append(out, p)
	}
	return out
}

// runFsck runs fsck.erofs on a bootstrap with its devices; with extract it
// also reads every file and returns the extracted directory.
func runFsck(t testing.TB, boot string, devs []string, extract bool) string {
	t.Helper()
	tool := needTool(t, "fsck.erofs")
	var args []string
	for _, d := range devs {
		args = append(args, "--device="+d)
	}
	out := ""
	if extract {
		out = filepath.Join(t.TempDir(), "x")
		args = append(args, "--extract="+out)
	}
	args = append(args, boot)
	b, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.erofs %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

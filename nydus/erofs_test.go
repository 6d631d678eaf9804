package nydus_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/internal/tree"
	"github.com/fmtconv/fmtconv/nydus"
	"github.com/fmtconv/fmtconv/nydus/nydustest"
)

// The bootstraps we write, the real nydus-image fixtures and the synthetic images, read by
// the three EROFS readers of nydustest — fsck.erofs, the kernel, go-erofs — must show the
// tree they hold: for written images the OCI reference applier's tree of their layers, for
// the others our reader's tree (itself checked against the fixture README and the synthetic
// specification in package nydus).

// readerCase is one bootstrap with its raw devices and the tree it must show.
type readerCase struct {
	name   string
	f      *nydus.FS
	im     nydustest.Image
	want   tree.Tree
	ignore []string
	files  map[string]string // sha256 of files the fixture README lists
}

func readerCases(t *testing.T) []readerCase {
	t.Helper()
	var out []readerCase
	for _, w := range nydus.WrittenImages(t) {
		out = append(out, readerCase{name: w.Name, f: w.FS, im: nydustest.WriteImage(t, w.Boot, w.FS), want: w.Want, ignore: w.Ignore})
	}
	for _, x := range nydus.FixtureImages(t) {
		im := nydustest.WriteImage(t, x.Boot, x.FS)
		ours := nydustest.NydusTree(t, x.FS)
		out = append(out, readerCase{name: x.Name, f: x.FS, im: im, want: ours, files: x.Files})
		// and with the fixture README's derived raw device instead of the one we export
		derived := filepath.Join(t.TempDir(), "derived.raw")
		if err := os.WriteFile(derived, x.Raw, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, readerCase{name: x.Name + "-readme-rawdev", f: x.FS, im: nydustest.Image{Boot: im.Boot, Devices: []string{derived}}, want: ours, files: x.Files})
	}
	for _, s := range nydus.SynthImages(t) {
		out = append(out, readerCase{name: "synth-" + s.Name, f: s.FS, im: nydustest.WriteImage(t, s.Boot, s.FS), want: nydustest.NydusTree(t, s.FS)})
	}
	return out
}

// checkREADME checks the files the fixture README lists in a tree a reader shows.
func (c *readerCase) checkREADME(t *testing.T, reader string, got tree.Tree) {
	t.Helper()
	for p, sum := range c.files {
		if got[p].SHA256 != sum {
			t.Errorf("%s: %s has sha256 %q, the fixture README says %s", reader, p, got[p].SHA256, sum)
		}
	}
}

// fsck.erofs accepts every bootstrap and, reading the chunks from the raw devices, extracts
// the tree the image must show. erofs-utils 1.5 extracts hard links as copies, does not
// restore xattrs and drops setuid/setgid of files (nydustest.FsckView): the kernel mount
// test compares those. Hard links are compared here through dump.erofs: every name has the
// nid and file type our reader gives it.
func TestEROFSFsck(t *testing.T) {
	testenv.RequireTool(t, "fsck.erofs")
	for _, c := range readerCases(t) {
		t.Run(c.name, func(t *testing.T) {
			c.im.Fsck(t)
			got := nydustest.DirTree(t, c.im.Extract(t), false)
			n := tree.Expect(t, "fsck.erofs --extract", nydustest.FsckView(c.want), nydustest.FsckView(got), tree.Options{Ignore: c.ignore})
			c.checkREADME(t, "fsck.erofs --extract", got)
			var dirs []string
			ours := map[string][2]uint64{}
			_ = c.f.Walk(func(e *nydus.Entry) error {
				if e.Type == nydus.FileTypeDir {
					dirs = append(dirs, e.Path)
				}
				if e.Path != "." {
					ours[e.Path] = [2]uint64{e.Nid, uint64(e.Type)}
				}
				return nil
			})
			theirs := c.im.DumpNids(t, dirs)
			for p, v := range ours {
				if theirs[p] != v {
					t.Errorf("%s: nid/type %v, dump.erofs %v", p, v, theirs[p])
				}
			}
			if len(theirs) != len(ours) {
				t.Errorf("dump.erofs lists %d names, our reader %d", len(theirs), len(ours))
			}
			t.Logf("%s: fsck.erofs passes; %d extracted entries identical; %d nids and types identical to dump.erofs; %d raw devices",
				c.name, n, len(ours), len(c.im.Devices))
		})
	}
}

// The kernel's EROFS shows exactly the tree the image must show: names, types, contents,
// modes with setuid/setgid/sticky, owners, nanosecond mtimes, device numbers, xattrs and
// hard links (inode numbers).
func TestEROFSKernelMount(t *testing.T) {
	for _, c := range readerCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got := nydustest.DirTree(t, c.im.Mount(t), true)
			n := tree.Expect(t, "kernel mount", c.want, got, tree.Options{Ignore: c.ignore})
			c.checkREADME(t, "kernel mount", got)
			t.Logf("%s: %d entries identical between the kernel mount and the expected tree (%d devices)", c.name, n, len(c.im.Devices))
		})
	}
}

// go-erofs (pure Go, no code shared with package nydus) walks the whole tree and reads every
// file, with the raw devices as extra devices, and sees the same names, types, modes,
// owners, nanosecond mtimes, sizes, symlink targets, device numbers, xattrs, hard links and
// contents. Files with xattrs are read too (see nydustest.GoErofsTree: v0.3.1 reads them
// right); in basic, xattrs/user has an xattr area of 4 (mod 8) bytes, so its chunk-index
// map follows 4 bytes of alignment padding.
func TestEROFSGoErofs(t *testing.T) {
	for _, c := range readerCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got := nydustest.GoErofsTree(t, c.im.GoErofs(t))
			n := tree.Expect(t, "go-erofs", c.want, got, tree.Options{Ignore: c.ignore})
			c.checkREADME(t, "go-erofs", got)
			withX := 0
			for _, nd := range got {
				if nd.Type == '0' && len(nd.Xattrs) > 0 && nd.Size > 0 {
					withX++
				}
			}
			t.Logf("%s: %d entries identical between go-erofs and the expected tree, %d of them files with data and xattrs", c.name, n, withX)
		})
	}
}

// The readers' trees have teeth: with a raw device of zeros every file with data reads
// differently through fsck.erofs, the kernel and go-erofs; and an expected tree without
// usr/bin/wall's setgid bit, usr/bin/ping's capability or a hard link differs from the
// kernel's tree.
func TestEROFSCheckersSeeDifferences(t *testing.T) {
	testenv.RequireTool(t, "fsck.erofs")
	var w nydus.TestImage
	for _, x := range nydus.WrittenImages(t) {
		if x.Name == "layer-basic-zstd-1m" {
			w = x
		}
	}
	if w.FS == nil {
		t.Fatal("no written image layer-basic-zstd-1m")
	}
	im := nydustest.WriteImage(t, w.Boot, w.FS)
	for _, d := range im.Devices {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(d, make([]byte, fi.Size()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	differs := func(what string, want, got tree.Tree) {
		t.Helper()
		ft := &nydus.FakeT{}
		tree.Expect(ft, what, want, got, tree.Options{})
		if !ft.Failed() {
			t.Errorf("%s: no difference seen", what)
		}
	}
	differs("fsck.erofs --extract, zero device", nydustest.FsckView(w.Want), nydustest.FsckView(nydustest.DirTree(t, im.Extract(t), false)))
	differs("go-erofs, zero device", w.Want, nydustest.GoErofsTree(t, im.GoErofs(t)))
	differs("kernel, zero device", w.Want, nydustest.DirTree(t, im.Mount(t), true))

	got := nydustest.DirTree(t, nydustest.WriteImage(t, w.Boot, w.FS).Mount(t), true)
	tree.Expect(t, "kernel, intact device", w.Want, got, tree.Options{})
	for _, mutate := range []func(tree.Tree){
		func(tr tree.Tree) { n := tr["usr/bin/wall"]; n.Mode &^= 0o2000; tr["usr/bin/wall"] = n },
		func(tr tree.Tree) { n := tr["usr/bin/ping"]; n.Xattrs = nil; tr["usr/bin/ping"] = n },
		func(tr tree.Tree) { n := tr["data/size-513"]; n.Group = ""; tr["data/size-513"] = n },
	} {
		m := nydustest.Map(w.Want, func(_ string, n tree.Node) tree.Node { return n })
		mutate(m)
		differs("kernel, mutated expectation", m, got)
	}
}

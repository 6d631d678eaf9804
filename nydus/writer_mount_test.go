//go:build linux

package nydus

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/internal/tree"
)

// writtenImage is a bootstrap we wrote, its blobs readable through f, and the
// tree it must show (hard links resolved) with its link groups.
type writtenImage struct {
	name      string
	boot      []byte
	f         *FS
	ref       tree.Tree
	refGroups string
	ignore    []string
}

// writtenImages: merged [basic, whiteouts]; the merged 4-layer stack of
// TestMergeSemantics' kind; per-layer bootstraps of basic and of the edge
// layer (as Pack inlines them, whiteouts kept); with lz4 and 4 KiB chunks too.
func writtenImages(t *testing.T) []writtenImage {
	var out []writtenImage
	basic, wh := catalogueTar(testimages.LayerBasic), catalogueTar(testimages.LayerWhiteouts)
	edge := testimages.MustBuildTar(edgeEntries(), testimages.Ending{})
	for _, c := range []struct {
		name string
		o    PackOptions
	}{{"zstd-1m", PackOptions{}}, {"lz4-4k", PackOptions{Compressor: "lz4_block", ChunkSize: 4096}}} {
		im := packAndMerge(t, c.o, basic, wh)
		ref, rg := ociApply(t, basic, wh)
		out = append(out, writtenImage{name: "merged-basic-whiteouts-" + c.name, boot: im.merged.Bootstrap, f: im.open(t), ref: ref, refGroups: rg})

		for _, l := range []struct {
			name   string
			tar    []byte
			ignore []string
		}{{"basic", basic, nil}, {"edge", edge, implicitDirs}} {
			res, blob := pack(t, l.tar, c.o)
			ref, rg := normalize(tarTree(t, l.tar))
			out = append(out, writtenImage{name: "layer-" + l.name + "-" + c.name, boot: res.Bootstrap, f: openPacked(t, blob), ref: ref, refGroups: rg, ignore: l.ignore})
		}
	}
	im := packAndMerge(t, PackOptions{ChunkSize: 4096}, basic, edge, wh)
	ref, rg := ociApply(t, basic, edge, wh)
	out = append(out, writtenImage{name: "merged-basic-edge-whiteouts", boot: im.merged.Bootstrap, f: im.open(t), ref: ref, refGroups: rg, ignore: implicitDirs})
	return out
}

func (w *writtenImage) files(t *testing.T) (boot string, devs []string) {
	dir := t.TempDir()
	boot = filepath.Join(dir, "image.boot")
	if err := os.WriteFile(boot, w.boot, 0o644); err != nil {
		t.Fatal(err)
	}
	return boot, rawDevices(t, w.f, dir)
}

// fsck.erofs accepts every bootstrap we write and, reading the chunks from
// the raw devices, extracts the tree the image must show. erofs-utils 1.5
// extracts hard links as copies, and does not keep setuid/setgid bits of files
// (it chowns after chmod) nor restore xattrs, so those are compared through
// the kernel mount.
func TestWrittenBootstrapsFsckErofs(t *testing.T) {
	needTool(t, "fsck.erofs")
	for _, w := range writtenImages(t) {
		t.Run(w.name, func(t *testing.T) {
			boot, devs := w.files(t)
			runFsck(t, boot, devs, false)
			out := runFsck(t, boot, devs, true)
			got, _ := dirTree(t, out, false)
			noXattrNoSetgid := func(_ string, n tree.Node) tree.Node {
				n.Xattrs = nil
				if n.Type == tar.TypeReg {
					n.Mode &^= 0o6000 // chown after chmod clears setuid/setgid
				}
				return n
			}
			n := sameAsRef(t, "fsck.erofs --extract", mapTree(w.ref, noXattrNoSetgid), "", mapTree(got, noXattrNoSetgid), "", tree.Options{Ignore: w.ignore})
			t.Logf("%s: fsck.erofs passes; %d extracted entries identical (setgid, xattrs and hard links compared by the kernel mount test); %d raw devices", w.name, n, len(devs))
		})
	}
}

// The kernel's EROFS shows exactly the tree the image must show: names,
// types, contents, modes with setuid/setgid/sticky, owners, nanosecond
// mtimes, device numbers, xattrs and hard links (inode numbers).
func TestWrittenBootstrapsKernelMount(t *testing.T) {
	for _, w := range writtenImages(t) {
		t.Run(w.name, func(t *testing.T) {
			boot, devs := w.files(t)
			mnt := mountErofs(t, boot, devs)
			got, groups := dirTree(t, mnt, true)
			n := sameAsRef(t, "kernel mount", w.ref, w.refGroups, got, groups, tree.Options{Ignore: w.ignore})
			t.Logf("%s: %d entries identical between the kernel mount and the expected tree (%d devices; link groups %q)", w.name, n, len(devs), groups)
		})
	}
}

// mountErofs mounts a bootstrap read-only with its raw devices on loop
// devices. Without root, loop devices or EROFS it says so, and fails when CI=true.
func mountErofs(t *testing.T, boot string, devs []string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "kernel EROFS mount needs root (uid %d)", os.Geteuid())
	}
	opts := []string{"ro"}
	for _, d := range devs {
		out, err := exec.Command("losetup", "-f", "--show", "-r", d).CombinedOutput()
		if err != nil {
			skipOrFail(t, "losetup %s: %v %s", d, err, out)
		}
		loop := strings.TrimSpace(string(out))
		t.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })
		opts = append(opts, "device="+loop)
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "erofs", "-o", strings.Join(opts, ","), boot, mnt).CombinedOutput(); err != nil {
		skipOrFail(t, "kernel EROFS mount of %s failed: %v %s", boot, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})
	return mnt
}

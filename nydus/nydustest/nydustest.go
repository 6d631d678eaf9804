// Package nydustest checks Nydus (RAFS v6) bootstraps with readers that share no code with
// package nydus: fsck.erofs of erofs-utils (check, --extract), the Linux kernel's EROFS
// (read-only mount with the blobs on loop devices) and github.com/erofs/go-erofs. It is
// the exported test suite of the nydus package, in the spirit of estargz's testutil: any
// test that writes a bootstrap — the package's own, the conversion pipeline's — can hand it
// here, with its blobs, and compare what each reader shows with the tree the image must hold
// (an internal/tree Tree; see tree.ApplyOCI for the merged filesystem of OCI layers).
//
// An EROFS reader sees a blob through its "raw device" (nydus.FS.WriteRawDevice): every
// chunk decompressed at its block address, extra device k+1 of the bootstrap for blob k.
// Image holds a bootstrap and those devices as files.
//
// Trees read here have the form tree.Tree.Resolved gives: every name of a hard-linked inode
// carries the inode's node and Group lists all its names, so tree.Diff and tree.Expect
// compare them with trees read from tars.
//
// Missing tools, root or kernel support skip the test loudly, and fail it when CI is true
// (SkipOrFail, the policy of internal/testenv).
package nydustest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/nydus"
)

// SkipOrFail skips the test with a loud message, or fails it when CI is true.
func SkipOrFail(t testing.TB, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if testenv.InCI() {
		t.Fatalf("%s [CI=true: failing instead of skipping]", msg)
	}
	t.Skip("SKIP: " + msg)
}

// Image is a bootstrap and the raw devices of its blobs, as files.
type Image struct {
	Boot string
	// Devices[k] is the raw device of blob k (EROFS extra device k+1).
	Devices []string
}

// WriteImage writes the bootstrap boot and the raw devices of the blobs of f (the same
// bootstrap, opened with its blobs) into a new temporary directory.
func WriteImage(t testing.TB, boot []byte, f *nydus.FS) Image {
	t.Helper()
	dir := t.TempDir()
	im := Image{Boot: filepath.Join(dir, "image.boot")}
	if err := os.WriteFile(im.Boot, boot, 0o644); err != nil {
		t.Fatal(err)
	}
	im.Devices = RawDevices(t, f, dir)
	return im
}

// OpenImage opens a bootstrap with its blobs (through blobs) and writes it as an Image.
func OpenImage(t testing.TB, boot []byte, blobs nydus.BlobResolver) (*nydus.FS, Image) {
	t.Helper()
	f, err := nydus.Open(bytes.NewReader(boot), int64(len(boot)), blobs)
	if err != nil {
		t.Fatalf("nydus.Open: %v", err)
	}
	return f, WriteImage(t, boot, f)
}

// RawDevices writes the raw device of every blob of f into dir (blob<k>.raw) and returns their paths.
func RawDevices(t testing.TB, f *nydus.FS, dir string) []string {
	t.Helper()
	var out []string
	for i := range f.BlobTable() {
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

// fsck runs fsck.erofs with the image's devices and extra arguments.
func (im Image) fsck(t testing.TB, extra ...string) {
	t.Helper()
	testenv.RequireTool(t, "fsck.erofs")
	var args []string
	for _, d := range im.Devices {
		args = append(args, "--device="+d)
	}
	args = append(append(args, extra...), im.Boot)
	if b, err := exec.Command("fsck.erofs", args...).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// Fsck runs fsck.erofs on the image (metadata checks) and fails the test if it complains.
func (im Image) Fsck(t testing.TB) {
	t.Helper()
	im.fsck(t)
}

// Extract runs fsck.erofs --extract, which also reads every file through its chunk indexes,
// and returns the extracted directory. erofs-utils 1.5 extracts hard links as copies, does
// not restore xattrs, and chowns after chmod, which clears setuid/setgid (see FsckView).
func (im Image) Extract(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "x")
	im.fsck(t, "--extract="+out)
	return out
}

// Mount mounts the image read-only with the kernel's EROFS (each raw device on a read-only
// loop device, mount -t erofs -o ro,device=...) and returns the mount point; it is
// unmounted and the loop devices detached in t.Cleanup. Without root, loop devices or EROFS
// it skips (fails under CI).
func (im Image) Mount(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "kernel EROFS mount needs root (uid %d)", os.Geteuid())
	}
	testenv.RequireTool(t, "losetup", "mount", "umount")
	opts := []string{"ro"}
	for _, d := range im.Devices {
		out, err := exec.Command("losetup", "-f", "--show", "-r", d).CombinedOutput()
		if err != nil {
			SkipOrFail(t, "losetup %s: %v %s", d, err, out)
		}
		loop := strings.TrimSpace(string(out))
		t.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })
		opts = append(opts, "device="+loop)
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "erofs", "-o", strings.Join(opts, ","), im.Boot, mnt).CombinedOutput(); err != nil {
		SkipOrFail(t, "kernel EROFS mount of %s failed: %v %s", im.Boot, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	return mnt
}

// dumpLine is a name of dump.erofs --ls: "%10llu %4d  %s" (nid, file type, name).
var dumpLine = regexp.MustCompile(`^ *([0-9]+) +([0-9]+)  (.+)$`)

// DumpNids lists, with dump.erofs --ls, the nid and dirent file type of every name in the
// given directories ("." is the root), keyed by path.
func (im Image) DumpNids(t testing.TB, dirs []string) map[string][2]uint64 {
	t.Helper()
	testenv.RequireTool(t, "dump.erofs")
	var devs []string
	for _, d := range im.Devices {
		devs = append(devs, "--device="+d)
	}
	out := map[string][2]uint64{}
	for _, d := range dirs {
		p := "/" + d
		if d == "." {
			p = "/"
		}
		b, err := exec.Command("dump.erofs", append(devs, "--ls", "--path="+p, im.Boot)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dump.erofs --ls %s: %v\n%s", p, err, b)
		}
		list := false
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "NID" && f[1] == "TYPE" {
				list = true
				continue
			}
			m := dumpLine.FindStringSubmatch(line)
			if !list || m == nil || m[3] == "." || m[3] == ".." {
				continue
			}
			nid, _ := strconv.ParseUint(m[1], 10, 64)
			typ, _ := strconv.ParseUint(m[2], 10, 64)
			out[path.Join(d, m[3])] = [2]uint64{nid, typ}
		}
	}
	return out
}

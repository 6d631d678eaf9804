//go:build linux

package nydus

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// kernelMount mounts a bootstrap with one raw device through the kernel's EROFS
// (read-only; the device on a loop device, the bootstrap through mount's own
// loop). It skips (loudly, never failing) when that is not possible here.
func kernelMount(t *testing.T, boot, dev string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: kernel EROFS mount needs root")
	}
	out, err := exec.Command("losetup", "-f", "--show", "-r", dev).CombinedOutput()
	if err != nil {
		t.Skipf("SKIP: losetup: %v %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "erofs", "-o", "ro,device="+loop, boot, mnt).CombinedOutput(); err != nil {
		t.Skipf("SKIP: kernel EROFS mount failed: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})
	return mnt
}

func diskXattrs(t *testing.T, p string) []Xattr {
	buf := make([]byte, 64<<10)
	n, err := syscall.Listxattr(p, buf)
	if err != nil {
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
	slices.SortFunc(out, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// The kernel's EROFS reads our synthetic images, and the fixture, like we do:
// names, types, sizes, contents, targets, mode (setuid included), owners,
// mtimes, device numbers, hard links (inode numbers) and xattrs.
func TestKernelMount(t *testing.T) {
	type img struct {
		name      string
		f         *FS
		boot, dev []byte
	}
	var imgs []img
	f22, boot22, _ := open22(t)
	imgs = append(imgs, img{"rafs-v6-2.2", f22, boot22, readFixture(t, fxRawBe7d)})
	layer := readFixture(t, fxLayer2fa)
	f2fa, err := OpenLayer(bytes.NewReader(layer), int64(len(layer)), nil)
	if err != nil {
		t.Fatal(err)
	}
	imgs = append(imgs, img{"2fa78cad", f2fa, readFixture(t, fxBoot2fa), readFixture(t, fxRaw2fa)})
	for _, c := range synthConfigs {
		boot, blob := buildStd(t, c.o)
		f := openSynth(t, c.o, boot, blob)
		var dev writerAtBuf
		n, err := f.WriteRawDevice(0, &dev)
		if err != nil {
			t.Fatal(err)
		}
		dev.grow(n)
		imgs = append(imgs, img{c.name, f, boot, dev.b})
	}
	for _, im := range imgs {
		t.Run(im.name, func(t *testing.T) {
			dir := t.TempDir()
			bp, dp := filepath.Join(dir, "boot"), filepath.Join(dir, "dev")
			if err := os.WriteFile(bp, im.boot, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dp, im.dev, 0o644); err != nil {
				t.Fatal(err)
			}
			mnt := kernelMount(t, bp, dp)
			ours := ourTree(t, im.f)
			disk := diskTree(t, mnt)
			n := compareTrees(t, ours, disk, compareOpts{meta: true, links: true})
			nx := 0
			_ = im.f.Walk(func(e *Entry) error {
				if e.Type == FileTypeSymlink {
					return nil
				}
				got := diskXattrs(t, filepath.Join(mnt, e.Path))
				if len(got) != len(e.Xattrs) {
					t.Errorf("%s: xattrs %v, kernel %v", e.Path, e.Xattrs, got)
					return nil
				}
				for i := range got {
					if got[i].Name != e.Xattrs[i].Name || !bytes.Equal(got[i].Value, e.Xattrs[i].Value) {
						t.Errorf("%s: xattr %v, kernel %v", e.Path, e.Xattrs[i], got[i])
					}
				}
				nx += len(got)
				return nil
			})
			t.Logf("%s: %d entries and %d xattrs identical between the kernel mount and our reader", im.name, n, nx)
		})
	}
}

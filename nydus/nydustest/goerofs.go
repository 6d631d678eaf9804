package nydustest

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	erofs "github.com/erofs/go-erofs"

	"github.com/fmtconv/fmtconv/internal/tree"
	"github.com/fmtconv/fmtconv/nydus"
)

// GoErofs opens the image with github.com/erofs/go-erofs, the raw devices as its extra
// devices; the files are closed in t.Cleanup.
func (im Image) GoErofs(t testing.TB) fs.FS {
	t.Helper()
	open := func(p string) *os.File {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	var devs []io.ReaderAt
	for _, d := range im.Devices {
		devs = append(devs, open(d))
	}
	fsys, err := erofs.Open(open(im.Boot), erofs.WithExtraDevices(devs...))
	if err != nil {
		t.Fatalf("go-erofs: %v", err)
	}
	return fsys
}

// GoErofsTree walks the whole image with go-erofs (fs.WalkDir, Lstat, ReadLink, reading
// every regular file through Open) and returns it as a tree, the way DirTree reads a
// directory (xattrs of every type included).
//
// go-erofs v0.3.1 reads chunk-based files with xattrs correctly, from the chunk-index map
// aligned to 8 bytes after the xattr area as the kernel does: the upstream fix 622ddde
// ("chunk-index map alignment for inodes with xattrs", later than v0.3.1) changed its
// writer, which wrote the map unaligned, not its reader. So every file's content is read.
func GoErofsTree(t testing.TB, fsys fs.FS) tree.Tree {
	t.Helper()
	out := tree.Tree{}
	byNid := map[uint64][]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		fi, err := fs.Lstat(fsys, p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*erofs.Stat)
		if !ok {
			return fmt.Errorf("%s: Sys() is %T, not *erofs.Stat", p, fi.Sys())
		}
		// st.Mode is the inode's mode as an fs.FileMode (fi.Mode() keeps raw mode bits).
		n := tree.Node{Mode: permBits(st.Mode), UID: int(st.UID), GID: int(st.GID),
			ModTime: time.Unix(int64(st.Mtime), int64(st.MtimeNs)).UTC()}
		if n.Type, err = typeOf(st.Mode); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if d.Type() != st.Mode.Type() {
			return fmt.Errorf("%s: dirent type %v, inode type %v", p, d.Type(), st.Mode.Type())
		}
		for k, v := range st.Xattrs {
			if n.Xattrs == nil {
				n.Xattrs = map[string]string{}
			}
			// go-erofs v0.3.1 names the POSIX ACL indexes (2, 3) with a trailing dot:
			// "system.posix_acl_access." for "system.posix_acl_access" (its xattrIndex.String).
			if k == "system.posix_acl_access." || k == "system.posix_acl_default." {
				k = strings.TrimSuffix(k, ".")
			}
			n.Xattrs[k] = v
		}
		switch n.Type {
		case tar.TypeReg:
			f, err := fsys.Open(p)
			if err != nil {
				return err
			}
			size, sum, err := fileSHA256(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if size != st.Size {
				return fmt.Errorf("%s: read %d bytes, inode size %d", p, size, st.Size)
			}
			n.Size, n.SHA256 = size, sum
		case tar.TypeSymlink:
			if n.Linkname, err = fs.ReadLink(fsys, p); err != nil {
				return err
			}
		case tar.TypeChar, tar.TypeBlock:
			major, minor := nydus.DecodeDev(st.Rdev)
			n.Devmajor, n.Devminor = int64(major), int64(minor)
		}
		if n.Type != tar.TypeDir {
			byNid[uint64(st.Ino)] = append(byNid[uint64(st.Ino)], p)
		}
		out[p] = n
		return nil
	})
	if err != nil {
		t.Fatalf("go-erofs walk: %v", err)
	}
	inodeGroups(out, byNid)
	return out
}

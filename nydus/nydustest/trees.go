package nydustest

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/internal/tree"
	"github.com/fmtconv/fmtconv/nydus"
)

// inodeGroups sets Group on every name of an inode (non-directory) that has more than one name.
func inodeGroups(out tree.Tree, byInode map[uint64][]string) {
	for _, names := range byInode {
		if len(names) < 2 {
			continue
		}
		g := tree.LinkGroup(names)
		for _, p := range names {
			n := out[p]
			n.Group = g
			out[p] = n
		}
	}
}

// fileSHA256 returns the size and sha256 of what r reads.
func fileSHA256(r io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// permBits converts an fs.FileMode's permission and special bits to the tar (07777) form.
func permBits(m fs.FileMode) int64 {
	p := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// TypeSocket is the tree.Node.Type of a socket, which tar cannot hold (RAFS can: nydus-image
// builds from directories).
const TypeSocket = 's'

// typeOf maps an fs.FileMode type to a tar type flag.
func typeOf(m fs.FileMode) (byte, error) {
	switch {
	case m.IsRegular():
		return tar.TypeReg, nil
	case m.IsDir():
		return tar.TypeDir, nil
	case m&fs.ModeSymlink != 0:
		return tar.TypeSymlink, nil
	case m&fs.ModeCharDevice != 0:
		return tar.TypeChar, nil
	case m&fs.ModeDevice != 0:
		return tar.TypeBlock, nil
	case m&fs.ModeNamedPipe != 0:
		return tar.TypeFifo, nil
	case m&fs.ModeSocket != 0:
		return TypeSocket, nil
	}
	return 0, fmt.Errorf("unexpected file type %v", m)
}

// DirTree reads a directory (an extracted or mounted image) as a tree: names, types, modes
// with setuid/setgid/sticky, owners, nanosecond mtimes, sizes and sha256 of files, symlink
// targets, device numbers, hard links (by inode number) and, with xattrs, the extended
// attributes of everything but symlinks.
func DirTree(t testing.TB, root string, xattrs bool) tree.Tree {
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
		n := tree.Node{Mode: permBits(fi.Mode()), UID: int(st.Uid), GID: int(st.Gid), ModTime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)).UTC()}
		if n.Type, err = typeOf(fi.Mode()); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		switch n.Type {
		case tar.TypeReg:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n.Size, n.SHA256, err = fileSHA256(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		case tar.TypeSymlink:
			if n.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case tar.TypeChar, tar.TypeBlock:
			dev := st.Rdev // glibc's dev_t encoding
			n.Devmajor = int64((dev>>8)&0xfff | (dev>>32)&^0xfff)
			n.Devminor = int64(dev&0xff | (dev>>12)&^0xff)
		}
		if n.Type != tar.TypeDir {
			byIno[st.Ino] = append(byIno[st.Ino], rel)
		}
		if xattrs && n.Type != tar.TypeSymlink {
			if n.Xattrs, err = testimages.Xattrs(p); err != nil {
				return err
			}
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", root, err)
	}
	inodeGroups(out, byIno)
	return out
}

// NydusTree reads a bootstrap with package nydus's reader (Walk, ReadFile, the entries'
// xattrs), the way DirTree reads a directory.
func NydusTree(t testing.TB, f *nydus.FS) tree.Tree {
	t.Helper()
	out := tree.Tree{}
	byNid := map[uint64][]string{}
	err := f.Walk(func(e *nydus.Entry) error {
		if e.Path == "." {
			return nil
		}
		n := tree.Node{Mode: int64(e.Mode), UID: int(e.UID), GID: int(e.GID), ModTime: e.ModTime.UTC()}
		var err error
		if n.Type, err = typeOf(e.FileMode()); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		switch n.Type {
		case tar.TypeReg:
			b, err := f.ReadFile(e.Path)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.Size, n.SHA256 = int64(len(b)), hex.EncodeToString(s[:])
		case tar.TypeSymlink:
			n.Linkname = e.LinkTarget
		case tar.TypeChar, tar.TypeBlock:
			n.Devmajor, n.Devminor = int64(e.DevMajor), int64(e.DevMinor)
		}
		for _, x := range e.Xattrs {
			if n.Xattrs == nil {
				n.Xattrs = map[string]string{}
			}
			n.Xattrs[x.Name] = string(x.Value)
		}
		if n.Type != tar.TypeDir {
			byNid[e.Nid] = append(byNid[e.Nid], e.Path)
		}
		out[e.Path] = n
		return nil
	})
	if err != nil {
		t.Fatalf("walking the bootstrap: %v", err)
	}
	inodeGroups(out, byNid)
	return out
}

// FsckView drops from a tree what fsck.erofs --extract (erofs-utils 1.5) does not restore:
// xattrs, hard links (it writes copies) and setuid/setgid of regular files (it chowns after
// chmod, which clears them). Compare FsckView(want) with FsckView(DirTree(Extract)).
func FsckView(in tree.Tree) tree.Tree {
	return Map(in, func(_ string, n tree.Node) tree.Node {
		n.Xattrs, n.Group = nil, ""
		if n.Type == tar.TypeReg {
			n.Mode &^= 0o6000
		}
		return n
	})
}

// Map returns a copy of a tree with fn applied to every node.
func Map(in tree.Tree, fn func(p string, n tree.Node) tree.Node) tree.Tree {
	out := tree.Tree{}
	for p, n := range in {
		out[p] = fn(p, n)
	}
	return out
}

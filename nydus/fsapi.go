package nydus

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// Entry describes one name in the filesystem tree.
type Entry struct {
	// Path is slash separated and relative to the root; the root is ".".
	Path string
	Type FileType
	// Mode holds the permission bits plus setuid, setgid and sticky (07777).
	Mode     uint32
	UID, GID uint32
	// ModTime has seconds and nanoseconds (compact inodes: the superblock build time).
	ModTime time.Time
	// Size is the file size (regular files), the target length (symlinks) or the
	// size of the directory's dirent blocks (directories).
	Size int64
	// LinkTarget is the symlink target.
	LinkTarget string
	// Rdev is the raw device number (Linux new_encode_dev), split in DevMajor/DevMinor.
	Rdev               uint32
	DevMajor, DevMinor uint32
	// Xattrs sorted by name.
	Xattrs []Xattr
	// Nid identifies the inode: names with the same Nid are hard links.
	Nid   uint64
	Ino   uint32
	Nlink uint32
	// HardlinkTo is, for the second and later names of an inode in walk order,
	// the path of its first name; empty otherwise.
	HardlinkTo string
}

// FileMode returns the io/fs mode of the entry.
func (e *Entry) FileMode() fs.FileMode {
	m := fs.FileMode(e.Mode & 0o777)
	if e.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch e.Type {
	case FileTypeDir:
		m |= fs.ModeDir
	case FileTypeSymlink:
		m |= fs.ModeSymlink
	case FileTypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case FileTypeBlock:
		m |= fs.ModeDevice
	case FileTypeFIFO:
		m |= fs.ModeNamedPipe
	case FileTypeSocket:
		m |= fs.ModeSocket
	}
	return m
}

func (f *FS) entry(n *node, p string) *Entry {
	in := n.in
	e := &Entry{
		Path: p, Type: in.ftype, Mode: uint32(in.ino.Mode) & ModePermMask,
		UID: in.ino.UID, GID: in.ino.GID,
		Size: int64(in.ino.Size), LinkTarget: in.target,
		Xattrs: in.xattrs, Nid: in.nid, Ino: in.ino.Ino, Nlink: in.ino.Nlink,
	}
	if in.ino.Extended() {
		e.ModTime = time.Unix(int64(in.ino.Mtime), int64(in.ino.MtimeNsec)).UTC()
	} else {
		e.ModTime = time.Unix(int64(f.sb.BuildTime)+int64(in.ino.CompactMtime), int64(f.sb.BuildTimeNsec)).UTC()
	}
	switch in.ftype {
	case FileTypeChar, FileTypeBlock, FileTypeFIFO, FileTypeSocket:
		e.Rdev = in.ino.U
		e.DevMajor, e.DevMinor = DecodeDev(in.ino.U)
	}
	if n.link != nil {
		e.HardlinkTo = n.link.path()
	}
	return e
}

// Walk calls fn for every entry, root first, in a deterministic depth-first
// pre-order with the names of each directory sorted bytewise. The Entry is
// fn's to keep. If fn returns fs.SkipDir for a directory, its contents are
// skipped; any other error stops the walk and is returned.
func (f *FS) Walk(fn func(e *Entry) error) error {
	type item struct {
		n *node
		p string
	}
	stack := []item{{f.root, "."}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		err := fn(f.entry(it.n, it.p))
		if err == fs.SkipDir && it.n.in.ftype == FileTypeDir {
			continue
		}
		if err != nil {
			return err
		}
		for i := len(it.n.children) - 1; i >= 0; i-- {
			c := it.n.children[i]
			stack = append(stack, item{c, joinPath(it.p, c.name)})
		}
	}
	return nil
}

// Entries returns all entries in Walk order.
func (f *FS) Entries() []*Entry {
	var out []*Entry
	_ = f.Walk(func(e *Entry) error { out = append(out, e); return nil })
	return out
}

// NumEntries is the number of names in the tree, the root included.
func (f *FS) NumEntries() int { return f.nnodes + 1 }

const maxSymlinkHops = 40

// lookup resolves name (an io/fs valid path). Symlinks in the middle are always
// followed; the last one only if follow is set. Absolute targets are resolved
// from the root of the image, and ".." never leaves it.
func (f *FS) lookup(name string, follow bool) (*node, string, error) {
	if !fs.ValidPath(name) {
		return nil, "", fs.ErrInvalid
	}
	hops := 0
	var resolve func(start *node, parts []string, followLast bool) (*node, error)
	resolve = func(start *node, parts []string, followLast bool) (*node, error) {
		cur := start
		for i, part := range parts {
			switch part {
			case "", ".":
				continue
			case "..":
				if cur.parent != nil {
					cur = cur.parent
				}
				continue
			}
			if cur.in.ftype != FileTypeDir {
				return nil, fs.ErrNotExist
			}
			j, ok := slices.BinarySearchFunc(cur.children, part, func(c *node, s string) int { return strings.Compare(c.name, s) })
			if !ok {
				return nil, fs.ErrNotExist
			}
			next := cur.children[j]
			last := i == len(parts)-1
			if next.in.ftype == FileTypeSymlink && (!last || followLast) {
				hops++
				if hops > maxSymlinkHops {
					return nil, errors.New("too many levels of symbolic links")
				}
				t := next.in.target
				base := cur
				if strings.HasPrefix(t, "/") {
					base = f.root
				}
				var err error
				if next, err = resolve(base, strings.Split(t, "/"), true); err != nil {
					return nil, err
				}
			}
			cur = next
		}
		return cur, nil
	}
	if name == "." {
		return f.root, ".", nil
	}
	n, err := resolve(f.root, strings.Split(name, "/"), follow)
	if err != nil {
		return nil, "", err
	}
	return n, n.path(), nil
}

// Lookup returns the entry at name without following a final symlink.
func (f *FS) Lookup(name string) (*Entry, error) {
	n, _, err := f.lookup(name, false)
	if err != nil {
		return nil, &fs.PathError{Op: "lookup", Path: name, Err: err}
	}
	return f.entry(n, name), nil
}

// Open implements fs.FS. Symlinks are followed (within the image).
func (f *FS) Open(name string) (fs.File, error) {
	n, _, err := f.lookup(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{fs: f, n: n, name: path.Base(name), chunk: -1}, nil
}

// Stat implements fs.StatFS (follows symlinks).
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, _, err := f.lookup(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return &fileInfo{f.entry(n, name), path.Base(name)}, nil
}

// Lstat implements fs.ReadLinkFS.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, _, err := f.lookup(name, false)
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return &fileInfo{f.entry(n, name), path.Base(name)}, nil
}

// ReadLink implements fs.ReadLinkFS.
func (f *FS) ReadLink(name string) (string, error) {
	n, _, err := f.lookup(name, false)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	if n.in.ftype != FileTypeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.in.target, nil
}

// ReadDir implements fs.ReadDirFS (follows symlinks).
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, _, err := f.lookup(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	if n.in.ftype != FileTypeDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return f.dirEntries(n), nil
}

func (f *FS) dirEntries(n *node) []fs.DirEntry {
	out := make([]fs.DirEntry, len(n.children))
	for i, c := range n.children {
		out[i] = fs.FileInfoToDirEntry(&fileInfo{f.entry(c, c.name), c.name})
	}
	return out
}

// ReadFile implements fs.ReadFileFS: the contents of a regular file, read
// through its chunks (follows symlinks); empty for devices, fifos and sockets.
func (f *FS) ReadFile(name string) ([]byte, error) {
	n, _, err := f.lookup(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	switch n.in.ftype {
	case FileTypeReg:
	case FileTypeDir:
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	default:
		return []byte{}, nil // devices, fifos, sockets have no content in an image
	}
	if n.in.ino.Size > 1<<40 {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("file too large to read into memory")}
	}
	out := make([]byte, 0, min(n.in.ino.Size, 64<<20))
	err = f.forEachChunk(n.in, func(b []byte) error { out = append(out, b...); return nil })
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return out, nil
}

// forEachChunk streams a regular file's contents chunk by chunk.
func (f *FS) forEachChunk(in *inode, fn func([]byte) error) error {
	if !in.chunkBased {
		const step = 1 << 20
		for off := int64(0); off < int64(in.ino.Size); off += step {
			b, err := f.readFlat(in, off, min(step, int64(in.ino.Size)-off))
			if err != nil {
				return err
			}
			if err := fn(b); err != nil {
				return err
			}
		}
		return nil
	}
	for k := uint64(0); k < in.nchunks; k++ {
		b, err := f.fileChunk(in, k)
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// Chunks returns the chunks of the regular file at name (not following a final symlink).
func (f *FS) Chunks(name string) ([]ChunkRef, error) {
	n, _, err := f.lookup(name, false)
	if err != nil {
		return nil, &fs.PathError{Op: "chunks", Path: name, Err: err}
	}
	if n.in.ftype != FileTypeReg || !n.in.chunkBased {
		return nil, nil
	}
	out := make([]ChunkRef, 0, min(n.in.nchunks, 1<<16))
	for k := uint64(0); k < n.in.nchunks; k++ {
		ref, _, err := f.resolveChunk(n.in, k)
		if err != nil {
			return out, err
		}
		out = append(out, ref)
	}
	return out, nil
}

type fileInfo struct {
	e    *Entry
	name string
}

func (i *fileInfo) Name() string {
	if i.name == "" || i.name == "/" {
		return "."
	}
	return i.name
}
func (i *fileInfo) Size() int64        { return i.e.Size }
func (i *fileInfo) Mode() fs.FileMode  { return i.e.FileMode() }
func (i *fileInfo) ModTime() time.Time { return i.e.ModTime }
func (i *fileInfo) IsDir() bool        { return i.e.Type == FileTypeDir }
func (i *fileInfo) Sys() any           { return i.e }

// file is an open file (fs.File, io.ReaderAt, io.Seeker; fs.ReadDirFile for directories).
type file struct {
	fs     *FS
	n      *node
	name   string
	off    int64
	chunk  int64 // cached chunk number, -1 none
	buf    []byte
	dirPos int
	closed bool
}

func (fl *file) Stat() (fs.FileInfo, error) {
	return &fileInfo{fl.fs.entry(fl.n, fl.name), fl.name}, nil
}

func (fl *file) Close() error {
	if fl.closed {
		return fs.ErrClosed
	}
	fl.closed = true
	fl.buf = nil
	return nil
}

func (fl *file) Read(p []byte) (int, error) {
	n, err := fl.ReadAt(p, fl.off)
	fl.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (fl *file) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += fl.off
	case io.SeekEnd:
		offset += int64(fl.n.in.ino.Size)
	default:
		return 0, fs.ErrInvalid
	}
	if offset < 0 {
		return 0, fs.ErrInvalid
	}
	fl.off = offset
	return offset, nil
}

func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if fl.closed {
		return 0, fs.ErrClosed
	}
	in := fl.n.in
	if in.ftype == FileTypeDir {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: errors.New("is a directory")}
	}
	if in.ftype != FileTypeReg {
		return 0, io.EOF // devices, fifos, sockets have no content in an image
	}
	if off < 0 {
		return 0, fs.ErrInvalid
	}
	size := int64(in.ino.Size)
	n := 0
	for n < len(p) && off < size {
		var data []byte
		var base int64
		if in.chunkBased {
			cs := int64(fl.fs.ext.ChunkSize)
			k := off / cs
			if k != fl.chunk {
				b, err := fl.fs.fileChunk(in, uint64(k))
				if err != nil {
					return n, err
				}
				fl.buf, fl.chunk = b, k
			}
			data, base = fl.buf, k*cs
		} else {
			b, err := fl.fs.readFlat(in, off, min(int64(len(p)-n), size-off))
			if err != nil {
				return n, err
			}
			data, base = b, off
		}
		c := copy(p[n:], data[off-base:])
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (fl *file) ReadDir(count int) ([]fs.DirEntry, error) {
	if fl.n.in.ftype != FileTypeDir {
		return nil, &fs.PathError{Op: "readdir", Path: fl.name, Err: errors.New("not a directory")}
	}
	all := fl.fs.dirEntries(fl.n)[fl.dirPos:]
	if count > 0 && len(all) > count {
		all = all[:count]
	}
	fl.dirPos += len(all)
	if count > 0 && len(all) == 0 {
		return nil, io.EOF
	}
	return all, nil
}

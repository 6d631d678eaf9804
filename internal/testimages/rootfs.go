package testimages

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// A realistic root filesystem for tests and benchmarks: a three-layer image whose base is
// built from this machine's own files, as tar would archive them, and whose two upper
// layers change it the way image builds do. Unlike everything else in this package it
// depends on the machine (but not on the time of day: the same files give the same bytes).

// RootFSSource is a directory of the machine that the base layer takes files from, with
// the most regular-file data it may take.
type RootFSSource struct {
	Dir    string // relative to RootFSOptions.Root, e.g. "usr/bin"; a glob pattern is allowed
	Budget int64
}

// DefaultRootFSSources take about 80 MiB of file data from a Debian-like system: all of
// /etc, parts of /usr/bin, /usr/sbin, the multiarch library directory, /usr/share/doc and
// /usr/share/zoneinfo.
var DefaultRootFSSources = []RootFSSource{
	{"etc", 8 << 20},
	{"usr/bin", 34 << 20},
	{"usr/sbin", 10 << 20},
	{"usr/lib/*-linux-gnu*", 20 << 20},
	{"usr/share/doc", 5 << 20},
	{"usr/share/zoneinfo", 4 << 20},
}

// RootFSMaxFile is the largest file the base layer takes from the machine.
const RootFSMaxFile = 8 << 20

// Minimums below which BuildRootFS says the machine has too little to offer.
const (
	RootFSMinFiles    = 500
	RootFSMinBytes    = 16 << 20
	RootFSMinSymlinks = 10
)

// ErrRootFSTooSmall is returned (wrapped, with what was found) when the machine's files
// give a base layer below the minimums.
var ErrRootFSTooSmall = errors.New("too few files on this machine for the realistic root filesystem")

// RootFSOptions tune BuildRootFS. The zero value reads DefaultRootFSSources from "/".
type RootFSOptions struct {
	Root    string         // default "/"
	Sources []RootFSSource // default DefaultRootFSSources
}

// RootFSStats counts what the base layer took from the machine.
type RootFSStats struct {
	Dirs, Files, Symlinks, Other int // Other: fifos and device nodes
	// HardLinks counts the names that are tar hard links to an earlier name.
	HardLinks      int
	Setuid, Setgid int // regular files
	Xattrs         int // entries with xattrs
	Bytes          int64
	// Skipped counts regular files left out by the budgets, the size cap or because they
	// could not be read, and sockets (tar has no type for them).
	Skipped int
}

func (s RootFSStats) String() string {
	return fmt.Sprintf("%d dirs, %d files (%.1f MiB), %d symlinks, %d hard links, %d setuid, %d setgid, %d with xattrs, %d other, %d skipped",
		s.Dirs, s.Files, float64(s.Bytes)/(1<<20), s.Symlinks, s.HardLinks, s.Setuid, s.Setgid, s.Xattrs, s.Other, s.Skipped)
}

// Missing lists the features the machine's files did not provide (hard links, setuid,
// setgid, xattrs): the upper layers have each of them regardless.
func (s RootFSStats) Missing() []string {
	var out []string
	for _, c := range []struct {
		n    int
		name string
	}{{s.HardLinks, "hard links"}, {s.Setuid, "setuid files"}, {s.Setgid, "setgid files"}, {s.Xattrs, "xattrs"}} {
		if c.n == 0 {
			out = append(out, c.name)
		}
	}
	return out
}

// RootFS is the realistic image: its layers, bottom up, and what the base holds.
type RootFS struct {
	// Layers are "rootfs-base" (the machine's files), "rootfs-update" (files modified,
	// replaced and deleted, a directory made opaque, a directory deleted, a hard-link
	// name deleted) and "rootfs-app" (a small application: setuid and capability
	// binaries, hard links, symlinks, xattrs, a whiteout of a file of the update layer).
	Layers []Layer
	Stats  RootFSStats
}

// BuildRootFS reads the sources and builds the layers. It returns an error wrapping
// ErrRootFSTooSmall when the base is below RootFSMinFiles, RootFSMinBytes or
// RootFSMinSymlinks.
func BuildRootFS(o RootFSOptions) (*RootFS, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Sources == nil {
		o.Sources = DefaultRootFSSources
	}
	b := &rootfsBuilder{root: o.Root, seen: map[string]bool{}, inodes: map[[2]uint64]*inodeChoice{}}
	for _, s := range o.Sources {
		dirs, err := filepath.Glob(filepath.Join(o.Root, filepath.FromSlash(s.Dir)))
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			if err := b.addSource(d, s.Budget); err != nil {
				return nil, err
			}
		}
	}
	st := b.stats
	if st.Files < RootFSMinFiles || st.Bytes < RootFSMinBytes || st.Symlinks < RootFSMinSymlinks {
		return nil, fmt.Errorf("%w under %s: %v (need %d files, %d MiB, %d symlinks)",
			ErrRootFSTooSmall, o.Root, st, RootFSMinFiles, RootFSMinBytes>>20, RootFSMinSymlinks)
	}
	base, err := BuildTar(b.entries, Ending{})
	if err != nil {
		return nil, fmt.Errorf("rootfs-base: %w", err)
	}
	upd := b.updateEntries()
	app := b.appEntries()
	out := &RootFS{Stats: st, Layers: []Layer{{Name: "rootfs-base", Tar: base, Entries: b.entries,
		Notes: "This machine's files as tar archives them: " + st.String()}}}
	for _, l := range []struct {
		name, notes string
		es          []Entry
	}{
		{"rootfs-update", "Modifies, replaces and deletes files of the base, makes a directory opaque, deletes a directory and a hard-link name.", upd},
		{"rootfs-app", "A small application: setuid and capability binaries, hard links, symlinks, xattrs, a whiteout.", app},
	} {
		tb, err := BuildTar(l.es, Ending{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.name, err)
		}
		out.Layers = append(out.Layers, Layer{Name: l.name, Tar: tb, Notes: l.notes, Entries: l.es})
	}
	return out, nil
}

// WriteOCILayout writes the image into an OCI layout (layers compressed with c) and
// returns its "oci:" reference.
func (r *RootFS) WriteOCILayout(dir, tag string, c Compression) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	var layers []LayerBlob
	for _, l := range r.Layers {
		layers = append(layers, LayerBlob{Tar: l.Tar, Compression: c, CreatedBy: "testimages: " + l.Name})
	}
	cfg := defaultConfig
	cfg.Labels = map[string]string{"org.example.generator": "fmtconv testimages rootfs"}
	if _, err := WriteOCILayout(abs, tag, ImageSpec{Layers: layers, Config: cfg,
		Annotations: map[string]string{v1.AnnotationDescription: "realistic root filesystem: " + r.Stats.String()}}); err != nil {
		return "", err
	}
	return "oci:" + abs + ":" + tag, nil
}

// inodeChoice is what became of a regular file's inode: taken (as name) or left out.
type inodeChoice struct {
	taken bool
	name  string
}

type rootfsBuilder struct {
	root    string
	entries []Entry
	seen    map[string]bool // names already in entries
	inodes  map[[2]uint64]*inodeChoice
	stats   RootFSStats
}

// candidate is one name found under a source directory.
type candidate struct {
	name string
	fi   fs.FileInfo
	st   *syscall.Stat_t
}

// xattrNamespaces are the namespaces container tars carry (and RAFS stores).
var xattrNamespaces = []string{"security.", "user.", "trusted.", "system.posix_acl_"}

// entryOf makes the tar entry tar would write for a name (without content).
func (b *rootfsBuilder) entryOf(c candidate) (Entry, error) {
	m := c.fi.Mode()
	e := Entry{Name: c.name, Mode: int64(m.Perm()), UID: int(c.st.Uid), GID: int(c.st.Gid),
		ModTime: time.Unix(int64(c.st.Mtim.Sec), int64(c.st.Mtim.Nsec)).UTC(), Format: tar.FormatPAX}
	if m&fs.ModeSetuid != 0 {
		e.Mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		e.Mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		e.Mode |= 0o1000
	}
	p := filepath.Join(b.root, filepath.FromSlash(c.name))
	switch {
	case m.IsDir():
		e.Type, e.Name = tar.TypeDir, c.name+"/"
	case m.IsRegular():
		e.Type = tar.TypeReg
	case m&fs.ModeSymlink != 0:
		e.Type = tar.TypeSymlink
		t, err := os.Readlink(p)
		if err != nil {
			return e, err
		}
		e.Linkname = t
	case m&fs.ModeNamedPipe != 0:
		e.Type = tar.TypeFifo
	case m&fs.ModeDevice != 0:
		e.Type = tar.TypeBlock
		if m&fs.ModeCharDevice != 0 {
			e.Type = tar.TypeChar
		}
		dev := uint64(c.st.Rdev)
		e.Devmajor, e.Devminor = int64((dev>>8)&0xfff|(dev>>32)&^0xfff), int64(dev&0xff|(dev>>12)&^0xff)
	}
	if e.Type != tar.TypeSymlink { // syscall has no llistxattr; symlinks rarely carry any
		xs, err := listXattrs(p)
		if err != nil {
			return e, err
		}
		e.Xattrs = xs
	}
	return e, nil
}

// Xattrs returns the extended attributes of a file (following symlinks: syscall has no
// llistxattr), nil when it has none or the filesystem has no xattrs.
func Xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := syscall.Listxattr(p, buf)
	if errors.Is(err, syscall.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listxattr %s: %w", p, err)
	}
	var out map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := syscall.Getxattr(p, name, v)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(v[:m])
	}
	return out, nil
}

// listXattrs returns the xattrs of a file in the namespaces container tars carry.
func listXattrs(p string) (map[string]string, error) {
	xs, err := Xattrs(p)
	for name := range xs {
		keep := false
		for _, ns := range xattrNamespaces {
			keep = keep || strings.HasPrefix(name, ns)
		}
		if !keep {
			delete(xs, name)
		}
	}
	if len(xs) == 0 {
		xs = nil
	}
	return xs, err
}

// add appends an entry once, after its parent directories (taken from the machine).
func (b *rootfsBuilder) add(e Entry) error {
	name := strings.TrimSuffix(e.Name, "/")
	if b.seen[name] {
		return nil
	}
	if dir := path.Dir(name); dir != "." && !b.seen[dir] {
		fi, err := os.Lstat(filepath.Join(b.root, filepath.FromSlash(dir)))
		if err != nil {
			return err
		}
		pe, err := b.entryOf(candidate{dir, fi, fi.Sys().(*syscall.Stat_t)})
		if err != nil {
			return err
		}
		if err := b.add(pe); err != nil {
			return err
		}
	}
	b.seen[name] = true
	b.entries = append(b.entries, e)
	st := &b.stats
	switch e.Type {
	case tar.TypeDir:
		st.Dirs++
	case tar.TypeReg:
		st.Files++
		st.Bytes += e.Content.Size()
	case tar.TypeLink:
		st.HardLinks++
	case tar.TypeSymlink:
		st.Symlinks++
	default:
		st.Other++
	}
	if e.Type == tar.TypeReg && e.Mode&0o4000 != 0 {
		st.Setuid++
	}
	if e.Type == tar.TypeReg && e.Mode&0o2000 != 0 {
		st.Setgid++
	}
	if len(e.Xattrs) > 0 {
		st.Xattrs++
	}
	return nil
}

// addSource takes a directory: every directory, symlink, fifo and device below it, and
// regular files within the budget, setuid/setgid files, files with xattrs and hard-linked
// files first, then the others in name order; files over RootFSMaxFile never.
func (b *rootfsBuilder) addSource(dir string, budget int64) error {
	var cands []candidate
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		cands = append(cands, candidate{filepath.ToSlash(rel), fi, fi.Sys().(*syscall.Stat_t)})
		return nil
	})
	if err != nil {
		return err
	}
	// regular files: choose
	special := func(c candidate) bool {
		return c.fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 || c.st.Nlink > 1 || hasXattrs(filepath.Join(b.root, c.name))
	}
	var regs, plain []candidate
	for _, c := range cands {
		if !c.fi.Mode().IsRegular() {
			continue
		}
		if special(c) {
			regs = append(regs, c)
		} else {
			plain = append(plain, c)
		}
	}
	used := int64(0)
	for _, c := range append(regs, plain...) {
		key := [2]uint64{uint64(c.st.Dev), uint64(c.st.Ino)}
		if b.inodes[key] != nil {
			continue
		}
		ch := &inodeChoice{}
		b.inodes[key] = ch
		if c.fi.Size() <= RootFSMaxFile && used+c.fi.Size() <= budget {
			ch.taken = true
			used += c.fi.Size()
		}
	}
	for _, c := range cands {
		m := c.fi.Mode()
		if m&fs.ModeSocket != 0 || (c.name == "." || c.name == "") {
			b.stats.Skipped++
			continue
		}
		e, err := b.entryOf(c)
		if err != nil {
			return err
		}
		if m.IsRegular() {
			ch := b.inodes[[2]uint64{uint64(c.st.Dev), uint64(c.st.Ino)}]
			if !ch.taken {
				b.stats.Skipped++
				continue
			}
			if ch.name != "" { // a later name of a taken inode
				e = Entry{Type: tar.TypeLink, Name: c.name, Linkname: ch.name, Mode: e.Mode, UID: e.UID, GID: e.GID, ModTime: e.ModTime, Format: tar.FormatPAX}
			} else {
				data, err := os.ReadFile(filepath.Join(b.root, filepath.FromSlash(c.name)))
				if err != nil {
					if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
						ch.taken = false
						b.stats.Skipped++
						continue
					}
					return err
				}
				ch.name = c.name
				if len(data) > 0 {
					e.Content = Content{chunks: []chunk{{kind: chunkBytes, data: data, n: int64(len(data))}}}
				}
			}
		}
		if err := b.add(e); err != nil {
			return err
		}
	}
	return nil
}

func hasXattrs(p string) bool {
	xs, err := listXattrs(p)
	return err == nil && len(xs) > 0
}

// entry reports whether the base holds name (without a trailing slash) and returns its entry.
func (b *rootfsBuilder) entry(name string) (Entry, bool) {
	for _, e := range b.entries {
		if strings.TrimSuffix(e.Name, "/") == name {
			return e, true
		}
	}
	return Entry{}, false
}

// put appends e to a layer's entries after the directories above it that the layer has
// not listed yet (see parents); a directory counts as listed from then on.
func (b *rootfsBuilder) put(es []Entry, e Entry, done map[string]bool) []Entry {
	name := strings.TrimSuffix(e.Name, "/")
	es = append(es, b.parents(name, done)...)
	if e.Type == tar.TypeDir {
		done[name] = true
	}
	return append(es, e)
}

// parents returns the base's entries for the directories above name (as image builds
// write them into a layer), outermost first, skipping those already in done.
func (b *rootfsBuilder) parents(name string, done map[string]bool) []Entry {
	var out []Entry
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if done[d] {
			continue
		}
		done[d] = true
		if e, ok := b.entry(d); ok {
			e.Content = Content{}
			out = append([]Entry{e}, out...)
		} else {
			out = append([]Entry{Dir(d+"/", 0o755)}, out...)
		}
	}
	return out
}

// children returns the base's names directly below dir, in order.
func (b *rootfsBuilder) children(dir string, typ byte) []Entry {
	var out []Entry
	for _, e := range b.entries {
		n := strings.TrimSuffix(e.Name, "/")
		if path.Dir(n) == dir && (typ == 0 || e.Type == typ) {
			out = append(out, e)
		}
	}
	return out
}

// updateEntries is the second layer. What it touches is chosen from the base by rules, so
// it works on any machine: the first directory of etc with at least three regular files
// becomes opaque (with a new mode and two new files); the first three regular files
// directly in etc are deleted; the first symlink directly in etc becomes a regular file;
// the first two unlinked regular files of usr/bin get new content (one of them a new
// mode too); the first directory of usr/share/doc is deleted; one name of the first
// hard-linked inode is deleted; usr/bin gets a new mtime.
func (b *rootfsBuilder) updateEntries() []Entry {
	done := map[string]bool{}
	var es []Entry
	put := func(e Entry) { es = b.put(es, e, done) }
	wh := func(name string) { put(File(path.Join(path.Dir(name), ".wh."+path.Base(name)), 0o600, Content{})) }
	later := DefaultModTime.Add(48*time.Hour + 987654321)

	// usr/bin: a new mtime (first, so that its files below keep it)
	if e, ok := b.entry("usr/bin"); ok {
		e.ModTime = later
		put(e)
	}
	var opaque string
	for _, d := range b.children("etc", tar.TypeDir) {
		n := strings.TrimSuffix(d.Name, "/")
		if len(b.children(n, tar.TypeReg)) >= 3 {
			opaque = n
			d.Mode, d.ModTime = 0o750, later
			put(d)
			put(File(n+"/.wh..wh..opq", 0o600, Content{}))
			put(File(n+"/only-after-opaque", 0o644, String("the only file left in an opaque directory\n")))
			put(with(File(n+"/second", 0o640, Text(101, 3000)), func(e *Entry) { e.GID = 4 }))
			break
		}
	}
	deleted := 0
	for _, f := range b.children("etc", tar.TypeReg) {
		if deleted < 3 {
			wh(strings.TrimSuffix(f.Name, "/"))
			deleted++
		}
	}
	if l := b.children("etc", tar.TypeSymlink); len(l) > 0 {
		put(with(File(l[0].Name, 0o644, String("a regular file where a symlink was\n")), func(e *Entry) { e.ModTime = later }))
	}
	changed := 0
	for _, f := range b.children("usr/bin", tar.TypeReg) {
		if changed == 2 || b.linked(f.Name) {
			continue
		}
		f.Content = Random(uint64(200+changed), 150000+int64(changed)*4096)
		f.ModTime = later
		if changed == 1 {
			f.Mode = 0o4750
		}
		put(f)
		changed++
	}
	if d := b.children("usr/share/doc", tar.TypeDir); len(d) > 0 {
		wh(strings.TrimSuffix(d[0].Name, "/"))
	}
	for _, e := range b.entries {
		if e.Type == tar.TypeLink && !strings.HasPrefix(e.Name, opaque+"/") {
			wh(e.Linkname) // the first name: the others keep the inode
			break
		}
	}
	put(with(File("etc/fmtconv-release", 0o644, String("fmtconv realistic rootfs, update layer\n")), func(e *Entry) {
		e.Xattrs = map[string]string{"user.origin": "update layer"}
	}))
	put(File("etc/fmtconv-old", 0o644, String("deleted by the app layer\n")))
	put(Dir("var/", 0o755))
	put(with(Dir("var/shared/", 0o2775), func(e *Entry) { e.GID = 50 }))
	return es
}

// linked reports whether a base file has other names (hard links).
func (b *rootfsBuilder) linked(name string) bool {
	for _, e := range b.entries {
		if e.Type == tar.TypeLink && (e.Name == name || e.Linkname == name) {
			return true
		}
	}
	return false
}

// appEntries is the third layer: a small application under opt/app.
func (b *rootfsBuilder) appEntries() []Entry {
	done := map[string]bool{}
	var es []Entry
	put := func(e Entry) { es = b.put(es, e, done) }
	app := func(e *Entry) { e.UID, e.GID = 1000, 1000 }
	put(Dir("opt/", 0o755))
	put(with(Dir("opt/app/", 0o755), func(e *Entry) { e.Xattrs = map[string]string{"user.app": "fmtconv"} }))
	put(Dir("opt/app/bin/", 0o755))
	put(with(File("opt/app/bin/app", 0o755, Concat(Random(300, 2<<20), Text(301, 700000))), app))
	put(File("opt/app/bin/app-helper", 0o4755, Random(302, 90000)))
	put(with(File("opt/app/bin/app-net", 0o750, Random(303, 40000)), func(e *Entry) {
		e.Xattrs = map[string]string{"security.capability": capNetRaw}
	}))
	put(Hardlink("opt/app/bin/app-alias", "opt/app/bin/app", 0o755))
	put(Dir("opt/app/lib/", 0o755))
	put(File("opt/app/lib/libapp.so.1.2.3", 0o644, Random(304, 3<<20+1234)))
	put(Symlink("opt/app/lib/libapp.so.1", "libapp.so.1.2.3"))
	put(Hardlink("opt/app/lib/libapp-copy.so", "opt/app/lib/libapp.so.1.2.3", 0o644))
	put(with(File("opt/app/lib/zeros.bin", 0o644, Concat(String("head"), Zeros(4<<20), String("tail"))), func(e *Entry) {
		e.ModTime = DefaultModTime.Add(NanoMtimeNs)
	}))
	put(with(File("opt/app/config.json", 0o640, String(`{"name":"app","workers":4}`+"\n")), app))
	put(Symlink("usr/local/bin/app", "/opt/app/bin/app"))
	put(File("etc/.wh.fmtconv-old", 0o600, Content{}))
	return es
}

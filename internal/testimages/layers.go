package testimages

import (
	"archive/tar"
	"bytes"
	"strings"
	"sync"
	"time"
)

// Layer is one ready-made layer of the catalogue.
type Layer struct {
	Name  string // stable catalogue name, e.g. "basic"
	Tar   []byte // the uncompressed layer tar
	Notes string // what the layer is for and what it contains
	// Entries is the description the tar was built from (nil for layers
	// whose bytes are not a plain BuildTar result). Do not modify.
	Entries []Entry
}

// Names of the catalogue layers.
const (
	LayerBasic               = "basic"
	LayerWhiteouts           = "whiteouts"
	LayerEndingGNURecord     = "ending-gnu-record"
	LayerEndingNoEOF         = "ending-no-eof"
	LayerEndingInsidePadding = "ending-inside-padding"
	LayerEndingExtraZeros    = "ending-extra-zeros"
	LayerPAXGlobal           = "pax-global"
	LayerDuplicatePaths      = "duplicate-paths"
	LayerPlatformAMD64       = "platform-amd64"
	LayerPlatformARM64       = "platform-arm64"
)

// EndingLayers lists the names of the layers that differ only in how the
// tar stream ends.
var EndingLayers = []string{LayerEndingGNURecord, LayerEndingNoEOF, LayerEndingInsidePadding, LayerEndingExtraZeros}

// Sizes and names used by the "basic" layer that tests may want to check.
const (
	BigTextSize = 4<<20 + 123457 // data/big-text: compressible text over 4 MiB
	BigUID      = 100000         // owner of home/user (fits a ustar octal field)
	HugeUID     = 3000000        // home/user/huge-ids: too large for octal, needs PAX
	HugeGNUUID  = 2500000        // home/user/huge-ids-gnu: GNU base-256 number
	NanoMtimeNs = 123456789      // sub-second part of data/nanotime's mtime
)

var (
	// LongName is long/ followed by a 150-byte path component (> 100
	// bytes and not splittable: needs PAX).
	LongName = "long/" + strings.Repeat("n", 142) + "-150.txt"
	longDir1 = "long/" + strings.Repeat("d", 90) + "/"
	longDir2 = longDir1 + strings.Repeat("e", 90) + "/"
	// LongPAXName is a path over 255 bytes written with a PAX path record.
	LongPAXName = longDir2 + strings.Repeat("p", 100)
	// LongGNUName is a path over 255 bytes written with a GNU ././@LongLink
	// 'L' entry.
	LongGNUName = longDir2 + strings.Repeat("g", 80)
)

// capNetRaw is a security.capability value (struct vfs_cap_data, revision
// 2, effective flag) granting CAP_NET_RAW: binary, with NUL bytes.
const capNetRaw = "\x01\x00\x00\x02" + "\x00\x20\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

func rootOwned(e Entry) Entry {
	e.Uname, e.Gname = "root", "root"
	return e
}

// Dir returns a root-owned directory entry.
func Dir(name string, mode int64) Entry {
	return rootOwned(Entry{Type: tar.TypeDir, Name: name, Mode: mode})
}

// File returns a root-owned regular file entry.
func File(name string, mode int64, c Content) Entry {
	return rootOwned(Entry{Type: tar.TypeReg, Name: name, Mode: mode, Content: c})
}

// Symlink returns a root-owned symbolic link entry (mode 0777).
func Symlink(name, target string) Entry {
	return rootOwned(Entry{Type: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777})
}

// Hardlink returns a root-owned hard link entry pointing at the earlier
// entry target (a path inside the archive).
func Hardlink(name, target string, mode int64) Entry {
	return rootOwned(Entry{Type: tar.TypeLink, Name: name, Linkname: target, Mode: mode})
}

func with(e Entry, f func(*Entry)) Entry {
	f(&e)
	return e
}

// basicEntries covers every entry type and header feature we care about in
// a layer that all formats (including zstd:chunked and eStargz) should be
// able to represent.
func basicEntries() []Entry {
	user := func(e *Entry) { e.UID, e.GID, e.Uname, e.Gname = BigUID, BigUID, "user", "user" }
	return []Entry{
		Dir("bin/", 0o755),
		Symlink("bin/sh", "/usr/bin/busybox"), // absolute target

		// Device nodes and a fifo.
		Dir("dev/", 0o755),
		rootOwned(Entry{Type: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}),
		with(rootOwned(Entry{Type: tar.TypeChar, Name: "dev/tty", Mode: 0o620, Devmajor: 5, Devminor: 0}), func(e *Entry) { e.GID, e.Gname = 5, "tty" }),
		with(rootOwned(Entry{Type: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Devmajor: 8, Devminor: 0}), func(e *Entry) { e.GID, e.Gname = 6, "disk" }),
		rootOwned(Entry{Type: tar.TypeBlock, Name: "dev/nvme0n1p7", Mode: 0o660, Devmajor: 259, Devminor: 1048575}),
		rootOwned(Entry{Type: tar.TypeFifo, Name: "dev/initctl", Mode: 0o600}),

		Dir("etc/", 0o755),
		File("etc/hostname", 0o644, String("fmtconv-test\n")),
		File("etc/passwd", 0o644, String("root:x:0:0:root:/root:/bin/sh\nuser:x:100000:100000:user:/home/user:/bin/sh\n")),
		File("etc/empty", 0o644, Content{}),

		// Regular files of many sizes around the 512-byte block size, plus
		// large and zero-heavy files.
		Dir("data/", 0o755),
		File("data/size-0", 0o644, Content{}),
		File("data/size-1", 0o644, String("x")),
		File("data/size-511", 0o644, Random(511, 511)),
		File("data/size-512", 0o644, Random(512, 512)),
		File("data/size-513", 0o644, Random(513, 513)),
		File("data/size-64k", 0o644, Random(65536, 65536)),
		File("data/big-text", 0o644, Text(4, BigTextSize)),
		File("data/zeros-mixed", 0o644, Concat(
			Text(10, 100), Zeros(4096), Random(11, 1000), Zeros(1024), String("end of data"), Zeros(2048))),
		File("data/zeros-leading", 0o644, Concat(Zeros(8192), Text(12, 300))),
		File("data/all-zeros", 0o644, Zeros(65536)),
		with(File("data/nanotime", 0o644, String("nanosecond mtime\n")), func(e *Entry) {
			e.ModTime = DefaultModTime.Add(NanoMtimeNs * time.Nanosecond)
		}),
		with(Dir("data/nanodir/", 0o755), func(e *Entry) { e.ModTime = DefaultModTime.Add(1 * time.Nanosecond) }),
		with(File("data/epoch", 0o644, String("mtime 0\n")), func(e *Entry) { e.ModTime = time.Unix(0, 0) }),
		with(File("data/pax-comment", 0o644, String("has a PAX comment record\n")), func(e *Entry) {
			e.PAXRecords = map[string]string{"comment": "a standard PAX comment record"}
		}),

		// Large uids and gids.
		Dir("home/", 0o755),
		with(Dir("home/user/", 0o750), user),
		with(File("home/user/.profile", 0o644, String("export PS1='$ '\n")), user),
		with(File("home/user/huge-ids", 0o600, String("uid/gid need PAX\n")), func(e *Entry) {
			e.UID, e.GID, e.Uname, e.Gname = HugeUID, HugeUID+1, "huge", "hugegroup"
		}),
		with(File("home/user/huge-ids-gnu", 0o600, String("uid/gid in GNU base-256\n")), func(e *Entry) {
			e.UID, e.GID, e.Uname, e.Gname, e.Format = HugeGNUUID, HugeGNUUID+1, "gnu", "gnugroup", tar.FormatGNU
		}),

		// Symlinks and hard links.
		Dir("links/", 0o755),
		Symlink("links/relative", "../data/size-1"),
		Symlink("links/absolute", "/etc/hostname"),
		Symlink("links/dangling", "does/not/exist"),
		Symlink("links/dir", "../etc"),
		Symlink("links/long-target", "../"+LongName), // linkpath > 100 bytes: PAX
		Hardlink("links/hardlink-to-file", "data/size-513", 0o644),
		Hardlink("links/hardlink-to-symlink", "links/relative", 0o777), // a hardlinked symlink

		// Long names.
		Dir("long/", 0o755),
		File(LongName, 0o644, String("150-byte name\n")),
		Dir(longDir1, 0o755),
		Dir(longDir2, 0o755), // 187 bytes: fits the ustar prefix+name split
		File(LongPAXName, 0o644, String("path over 255 bytes, PAX\n")),
		with(File(LongGNUName, 0o644, String("path over 255 bytes, GNU\n")), func(e *Entry) { e.Format = tar.FormatGNU }),
		Hardlink(longDir1+"hardlink-to-long", LongName, 0o644),
		with(Symlink(longDir1+"gnu-long-target", strings.Repeat("t", 120)), func(e *Entry) { e.Format = tar.FormatGNU }), // 'K'

		// Special permission bits.
		Dir("tmp/", 0o1777),

		// Non-ASCII names.
		Dir("unicode/", 0o755),
		File("unicode/héllo wörld.txt", 0o644, String("latin-1 range\n")),
		File("unicode/日本語.txt", 0o644, String("CJK\n")),
		File("unicode/emoji-🙂.txt", 0o644, String("astral plane\n")),
		with(File("unicode/ñandú-gnu.txt", 0o644, String("raw UTF-8 in a GNU header\n")), func(e *Entry) { e.Format = tar.FormatGNU }),
		Symlink("unicode/link-ünïcode", "日本語.txt"),

		Dir("usr/", 0o755),
		Dir("usr/bin/", 0o755),
		File("usr/bin/busybox", 0o755, Random(20000, 20000)),
		File("usr/bin/su", 0o4755, Random(4755, 3000)),
		with(File("usr/bin/wall", 0o2755, Random(2755, 2000)), func(e *Entry) { e.GID, e.Gname = 5, "tty" }),
		File("usr/bin/allbits", 0o7777, String("#!/bin/sh\n")),
		with(File("usr/bin/ping", 0o755, Random(7, 4000)), func(e *Entry) {
			e.Xattrs = map[string]string{"security.capability": capNetRaw}
		}),
		Dir("usr/share/", 0o755),
		Dir("usr/share/setgid-sticky/", 0o3775),

		// Extended attributes.
		with(Dir("xattrs/", 0o755), func(e *Entry) { e.Xattrs = map[string]string{"user.dir": "yes"} }),
		with(File("xattrs/user", 0o644, String("user xattrs\n")), func(e *Entry) {
			e.Xattrs = map[string]string{"user.comment": "hello", "user.mime_type": "text/plain"}
		}),
		with(File("xattrs/binary", 0o644, String("binary xattr\n")), func(e *Entry) {
			e.Xattrs = map[string]string{"user.binary": "\x00\x01\x02\xfe\xff"}
		}),
		with(File("xattrs/many", 0o644, Content{}), func(e *Entry) {
			e.Xattrs = map[string]string{
				"user.a": "1", "user.b": "22", "user.c": "333", "user.d": "4444",
				"user.long": strings.Repeat("v", 300), "user.ünïcode": "välue",
			}
		}),
	}
}

// whiteoutEntries is meant to sit on top of "basic": it deletes files and
// a directory with ".wh.<name>" files and makes "links/" opaque.
func whiteoutEntries() []Entry {
	wh := func(name string) Entry { return File(name, 0o600, Content{}) }
	return []Entry{
		wh(".wh.long"), // removes a whole directory
		Dir("data/", 0o755),
		wh("data/.wh.size-511"),
		Dir("etc/", 0o755),
		wh("etc/.wh.hostname"),
		File("etc/added", 0o644, String("added by the upper layer\n")),
		Dir("links/", 0o755),
		wh("links/.wh..wh..opq"), // opaque: hides everything basic had in links/
		File("links/after-opaque", 0o644, String("only file left in links/\n")),
		Dir("new-dir/", 0o755),
		wh("new-dir/.wh..wh..opq"), // opaque marker in a directory the lower layer lacks
		Dir("unicode/", 0o755),
		wh("unicode/.wh.日本語.txt"),
	}
}

func endingEntries(name string, seed uint64) []Entry {
	return []Entry{
		Dir("ending/", 0o755),
		File("ending/"+name+".txt", 0o644, Text(seed, 700)),
		File("ending/hello", 0o644, String("hello")), // 5 bytes: 507 bytes of padding follow
	}
}

func paxGlobalEntries() []Entry {
	return []Entry{
		{Type: tar.TypeXGlobalHeader, Name: "pax_global_header", Mode: 0o666, PAXRecords: map[string]string{
			// What git archive writes: the commit id as a global comment.
			"comment": "0123456789abcdef0123456789abcdef01234567",
		}},
		Dir("global/", 0o755),
		File("global/file", 0o644, String("after a global header\n")),
	}
}

func duplicateEntries() []Entry {
	return []Entry{
		Dir("dup/", 0o755),
		File("dup/file", 0o644, String("first version\n")),
		File("dup/other", 0o644, String("unrelated\n")),
		File("dup/file", 0o600, String("second version, the one that wins\n")),
		Dir("dup/", 0o700), // the directory again, with another mode
	}
}

func platformEntries(arch string) []Entry {
	return []Entry{
		Dir("etc/", 0o755),
		File("etc/arch", 0o644, String(arch+"\n")),
		File("etc/"+arch+"-only", 0o644, Random(uint64(len(arch)), 1500)),
	}
}

var catalogue = sync.OnceValue(func() []Layer {
	type def struct {
		name, notes string
		entries     []Entry
		end         Ending
	}
	defs := []def{
		{LayerBasic, "Everything a normal layer can contain: directories; regular files of 0, 1, 511, 512, 513 and 65536 bytes, " +
			"over 4 MiB of compressible text, zero runs of 1024+ bytes mixed with data; absolute, relative, dangling and " +
			"directory symlinks; hard links to a file and to a symlink; user.* and binary security.capability xattrs; names " +
			"over 100 and 255 bytes (PAX, ustar prefix and GNU ././@LongLink); UTF-8 names; char/block devices and a fifo; " +
			"setuid, setgid and sticky bits; uids/gids above 65535 (octal, PAX and GNU base-256); nanosecond mtimes; uname/gname. " +
			"Every format should round-trip it.",
			basicEntries(), Ending{}},
		{LayerWhiteouts, "Meant to be applied on top of basic: .wh.<name> whiteouts for files and a directory, " +
			".wh..wh..opq opaque markers, and a few new files.",
			whiteoutEntries(), Ending{}},
		{LayerEndingGNURecord, "Small layer zero-padded to a multiple of 10240 bytes after the two EOF blocks, as GNU tar writes.",
			endingEntries(LayerEndingGNURecord, 21), Ending{Kind: EndRecord, N: GNURecordSize}},
		{LayerEndingNoEOF, "Small layer without any end-of-archive zero blocks: the stream stops after the last file's padding.",
			endingEntries(LayerEndingNoEOF, 22), Ending{Kind: EndNoEOF}},
		{LayerEndingInsidePadding, "Small layer whose stream stops inside the last file's padding: 5 data bytes, then only 95 of the 507 padding bytes.",
			endingEntries(LayerEndingInsidePadding, 23), Ending{Kind: EndInsidePadding, N: 95}},
		{LayerEndingExtraZeros, "Small layer with 4096 extra zero bytes after the two EOF blocks.",
			endingEntries(LayerEndingExtraZeros, 24), Ending{Kind: EndExtraZeros, N: 4096}},
		{LayerPAXGlobal, "Starts with a PAX global extended header ('g'); formats such as zstd:chunked cannot represent it.",
			paxGlobalEntries(), Ending{}},
		{LayerDuplicatePaths, "The same file path twice with different content (and a directory twice with different modes); " +
			"formats such as zstd:chunked cannot represent it.",
			duplicateEntries(), Ending{}},
		{LayerPlatformAMD64, "Small per-platform layer (linux/amd64) used by the index image.",
			platformEntries("amd64"), Ending{}},
		{LayerPlatformARM64, "Small per-platform layer (linux/arm64/v8) used by the index image.",
			platformEntries("arm64"), Ending{}},
	}
	out := make([]Layer, len(defs))
	for i, d := range defs {
		out[i] = Layer{Name: d.name, Tar: MustBuildTar(d.entries, d.end), Notes: d.notes, Entries: d.entries}
	}
	return out
})

// Layers returns the catalogue of test layers, in a fixed order. The tar
// bytes are freshly copied for every call; they are identical on every run.
func Layers() []Layer {
	src := catalogue()
	out := make([]Layer, len(src))
	for i, l := range src {
		out[i] = l
		out[i].Tar = bytes.Clone(l.Tar)
	}
	return out
}

// LayerByName returns the catalogue layer called name.
func LayerByName(name string) (Layer, bool) {
	for _, l := range catalogue() {
		if l.Name == name {
			l.Tar = bytes.Clone(l.Tar)
			return l, true
		}
	}
	return Layer{}, false
}

// mustLayer returns the catalogue tar called name (shared, do not modify).
func mustLayer(name string) []byte {
	for _, l := range catalogue() {
		if l.Name == name {
			return l.Tar
		}
	}
	panic("testimages: no layer " + name)
}

package tarcheck

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/testimages"
	digest "github.com/opencontainers/go-digest"
)

type (
	E = testimages.Entry
)

var (
	file    = testimages.File
	dir     = testimages.Dir
	symlink = testimages.Symlink
	hardln  = testimages.Hardlink
	str     = testimages.String
)

// TestCatalogue: every catalogue layer gives exactly the findings it was
// designed to give.
func TestCatalogue(t *testing.T) {
	want := map[string][]string{
		testimages.LayerBasic:               {CheckDeviceNode},
		testimages.LayerWhiteouts:           nil,
		testimages.LayerEndingGNURecord:     nil,
		testimages.LayerEndingNoEOF:         {CheckNoEOF},
		testimages.LayerEndingInsidePadding: {CheckNoEOF},
		testimages.LayerEndingExtraZeros:    nil,
		testimages.LayerPAXGlobal:           {CheckPAXGlobal},
		testimages.LayerDuplicatePaths:      {CheckDuplicatePath},
		testimages.LayerPlatformAMD64:       nil,
		testimages.LayerPlatformARM64:       nil,
	}
	for _, l := range testimages.Layers() {
		t.Run(l.Name, func(t *testing.T) {
			w, ok := want[l.Name]
			if !ok {
				t.Fatalf("no expectation for catalogue layer %q", l.Name)
			}
			res := scan(t, l.Tar, Options{KeepEntries: true})
			wantIDs(t, res, w...)
			if check.HasErrors(res.Findings) {
				t.Errorf("errors on a catalogue layer:\n%s", dump(res.Findings))
			}
			if !res.Complete || res.Size != int64(len(l.Tar)) || res.Digest != testimages.DiffID(l.Tar) {
				t.Errorf("complete=%v size=%d digest=%s, want true %d %s", res.Complete, res.Size, res.Digest, len(l.Tar), testimages.DiffID(l.Tar))
			}
			var names []string
			for _, e := range l.Entries {
				if e.Type != tar.TypeXGlobalHeader {
					names = append(names, e.Name)
				}
			}
			if res.Count != len(names) || len(res.Entries) != len(names) {
				t.Fatalf("count %d, %d entries kept, want %d", res.Count, len(res.Entries), len(names))
			}
			for i, e := range res.Entries {
				if e.Name != names[i] {
					t.Errorf("entry %d: name %q, want %q", i, e.Name, names[i])
				}
			}
		})
	}
	dups := findings(scan(t, mustLayer(t, testimages.LayerDuplicatePaths), Options{}), CheckDuplicatePath)
	if len(dups) != 2 || dups[0].Path != "dup/file" || dups[1].Path != "dup/" || dups[0].Severity != check.Warning {
		t.Errorf("duplicate findings:\n%s", dump(dups))
	}
	if devs := findings(scan(t, mustLayer(t, testimages.LayerBasic), Options{}), CheckDeviceNode); len(devs) != 4 {
		t.Errorf("basic: %d device findings, want 4 (dev/null, dev/tty, dev/sda, dev/nvme0n1p7)", len(devs))
	}
}

func mustLayer(t testing.TB, name string) []byte {
	l, ok := testimages.LayerByName(name)
	if !ok {
		t.Fatalf("no layer %q", name)
	}
	return l.Tar
}

// TestEntriesAndOffsets: the normalised entries of "basic" match what it was
// built from, and the offsets point at the headers and the data.
func TestEntriesAndOffsets(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	var hooked int
	sums := map[string]digest.Digest{}
	res := scan(t, l.Tar, Options{KeepEntries: true, OnEntry: func(e Entry, r io.Reader) error {
		hooked++
		if e.Type == tar.TypeReg {
			d, err := digest.FromReader(r)
			if err != nil {
				return err
			}
			sums[e.Name] = d
		}
		return nil
	}})
	if hooked != len(l.Entries) {
		t.Errorf("OnEntry called %d times, want %d", hooked, len(l.Entries))
	}
	var prev int64 = -1
	for i, e := range res.Entries {
		src := l.Entries[i]
		if e.Type != src.Type || e.Linkname != src.Linkname || e.Mode != src.Mode || e.UID != src.UID || e.GID != src.GID ||
			e.Devmajor != src.Devmajor || e.Devminor != src.Devminor || e.Uname != src.Uname {
			t.Errorf("entry %q: got %+v, want %+v", e.Name, e, src)
		}
		if len(e.Xattrs) != len(src.Xattrs) {
			t.Errorf("entry %q: xattrs %q, want %q", e.Name, e.Xattrs, src.Xattrs)
		}
		for k, v := range src.Xattrs {
			if e.Xattrs[k] != v {
				t.Errorf("entry %q: xattr %q = %q, want %q", e.Name, k, e.Xattrs[k], v)
			}
		}
		if want := src.ModTime; !want.IsZero() && !e.ModTime.Equal(want) {
			t.Errorf("entry %q: mtime %v, want %v", e.Name, e.ModTime, want)
		}
		if e.Path != strings.TrimSuffix(e.Name, "/") {
			t.Errorf("entry %q: path %q", e.Name, e.Path)
		}
		if e.Offset <= prev || e.Offset%blockSize != 0 || e.DataOffset < e.Offset+blockSize || e.DataOffset%blockSize != 0 {
			t.Errorf("entry %q: offset %d, data offset %d after %d", e.Name, e.Offset, e.DataOffset, prev)
		}
		prev = e.Offset
		// The header at Offset parses to this entry.
		tr := tar.NewReader(bytes.NewReader(l.Tar[e.Offset:]))
		hdr, err := tr.Next()
		if err != nil || hdr.Name != e.Name {
			t.Errorf("entry %q: header at offset %d reads as %v, %v", e.Name, e.Offset, hdr, err)
		}
		if e.Type == tar.TypeReg {
			want := src.Content.Bytes()
			if got := l.Tar[e.DataOffset : e.DataOffset+e.Size]; !bytes.Equal(got, want) {
				t.Errorf("entry %q: data at offset %d differs", e.Name, e.DataOffset)
			}
			if sums[e.Name] != digest.FromBytes(want) {
				t.Errorf("entry %q: OnEntry digest %s, want %s", e.Name, sums[e.Name], digest.FromBytes(want))
			}
		}
	}
}

// TestCrafted: one crafted tar per check id, with the exact ids it must
// give; and look-alikes that must give nothing.
func TestCrafted(t *testing.T) {
	reg := func(name string) E { return file(name, 0o644, str("x")) }
	empty := func(name string) E { return file(name, 0o600, testimages.Content{}) }
	dev := E{Type: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}
	global := E{Type: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "hi"}}
	bad := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	simple := mustTar(t, []E{dir("a/", 0o755), file("a/f", 0o644, str("hello")), file("a/g", 0o644, testimages.Random(1, 1500))}, testimages.Ending{})

	cases := []struct {
		name     string
		tar      []byte
		entries  []E
		end      testimages.Ending
		opts     Options
		want     []string
		wantPath string // of the first finding, if set
	}{
		// Paths.
		{name: "absolute", entries: []E{reg("/etc/passwd")}, want: []string{CheckPathAbsolute}, wantPath: "/etc/passwd"},
		{name: "dot-slash is fine", entries: []E{dir("./", 0o755), dir("./etc/", 0o755), reg("./etc/passwd"), reg("etc/group")}},
		{name: "dot-slash and plain are one path", entries: []E{reg("./etc/passwd"), reg("etc/passwd")}, want: []string{CheckDuplicatePath}, wantPath: "etc/passwd"},
		{name: "absolute and plain are one path", entries: []E{reg("etc/passwd"), reg("/etc/passwd")}, want: []string{CheckPathAbsolute, CheckDuplicatePath}},
		{name: "traversal", entries: []E{reg("a/../../etc/passwd")}, want: []string{CheckPathTraversal}, wantPath: "a/../../etc/passwd"},
		{name: "traversal plain", entries: []E{reg("../x")}, want: []string{CheckPathTraversal}},
		{name: "dotdot inside is fine", entries: []E{reg("a/../b"), reg("c/d/../../e")}},
		{name: "absolute traversal", entries: []E{reg("/../etc/passwd")}, want: []string{CheckPathAbsolute, CheckPathTraversal}},

		// Links.
		{name: "symlink escape", entries: []E{symlink("bin/evil", "../../etc")}, want: []string{CheckLinkEscape}, wantPath: "bin/evil"},
		{name: "symlink escape from root", entries: []E{symlink("evil", "../etc/passwd")}, want: []string{CheckLinkEscape}},
		{name: "symlinks inside are fine", entries: []E{symlink("a/b/ok", "../../etc"), symlink("abs", "/etc/passwd"),
			symlink("abs-up", "/../../../etc"), symlink("dot", "./x"), symlink("dangling", "nope/nope")}},
		{name: "hardlink absolute", entries: []E{reg("etc/passwd"), hardln("h", "/etc/passwd", 0o644)}, want: []string{CheckLinkEscape}, wantPath: "h"},
		{name: "hardlink escape", entries: []E{hardln("a/h", "a/../../x", 0o644)}, want: []string{CheckLinkEscape}},
		{name: "hardlink fine", entries: []E{reg("./a/f"), hardln("a/h", "a/f", 0o644), hardln("a/h2", "./a/h", 0o644)}},
		{name: "hardlink missing", entries: []E{hardln("h", "nope", 0o644)}, want: []string{CheckHardlinkMissing}, wantPath: "h"},
		{name: "hardlink to a later entry", entries: []E{hardln("h", "f", 0o644), reg("f")}, want: []string{CheckHardlinkMissing}},
		{name: "hardlink to itself", entries: []E{hardln("h", "h", 0o644)}, want: []string{CheckHardlinkMissing}},
		{name: "hardlink to a whited-out parent", entries: []E{reg("d/f"), empty(".wh.d"), hardln("h", "d/f", 0o644)}, want: []string{CheckHardlinkMissing}},
		{name: "hardlink to a whited-out file", entries: []E{reg("f"), empty(".wh.f"), hardln("h", "f", 0o644)},
			want: []string{CheckWhiteoutShadowed, CheckHardlinkMissing}},
		{name: "hardlink to a re-created file", entries: []E{empty(".wh.f"), reg("f"), hardln("h", "f", 0o644)},
			want: []string{CheckWhiteoutShadowed}},

		// Duplicates.
		{name: "directory twice", entries: []E{dir("d/", 0o755), dir("d/", 0o755)}, want: []string{CheckDuplicatePath}, wantPath: "d/"},
		{name: "directory with and without slash", entries: []E{dir("d/", 0o755), dir("./d", 0o755)}, want: []string{CheckDuplicatePath}},
		{name: "file twice", entries: []E{reg("f"), reg("f")}, want: []string{CheckDuplicatePath}},
		{name: "duplicate as error", entries: []E{reg("f"), reg("f")}, want: []string{CheckDuplicatePath},
			opts: Options{Severity: map[string]check.Severity{CheckDuplicatePath: check.Error}}},

		// Whiteouts.
		{name: "whiteouts fine", entries: []E{empty(".wh.gone"), dir("d/", 0o755), empty("d/.wh..wh..opq"), reg("d/new"), empty("d/.wh.old")}},
		{name: "whiteout directory", entries: []E{dir(".wh.x/", 0o755)}, want: []string{CheckWhiteoutInvalid}, wantPath: ".wh.x/"},
		{name: "whiteout with data", entries: []E{file(".wh.x", 0o600, str("data"))}, want: []string{CheckWhiteoutInvalid}},
		{name: "whiteout symlink", entries: []E{symlink("d/.wh.x", "y")}, want: []string{CheckWhiteoutInvalid}},
		{name: "whiteout of dot", entries: []E{empty("d/.wh..")}, want: []string{CheckWhiteoutInvalid}},
		{name: "whiteout of dotdot", entries: []E{empty("d/.wh...")}, want: []string{CheckWhiteoutInvalid}},
		{name: "whiteout of nothing", entries: []E{empty("d/.wh.")}, want: []string{CheckWhiteoutInvalid}},
		{name: "nested whiteout", entries: []E{empty("d/.wh..wh.foo")}, want: []string{CheckWhiteoutInvalid}},
		{name: "aufs metadata", entries: []E{dir(".wh..wh.plnk/", 0o700)}, want: []string{CheckWhiteoutInvalid}},
		{name: "entry inside a whiteout", entries: []E{reg(".wh.x/y")}, want: []string{CheckWhiteoutInvalid}, wantPath: ".wh.x/y"},
		{name: "opaque at the root", entries: []E{empty(".wh..wh..opq")}, want: []string{CheckWhiteoutInvalid}},
		{name: "opaque at the root dot-slash", entries: []E{dir("./", 0o755), empty("./.wh..wh..opq")}, want: []string{CheckWhiteoutInvalid}},
		{name: "opaque in a file", entries: []E{reg("f"), empty("f/.wh..wh..opq")}, want: []string{CheckWhiteoutInvalid}},
		{name: "opaque with data", entries: []E{dir("d/", 0o755), file("d/.wh..wh..opq", 0o600, str("x"))}, want: []string{CheckWhiteoutInvalid}},
		{name: "whiteout after entry", entries: []E{reg("d/x"), empty("d/.wh.x")}, want: []string{CheckWhiteoutShadowed}, wantPath: "d/.wh.x"},
		{name: "entry after whiteout", entries: []E{empty("d/.wh.x"), reg("d/x")}, want: []string{CheckWhiteoutShadowed}, wantPath: "d/x"},
		{name: "directory after whiteout", entries: []E{empty(".wh.d"), dir("d/", 0o755)}, want: []string{CheckWhiteoutShadowed}},
		{name: "whiteout twice", entries: []E{empty(".wh.d"), empty("./.wh.d")}, want: []string{CheckDuplicatePath}},

		// Entry kinds.
		{name: "device", entries: []E{dev, {Type: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Devmajor: 8}},
			want: []string{CheckDeviceNode}, wantPath: "dev/null"},
		{name: "fifo is fine", entries: []E{{Type: tar.TypeFifo, Name: "p", Mode: 0o600}}},
		{name: "pax global", entries: []E{global, reg("f")}, want: []string{CheckPAXGlobal}, wantPath: "pax_global_header"},
		{name: "pax global only", entries: []E{global}, want: []string{CheckPAXGlobal}},

		// Name bytes.
		{name: "invalid utf8 name", entries: []E{reg("bad\xff\xfe")}, want: []string{CheckNameInvalidUTF8}, wantPath: "bad\xff\xfe"},
		{name: "invalid utf8 link", entries: []E{symlink("l", "t\xc3")}, want: []string{CheckNameInvalidUTF8}},
		{name: "nul in GNU long name", tar: cat(rawEntry("././@LongLink", 'L', []byte("abc\x00/../../etc/passwd\x00")), rawHeader("x", '0', 0), eofMarker),
			want: []string{CheckNameNUL}, wantPath: "abc"},
		{name: "nul in GNU long link", tar: cat(rawEntry("././@LongLink", 'K', []byte("t\x00u\x00")), rawHeader("l", '2', 0), eofMarker),
			want: []string{CheckNameNUL}, wantPath: "l"},
		{name: "GNU long name with trailing NULs is fine", tar: cat(rawEntry("././@LongLink", 'L', []byte("abc\x00\x00\x00")), rawHeader("x", '0', 0), eofMarker)},
		{name: "nul in PAX path", tar: cat(rawEntry("PaxHeaders/x", 'x', paxRecords("path", "a\x00b")), rawHeader("x", '0', 0), eofMarker),
			want: []string{CheckNameNUL}, wantPath: "a"},
		{name: "nul in PAX linkpath", tar: cat(rawEntry("PaxHeaders/x", 'x', paxRecords("linkpath", "t\x00../../x")), rawHeader("x", '2', 0), eofMarker),
			want: []string{CheckNameNUL}},
		{name: "nul in GNU.sparse.name", tar: cat(rawEntry("PaxHeaders/x", 'x', paxRecords("GNU.sparse.major", "1", "GNU.sparse.minor", "0",
			"GNU.sparse.name", "a\x00b", "GNU.sparse.realsize", "0")), rawHeader("x", '0', 512), padded([]byte("0\n")), eofMarker),
			want: []string{CheckNameNUL}},

		// Headers and endings.
		{name: "bad checksum", tar: bad(simple, func(b []byte) []byte { b[blockSize] ^= 1; return b }), want: []string{CheckHeader}},
		{name: "bad number", tar: bad(simple, func(b []byte) []byte { b[blockSize+124] = 'x'; fixChecksum(b[blockSize : 2*blockSize]); return b }),
			want: []string{CheckHeader}},
		{name: "not a tar", tar: bytes.Repeat([]byte("not a tar! "), 200), want: []string{CheckHeader}},
		{name: "zero block then header", tar: cat(make([]byte, blockSize), simple), want: []string{CheckHeader}},
		{name: "truncated data", tar: simple[:2*blockSize+3], want: []string{CheckHeader}, wantPath: "a/f"},
		{name: "truncated big data", tar: simple[:5*blockSize+700], want: []string{CheckHeader}, wantPath: "a/g"},
		{name: "truncated header", tar: simple[:blockSize+100], want: []string{CheckHeader}},
		{name: "truncated PAX data", tar: cat(rawHeader("PaxHeaders/x", 'x', 600), paxRecords("comment", "abc")), want: []string{CheckHeader}},
		{name: "trailing garbage", tar: cat(simple, []byte("garbage")), want: []string{CheckHeader}},
		{name: "trailing garbage after zeros", tar: cat(simple, make([]byte, 5000), []byte{1}), want: []string{CheckHeader}},
		{name: "trailing tar", tar: cat(simple, simple), want: []string{CheckHeader}},
		{name: "empty name", tar: cat(rawHeader("", '0', 0), eofMarker), want: []string{CheckHeader}},
		{name: "hard link with a size", tar: cat(rawHeader("f", '0', 0), rawLink("h", '1', 512, "f"), rawHeader("hidden", '0', 0), eofMarker),
			want: []string{CheckHeaderOnlySize}, wantPath: "h"},
		{name: "directory with a size", tar: cat(rawHeader("d/", '5', 100), eofMarker), want: []string{CheckHeaderOnlySize}},
		{name: "symlink with a PAX size", tar: cat(rawEntry("PaxHeaders/l", 'x', paxRecords("size", "7")), rawHeader("l", '2', 0), eofMarker),
			want: []string{CheckHeaderOnlySize}},
		{name: "no eof", entries: []E{reg("f")}, end: testimages.Ending{Kind: testimages.EndNoEOF}, want: []string{CheckNoEOF}},
		{name: "inside padding", entries: []E{reg("f")}, end: testimages.Ending{Kind: testimages.EndInsidePadding, N: 10}, want: []string{CheckNoEOF}},
		{name: "data end, no padding", tar: simple[:2*blockSize+5], want: []string{CheckNoEOF}},
		{name: "one zero block", tar: simple[:len(simple)-blockSize], want: []string{CheckNoEOF}},
		{name: "cut zero block", tar: simple[:len(simple)-blockSize-100], want: []string{CheckNoEOF}},
		{name: "cut first zero block", tar: simple[:len(simple)-2*blockSize+100], want: []string{CheckNoEOF}},
		{name: "empty stream", tar: []byte{}, want: []string{CheckNoEOF}},
		{name: "only eof", tar: eofMarker},
		{name: "record padding", entries: []E{reg("f")}, end: testimages.Ending{Kind: testimages.EndRecord}},
		{name: "extra zeros", entries: []E{reg("f")}, end: testimages.Ending{Kind: testimages.EndExtraZeros, N: 100}},

		// Limits.
		{name: "entries", entries: []E{reg("a"), reg("b"), reg("c")}, opts: Options{Limits: Limits{MaxEntries: 2}}, want: []string{CheckLimitEntries}, wantPath: "c"},
		{name: "entries at the limit", entries: []E{reg("a"), reg("b")}, opts: Options{Limits: Limits{MaxEntries: 2}}},
		{name: "global headers count", entries: []E{global, global, reg("a")}, opts: Options{Limits: Limits{MaxEntries: 2}},
			want: []string{CheckPAXGlobal, CheckLimitEntries}},
		{name: "name length", entries: []E{reg("d/" + strings.Repeat("n", 5000))}, want: []string{CheckLimitNameLength}},
		{name: "name length at the limit", entries: []E{reg(strings.Repeat("n", 4096))}},
		{name: "link length", entries: []E{symlink("l", strings.Repeat("t/", 40))}, opts: Options{Limits: Limits{MaxNameLength: 64}},
			want: []string{CheckLimitNameLength}, wantPath: "l"},
		{name: "GNU long name length", entries: []E{{Type: tar.TypeReg, Name: strings.Repeat("g", 300), Format: tar.FormatGNU}},
			opts: Options{Limits: Limits{MaxNameLength: 255}}, want: []string{CheckLimitNameLength}},
		{name: "pax size", entries: []E{{Type: tar.TypeReg, Name: "f", PAXRecords: map[string]string{"comment": strings.Repeat("c", 2000)}}},
			opts: Options{Limits: Limits{MaxPAXRecordsSize: 1000}}, want: []string{CheckLimitPAXSize}},
		{name: "pax size over archive/tar's", tar: cat(rawEntry("PaxHeaders/f", 'x', paxRecords("comment", strings.Repeat("c", 2<<20))), rawHeader("f", '0', 0), eofMarker),
			opts: Options{Limits: Limits{MaxPAXRecordsSize: 8 << 20}}, want: []string{CheckLimitPAXSize}},
		{name: "pax size default", tar: cat(rawEntry("PaxHeaders/f", 'x', paxRecords("comment", strings.Repeat("c", 1<<20))), rawHeader("f", '0', 0), eofMarker),
			want: []string{CheckLimitPAXSize}},
		{name: "GNU long name over archive/tar's", tar: cat(rawEntry("././@LongLink", 'L', bytes.Repeat([]byte("n"), 1<<20+1)), rawHeader("f", '0', 0), eofMarker),
			want: []string{CheckLimitNameLength}},
		{name: "GNU long link over archive/tar's", tar: cat(rawEntry("././@LongLink", 'K', bytes.Repeat([]byte("n"), 2<<20)), rawHeader("f", '2', 0), eofMarker),
			opts: Options{Limits: Limits{MaxNameLength: 4 << 20}}, want: []string{CheckLimitPAXSize}},
		{name: "pax global size", entries: []E{{Type: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": strings.Repeat("c", 2000)}}},
			opts: Options{Limits: Limits{MaxPAXRecordsSize: 1000}}, want: []string{CheckLimitPAXSize}},
		{name: "pax size fine", entries: []E{{Type: tar.TypeReg, Name: "f", PAXRecords: map[string]string{"comment": strings.Repeat("c", 900)}}},
			opts: Options{Limits: Limits{MaxPAXRecordsSize: 1000}}},
		{name: "entry size", entries: []E{file("f", 0o644, testimages.Zeros(2000))}, opts: Options{Limits: Limits{MaxEntrySize: 1999}},
			want: []string{CheckLimitEntrySize}, wantPath: "f"},
		{name: "entry size at the limit", entries: []E{file("f", 0o644, testimages.Zeros(2000))}, opts: Options{Limits: Limits{MaxEntrySize: 2000}}},
		{name: "total size", tar: simple, opts: Options{Limits: Limits{MaxTotalSize: int64(len(simple)) - 1}}, want: []string{CheckLimitTotalSize}},
		{name: "total size in trailing zeros", entries: []E{reg("f")}, end: testimages.Ending{Kind: testimages.EndRecord},
			opts: Options{Limits: Limits{MaxTotalSize: 5000}}, want: []string{CheckLimitTotalSize}},
		{name: "total size exact", tar: simple, opts: Options{Limits: Limits{MaxTotalSize: int64(len(simple))}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.tar
			if b == nil && c.entries != nil {
				b = mustTar(t, c.entries, c.end)
			}
			res := scan(t, b, c.opts)
			wantIDs(t, res, c.want...)
			if c.wantPath != "" && len(res.Findings) > 0 && res.Findings[0].Path != c.wantPath {
				t.Errorf("first finding at %q, want %q:\n%s", res.Findings[0].Path, c.wantPath, dump(res.Findings))
			}
			for _, f := range res.Findings {
				want := DefaultSeverity(f.Check)
				if s, ok := c.opts.Severity[f.Check]; ok {
					want = s
				}
				if f.Severity != want {
					t.Errorf("%s has severity %s, want %s", f.Check, f.Severity, want)
				}
			}
			if sum := sha256.Sum256(b[:res.Size]); res.Digest != digest.NewDigestFromBytes(digest.SHA256, sum[:]) {
				t.Errorf("digest %s does not cover the %d bytes read", res.Digest, res.Size)
			}
			limited := false
			for _, id := range c.want {
				limited = limited || strings.HasPrefix(id, "limit.")
			}
			if complete := res.Size == int64(len(b)) && res.Complete; complete == limited {
				t.Errorf("read %d of %d bytes (complete %v); limited %v", res.Size, len(b), res.Complete, limited)
			}
		})
	}
}

// TestHostileSizeClaim: a header claiming a 1 TiB entry, followed by an
// endless stream, stops the scan at once.
func TestHostileSizeClaim(t *testing.T) {
	for _, f := range []tar.Format{tar.FormatPAX, tar.FormatGNU} {
		t.Run(f.String(), func(t *testing.T) {
			hdr := tarHeaderOnly(t, &tar.Header{Typeflag: tar.TypeReg, Name: "huge", Size: 1 << 40, Mode: 0o644, Format: f})
			start := time.Now()
			res, err := Scan(context.Background(), io.MultiReader(bytes.NewReader(hdr), endless{}), Options{})
			if err != nil {
				t.Fatal(err)
			}
			wantIDs(t, res, CheckLimitEntrySize)
			if res.Size != int64(len(hdr)) || res.Complete || res.Count != 0 {
				t.Errorf("read %d bytes (header %d), complete %v, count %d", res.Size, len(hdr), res.Complete, res.Count)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	// Within the limit, the claim is streamed: a truncated 1 TiB entry costs
	// nothing.
	hdr := tarHeaderOnly(t, &tar.Header{Typeflag: tar.TypeReg, Name: "huge", Size: 1 << 40, Mode: 0o644})
	res := scan(t, cat(hdr, make([]byte, 100000)), Options{Limits: Limits{MaxEntrySize: 1 << 41}})
	wantIDs(t, res, CheckHeader)
}

// endless is an infinite stream of zeros.
type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestManyEntries: a stream of 2,000,000 tiny entries stops at MaxEntries,
// having read little more than MaxEntries entries.
func TestManyEntries(t *testing.T) {
	const total, limit = 2_000_000, 1000
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		for i := 0; i < total && err == nil; i++ {
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f%07d", i), Mode: 0o644})
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	res, err := Scan(context.Background(), pr, Options{Limits: Limits{MaxEntries: limit}})
	pr.Close()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, res, CheckLimitEntries)
	if res.Count != limit || res.Complete || res.Size > (limit+1)*blockSize {
		t.Errorf("count %d, complete %v, read %d bytes", res.Count, res.Complete, res.Size)
	}
	if f := findings(res, CheckLimitEntries); len(f) != 1 || f[0].Path != fmt.Sprintf("f%07d", limit) || f[0].Severity != check.Error {
		t.Errorf("limit finding:\n%s", dump(f))
	}
}

// TestEndlessExtensionHeaders: PAX headers that never reach a file header
// stop at the header budget instead of being parsed for ever.
func TestEndlessExtensionHeaders(t *testing.T) {
	for _, typ := range []byte{'x', 'L'} {
		t.Run(string(typ), func(t *testing.T) {
			one := rawEntry("PaxHeaders/x", typ, paxRecords("comment", strings.Repeat("z", 100)))
			res, err := Scan(context.Background(), &repeater{b: one}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			wantIDs(t, res, CheckLimitPAXSize)
			if res.Size > DefaultLimits().headerBudget()+int64(len(one)) {
				t.Errorf("read %d bytes", res.Size)
			}
		})
	}
}

// repeater repeats b for ever.
type repeater struct {
	b   []byte
	off int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// TestEndlessData: an endless entry stops at MaxTotalSize.
func TestEndlessData(t *testing.T) {
	hdr := tarHeaderOnly(t, &tar.Header{Typeflag: tar.TypeReg, Name: "big", Size: 60 << 30, Mode: 0o644})
	res, err := Scan(context.Background(), io.MultiReader(bytes.NewReader(hdr), endless{}), Options{Limits: Limits{MaxTotalSize: 10 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, res, CheckLimitTotalSize)
	if res.Size != 10<<20+1 || res.Complete {
		t.Errorf("read %d bytes, complete %v", res.Size, res.Complete)
	}
}

func TestMaxFindings(t *testing.T) {
	var es []E
	for i := range 250 {
		es = append(es, E{Type: tar.TypeChar, Name: fmt.Sprintf("dev/c%d", i), Mode: 0o600, Devmajor: 1, Devminor: int64(i)})
	}
	res := scan(t, mustTar(t, es, testimages.Ending{}), Options{Limits: Limits{MaxFindings: 10}})
	fs := findings(res, CheckDeviceNode)
	if len(fs) != 11 || !strings.Contains(fs[10].Message, "240 more") || fs[10].Severity != check.Warning {
		t.Errorf("%d findings:\n%s", len(fs), dump(fs))
	}
	if res.Count != 250 {
		t.Errorf("count %d", res.Count)
	}
}

func TestOnEntry(t *testing.T) {
	b := mustTar(t, []E{dir("d/", 0o755), file("d/a", 0o644, testimages.Random(3, 100000)), file("d/b", 0o644, str("bee"))}, testimages.Ending{})

	// Partial reads are fine; the rest is skipped.
	var seen []string
	res := scan(t, b, Options{OnEntry: func(e Entry, r io.Reader) error {
		seen = append(seen, e.Name)
		_, err := r.Read(make([]byte, 10))
		if e.Type == tar.TypeDir && err != io.EOF {
			return fmt.Errorf("directory content: %v", err)
		}
		return nil
	}})
	wantIDs(t, res)
	if strings.Join(seen, ",") != "d/,d/a,d/b" {
		t.Errorf("OnEntry saw %q", seen)
	}

	// An error of the hook stops the scan and is returned.
	boom := errors.New("boom")
	_, err := Scan(context.Background(), bytes.NewReader(b), Options{OnEntry: func(e Entry, r io.Reader) error {
		if e.Name == "d/a" {
			return boom
		}
		return nil
	}})
	if !errors.Is(err, boom) {
		t.Errorf("Scan error %v, want boom", err)
	}

	// A truncated entry is a finding even when the hook fails on it.
	res = scan(t, b[:3*blockSize], Options{OnEntry: func(e Entry, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	}})
	wantIDs(t, res, CheckHeader)

	// The reader dies with the call.
	var kept io.Reader
	scan(t, b, Options{OnEntry: func(e Entry, r io.Reader) error { kept = r; return nil }})
	if _, err := kept.Read(make([]byte, 1)); err == nil {
		t.Error("entry reader still works after OnEntry returned")
	}
}

func TestErrors(t *testing.T) {
	b := mustLayer(t, testimages.LayerBasic)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, bytes.NewReader(b), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}

	ioErr := errors.New("disk on fire")
	for _, at := range []int{0, 100, 600, 1 << 20, len(b) - 1} {
		_, err := Scan(context.Background(), io.MultiReader(bytes.NewReader(b[:at]), failing{ioErr}), Options{})
		if !errors.Is(err, ioErr) {
			t.Errorf("I/O error at %d: %v", at, err)
		}
	}
	// A decompressor's ErrUnexpectedEOF is an I/O error, not a truncated tar.
	_, err := Scan(context.Background(), io.MultiReader(bytes.NewReader(b[:5000]), failing{io.ErrUnexpectedEOF}), Options{})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ErrUnexpectedEOF from the source: %v", err)
	}
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

// TestOneByteReads: the result does not depend on how the source splits its
// reads.
func TestOneByteReads(t *testing.T) {
	for _, name := range []string{testimages.LayerWhiteouts, testimages.LayerEndingInsidePadding, testimages.LayerPAXGlobal, testimages.LayerDuplicatePaths} {
		b := mustLayer(t, name)
		want := scan(t, b, Options{KeepEntries: true})
		got, err := Scan(context.Background(), iotestOneByte{bytes.NewReader(b)}, Options{KeepEntries: true})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: one-byte reads give\n%+v\nwant\n%+v", name, got, want)
		}
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"./a/b/": "a/b", "a//b": "a/b", "/a/b": "a/b", "a/x/../b": "a/b", "./": ".", "": ".", "/": ".",
		"../a": "../a", "a/../..": "..", "//etc": "etc",
	} {
		if got := NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDefaultSeverityCoversIDs(t *testing.T) {
	warn := map[string]bool{CheckDuplicatePath: true, CheckWhiteoutShadowed: true, CheckDeviceNode: true, CheckPAXGlobal: true,
		CheckNameInvalidUTF8: true, CheckNoEOF: true}
	if len(CheckIDs) != 19 {
		t.Errorf("%d check ids", len(CheckIDs))
	}
	for _, id := range CheckIDs {
		want := check.Error
		if warn[id] {
			want = check.Warning
		}
		if got := DefaultSeverity(id); got != want {
			t.Errorf("DefaultSeverity(%s) = %s, want %s", id, got, want)
		}
	}
}

package testimages

import (
	"archive/tar"
	"bytes"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestLayersCatalogue(t *testing.T) {
	want := []string{LayerBasic, LayerWhiteouts, LayerEndingGNURecord, LayerEndingNoEOF, LayerEndingInsidePadding,
		LayerEndingExtraZeros, LayerPAXGlobal, LayerDuplicatePaths, LayerPlatformAMD64, LayerPlatformARM64}
	var got []string
	for _, l := range Layers() {
		got = append(got, l.Name)
		if l.Notes == "" {
			t.Errorf("%s: no notes", l.Name)
		}
		if len(l.Tar) == 0 || len(l.Entries) == 0 {
			t.Errorf("%s: empty", l.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("catalogue = %q, want %q", got, want)
	}
	// Callers get their own copies.
	a, _ := LayerByName(LayerWhiteouts)
	a.Tar[0] ^= 0xff
	b, _ := LayerByName(LayerWhiteouts)
	if a.Tar[0] == b.Tar[0] {
		t.Error("LayerByName returns shared tar bytes")
	}
	if _, ok := LayerByName("nope"); ok {
		t.Error("LayerByName(nope) succeeded")
	}
}

// TestLayerDiffIDsGolden pins the uncompressed tars: they must be identical
// in every process, on every machine. If you change the catalogue on
// purpose, update the digests (go test -run Golden -v prints them).
func TestLayerDiffIDsGolden(t *testing.T) {
	golden := map[string]string{
		LayerBasic:               "sha256:b441e0710864575606eb61bbd6020b33408d4555393223292f471cf0ea16934a",
		LayerWhiteouts:           "sha256:210b9490e96aed1146e80fa298f4a1c9089b6f8ae03a5178f0a922d5ad09d57f",
		LayerEndingGNURecord:     "sha256:8ffa80ebbcf9098e4aaafef8dbbe0d4a122f880b877ee5ec4a41cdc703eca3d4",
		LayerEndingNoEOF:         "sha256:0b1b68ea8c9b15d73e1aa2f1a414efa0a363dae175eece66c7766557670d0c0a",
		LayerEndingInsidePadding: "sha256:340a4e532f468880d222dd81dfcc1d3983707c71b20aad3d635280d7eceba391",
		LayerEndingExtraZeros:    "sha256:be7139e6cb7e2513667abe72edf59ad5cd4193c0448d6fa9493e787cb9157ac0",
		LayerPAXGlobal:           "sha256:6b5324fdb6d3fd2abbf1565e7044dcb6a3c4107c7c14815ff5cfac14c235b124",
		LayerDuplicatePaths:      "sha256:a51902b8181d48b4b73e0c42dd0c9d48a39f4d3ed849a6b8c5a409e670612bbf",
		LayerPlatformAMD64:       "sha256:1f3e6856f690037f8461a2599415baeee1bc7489c3117ca0d352f92d917f65cd",
		LayerPlatformARM64:       "sha256:bb1ab65bc2d1b28ac86a2d22b31d9eaf28ef010eaea99e110b31876424ecc271",
	}
	for _, l := range Layers() {
		got := DiffID(l.Tar).String()
		t.Logf("%-22s %s", l.Name, got)
		if got != golden[l.Name] {
			t.Errorf("%s: diff ID %s, golden %s", l.Name, got, golden[l.Name])
		}
	}
}

// TestLayersRoundTrip reads every layer back with archive/tar and checks
// each entry against its description.
func TestLayersRoundTrip(t *testing.T) {
	for _, l := range Layers() {
		t.Run(l.Name, func(t *testing.T) {
			got, err := readTar(l.Tar)
			if err != nil {
				t.Fatalf("archive/tar: %v", err)
			}
			if len(got) != len(l.Entries) {
				t.Fatalf("%d entries read, %d described", len(got), len(l.Entries))
			}
			for i, e := range l.Entries {
				h, data := got[i].hdr, got[i].data
				if h.Typeflag != e.Type || h.Name != e.Name {
					t.Errorf("entry %d: read %c %q, want %c %q", i, h.Typeflag, h.Name, e.Type, e.Name)
					continue
				}
				if e.Type == tar.TypeXGlobalHeader {
					if !maps.Equal(h.PAXRecords, e.PAXRecords) {
						t.Errorf("%s: global records %q, want %q", e.Name, h.PAXRecords, e.PAXRecords)
					}
					continue
				}
				if h.Mode != e.Mode || h.Uid != e.UID || h.Gid != e.GID || h.Uname != e.Uname || h.Gname != e.Gname ||
					h.Linkname != e.Linkname || h.Devmajor != e.Devmajor || h.Devminor != e.Devminor {
					t.Errorf("%s: read %+v, described %+v", e.Name, h, e)
				}
				if !h.ModTime.Equal(e.modTime()) {
					t.Errorf("%s: mtime %v, want %v", e.Name, h.ModTime, e.modTime())
				}
				xattrs := map[string]string{}
				for k, v := range h.PAXRecords {
					if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
						xattrs[name] = v
					} else if want, ok := e.PAXRecords[k]; ok && want != v {
						t.Errorf("%s: PAX %s=%q, want %q", e.Name, k, v, want)
					}
				}
				if len(xattrs)+len(e.Xattrs) > 0 && !maps.Equal(xattrs, e.Xattrs) {
					t.Errorf("%s: xattrs %q, want %q", e.Name, xattrs, e.Xattrs)
				}
				if !bytes.Equal(data, e.Content.Bytes()) {
					t.Errorf("%s: content differs (%d bytes read, %d described)", e.Name, len(data), e.Content.Size())
				}
			}
		})
	}
}

func TestBasicLayerFeatures(t *testing.T) {
	l, _ := LayerByName(LayerBasic)
	entries, err := readTar(l.Tar)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[byte]int{}
	byName := map[string]readEntry{}
	var (
		bigFile, bigUID, nanoMtime, userXattr, capXattr, nonASCII, long100, long255    bool
		setuid, setgid, sticky, emptyFile, zeroRuns, hardlinkedSymlink, hardlinkToFile bool
	)
	for _, e := range entries {
		h := e.hdr
		counts[h.Typeflag]++
		byName[h.Name] = e
		if h.Typeflag == tar.TypeReg && h.Size > 4<<20 {
			bigFile = true
		}
		if h.Uid > 65535 && h.Gid > 65535 {
			bigUID = true
		}
		if h.ModTime.Nanosecond() != 0 {
			nanoMtime = true
		}
		if v, ok := h.PAXRecords["SCHILY.xattr.user.comment"]; ok && v == "hello" {
			userXattr = true
		}
		if v := h.PAXRecords["SCHILY.xattr.security.capability"]; len(v) == 20 && strings.Contains(v, "\x00") {
			capXattr = true
		}
		if !isASCII(h.Name) && utf8.ValidString(h.Name) {
			nonASCII = true
		}
		if len(h.Name) > 100 {
			long100 = true
		}
		if len(h.Name) > 255 {
			long255 = true
		}
		setuid = setuid || h.Mode&0o4000 != 0
		setgid = setgid || h.Mode&0o2000 != 0
		sticky = sticky || (h.Typeflag == tar.TypeDir && h.Mode&0o1000 != 0)
		emptyFile = emptyFile || (h.Typeflag == tar.TypeReg && h.Size == 0)
		if h.Typeflag == tar.TypeReg && hasZeroRunWithData(e.data, 1024) {
			zeroRuns = true
		}
	}
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeLink {
			switch byName[e.hdr.Linkname].hdr.Typeflag {
			case tar.TypeSymlink:
				hardlinkedSymlink = true
			case tar.TypeReg:
				hardlinkToFile = true
			}
		}
	}
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"file over 4 MiB", bigFile}, {"uid and gid above 65535", bigUID}, {"nanosecond mtime", nanoMtime},
		{"user.* xattr", userXattr}, {"binary security.capability xattr", capXattr}, {"non-ASCII UTF-8 name", nonASCII},
		{"name over 100 bytes", long100}, {"name over 255 bytes", long255}, {"setuid", setuid}, {"setgid", setgid},
		{"sticky directory", sticky}, {"empty file", emptyFile}, {"zero runs >= 1024 mixed with data", zeroRuns},
		{"hardlink to a symlink", hardlinkedSymlink}, {"hardlink to a file", hardlinkToFile},
	} {
		if !c.ok {
			t.Errorf("basic layer lacks: %s", c.what)
		}
	}
	for typ, min := range map[byte]int{
		tar.TypeDir: 10, tar.TypeReg: 30, tar.TypeSymlink: 5, tar.TypeLink: 3,
		tar.TypeChar: 2, tar.TypeBlock: 2, tar.TypeFifo: 1,
	} {
		if counts[typ] < min {
			t.Errorf("basic layer has %d entries of type %q, want at least %d", counts[typ], typ, min)
		}
	}
	for _, size := range []int64{0, 1, 511, 512, 513, 65536, BigTextSize} {
		found := false
		for _, e := range entries {
			found = found || (e.hdr.Typeflag == tar.TypeReg && e.hdr.Size == size)
		}
		if !found {
			t.Errorf("basic layer has no regular file of %d bytes", size)
		}
	}
	if got := byName["data/nanotime"].hdr.ModTime.Nanosecond(); got != NanoMtimeNs {
		t.Errorf("data/nanotime: %d ns, want %d", got, NanoMtimeNs)
	}
	if u := byName["home/user/huge-ids"].hdr.Uid; u != HugeUID {
		t.Errorf("huge-ids uid %d", u)
	}
	if _, ok := byName[LongGNUName]; !ok {
		t.Errorf("GNU long name entry missing")
	}
	if _, ok := byName[LongPAXName]; !ok {
		t.Errorf("PAX long name entry missing")
	}
	// The big text must be compressible (it is meant to exercise chunking,
	// not to bloat the images).
	gz, err := Compress(byName["data/big-text"].data, Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if ratio := float64(len(gz)) / float64(BigTextSize); ratio > 0.4 {
		t.Errorf("data/big-text compresses to %.0f%%, want it compressible", ratio*100)
	}

	// The raw header encodings we asked for are really used.
	raw, eof := walkRaw(t, l.Tar)
	if eof != len(l.Tar)-2*BlockSize {
		t.Errorf("EOF blocks at %d, archive length %d", eof, len(l.Tar))
	}
	rawTypes := map[byte]int{}
	prefix := false
	for _, h := range raw {
		rawTypes[h.typeflag]++
		prefix = prefix || h.prefix != ""
		if h.typeflag == tar.TypeGNULongName || h.typeflag == tar.TypeGNULongLink {
			if h.name != "././@LongLink" {
				t.Errorf("GNU long name entry called %q", h.name)
			}
		}
	}
	for _, typ := range []byte{tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink} {
		if rawTypes[typ] == 0 {
			t.Errorf("no raw %q header in basic", typ)
		}
	}
	if !prefix {
		t.Error("no header uses the ustar prefix field")
	}
	if !bytes.Contains(l.Tar, []byte("ñandú-gnu.txt\x00")) {
		t.Error("GNU header with a raw UTF-8 name missing")
	}
}

func hasZeroRunWithData(b []byte, n int) bool {
	if isZero(b) {
		return false
	}
	return bytes.Contains(b, make([]byte, n))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestWhiteoutsLayer(t *testing.T) {
	l, _ := LayerByName(LayerWhiteouts)
	entries, err := readTar(l.Tar)
	if err != nil {
		t.Fatal(err)
	}
	basic, _ := LayerByName(LayerBasic)
	basicNames := map[string]bool{}
	for _, e := range basic.Entries {
		basicNames[strings.TrimSuffix(e.Name, "/")] = true
	}
	opaque, whiteouts := 0, 0
	for _, e := range entries {
		dir, base := pathSplit(e.hdr.Name)
		switch {
		case base == ".wh..wh..opq":
			opaque++
		case strings.HasPrefix(base, ".wh."):
			whiteouts++
			if target := dir + strings.TrimPrefix(base, ".wh."); !basicNames[target] {
				t.Errorf("whiteout %s hides %q, which basic does not have", e.hdr.Name, target)
			}
		}
		if strings.HasPrefix(base, ".wh.") && (e.hdr.Typeflag != tar.TypeReg || e.hdr.Size != 0) {
			t.Errorf("%s: whiteouts must be empty regular files", e.hdr.Name)
		}
	}
	if opaque < 1 || whiteouts < 3 {
		t.Errorf("%d opaque markers and %d whiteouts", opaque, whiteouts)
	}
}

func pathSplit(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	return p[:i+1], p[i+1:]
}

func TestEndingLayers(t *testing.T) {
	for _, name := range EndingLayers {
		l, _ := LayerByName(name)
		standard := MustBuildTar(l.Entries, Ending{})
		body := standard[:len(standard)-2*BlockSize] // entries with their padding, no EOF blocks
		entries, err := readTar(l.Tar)
		if err != nil {
			t.Errorf("%s: archive/tar: %v", name, err)
		}
		if n := len(entries); n != len(l.Entries) || string(entries[n-1].data) != "hello" {
			t.Errorf("%s: archive/tar read %d entries", name, n)
		}
		b := l.Tar
		switch name {
		case LayerEndingGNURecord:
			if len(b)%GNURecordSize != 0 || !bytes.HasPrefix(b, standard) || !isZero(b[len(body):]) {
				t.Errorf("%s: %d bytes, not a standard tar zero-padded to 10240", name, len(b))
			}
			if len(b) == len(standard) {
				t.Errorf("%s: test content is exactly one record; padding not exercised", name)
			}
		case LayerEndingNoEOF:
			if !bytes.Equal(b, body) || len(b)%BlockSize != 0 || isZero(b[len(b)-BlockSize:]) {
				t.Errorf("%s: %d bytes, want the %d-byte body without EOF blocks", name, len(b), len(body))
			}
		case LayerEndingInsidePadding:
			// 5 data bytes, 95 of the 507 padding bytes, nothing else.
			if len(b)%BlockSize != 100 || !bytes.Equal(b, body[:len(body)-507+95]) ||
				!bytes.HasSuffix(b, append([]byte("hello"), make([]byte, 95)...)) {
				t.Errorf("%s: %d bytes (%% 512 = %d), not cut 95 bytes into the padding", name, len(b), len(b)%BlockSize)
			}
		case LayerEndingExtraZeros:
			if !bytes.Equal(b, append(bytes.Clone(standard), make([]byte, 4096)...)) {
				t.Errorf("%s: %d bytes, want standard tar + 4096 zeros", name, len(b))
			}
		}
	}
}

func TestPAXGlobalLayer(t *testing.T) {
	l, _ := LayerByName(LayerPAXGlobal)
	raw, _ := walkRaw(t, l.Tar)
	if len(raw) == 0 || raw[0].typeflag != tar.TypeXGlobalHeader || raw[0].name != "pax_global_header" {
		t.Fatalf("first raw header %+v, want a 'g' pax_global_header", raw[0])
	}
	entries, err := readTar(l.Tar) // archive/tar verifies the checksum
	if err != nil {
		t.Fatal(err)
	}
	if h := entries[0].hdr; h.Typeflag != tar.TypeXGlobalHeader || h.PAXRecords["comment"] == "" {
		t.Errorf("archive/tar sees %+v first", h)
	}
}

func TestDuplicatePathsLayer(t *testing.T) {
	l, _ := LayerByName(LayerDuplicatePaths)
	entries, err := readTar(l.Tar)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]byte{}
	dup := false
	for _, e := range entries {
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		if prev, ok := seen[e.hdr.Name]; ok && !bytes.Equal(prev, e.data) {
			dup = true
		}
		seen[e.hdr.Name] = e.data
	}
	if !dup {
		t.Error("no path appears twice with different content")
	}
}

func TestBuildTar(t *testing.T) {
	entries := []Entry{File("a", 0o644, String("12345"))}
	if _, err := BuildTar(entries, Ending{Kind: EndInsidePadding, N: 507}); err == nil {
		t.Error("EndInsidePadding with N == padding accepted")
	}
	if _, err := BuildTar([]Entry{File("a", 0o644, Zeros(512))}, Ending{Kind: EndInsidePadding}); err == nil {
		t.Error("EndInsidePadding after a file without padding accepted")
	}
	if _, err := BuildTar([]Entry{{Type: tar.TypeDir, Name: "d/", Content: String("x")}}, Ending{}); err == nil {
		t.Error("content on a directory accepted")
	}
	b, err := BuildTar(entries, Ending{Kind: EndRecord, N: 2048})
	if err != nil || len(b) != 2048 {
		t.Errorf("EndRecord 2048: %d bytes, %v", len(b), err)
	}
	// Zero ModTime means DefaultModTime; archive/tar must not round
	// sub-second times away.
	b = MustBuildTar([]Entry{File("a", 0o644, Content{}), {Type: tar.TypeReg, Name: "b", ModTime: time.Unix(1, 5)}}, Ending{})
	got, err := readTar(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].hdr.ModTime.Equal(DefaultModTime) || got[1].hdr.ModTime.UnixNano() != 1e9+5 {
		t.Errorf("mtimes %v %v", got[0].hdr.ModTime, got[1].hdr.ModTime)
	}
}

func TestPAXRecord(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 6, 7, 90, 91, 92, 93, 94, 95, 96, 97, 98, 990, 991, 992, 993, 994, 995, 996, 997, 998} {
		v := strings.Repeat("v", n)
		rec, err := paxRecord("k", v)
		if err != nil {
			t.Fatal(err)
		}
		num, rest, _ := strings.Cut(rec, " ")
		if num != strconv.Itoa(len(rec)) || rest != "k="+v+"\n" {
			t.Errorf("paxRecord(k, %d bytes) = %q", n, rec)
		}
	}
	if _, err := paxRecord("a=b", "x"); err == nil {
		t.Error("key with '=' accepted")
	}
}

func TestContent(t *testing.T) {
	c := Concat(String("ab"), Zeros(3), Random(1, 10), Text(2, 100))
	if c.Size() != 115 || len(c.Bytes()) != 115 {
		t.Fatalf("size %d / %d", c.Size(), len(c.Bytes()))
	}
	if !bytes.Equal(c.Bytes(), c.Bytes()) {
		t.Error("content not deterministic")
	}
	if bytes.Equal(Random(1, 64).Bytes(), Random(2, 64).Bytes()) {
		t.Error("different seeds give the same bytes")
	}
	if !bytes.HasPrefix(Random(1, 64).Bytes(), Random(1, 10).Bytes()) {
		t.Error("Random(seed, n) is not a prefix of a longer stream")
	}
	txt := Text(3, 5000).Bytes()
	if !utf8.Valid(txt) || bytes.Count(txt, []byte("\n")) < 50 {
		t.Error("Text is not line-oriented text")
	}
	if (Content{}).Size() != 0 || len(Bytes(nil).Bytes()) != 0 {
		t.Error("empty content not empty")
	}
}

package zstdchunked

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	esgzzstd "github.com/containerd/stargz-snapshotter/estargz/zstdchunked"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

func parsePos(t testing.TB, v string) []uint64 {
	t.Helper()
	var out []uint64
	for _, p := range strings.Split(v, ":") {
		var x uint64
		if _, err := fmt.Sscan(p, &x); err != nil {
			t.Fatalf("position %q: %v", v, err)
		}
		out = append(out, x)
	}
	return out
}

// TestReadRoundTrip reads back blobs written by Encode and by
// compressor.ZstdCompressor, with and without annotations.
func TestReadRoundTrip(t *testing.T) {
	in := buildTar(t, richEntries(21, true), tar.FormatUnknown)
	ours, res := ourEncode(t, in, 3)
	ref, refAnn, err := refEncode(t, in, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		blob []byte
		ann  map[string]string
	}{
		{"encode", ours, res.Annotations},
		{"reference-level10", ref, refAnn},
	} {
		t.Run(c.name, func(t *testing.T) {
			ra := bytes.NewReader(c.blob)
			size := int64(len(c.blob))
			d, ok := DetectDialect(c.ann)
			if !ok || d != DialectContainers {
				t.Fatalf("DetectDialect = %q %v", d, ok)
			}

			f, err := ReadFooter(ra, size)
			if err != nil {
				t.Fatal(err)
			}
			mp := parsePos(t, c.ann[AnnotationManifestPosition])
			tp := parsePos(t, c.ann[AnnotationTarSplitPosition])
			if f.Magic != FooterMagic || f.Size != FooterSize || f.ManifestType != 1 ||
				f.TOCOffset != mp[0] || f.TOCLength != mp[1] || f.TOCUncompressedLength != mp[2] ||
				f.TarSplitOffset != tp[0] || f.TarSplitLength != tp[1] || f.TarSplitUncompressedLength != tp[2] {
				t.Fatalf("footer %+v does not match annotations %v", f, c.ann)
			}
			if !bytes.Equal(c.blob[size-72:size-64], []byte{0x50, 0x2a, 0x4d, 0x18, 64, 0, 0, 0}) ||
				!bytes.Equal(f.Bytes(), c.blob[size-64:]) {
				t.Fatal("footer bytes do not round-trip")
			}

			toc, compressed, err := ReadTOC(ra, size, c.ann, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if digest.FromBytes(compressed).String() != c.ann[AnnotationManifestChecksum] || toc.Digest.String() != c.ann[AnnotationManifestChecksum] {
				t.Fatal("TOC digest mismatch")
			}
			if toc.Dialect != DialectContainers || toc.Shape != ShapeContainers || toc.TarSplitDigest == "" {
				t.Fatalf("dialect %q shape %q tarSplitDigest %q", toc.Dialect, toc.Shape, toc.TarSplitDigest)
			}
			// Without annotations, the footer locates the same TOC.
			toc2, compressed2, err := ReadTOC(ra, size, nil, Limits{})
			if err != nil || !bytes.Equal(compressed, compressed2) || toc2.Dialect != DialectContainers || len(toc2.Entries) != len(toc.Entries) {
				t.Fatalf("footer fallback: %v", err)
			}

			ts, err := ReadTarSplit(ra, size, c.ann, toc, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if uint64(len(ts)) != tp[2] || !bytes.Contains(ts, []byte(`"type":2`)) {
				t.Fatalf("tar-split of %d bytes", len(ts))
			}
			ts2, err := ReadTarSplit(ra, size, nil, toc2, Limits{})
			if err != nil || !bytes.Equal(ts, ts2) {
				t.Fatalf("tar-split via footer: %v", err)
			}
			// Re-encoding the parsed TOC gives the original JSON bytes.
			tocJSON := decodeAll(t, compressed)
			re, err := json.Marshal(toc)
			if err != nil || !bytes.Equal(re, tocJSON) {
				t.Fatalf("TOC does not re-marshal to the same JSON (%v)", err)
			}

			rc, err := Decode(bytes.NewReader(c.blob))
			if err != nil {
				t.Fatal(err)
			}
			full, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(full, in) {
				t.Fatalf("Decode: %v, %d bytes", err, len(full))
			}
			var rb bytes.Buffer
			if err := RebuildTar(&rb, ra, size, toc, ts); err != nil || !bytes.Equal(rb.Bytes(), in) {
				t.Fatalf("RebuildTar: %v", err)
			}
		})
	}
}

// TestRebuildDetectsTampering: a changed payload frame must make RebuildTar fail.
func TestRebuildDetectsTampering(t *testing.T) {
	in := smallTar(t, "a", textBytes(rand.New(rand.NewSource(1)), 20000), "b", []byte("bbb"))
	blob, res := ourEncode(t, in, 3)
	toc, ts := readBack(t, blob, res.Annotations)
	// Swap file "a"'s TOC entry to point at file "b"'s frames.
	var a, b *FileMetadata
	for i := range toc.Entries {
		switch toc.Entries[i].Name {
		case "a":
			a = &toc.Entries[i]
		case "b":
			b = &toc.Entries[i]
		}
	}
	a.Offset, a.EndOffset = b.Offset, b.EndOffset
	if err := RebuildTar(io.Discard, bytes.NewReader(blob), int64(len(blob)), toc, ts); err == nil {
		t.Fatal("RebuildTar accepted a TOC pointing at the wrong frames")
	}
}

// legacyBlob builds a containers-legacy blob by hand: the frames of an Encode
// output, then a minimal TOC without tarSplitDigest in a skippable frame and
// the 40-byte "GnUlInUx" footer (layout from skopeo 1.9 / c/storage 1.43).
func legacyBlob(t testing.TB, in []byte) ([]byte, map[string]string, *TOC) {
	blob, res := ourEncode(t, in, 3)
	toc, _ := readBack(t, blob, res.Annotations)
	mp := parsePos(t, res.Annotations[AnnotationManifestPosition])
	frames := blob[:mp[0]-SkippableFrameHeaderSize]

	legacy := TOC{Version: 1, Entries: toc.Entries}
	tocJSON, err := json.Marshal(legacy)
	if err != nil {
		t.Fatal(err)
	}
	var comp bytes.Buffer
	e := newTestEncoder(t, &comp, 3)
	e.Write(tocJSON)
	e.Close()

	var out bytes.Buffer
	out.Write(frames)
	tocOff := uint64(out.Len()) + 8
	writeSkippableFrame(&out, comp.Bytes())
	footer := make([]byte, 40)
	binary.LittleEndian.PutUint64(footer[0:], tocOff)
	binary.LittleEndian.PutUint64(footer[8:], uint64(comp.Len()))
	binary.LittleEndian.PutUint64(footer[16:], uint64(len(tocJSON)))
	binary.LittleEndian.PutUint64(footer[24:], 1)
	copy(footer[32:], "GnUlInUx")
	writeSkippableFrame(&out, footer)
	ann := map[string]string{
		AnnotationLegacyManifestChecksum: digest.FromBytes(comp.Bytes()).String(),
		AnnotationLegacyManifestPosition: fmt.Sprintf("%d:%d:%d:1", tocOff, comp.Len(), len(tocJSON)),
	}
	return out.Bytes(), ann, &legacy
}

func TestLegacyDialect(t *testing.T) {
	in := buildTar(t, richEntries(31, false), tar.FormatUnknown)
	blob, ann, want := legacyBlob(t, in)
	ra, size := bytes.NewReader(blob), int64(len(blob))
	if !bytes.Equal(blob[len(blob)-48:len(blob)-40], []byte{0x50, 0x2a, 0x4d, 0x18, 40, 0, 0, 0}) {
		t.Fatal("test blob layout")
	}

	if d, ok := DetectDialect(ann); !ok || d != DialectContainersLegacy {
		t.Fatalf("DetectDialect = %q %v", d, ok)
	}
	f, err := ReadFooter(ra, size)
	if err != nil {
		t.Fatal(err)
	}
	mp := parsePos(t, ann[AnnotationLegacyManifestPosition])
	if f.Magic != LegacyFooterMagic || f.Size != LegacyFooterSize || f.TOCOffset != mp[0] || f.TOCLength != mp[1] ||
		f.TOCUncompressedLength != mp[2] || f.ManifestType != 1 || f.TarSplitOffset != 0 {
		t.Fatalf("footer %+v", f)
	}
	if !bytes.Equal(f.Bytes(), blob[len(blob)-40:]) {
		t.Fatal("legacy footer bytes do not round-trip")
	}
	for _, a := range []map[string]string{ann, nil} {
		toc, _, err := ReadTOC(ra, size, a, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if toc.Dialect != DialectContainersLegacy || toc.Shape != ShapeContainers || toc.TarSplitDigest != "" || len(toc.Entries) != len(want.Entries) {
			t.Fatalf("annotations %v: dialect %q shape %q, %d entries", a != nil, toc.Dialect, toc.Shape, len(toc.Entries))
		}
	}
	if _, err := ReadTarSplit(ra, size, ann, nil, Limits{}); !errors.Is(err, ErrNoTarSplit) {
		t.Fatalf("ReadTarSplit: %v, want ErrNoTarSplit", err)
	}
	if _, err := ReadTarSplit(ra, size, nil, nil, Limits{}); !errors.Is(err, ErrNoTarSplit) {
		t.Fatalf("ReadTarSplit without annotations: %v, want ErrNoTarSplit", err)
	}
	rc, _ := Decode(bytes.NewReader(blob))
	full, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(full, in) {
		t.Fatalf("Decode: %v", err)
	}
	// The io.github keys on a legacy blob: the position is right but the TOC
	// has no tar-split, and the dialect claim is checked against nothing
	// else; the checksum still has to match.
	bad := map[string]string{AnnotationLegacyManifestChecksum: "sha256:" + strings.Repeat("0", 64), AnnotationLegacyManifestPosition: ann[AnnotationLegacyManifestPosition]}
	if _, _, err := ReadTOC(ra, size, bad, Limits{}); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("wrong checksum: %v", err)
	}
}

type stargzZstd struct {
	*esgzzstd.Compressor
	*esgzzstd.Decompressor
}

// TestStargzDialect uses stargz-snapshotter's own writer.
func TestStargzDialect(t *testing.T) {
	in := buildTar(t, richEntries(41, true), tar.FormatUnknown)
	md := map[string]string{}
	blob, err := estargz.Build(io.NewSectionReader(bytes.NewReader(in), 0, int64(len(in))),
		estargz.WithCompression(stargzZstd{&esgzzstd.Compressor{CompressionLevel: zstd.SpeedDefault, Metadata: md}, &esgzzstd.Decompressor{}}),
		estargz.WithParallelism(1))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, blob); err != nil {
		t.Fatal(err)
	}
	blob.Close()
	b := out.Bytes()
	ann := map[string]string{
		AnnotationStargzTOCDigest: blob.TOCDigest().String(),
	}
	for k, v := range md {
		ann[k] = v
	}
	if _, ok := ann[AnnotationLegacyManifestPosition]; !ok {
		t.Fatalf("stargz writer annotations: %v", md)
	}
	ra, size := bytes.NewReader(b), int64(len(b))

	if d, ok := DetectDialect(ann); !ok || d != DialectStargz {
		t.Fatalf("DetectDialect = %q %v", d, ok)
	}
	f, err := ReadFooter(ra, size)
	if err != nil || f.Magic != LegacyFooterMagic || f.Size != LegacyFooterSize {
		t.Fatalf("footer %+v %v", f, err)
	}
	toc, compressed, err := ReadTOC(ra, size, ann, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if toc.Dialect != DialectStargz || toc.Shape != ShapeEStargz || toc.JSONDigest != blob.TOCDigest() ||
		digest.FromBytes(compressed).String() != md[AnnotationLegacyManifestChecksum] {
		t.Fatalf("dialect %q shape %q JSON digest %s", toc.Dialect, toc.Shape, toc.JSONDigest)
	}
	if toc.Entries[0].Name != NoPrefetchLandmark {
		t.Fatalf("first entry %q, want the landmark", toc.Entries[0].Name)
	}
	// Every non-empty file carries chunkDigest and its content is at Offset.
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	files := map[string][]byte{}
	for _, e := range richEntries(41, true) {
		files[e.hdr.Name] = e.data
	}
	checked := 0
	for _, e := range toc.Entries {
		if e.Type != TypeReg || e.Size == 0 || e.Name == NoPrefetchLandmark {
			continue
		}
		if e.ChunkDigest == "" || e.Digest != sha(files[e.Name]) {
			t.Fatalf("%s: digest %q chunkDigest %q", e.Name, e.Digest, e.ChunkDigest)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d files checked", checked)
	}
	// Without annotations: footer + shape say stargz.
	toc2, _, err := ReadTOC(ra, size, nil, Limits{})
	if err != nil || toc2.Dialect != DialectStargz {
		t.Fatalf("footer fallback: %v %q", err, toc2.Dialect)
	}
	// Legacy keys alone (the stargz key stripped): the shape contradicts.
	legacyOnly := map[string]string{}
	for k, v := range md {
		legacyOnly[k] = v
	}
	if _, _, err := ReadTOC(ra, size, legacyOnly, Limits{}); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Fatalf("legacy keys on a stargz blob: %v", err)
	}
	// A wrong stargz TOC digest is caught.
	ann2 := map[string]string{AnnotationStargzTOCDigest: digest.FromString("x").String()}
	for k, v := range md {
		ann2[k] = v
	}
	if _, _, err := ReadTOC(ra, size, ann2, Limits{}); err == nil {
		t.Fatal("wrong eStargz TOC digest accepted")
	}
	if _, err := ReadTarSplit(ra, size, ann, toc, Limits{}); !errors.Is(err, ErrNoTarSplit) {
		t.Fatalf("ReadTarSplit: %v", err)
	}
	// The stream is the rewritten tar: landmark first, no EOF blocks.
	rc, _ := Decode(bytes.NewReader(b))
	full, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(full))
	h, err := tr.Next()
	if err != nil || h.Name != NoPrefetchLandmark {
		t.Fatalf("first tar entry %v %v", h, err)
	}
	if bytes.HasSuffix(full, zeros(1024)) {
		t.Fatal("stargz stream unexpectedly ends with EOF blocks")
	}
}

func TestDetectDialect(t *testing.T) {
	for _, c := range []struct {
		ann  map[string]string
		want Dialect
		ok   bool
	}{
		{nil, "", false},
		{map[string]string{"org.example": "x"}, "", false},
		{map[string]string{AnnotationManifestChecksum: "x", AnnotationManifestPosition: "y"}, DialectContainers, true},
		{map[string]string{AnnotationManifestPosition: "y"}, DialectContainers, true},
		{map[string]string{AnnotationLegacyManifestChecksum: "x", AnnotationLegacyManifestPosition: "y"}, DialectContainersLegacy, true},
		{map[string]string{AnnotationLegacyManifestChecksum: "x", AnnotationLegacyManifestPosition: "y", AnnotationStargzTOCDigest: "z", AnnotationStargzUncompressedSize: "1"}, DialectStargz, true},
		{map[string]string{AnnotationStargzTOCDigest: "z"}, "", false}, // gzip eStargz
		{map[string]string{AnnotationManifestChecksum: "x", AnnotationStargzTOCDigest: "z"}, "", false},
		{map[string]string{AnnotationManifestChecksum: "x", AnnotationLegacyManifestChecksum: "z"}, "", false},
	} {
		d, ok := DetectDialect(c.ann)
		if d != c.want || ok != c.ok {
			t.Errorf("DetectDialect(%v) = %q %v, want %q %v", c.ann, d, ok, c.want, c.ok)
		}
	}
}

// ---- hostile inputs: errors, never panics or huge allocations ----

func TestHostileInputs(t *testing.T) {
	in := smallTar(t, "file-a", textBytes(rand.New(rand.NewSource(2)), 30000), "file-b", []byte("x"))
	blob, res := ourEncode(t, in, 3)
	size := int64(len(blob))
	mp := parsePos(t, res.Annotations[AnnotationManifestPosition])
	tp := parsePos(t, res.Annotations[AnnotationTarSplitPosition])
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range res.Annotations {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	pos := func(off, clen, ulen uint64) string { return fmt.Sprintf("%d:%d:%d:1", off, clen, ulen) }
	// A footer claiming a TOC at offset `off` of `clen` bytes.
	withFooter := func(off, clen, ulen uint64) []byte {
		b := append([]byte(nil), blob...)
		p := b[len(b)-64:]
		binary.LittleEndian.PutUint64(p[0:], off)
		binary.LittleEndian.PutUint64(p[8:], clen)
		binary.LittleEndian.PutUint64(p[16:], ulen)
		return b
	}

	tocCases := []struct {
		name string
		blob []byte
		ann  map[string]string
		lim  Limits
		want string
	}{
		{"truncated-footer", blob[:len(blob)-10], nil, Limits{}, "footer"},
		{"tiny-blob", blob[:20], nil, Limits{}, "too small"},
		{"no-footer", in, nil, Limits{}, "no footer"},
		{"footer-without-skippable-header", cat(blob[:len(blob)-72], zeros(8), blob[len(blob)-64:]), nil, Limits{}, "skippable"},
		{"toc-past-end", blob, with(AnnotationManifestPosition, pos(uint64(size)-10, 100, mp[2])), Limits{}, "outside"},
		{"toc-offset-overflow", blob, with(AnnotationManifestPosition, pos(math.MaxUint64-5, 100, mp[2])), Limits{}, "outside"},
		{"huge-compressed", blob, with(AnnotationManifestPosition, pos(mp[0], 1<<40, mp[2])), Limits{}, "exceeds the limit"},
		{"huge-uncompressed", blob, with(AnnotationManifestPosition, pos(mp[0], mp[1], 1<<40)), Limits{}, "exceeds the limit"},
		{"footer-toc-past-end", withFooter(uint64(size)+100, 10, 10), nil, Limits{}, "outside"},
		{"footer-huge-toc", withFooter(mp[0], 1<<62, 1<<62), nil, Limits{}, "exceeds the limit"},
		{"short-uncompressed-claim", blob, with(AnnotationManifestPosition, pos(mp[0], mp[1], mp[2]-1)), Limits{}, "more than"},
		{"long-uncompressed-claim", blob, with(AnnotationManifestPosition, pos(mp[0], mp[1], mp[2]+1)), Limits{}, "claimed"},
		{"wrong-offset", blob, with(AnnotationManifestPosition, pos(mp[0]+1, mp[1]-1, mp[2])), Limits{}, "skippable"},
		{"wrong-checksum", blob, with(AnnotationManifestChecksum, digest.FromString("x").String()), Limits{}, "digest mismatch"},
		{"bad-checksum-syntax", blob, with(AnnotationManifestChecksum, "md5:xyz"), Limits{}, "invalid digest"},
		{"checksum-missing", blob, with(AnnotationManifestChecksum, "-"), Limits{}, "missing"},
		{"position-missing", blob, with(AnnotationManifestPosition, "-"), Limits{}, "missing"},
		{"bad-type", blob, with(AnnotationManifestPosition, fmt.Sprintf("%d:%d:%d:2", mp[0], mp[1], mp[2])), Limits{}, "manifest type"},
		{"bad-position-syntax", blob, with(AnnotationManifestPosition, "1:2:3"), Limits{}, "position"},
		{"negative-position", blob, with(AnnotationManifestPosition, "-1:2:3:1"), Limits{}, "position"},
		{"mixed-annotations", blob, with(AnnotationStargzTOCDigest, "sha256:00"), Limits{}, "mix"},
		{"limit-toc-size", blob, res.Annotations, Limits{MaxTOCSize: int64(mp[1]) - 1}, "exceeds the limit"},
		{"limit-entries", blob, res.Annotations, Limits{MaxEntries: 1}, "more than 1 entries"},
		{"limit-name", blob, res.Annotations, Limits{MaxNameLength: 5}, "longer than 5 bytes"},
		{"defaults-ok", blob, res.Annotations, Limits{}, ""},
	}
	for _, c := range tocCases {
		t.Run("toc/"+c.name, func(t *testing.T) {
			_, _, err := ReadTOC(bytes.NewReader(c.blob), int64(len(c.blob)), c.ann, c.lim)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}

	// A TOC whose JSON is hostile, behind a valid checksum.
	jsonCases := map[string]string{
		"not-json":         "this is not json",
		"array":            "[1,2,3]",
		"version-2":        `{"version":2,"entries":[]}`,
		"no-version":       `{"entries":[]}`,
		"entries-object":   `{"version":1,"entries":{}}`,
		"trailing":         `{"version":1,"entries":[]} {}`,
		"bad-entry":        `{"version":1,"entries":[{"type":1}]}`,
		"long-name":        `{"version":1,"entries":[{"type":"reg","name":"` + strings.Repeat("n", 100) + `"}]}`,
		"too-many-entries": `{"version":1,"entries":[{"type":"dir","name":"a"},{"type":"dir","name":"b"},{"type":"dir","name":"c"}]}`,
	}
	for name, js := range jsonCases {
		t.Run("json/"+name, func(t *testing.T) {
			b, ann := blobWithTOC(t, []byte(js))
			_, _, err := ReadTOC(bytes.NewReader(b), int64(len(b)), ann, Limits{MaxNameLength: 50, MaxEntries: 2})
			if err == nil {
				t.Fatal("accepted")
			}
			t.Log(err)
		})
	}
	t.Run("json/unknown-keys-ok", func(t *testing.T) {
		b, ann := blobWithTOC(t, []byte(`{"future":{"x":[1,2]},"version":1,"entries":null}`))
		toc, _, err := ReadTOC(bytes.NewReader(b), int64(len(b)), ann, Limits{})
		if err != nil || toc.Entries != nil || toc.Shape != ShapeUnknown {
			t.Fatalf("%v %+v", err, toc)
		}
	})
	t.Run("toc/zstd-bomb", func(t *testing.T) {
		// 64 MiB of zeros compress to a few KB; the claimed size is small.
		var comp bytes.Buffer
		e := newTestEncoder(t, &comp, 3)
		e.Write(make([]byte, 64<<20))
		e.Close()
		var out bytes.Buffer
		out.Write(blob[:mp[0]-8])
		off := uint64(out.Len()) + 8
		writeSkippableFrame(&out, comp.Bytes())
		b := out.Bytes()
		ann := map[string]string{
			AnnotationManifestChecksum: digest.FromBytes(comp.Bytes()).String(),
			AnnotationManifestPosition: pos(off, uint64(comp.Len()), 1000),
		}
		if _, _, err := ReadTOC(bytes.NewReader(b), int64(len(b)), ann, Limits{}); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Fatalf("error %v", err)
		}
	})

	toc, _ := readBack(t, blob, res.Annotations)
	tsPos := func(off, clen, ulen uint64) string { return fmt.Sprintf("%d:%d:%d", off, clen, ulen) }
	tsCases := []struct {
		name string
		ann  map[string]string
		toc  *TOC
		lim  Limits
		want string
	}{
		{"past-end", with(AnnotationTarSplitPosition, tsPos(uint64(size)+1, 10, 10)), toc, Limits{}, "outside"},
		{"huge", with(AnnotationTarSplitPosition, tsPos(tp[0], 1<<50, tp[2])), toc, Limits{}, "exceeds the limit"},
		{"huge-uncompressed", with(AnnotationTarSplitPosition, tsPos(tp[0], tp[1], 1<<50)), toc, Limits{}, "exceeds the limit"},
		{"syntax", with(AnnotationTarSplitPosition, "1:2"), toc, Limits{}, "position"},
		{"position-missing", with(AnnotationTarSplitPosition, "-"), toc, Limits{}, "missing"},
		{"no-digest", res.Annotations, &TOC{Version: 1}, Limits{}, "no digest"},
		{"wrong-digest", res.Annotations, &TOC{Version: 1, TarSplitDigest: digest.FromString("y")}, Limits{}, "digest mismatch"},
		{"deprecated-annotation-digest", with(AnnotationTarSplitChecksum, toc.TarSplitDigest.String()), &TOC{Version: 1}, Limits{}, ""},
		{"limit", res.Annotations, toc, Limits{MaxTarSplitSize: int64(tp[2]) - 1}, "exceeds the limit"},
		{"wrong-ulen", with(AnnotationTarSplitPosition, tsPos(tp[0], tp[1], tp[2]+5)), toc, Limits{}, "claimed"},
	}
	for _, c := range tsCases {
		t.Run("tarsplit/"+c.name, func(t *testing.T) {
			_, err := ReadTarSplit(bytes.NewReader(blob), size, c.ann, c.toc, c.lim)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}

	// Random corruption anywhere in the tail must not panic.
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 300; i++ {
		b := append([]byte(nil), blob...)
		tail := len(b) - int(tp[1]) - int(mp[1]) - 100
		for j := 0; j < 1+r.Intn(4); j++ {
			b[tail+r.Intn(len(b)-tail)] = byte(r.Intn(256))
		}
		for _, a := range []map[string]string{nil, res.Annotations} {
			toc, _, err := ReadTOC(bytes.NewReader(b), int64(len(b)), a, Limits{})
			if err == nil {
				if ts, err := ReadTarSplit(bytes.NewReader(b), int64(len(b)), a, toc, Limits{}); err == nil {
					_ = RebuildTar(io.Discard, bytes.NewReader(b), int64(len(b)), toc, ts)
				}
			}
		}
	}
}

// blobWithTOC makes a minimal blob whose TOC frame holds js.
func blobWithTOC(t *testing.T, js []byte) ([]byte, map[string]string) {
	var comp bytes.Buffer
	e := newTestEncoder(t, &comp, 3)
	e.Write(js)
	e.Close()
	var out bytes.Buffer
	e2 := newTestEncoder(t, &out, 3)
	e2.Write(zeros(1024))
	e2.Close()
	off := uint64(out.Len()) + 8
	writeSkippableFrame(&out, comp.Bytes())
	return out.Bytes(), map[string]string{
		AnnotationManifestChecksum: digest.FromBytes(comp.Bytes()).String(),
		AnnotationManifestPosition: fmt.Sprintf("%d:%d:%d:1", off, comp.Len(), len(js)),
	}
}

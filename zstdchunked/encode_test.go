package zstdchunked

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"go.podman.io/storage/pkg/chunked/compressor"
)

func TestRollsumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	data := cat(randBytes(r, 1<<20), zeros(3000), textBytes(r, 50000), zeros(70), randBytes(r, 1000))
	ref := compressor.NewRollSum()
	var ours rollsum
	ours.reset()
	splits := 0
	for i, c := range data {
		ref.Roll(c)
		ours.roll(c)
		if ref.Digest() != ours.digest() {
			t.Fatalf("byte %d: digest %08x, reference %08x", i, ours.digest(), ref.Digest())
		}
		if ref.OnSplitWithBits(RollsumBits) != ours.onSplit() {
			t.Fatalf("byte %d: split disagrees", i)
		}
		if ours.onSplit() {
			splits++
		}
	}
	if splits == 0 {
		t.Fatal("no split in 1 MB: the test data does not exercise splitting")
	}

	// rollZeros(n) must leave the same state as n single zero rolls.
	for _, n := range []int64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1024, 4097, 1<<20 + 13} {
		ref := compressor.NewRollSum()
		var ours rollsum
		ours.reset()
		pre := randBytes(r, 300)
		for _, c := range pre {
			ref.Roll(c)
			ours.roll(c)
		}
		for i := int64(0); i < n; i++ {
			ref.Roll(0)
		}
		ours.rollZeros(n)
		for i, c := range randBytes(r, 200) {
			ref.Roll(c)
			ours.roll(c)
			if ref.Digest() != ours.digest() {
				t.Fatalf("rollZeros(%d): digest differs %d bytes later", n, i)
			}
		}
	}
}

type identityCase struct {
	name string
	tar  []byte
}

func identityCases(t *testing.T) []identityCase {
	return []identityCase{
		{"pax-rich", buildTar(t, richEntries(1, true), tar.FormatUnknown)},
		{"gnu-rich", buildTar(t, richEntries(2, false), tar.FormatGNU)},
		{"ustar-small", buildTar(t, richEntries(3, false)[:12], tar.FormatUnknown)},
		{"one-empty-file", smallTar(t, "a", []byte{})},
		{"only-eof-blocks", zeros(1024)},
		{"empty-input", nil},
		{"no-payload", buildTar(t, []tarEntry{
			{&tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755, ModTime: epoch}, nil},
			{&tar.Header{Typeflag: tar.TypeSymlink, Name: "d/l", Linkname: "x", ModTime: epoch}, nil},
		}, tar.FormatUnknown)},
	}
}

func TestByteIdentityWithReference(t *testing.T) {
	cases := identityCases(t)
	for _, level := range []int{1, 3, 10} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/level%d", c.name, level), func(t *testing.T) {
				want, wantAnn, err := refEncode(t, c.tar, level)
				if err != nil {
					t.Fatalf("reference: %v", err)
				}
				got, res := ourEncode(t, c.tar, level)
				if res.Deviated {
					t.Fatalf("unexpected deviation: %s", res.DeviationReason)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("blob differs from compressor.ZstdCompressor: %d vs %d bytes, first difference at %d",
						len(got), len(want), firstDiff(got, want))
				}
				if !reflect.DeepEqual(res.Annotations, wantAnn) {
					t.Fatalf("annotations %v, reference %v", res.Annotations, wantAnn)
				}
				if res.TOCDigest.String() != wantAnn[AnnotationManifestChecksum] {
					t.Fatalf("TOCDigest %s", res.TOCDigest)
				}
				checkPreserved(t, c.tar, got, res)
			})
		}
	}
}

// The reference's output does not depend on how the caller splits its
// writes for tars without bytes after the end-of-archive blocks; check that
// with 32 KiB writes (io.Copy) too.
func TestByteIdentitySmallWrites(t *testing.T) {
	in := buildTar(t, richEntries(7, true), tar.FormatUnknown)
	var buf bytes.Buffer
	md := map[string]string{}
	level := 3
	w, err := compressor.ZstdCompressor(&buf, md, &level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, struct{ io.Reader }{bytes.NewReader(in)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, res := ourEncode(t, in, 3)
	if !bytes.Equal(got, buf.Bytes()) || !reflect.DeepEqual(res.Annotations, md) {
		t.Fatalf("differs from the reference fed with 32 KiB writes (first difference at %d)", firstDiff(got, buf.Bytes()))
	}
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestTOCContent checks the TOC against facts computed independently from the
// input tar: every entry present with its type, size and sha256; multi-chunk
// files split into reg+chunk entries covering the file; zero runs typed.
func TestTOCContent(t *testing.T) {
	es := richEntries(11, true)
	in := buildTar(t, es, tar.FormatUnknown)
	blob, res := ourEncode(t, in, 3)
	toc, _ := readBack(t, blob, res.Annotations)
	if toc.Dialect != DialectContainers || toc.Shape != ShapeContainers || toc.Version != 1 {
		t.Fatalf("dialect %q shape %q version %d", toc.Dialect, toc.Shape, toc.Version)
	}
	if toc.Digest != res.TOCDigest {
		t.Fatalf("TOC digest %s, result %s", toc.Digest, res.TOCDigest)
	}
	var mains []FileMetadata
	chunksOf := map[string][]FileMetadata{}
	for _, e := range toc.Entries {
		if e.Type == TypeChunk {
			chunksOf[e.Name] = append(chunksOf[e.Name], e)
			continue
		}
		mains = append(mains, e)
	}
	if len(mains) != len(es) {
		t.Fatalf("%d TOC entries, %d tar entries", len(mains), len(es))
	}
	sawZeros, sawMulti := false, false
	for i, e := range mains {
		h := es[i].hdr
		wantType := map[byte]string{tar.TypeReg: TypeReg, tar.TypeDir: TypeDir, tar.TypeSymlink: TypeSymlink, tar.TypeLink: TypeLink,
			tar.TypeChar: TypeChar, tar.TypeBlock: TypeBlock, tar.TypeFifo: TypeFifo}[h.Typeflag]
		if e.Name != h.Name || e.Type != wantType || e.Linkname != h.Linkname || e.Mode != h.Mode || e.UID != h.Uid || e.GID != h.Gid {
			t.Fatalf("entry %d: %+v, tar header %+v", i, e, h)
		}
		if e.ModTime == nil || !e.ModTime.Equal(h.ModTime) {
			t.Fatalf("%s: modtime %v, want %v", e.Name, e.ModTime, h.ModTime)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if e.Size != int64(len(es[i].data)) {
			t.Fatalf("%s: size %d", e.Name, e.Size)
		}
		if len(es[i].data) == 0 {
			if e.Digest != "" || e.Offset != 0 || e.EndOffset != 0 {
				t.Fatalf("empty file %s has digest/offsets: %+v", e.Name, e)
			}
			continue
		}
		if e.Digest != sha(es[i].data) {
			t.Fatalf("%s: digest %s", e.Name, e.Digest)
		}
		// Offsets point at zstd frames, and the frames [Offset, EndOffset)
		// decode to the file.
		if !bytes.Equal(blob[e.Offset:e.Offset+4], ZstdFrameMagic[:]) || !bytes.Equal(blob[e.EndOffset:e.EndOffset+4], ZstdFrameMagic[:]) {
			t.Fatalf("%s: offsets %d/%d are not at zstd frames", e.Name, e.Offset, e.EndOffset)
		}
		if got := decodeAll(t, blob[e.Offset:e.EndOffset]); !bytes.Equal(got, es[i].data) {
			t.Fatalf("%s: frames decode to %d bytes", e.Name, len(got))
		}
		chunks := chunksOf[e.Name]
		if len(chunks) == 0 {
			if e.ChunkSize != 0 || e.ChunkDigest != "" || e.ChunkType != "" {
				t.Fatalf("single-chunk %s has chunk fields: %+v", e.Name, e)
			}
			continue
		}
		sawMulti = true
		all := append([]FileMetadata{e}, chunks...)
		var pos int64
		for j, c := range all {
			if c.ChunkOffset != pos || c.ChunkSize <= 0 {
				t.Fatalf("%s chunk %d: offset %d size %d, expected offset %d", e.Name, j, c.ChunkOffset, c.ChunkSize, pos)
			}
			part := es[i].data[pos : pos+c.ChunkSize]
			if c.ChunkDigest != sha(part) {
				t.Fatalf("%s chunk %d: digest mismatch", e.Name, j)
			}
			isZeros := bytes.Count(part, []byte{0}) == len(part) && len(part) >= HolesThreshold
			if (c.ChunkType == ChunkTypeZeros) != isZeros {
				t.Fatalf("%s chunk %d: type %q, %d bytes, all zero: %v", e.Name, j, c.ChunkType, len(part), isZeros)
			}
			if isZeros {
				sawZeros = true
			}
			if c.EndOffset != 0 && j > 0 {
				t.Fatalf("chunk entry with endOffset")
			}
			if !bytes.Equal(blob[c.Offset:c.Offset+4], ZstdFrameMagic[:]) {
				t.Fatalf("%s chunk %d: offset %d is not at a zstd frame", e.Name, j, c.Offset)
			}
			if j > 0 && c.Offset <= all[j-1].Offset {
				t.Fatalf("%s chunk %d: offset not increasing", e.Name, j)
			}
			pos += c.ChunkSize
		}
		if pos != e.Size {
			t.Fatalf("%s: chunks cover %d of %d bytes", e.Name, pos, e.Size)
		}
	}
	if !sawZeros || !sawMulti {
		t.Fatalf("test data did not exercise zeros (%v) or multi-chunk files (%v)", sawZeros, sawMulti)
	}
	// xattrs and nanosecond times survive.
	for _, e := range mains {
		switch e.Name {
		case "usr/xattrs":
			x, err := e.DecodedXattrs()
			if err != nil || string(x["user.comment"]) != "hello" || string(x["security.capability"]) != "\x01\x00\x00\x02\xff\x00\x00\x00" {
				t.Fatalf("xattrs %v %v", x, err)
			}
		case "usr/nanotime":
			if e.ModTime.Nanosecond() != 123456789 || e.AccessTime == nil || e.ChangeTime == nil {
				t.Fatalf("times %+v", e)
			}
		}
	}
}

// ---- unusual endings ----

type endingCase struct {
	name       string
	in         []byte
	deviated   bool
	refFails   bool
	refLoses   int // bytes the reference drops from the stream
	wantReason string
}

func endingCases(t *testing.T) []endingCase {
	base := smallTar(t, "a", []byte("hello"), "b", textBytes(rand.New(rand.NewSource(3)), 70000), "c", []byte("world"))
	if len(base)%512 != 0 || !bytes.Equal(base[len(base)-1024:], zeros(1024)) {
		t.Fatal("unexpected Go tar layout")
	}
	body := base[:len(base)-1024] // ends after the padding of "c"
	// "c" has 5 data bytes, so its padding is the last 507 bytes of body.
	r := rand.New(rand.NewSource(4))
	return []endingCase{
		{name: "go-tar", in: base},
		{name: "gnu-record-padding", in: cat(base, zeros(10240-len(base)%10240))},
		{name: "one-eof-block", in: cat(body, zeros(512))},
		{name: "no-eof-blocks", in: body},
		{name: "trailing-garbage", in: cat(base, []byte("garbage after the end of the archive\n"), randBytes(r, 3000))},
		{name: "trailing-over-1MiB", in: cat(base, randBytes(r, 2<<20+12345))},
		{name: "ends-inside-padding", in: body[:len(body)-507+95], deviated: true, refLoses: 95, wantReason: "padding"},
		{name: "ends-right-after-data", in: body[:len(body)-507], deviated: false},
		{name: "ends-inside-eof-blocks", in: cat(body, zeros(512+300)), deviated: true, refFails: true, wantReason: "end-of-archive"},
		{name: "ends-inside-first-eof-block", in: cat(body, zeros(100)), deviated: true, refFails: true, wantReason: "end-of-archive"},
	}
}

func TestEndings(t *testing.T) {
	cases := endingCases(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			blob, res := ourEncode(t, c.in, 3)
			checkPreserved(t, c.in, blob, res)
			if res.Deviated != c.deviated {
				t.Fatalf("Deviated = %v (%s), want %v", res.Deviated, res.DeviationReason, c.deviated)
			}
			if c.deviated && !strings.Contains(res.DeviationReason, c.wantReason) {
				t.Fatalf("reason %q does not mention %q", res.DeviationReason, c.wantReason)
			}
			ref, refAnn, err := refEncode(t, c.in, 3)
			switch {
			case c.refFails:
				if err == nil {
					t.Fatalf("the reference now accepts this input; Deviated should be revisited")
				}
			case err != nil:
				t.Fatalf("reference: %v", err)
			case c.deviated:
				// Document the reference's loss, which is why we deviate.
				refOut := decodeAll(t, ref)
				if len(c.in)-len(refOut) != c.refLoses || !bytes.Equal(refOut, c.in[:len(refOut)]) {
					t.Fatalf("reference stream is %d bytes, input %d: expected it to drop %d bytes", len(refOut), len(c.in), c.refLoses)
				}
				if bytes.Equal(blob, ref) {
					t.Fatal("Deviated but identical to the reference")
				}
			default:
				if !bytes.Equal(blob, ref) || !reflect.DeepEqual(res.Annotations, refAnn) {
					t.Fatalf("differs from the reference (first difference at %d)", firstDiff(blob, ref))
				}
			}
		})
	}
}

// ---- refused and malformed inputs ----

func TestUnsupportedInputs(t *testing.T) {
	global := buildTar(t, []tarEntry{
		{&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "x"}}, nil},
		{&tar.Header{Typeflag: tar.TypeReg, Name: "a", Mode: 0o644, ModTime: epoch}, nil},
	}, tar.FormatPAX)
	dup := smallTar(t, "a/b", []byte("1"), "x", []byte("2"), "./a/b", []byte("3"))
	dupDir := buildTar(t, []tarEntry{
		{&tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755, ModTime: epoch}, nil},
		{&tar.Header{Typeflag: tar.TypeDir, Name: "d", Mode: 0o755, ModTime: epoch}, nil},
	}, tar.FormatUnknown)
	contType := buildTar(t, []tarEntry{{&tar.Header{Typeflag: tar.TypeCont, Name: "c", Mode: 0o644, ModTime: epoch}, nil}}, tar.FormatUnknown)
	sparse := paxSparseTar(t)
	nonUTF8 := buildTar(t, []tarEntry{{&tar.Header{Typeflag: tar.TypeReg, Name: "bad\xff\xfename", Mode: 0o644, ModTime: epoch}, nil}}, tar.FormatGNU)

	for _, c := range []struct {
		name, code, path string
		in               []byte
	}{
		{"pax-global", CodePAXGlobalHeader, "pax_global_header", global},
		{"duplicate", CodeDuplicatePath, "./a/b", dup},
		{"duplicate-dir", CodeDuplicatePath, "d", dupDir},
		{"contiguous-type", CodeUnsupportedEntryType, "c", contType},
		{"pax-sparse", CodeSparseFile, "sparse", sparse},
		{"non-utf8", CodeNonUTF8Name, "bad\xff\xfename", nonUTF8},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Encode(context.Background(), io.Discard, bytes.NewReader(c.in), EncodeOptions{Level: 3})
			var ue *UnsupportedInputError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T), want *UnsupportedInputError", err, err)
			}
			if ue.Code != c.code || ue.Path != c.path || ue.Reason == "" {
				t.Fatalf("got %+v, want code %s path %q", ue, c.code, c.path)
			}
			// The reference refuses these too (or, for sparse and non-UTF-8
			// names, writes a layer whose views disagree); make sure the
			// first two really are refused.
			if c.code == CodePAXGlobalHeader || c.code == CodeDuplicatePath {
				if _, _, err := refEncode(t, c.in, 3); err == nil {
					t.Fatal("the reference accepts this input")
				}
			}
		})
	}
}

// paxSparseTar builds a PAX 0.1 GNU sparse file by hand: Go's writer drops
// GNU.sparse.* records.
func paxSparseTar(t *testing.T) []byte {
	recs := paxRecord("GNU.sparse.major", "0") + paxRecord("GNU.sparse.minor", "1") + paxRecord("GNU.sparse.name", "sparse") +
		paxRecord("GNU.sparse.realsize", "10000") + paxRecord("GNU.sparse.numblocks", "1") + paxRecord("GNU.sparse.map", "0,4")
	return cat(rawHeader("PaxHeaders/sparse", tar.TypeXHeader, int64(len(recs))), padTo512([]byte(recs)),
		rawHeader("sparse", tar.TypeReg, 4), padTo512([]byte("data")), zeros(1024))
}

func TestMalformedInputs(t *testing.T) {
	good := smallTar(t, "a", textBytes(rand.New(rand.NewSource(5)), 5000), "b", []byte("x"))
	badChecksum := append([]byte(nil), good...)
	badChecksum[148] ^= 0x55 // header checksum field of "a"
	cases := map[string][]byte{
		"truncated-payload":       good[:512+100],
		"truncated-header":        good[:300],
		"bad-checksum":            badChecksum,
		"garbage":                 randBytes(rand.New(rand.NewSource(6)), 4096),
		"zero-block-then-garbage": cat(zeros(512), []byte("not a tar header"), zeros(496)),
		// The reference never returns on this one (its holes finder spins on
		// the sticky read error); Encode must fail.
		"truncated-inside-hole": smallTar(t, "z", zeros(50000))[:512+20000],
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Encode(context.Background(), io.Discard, bytes.NewReader(in), EncodeOptions{Level: 3})
			if err == nil {
				t.Fatal("no error")
			}
			var ue *UnsupportedInputError
			if errors.As(err, &ue) {
				t.Fatalf("malformed input reported as unsupported: %v", err)
			}
		})
	}
}

func TestContextCancel(t *testing.T) {
	in := buildTar(t, richEntries(9, false), tar.FormatUnknown)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Encode(ctx, io.Discard, bytes.NewReader(in), EncodeOptions{Level: 3})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	// Cancel mid-stream: the reader cancels after 1 MiB.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	cr := &cancelAfter{r: bytes.NewReader(in), n: 1 << 20, cancel: cancel}
	_, err = Encode(ctx, io.Discard, cr, EncodeOptions{Level: 3})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("mid-stream: error %v, want context.Canceled", err)
	}
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestFrameIndependence backs the parallel plan: a frame's compressed bytes do
// not depend on what the encoder compressed before.
func TestFrameIndependence(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	frames := [][]byte{textBytes(r, 300000), randBytes(r, 100), nil, textBytes(r, 131072), cat(textBytes(r, 5000), zeros(3000)), randBytes(r, 200000), zeros(1024)}
	for _, level := range []int{1, 3, 10} {
		var shared bytes.Buffer
		fw := newTestEncoder(t, &shared, level)
		var offsets []int
		for _, f := range frames {
			offsets = append(offsets, shared.Len())
			fw.Write(f)
			if err := fw.Close(); err != nil {
				t.Fatal(err)
			}
			fw.Reset(&shared)
		}
		offsets = append(offsets, shared.Len())
		for i, f := range frames {
			var alone bytes.Buffer
			e := newTestEncoder(t, &alone, level)
			e.Write(f)
			e.Close()
			if !bytes.Equal(alone.Bytes(), shared.Bytes()[offsets[i]:offsets[i+1]]) {
				t.Fatalf("level %d frame %d: fresh encoder gives different bytes", level, i)
			}
		}
	}
}

func TestLevelZeroMeansThree(t *testing.T) {
	in := smallTar(t, "a", textBytes(rand.New(rand.NewSource(12)), 200000))
	zero, _ := ourEncode(t, in, 0)
	three, _ := ourEncode(t, in, 3)
	one, _ := ourEncode(t, in, 1)
	if !bytes.Equal(zero, three) {
		t.Fatal("level 0 differs from level 3")
	}
	if bytes.Equal(one, three) {
		t.Fatal("levels 1 and 3 give the same bytes: the level is not applied")
	}
}

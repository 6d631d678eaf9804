package zstdchunked

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	tsasm "github.com/vbatts/tar-split/tar/asm"
	tsstorage "github.com/vbatts/tar-split/tar/storage"
	"go.podman.io/storage/pkg/chunked/compressor"
)

// refEncode runs c/storage's compressor.ZstdCompressor, handing it the whole
// tar in one Write.
func refEncode(t testing.TB, in []byte, level int) ([]byte, map[string]string, error) {
	t.Helper()
	var buf bytes.Buffer
	md := map[string]string{}
	w, err := compressor.ZstdCompressor(&buf, md, &level)
	if err != nil {
		return nil, nil, err
	}
	if _, err := w.Write(in); err != nil {
		w.Close()
		return nil, nil, err
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), md, nil
}

func ourEncode(t testing.TB, in []byte, level int) ([]byte, *EncodeResult) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Encode(context.Background(), &buf, bytes.NewReader(in), EncodeOptions{Level: level})
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes(), res
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// decodeAll decompresses a whole blob with a plain klauspost decoder, which
// skips the skippable frames.
func decodeAll(t testing.TB, blob []byte) []byte {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("decoding blob: %v", err)
	}
	return out
}

// rebuildIndependently rebuilds the tar from the tar-split and the TOC with
// tar-split's asm and a FileGetter written here (not RebuildTar), which
// decodes blob[Offset:EndOffset] of each reg entry.
func rebuildIndependently(t testing.TB, blob []byte, toc *TOC, tarSplit []byte) []byte {
	t.Helper()
	byName := map[string]FileMetadata{}
	for _, e := range toc.Entries {
		if e.Type != TypeChunk {
			byName[e.Name] = e
		}
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	getter := getterFunc(func(name string) (io.ReadCloser, error) {
		e, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("%q not in TOC", name)
		}
		if e.Type != TypeReg || e.Size == 0 {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		data, err := dec.DecodeAll(blob[e.Offset:e.EndOffset], nil)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		if int64(len(data)) != e.Size || sha(data) != e.Digest {
			return nil, fmt.Errorf("%q: content does not match TOC (len %d/%d)", name, len(data), e.Size)
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	var out bytes.Buffer
	if err := tsasm.WriteOutputTarStream(getter, tsstorage.NewJSONUnpacker(bytes.NewReader(tarSplit)), &out); err != nil {
		t.Fatalf("rebuilding from tar-split: %v", err)
	}
	return out.Bytes()
}

type getterFunc func(string) (io.ReadCloser, error)

func (f getterFunc) Get(name string) (io.ReadCloser, error) { return f(name) }

// readBack reads TOC and tar-split of a containers-dialect blob with this
// package's readers.
func readBack(t testing.TB, blob []byte, ann map[string]string) (*TOC, []byte) {
	t.Helper()
	ra := bytes.NewReader(blob)
	toc, _, err := ReadTOC(ra, int64(len(blob)), ann, Limits{})
	if err != nil {
		t.Fatalf("ReadTOC: %v", err)
	}
	ts, err := ReadTarSplit(ra, int64(len(blob)), ann, toc, Limits{})
	if err != nil {
		t.Fatalf("ReadTarSplit: %v", err)
	}
	return toc, ts
}

// checkPreserved asserts both views of a blob equal the input tar.
func checkPreserved(t testing.TB, in, blob []byte, res *EncodeResult) {
	t.Helper()
	full := decodeAll(t, blob)
	if sha(full) != sha(in) || len(full) != len(in) {
		t.Fatalf("full-pull view: %d bytes %s, input %d bytes %s", len(full), sha(full), len(in), sha(in))
	}
	if res != nil {
		if res.DiffID.String() != sha(in) || res.UncompressedSize != int64(len(in)) {
			t.Fatalf("DiffID %s / size %d, want %s / %d", res.DiffID, res.UncompressedSize, sha(in), len(in))
		}
		if res.CompressedSize != int64(len(blob)) || res.Digest.String() != sha(blob) {
			t.Fatalf("CompressedSize %d Digest %s, want %d %s", res.CompressedSize, res.Digest, len(blob), sha(blob))
		}
	}
	ann := map[string]string(nil)
	if res != nil {
		ann = res.Annotations
	}
	toc, ts := readBack(t, blob, ann)
	partial := rebuildIndependently(t, blob, toc, ts)
	if sha(partial) != sha(in) {
		t.Fatalf("partial-pull view (asm): %d bytes %s, input %d bytes %s", len(partial), sha(partial), len(in), sha(in))
	}
	var rb bytes.Buffer
	if err := RebuildTar(&rb, bytes.NewReader(blob), int64(len(blob)), toc, ts); err != nil {
		t.Fatalf("RebuildTar: %v", err)
	}
	if sha(rb.Bytes()) != sha(in) {
		t.Fatalf("RebuildTar: %d bytes, input %d", rb.Len(), len(in))
	}
}

// ---- tar generation ----

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

// textBytes is compressible, zero-free text.
func textBytes(r *rand.Rand, n int) []byte {
	words := []string{"layer", "chunk", "zstd", "frame", "offset", "digest", "tar", "split", "\n", "container", "image"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[r.Intn(len(words))])
		b.WriteByte(' ')
	}
	return []byte(b.String()[:n])
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func zeros(n int) []byte { return make([]byte, n) }

// splitPrefix returns random bytes whose last byte is a rolling-checksum cut
// point (found with compressor.RollSum, the reference).
func splitPrefix(r *rand.Rand) []byte {
	for {
		b := randBytes(r, 1<<20)
		rs := compressor.NewRollSum()
		for i, c := range b {
			rs.Roll(c)
			if rs.OnSplitWithBits(compressor.RollsumBits) && i > 100 {
				return b[:i+1]
			}
		}
	}
}

var epoch = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// richEntries is a varied set of entries. pax adds what only PAX can carry.
func richEntries(seed int64, pax bool) []tarEntry {
	r := rand.New(rand.NewSource(seed))
	var es []tarEntry
	add := func(h *tar.Header, data []byte) {
		if h.ModTime.IsZero() {
			h.ModTime = epoch
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		es = append(es, tarEntry{h, data})
	}
	dir := func(name string) { add(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}, nil) }
	file := func(name string, data []byte) { add(&tar.Header{Typeflag: tar.TypeReg, Name: name}, data) }

	dir("usr/")
	dir("usr/lib/")
	file("usr/empty", nil)
	for _, n := range []int{1, 5, 511, 512, 513, 4096, 65543} {
		file(fmt.Sprintf("usr/rand-%d", n), randBytes(r, n))
	}
	file("usr/big-random", randBytes(r, 3<<20+17))
	file("usr/text", textBytes(r, 700<<10))
	file("usr/holes", cat(randBytes(r, 10000), zeros(5000), randBytes(r, 20000), zeros(1023), randBytes(r, 3000),
		zeros(1024), randBytes(r, 70000), zeros(200000), textBytes(r, 9000)))
	file("usr/all-zeros", zeros(8192))
	file("usr/short-zeros", zeros(1023))
	file("usr/hole-first", cat(zeros(2048), randBytes(r, 4000)))
	file("usr/hole-last", cat(randBytes(r, 4000), zeros(3000)))
	sp := splitPrefix(r)
	file("usr/split-at-end", sp)
	file("usr/split-then-hole", cat(sp, zeros(4096), randBytes(r, 1000)))
	file("usr/split-then-shortzeros", cat(sp, zeros(100), randBytes(r, 1000)))
	file("usr/sparse-ish", cat(zeros(1<<20), randBytes(r, 10), zeros(1<<20+5)))
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "usr/link", Linkname: "rand-5", Mode: 0o777}, nil)
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "usr/hard", Linkname: "usr/rand-1"}, nil)
	add(&tar.Header{Typeflag: tar.TypeChar, Name: "dev-null", Devmajor: 1, Devminor: 3, Mode: 0o666}, nil)
	add(&tar.Header{Typeflag: tar.TypeBlock, Name: "dev-sda", Devmajor: 8, Devminor: 0, Mode: 0o660}, nil)
	add(&tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600}, nil)
	long := "usr/lib/" + strings.Repeat("very-long-directory-name/", 8) + "file-with-a-long-name.txt"
	file(long, textBytes(r, 3000))
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "usr/longlink", Linkname: "../" + strings.Repeat("x", 150)}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/owned", Uid: 1000, Gid: 1000, Uname: "user", Gname: "group", Mode: 0o4755}, textBytes(r, 10))
	if pax {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/xattrs", Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.xattr.user.comment":        "hello",
			"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\xff\x00\x00\x00",
			"SCHILY.xattr.trusted.é":           "",
		}}, randBytes(r, 100))
		add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/nanotime", Format: tar.FormatPAX,
			ModTime:    time.Date(2023, 1, 2, 3, 4, 5, 123456789, time.UTC),
			AccessTime: time.Date(2023, 1, 2, 3, 4, 6, 5, time.UTC),
			ChangeTime: time.Date(2023, 1, 2, 3, 4, 7, 0, time.UTC)}, randBytes(r, 50))
		add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/ünïcödé-名前", Format: tar.FormatPAX}, textBytes(r, 77))
		add(&tar.Header{Typeflag: tar.TypeDir, Name: "usr/paxdir/", Format: tar.FormatPAX, Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.user.dir": "d", "comment": "a PAX comment"}}, nil)
		add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/bigid", Uid: 1 << 22, Gid: 1 << 23, Format: tar.FormatPAX}, nil)
	}
	file("zz-last", randBytes(r, 3))
	return es
}

func buildTar(t testing.TB, es []tarEntry, format tar.Format) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := *e.hdr
		if format != tar.FormatUnknown && h.Format == tar.FormatUnknown {
			h.Format = format
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("WriteHeader %q: %v", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatalf("Write %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// smallTar is a tar of the given files (name, data), without anything else.
func smallTar(t testing.TB, files ...any) []byte {
	t.Helper()
	var es []tarEntry
	for i := 0; i < len(files); i += 2 {
		data := files[i+1].([]byte)
		es = append(es, tarEntry{&tar.Header{Typeflag: tar.TypeReg, Name: files[i].(string), Mode: 0o644, ModTime: epoch, Size: int64(len(data))}, data})
	}
	return buildTar(t, es, tar.FormatUnknown)
}

func mustDigest(s string) digest.Digest { return digest.Digest(s) }

func newTestEncoder(t testing.TB, w io.Writer, level int) *zstd.Encoder {
	t.Helper()
	e, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// rawHeader builds a USTAR header block by hand (for inputs Go's writer
// refuses to produce).
func rawHeader(name string, typeflag byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", epoch.Unix()))
	b[156] = typeflag
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func padTo512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		return cat(b, zeros(512-r))
	}
	return b
}

func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

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
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/klauspost/compress/zstd"
)

// Tunings of the parallel writer the tests run: the default, and rings so
// small that the wrap-around, the direct frames (longer than maxFrame) and
// the full-window waits happen with inputs of a few MB.
var testTunings = []struct {
	name string
	tune *parTuning
}{
	{"default", nil},
	{"small", &parTuning{ring: 1 << 20, maxFrame: 128 << 10, batchTarget: 32 << 10, batchItems: 16, batches: 4}},
	{"tiny", &parTuning{ring: 64 << 10, maxFrame: 8 << 10, batchTarget: 4 << 10, batchItems: 3, batches: 2}},
}

type encodeOutcome struct {
	blob []byte
	res  *EncodeResult
	err  error
}

func encodeOpts(in []byte, opts EncodeOptions) encodeOutcome {
	var buf bytes.Buffer
	res, err := Encode(context.Background(), &buf, bytes.NewReader(in), opts)
	return encodeOutcome{buf.Bytes(), res, err}
}

// sameOutcome fails unless got (a parallel run) equals want (the sequential
// writer): blob bytes, every result field, or the same error.
func sameOutcome(t *testing.T, what string, got, want encodeOutcome) {
	t.Helper()
	if (got.err == nil) != (want.err == nil) || (got.err != nil && got.err.Error() != want.err.Error()) {
		t.Fatalf("%s: error %v, sequential %v", what, got.err, want.err)
	}
	if got.err != nil {
		var gu, wu *UnsupportedInputError
		if errors.As(got.err, &gu) != errors.As(want.err, &wu) {
			t.Fatalf("%s: error types differ: %T / %T", what, got.err, want.err)
		}
		return
	}
	if !bytes.Equal(got.blob, want.blob) {
		t.Fatalf("%s: blob differs from the sequential writer's: %d vs %d bytes, first difference at %d",
			what, len(got.blob), len(want.blob), firstDiff(got.blob, want.blob))
	}
	if !reflect.DeepEqual(got.res, want.res) {
		t.Fatalf("%s: result %+v, sequential %+v", what, got.res, want.res)
	}
}

type parCase struct {
	name string
	tar  []byte
}

func parallelCases(t *testing.T) []parCase {
	var cases []parCase
	for _, c := range identityCases(t) {
		cases = append(cases, parCase{"identity/" + c.name, c.tar})
	}
	for _, c := range endingCases(t) {
		cases = append(cases, parCase{"ending/" + c.name, c.in})
	}
	for _, l := range testimages.Layers() {
		cases = append(cases, parCase{"testimages/" + l.Name, l.Tar})
	}
	for seed := int64(1); seed <= 12; seed++ {
		cases = append(cases, parCase{fmt.Sprintf("random/%d", seed), randomTar(t, seed)})
	}
	good := smallTar(t, "a", textBytes(rand.New(rand.NewSource(5)), 5000), "b", []byte("x"))
	cases = append(cases,
		parCase{"malformed/truncated-payload", good[:512+100]},
		parCase{"malformed/garbage", randBytes(rand.New(rand.NewSource(6)), 4096)},
		parCase{"malformed/truncated-inside-hole", smallTar(t, "z", zeros(50000))[:512+20000]},
	)
	return cases
}

// TestParallelismSameBytes: every parallelism and tuning writes the
// sequential writer's bytes, for every GOMAXPROCS; levels 1 and 10 (other
// block size, other encoder) with fewer combinations.
func TestParallelismSameBytes(t *testing.T) {
	cases := parallelCases(t)
	type run struct {
		procs, level int
		pars         []int
		tunings      int // how many of testTunings
	}
	runs := []run{{1, 3, []int{0, 2, 3, 8}, 3}, {2, 3, []int{0, 2, 3, 8}, 3}}
	if !testing.Short() {
		runs = append(runs, run{8, 3, []int{0, 2, 3, 8}, 3}, run{2, 1, []int{2, 8}, 3}, run{2, 10, []int{2, 8}, 1}, run{2, 10, []int{3}, 3})
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, ru := range runs {
		runtime.GOMAXPROCS(ru.procs)
		for _, c := range cases {
			want := encodeOpts(c.tar, EncodeOptions{Level: ru.level, Parallelism: 1})
			for _, par := range ru.pars {
				for _, tu := range testTunings[:ru.tunings] {
					got := encodeOpts(c.tar, EncodeOptions{Level: ru.level, Parallelism: par, tuning: tu.tune})
					sameOutcome(t, fmt.Sprintf("GOMAXPROCS=%d level %d %s parallelism %d tuning %s", ru.procs, ru.level, c.name, par, tu.name), got, want)
				}
			}
		}
	}
}

// TestParallelRandomTarsPreserved checks the parallel writer's blobs of random
// tars with the readers (both views rebuild the input), not only against the
// sequential writer.
func TestParallelRandomTarsPreserved(t *testing.T) {
	for seed := int64(20); seed < 26; seed++ {
		in := randomTar(t, seed)
		for _, tu := range testTunings {
			o := encodeOpts(in, EncodeOptions{Parallelism: 3, tuning: tu.tune})
			if o.err != nil {
				t.Fatalf("seed %d %s: %v", seed, tu.name, o.err)
			}
			checkPreserved(t, in, o.blob, o.res)
		}
	}
}

// TestParallelMatchesReference compares the parallel writer with
// compressor.ZstdCompressor directly on the random tars (the reference
// handles them all: they end properly).
func TestParallelMatchesReference(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		in := randomTar(t, seed)
		want, wantAnn, err := refEncode(t, in, 3)
		if err != nil {
			t.Fatalf("seed %d: reference: %v", seed, err)
		}
		for _, tu := range testTunings {
			o := encodeOpts(in, EncodeOptions{Level: 3, Parallelism: 2, tuning: tu.tune})
			if o.err != nil {
				t.Fatal(o.err)
			}
			if !bytes.Equal(o.blob, want) || !reflect.DeepEqual(o.res.Annotations, wantAnn) {
				t.Fatalf("seed %d %s: differs from the reference (first difference at %d)", seed, tu.name, firstDiff(o.blob, want))
			}
		}
	}
}

// randomTar is a tar of random entries that reach the writer's special
// cases: files cut by the rolling checksum on their last byte, holes at the
// start, middle and end, long files without any cut (0xff), runs of entries
// without payload (long header frames), empty files, and every ending the
// reference accepts.
func randomTar(t testing.TB, seed int64) []byte {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	var es []tarEntry
	n := 0
	name := func() string { n++; return fmt.Sprintf("d%d/f%04d", r.Intn(5), n) }
	content := func() []byte {
		switch r.Intn(12) {
		case 0:
			return nil
		case 1:
			return randBytes(r, 1+r.Intn(600))
		case 2:
			return textBytes(r, 1+r.Intn(300000))
		case 3:
			return randBytes(r, 1+r.Intn(400000))
		case 4:
			return cat(randBytes(r, r.Intn(3000)), zeros(1024+r.Intn(100000)), textBytes(r, r.Intn(5000)))
		case 5:
			return zeros(r.Intn(3000))
		case 6:
			return splitPrefix(r)
		case 7:
			return cat(splitPrefix(r), zeros(1024+r.Intn(3000)))
		case 8:
			return bytes.Repeat([]byte{0xff}, 1+r.Intn(300000))
		case 9:
			var b []byte
			for range 1 + r.Intn(20) {
				b = append(b, randBytes(r, r.Intn(2000))...)
				b = append(b, zeros(r.Intn(1500))...)
			}
			return b
		case 10:
			return cat(zeros(1024+r.Intn(5000)), randBytes(r, 1+r.Intn(70000)))
		default:
			return textBytes(r, 1+r.Intn(20000))
		}
	}
	count := 5 + r.Intn(40)
	for i := 0; i < count; i++ {
		switch k := r.Intn(10); {
		case k < 6:
			data := content()
			es = append(es, tarEntry{&tar.Header{Typeflag: tar.TypeReg, Name: name(), Mode: 0o644, ModTime: epoch, Size: int64(len(data))}, data})
		case k < 8:
			// A run of entries without payload: one long header frame.
			for range 1 + r.Intn(60) {
				es = append(es, tarEntry{&tar.Header{Typeflag: tar.TypeDir, Name: name() + "/", Mode: 0o755, ModTime: epoch}, nil})
			}
		case k < 9:
			es = append(es, tarEntry{&tar.Header{Typeflag: tar.TypeSymlink, Name: name(), Linkname: strings.Repeat("t", 1+r.Intn(200)), ModTime: epoch}, nil})
		default:
			es = append(es, tarEntry{&tar.Header{Typeflag: tar.TypeReg, Name: name(), Mode: 0o600, ModTime: epoch,
				PAXRecords: map[string]string{"SCHILY.xattr.user.x": "v"}, Format: tar.FormatPAX}, nil})
		}
	}
	if r.Intn(3) == 0 {
		for range 1 + r.Intn(100) {
			es = append(es, tarEntry{&tar.Header{Typeflag: tar.TypeDir, Name: name() + "/", Mode: 0o755, ModTime: epoch}, nil})
		}
	}
	formats := []tar.Format{tar.FormatUnknown, tar.FormatPAX, tar.FormatGNU}
	out := buildTar(t, es, formats[r.Intn(len(formats))])
	switch r.Intn(4) {
	case 1:
		out = cat(out, zeros(10240-len(out)%10240))
	case 2:
		out = cat(out, randBytes(r, r.Intn(3<<20)))
	}
	return out
}

// TestParallelStopsReading: after Encode returns, the input is not read any
// more (the read-ahead goroutine is stopped), also on an early error.
func TestParallelStopsReading(t *testing.T) {
	bad := buildTar(t, []tarEntry{
		{&tar.Header{Typeflag: tar.TypeReg, Name: "a", Mode: 0o644, ModTime: epoch, Size: 3}, []byte("abc")},
		{&tar.Header{Typeflag: tar.TypeReg, Name: "./a", Mode: 0o644, ModTime: epoch, Size: 3}, []byte("abc")},
	}, tar.FormatUnknown)
	in := cat(bad[:len(bad)-1024], randBytes(rand.New(rand.NewSource(1)), 20<<20))
	r := &watchedReader{r: bytes.NewReader(in)}
	_, err := Encode(context.Background(), io.Discard, r, EncodeOptions{Parallelism: 2})
	var ue *UnsupportedInputError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v", err)
	}
	r.returned.Store(true)
	time.Sleep(50 * time.Millisecond)
	if r.late.Load() {
		t.Fatal("the input was read after Encode returned")
	}
}

type watchedReader struct {
	r        io.Reader
	returned atomic.Bool
	late     atomic.Bool
}

func (w *watchedReader) Read(p []byte) (int, error) {
	if w.returned.Load() {
		w.late.Store(true)
	}
	return w.r.Read(p)
}

// failingWriter fails after n bytes.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

// TestParallelWriteError: a failing destination ends Encode with its error,
// whatever the frame it hits.
func TestParallelWriteError(t *testing.T) {
	in := randomTar(t, 3)
	for _, tu := range testTunings {
		for _, n := range []int{0, 1000, 1 << 20, 3 << 20} {
			_, err := Encode(context.Background(), &failingWriter{n: n}, bytes.NewReader(in), EncodeOptions{Parallelism: 2, tuning: tu.tune})
			if err == nil || !strings.Contains(err.Error(), "disk full") {
				// A blob shorter than n succeeds; that is fine.
				o := encodeOpts(in, EncodeOptions{Parallelism: 1})
				if err == nil && len(o.blob) <= n {
					continue
				}
				t.Fatalf("%s, fail after %d bytes: error %v", tu.name, n, err)
			}
		}
	}
}

// TestOutputsAgreeOnRandomSinkCalls drives the sequential and the parallel
// frameOutput with the same random calls, in orders the chunker never makes
// too (zeros and data mixed in one frame, several holes in a row, empty
// frames), and compares blob, TOC, diff_id and size.
func TestOutputsAgreeOnRandomSinkCalls(t *testing.T) {
	tunings := append(testTunings[1:], struct {
		name string
		tune *parTuning
	}{"ring-bound", &parTuning{ring: 64 << 10, maxFrame: 8 << 10, batchTarget: 2 << 10, batchItems: 4, batches: 64}})
	for seed := int64(1); seed <= 40; seed++ {
		want := driveOutput(t, seed, nil)
		for _, tu := range tunings {
			got := driveOutput(t, seed, tu.tune)
			if !bytes.Equal(got.blob, want.blob) {
				t.Fatalf("seed %d %s: blobs differ at %d", seed, tu.name, firstDiff(got.blob, want.blob))
			}
			if !bytes.Equal(got.toc, want.toc) || got.diff != want.diff || got.usize != want.usize {
				t.Fatalf("seed %d %s: entries, diff_id or size differ", seed, tu.name)
			}
		}
	}
}

type drivenOutput struct {
	blob  []byte
	toc   []byte // compressed TOC
	diff  string
	usize int64
}

// driveOutput replays the random calls of seed on the sequential output
// (tune nil) or a parallel one.
func driveOutput(t *testing.T, seed int64, tune *parTuning) drivenOutput {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	var buf bytes.Buffer
	out := &countWriter{w: &buf, h: nil}
	newEncoder := func(w io.Writer) (*zstd.Encoder, error) { return zstd.NewWriter(w, encoderOptions(3)...) }
	toc, err := newTOCWriter(newEncoder)
	if err != nil {
		t.Fatal(err)
	}
	defer toc.release()
	var o frameOutput
	if tune == nil {
		o, err = newSeqOutput(out, newEncoder, toc)
	} else {
		o, err = newParOutput(out, newEncoder, 3, 1+r.Intn(4), toc, tune)
		r = rand.New(rand.NewSource(seed)) // same calls as the sequential run
	}
	if err != nil {
		t.Fatal(err)
	}
	defer o.abort()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	small := seed%3 == 0 // frames that all fit the ring: its waits, not direct frames
	size := func() int {
		if small {
			return r.Intn(3000)
		}
		switch r.Intn(4) {
		case 0:
			return r.Intn(10)
		case 1:
			return r.Intn(5000)
		case 2:
			return r.Intn(40000)
		}
		return r.Intn(300000)
	}
	files := 1 + r.Intn(30)
	if small {
		files = 200
	}
	for f := range files {
		check(o.header(textBytes(r, size())))
		sink := o.beginFile()
		emitted := false
		for range r.Intn(12) {
			switch r.Intn(5) {
			case 0, 1:
				if n := size(); n > 0 {
					check(sink.data(randBytes(r, n)))
					emitted = true
				}
			case 2:
				check(sink.data(textBytes(r, 1+size())))
				emitted = true
			case 3:
				check(sink.zeros(int64(1 + size())))
				emitted = true
			case 4:
				if emitted {
					check(sink.cut(r.Intn(2) == 0))
				}
			}
		}
		if emitted {
			check(sink.cut(false))
		}
		check(o.endFile(FileMetadata{Type: TypeReg, Name: fmt.Sprintf("f%d", f)}))
	}
	check(o.header(zeros(1024)))
	trailer := randBytes(r, r.Intn(3)*size())
	check(o.closeLast(&trailerCounter{r: bytes.NewReader(trailer), o: o}))
	diff, usize, err := o.end()
	check(err)
	tocBlob, _, err := toc.finish("sha256:0")
	check(err)
	return drivenOutput{buf.Bytes(), tocBlob, diff.String(), usize}
}

type trailerCounter struct {
	r io.Reader
	o frameOutput
}

func (c *trailerCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.o.countTrailer(p[:n])
	return n, err
}

// TestSingleBlockEncodeAll backs the workers' shortcut: for 0 < n <
// singleBlockMax(level) bytes, EncodeAll writes the frame Write + Close
// writes, and from singleBlockMax on it does not (so the bound is the right
// one), at every level.
func TestSingleBlockEncodeAll(t *testing.T) {
	r := rand.New(rand.NewSource(30))
	for _, level := range []int{1, 2, 3, 5, 6, 9, 10, 22} {
		singleBlockMax := singleBlockMax(level)
		stream := newTestEncoder(t, nil, level)
		all, err := zstd.NewWriter(nil, append(encoderOptions(level), zstd.WithEncoderConcurrency(1))...)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 15, 16, 17, 1000, 1024, 1025, 70000, singleBlockMax - 1, singleBlockMax, singleBlockMax + 1} {
			for _, data := range [][]byte{randBytes(r, n), textBytes(r, n), zeros(n)} {
				var buf bytes.Buffer
				stream.Reset(&buf)
				stream.Write(data)
				if err := stream.Close(); err != nil {
					t.Fatal(err)
				}
				got := all.EncodeAll(data, nil)
				if same := bytes.Equal(got, buf.Bytes()); same != (n < singleBlockMax) {
					t.Fatalf("level %d, %d bytes: EncodeAll equal to Write+Close: %v", level, n, same)
				}
			}
		}
	}
}

// TestTOCWriterMatchesMarshal: the streamed TOC JSON is jsoniter's Marshal of
// the whole TOC, for entries with every field and awkward strings, and for
// no entries at all.
func TestTOCWriterMatchesMarshal(t *testing.T) {
	tm := time.Date(2023, 1, 2, 3, 4, 5, 123456789, time.UTC)
	var entries []FileMetadata
	for i, name := range []string{"a", "<b>&\"c\"\\", "ünï/名前", "x\u2028y\x01", ""} {
		entries = append(entries, FileMetadata{Type: TypeReg, Name: name, Linkname: name + "l", Mode: int64(i), Size: int64(i * 1000),
			UID: i, GID: 2 * i, ModTime: &tm, AccessTime: &tm, Devmajor: 1, Devminor: 2,
			Xattrs: map[string]string{"user.b": "AQI=", "user.a": name}, Digest: "sha256:00", Offset: 5, EndOffset: 9,
			ChunkSize: 3, ChunkOffset: 4, ChunkDigest: "sha256:11", ChunkType: ChunkTypeZeros})
		entries = append(entries, FileMetadata{Type: TypeChunk, Name: name})
	}
	newEncoder := func(w io.Writer) (*zstd.Encoder, error) { return zstd.NewWriter(w, encoderOptions(3)...) }
	var many []FileMetadata // a JSON of several zstd blocks
	for range 200 {
		many = append(many, entries...)
	}
	for _, es := range [][]FileMetadata{nil, entries[:1], entries, many} {
		tw, err := newTOCWriter(newEncoder)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if err := tw.add(e, nil); err != nil {
				t.Fatal(err)
			}
		}
		got, n, err := tw.finish("sha256:abc")
		if err != nil {
			t.Fatal(err)
		}
		want, err := tocJSON.Marshal(TOC{Version: 1, Entries: es, TarSplitDigest: "sha256:abc"})
		if err != nil {
			t.Fatal(err)
		}
		plain := decodeAll(t, got)
		if !bytes.Equal(plain, want) || n != int64(len(want)) {
			t.Fatalf("%d entries: streamed TOC\n%s\nMarshal\n%s", len(es), plain, want)
		}
		enc := newTestEncoder(t, nil, 3)
		var one bytes.Buffer
		enc.Reset(&one)
		enc.Write(want)
		enc.Close()
		if !bytes.Equal(got, one.Bytes()) {
			t.Fatalf("%d entries: the streamed frame differs from one Write + Close", len(es))
		}
	}
}

// TestLowerEncoderMemSameBytes backs encoderOptions: a smaller history buffer
// does not change what klauspost's encoder writes, streaming (Write + Close,
// with its own goroutines or without) or EncodeAll, even for a frame far
// longer than the window whose matches reach back across the points where
// the history is moved down.
func TestLowerEncoderMemSameBytes(t *testing.T) {
	rnd := rand.New(rand.NewSource(7))
	block := make([]byte, 3<<20)
	for i := range block {
		block[i] = byte('a' + rnd.Intn(20)) // compressible, with matches 3 MiB back
	}
	var in []byte
	for range 5 { // 15 MiB: moved down with the smaller history (one 8 MiB window and a block), not without (16 MiB)
		in = append(in, block...)
		in = append(in, byte(rnd.Intn(256)))
	}
	for _, level := range []int{1, 3, 10} {
		ref := zstd.EncoderLevelFromZstd(level)
		var want []byte
		for _, opts := range [][]zstd.EOption{
			{zstd.WithEncoderLevel(ref)},
			encoderOptions(level),
			append(encoderOptions(level), zstd.WithEncoderConcurrency(1)),
		} {
			var b bytes.Buffer
			e, err := zstd.NewWriter(&b, opts...)
			if err != nil {
				t.Fatal(err)
			}
			for p := in; len(p) > 0; {
				n := min(len(p), 1<<20+17)
				e.Write(p[:n])
				p = p[n:]
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			all := e.EncodeAll(in[:100<<10], nil)
			got := append(b.Bytes(), all...)
			if want == nil {
				want = bytes.Clone(got)
			} else if !bytes.Equal(got, want) {
				t.Errorf("level %d: %d bytes with a smaller history, %d without (first difference at %d)", level, len(got), len(want), firstDiff(got, want))
			}
		}
	}
}

package gunzip

import (
	"bytes"
	"slices"

	"compress/gzip"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"testing/iotest"

	kflate "github.com/klauspost/compress/flate"
	kgzip "github.com/klauspost/compress/gzip"
)

// reference decodes with compress/gzip (multi-member, like this package).
func reference(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// decoders are the ways this package can be read; round is shrunk so that
// small inputs cross rounds and buffers.
var decoders = []struct {
	name string
	open func(io.Reader, ...Option) (*Reader, error)
}{
	{"sync", NewReader},
	{"sync-small", func(r io.Reader, o ...Option) (*Reader, error) { return newReader(r, 1000, o) }},
	{"parallel", NewParallelReader},
	{"parallel-small", func(r io.Reader, o ...Option) (*Reader, error) { return newParallelReader(r, 700, o) }},
}

func decodeWith(open func(io.Reader, ...Option) (*Reader, error), r io.Reader, writeTo bool) ([]byte, error) {
	zr, err := open(r)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var out bytes.Buffer
	if writeTo {
		_, err = zr.WriteTo(&out)
	} else {
		_, err = io.Copy(&out, struct{ io.Reader }{zr})
	}
	return out.Bytes(), err
}

// checkSame decodes data every way and compares with compress/gzip: the same
// bytes when it succeeds, an error when it fails.
func checkSame(t *testing.T, name string, data []byte) {
	t.Helper()
	want, wantErr := reference(data)
	for _, d := range decoders {
		for _, wt := range []bool{false, true} {
			got, err := decodeWith(d.open, bytes.NewReader(data), wt)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%s, %s (WriteTo %v): error %v, compress/gzip: %v", name, d.name, wt, err, wantErr)
			}
			if err == nil && !bytes.Equal(got, want) {
				t.Fatalf("%s, %s (WriteTo %v): %d bytes differ from compress/gzip's %d", name, d.name, wt, len(got), len(want))
			}
			if err != nil && errors.Is(wantErr, io.ErrUnexpectedEOF) != errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s, %s: error %v, compress/gzip: %v", name, d.name, err, wantErr)
			}
		}
	}
	// Input arriving a byte at a time exercises every refill path.
	if len(data) < 1<<16 {
		got, err := decodeWith(NewReader, iotest.OneByteReader(bytes.NewReader(data)), false)
		if (err != nil) != (wantErr != nil) || (err == nil && !bytes.Equal(got, want)) {
			t.Fatalf("%s, one byte at a time: error %v (compress/gzip %v), equal %v", name, err, wantErr, bytes.Equal(got, want))
		}
	}
}

// samples are inputs of different character: text with long matches,
// random bytes (stored blocks), runs (distance 1), short periods, a mix.
func samples(t testing.TB) map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var text bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", "compress", "flate", "*.go"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(b)
	}
	if text.Len() == 0 {
		t.Fatal("no Go sources to use as text")
	}
	periods := make([]byte, 0, 200<<10)
	for p := 1; len(periods) < 200<<10; p = p%23 + 1 {
		for i := range 3000 {
			periods = append(periods, byte('a'+i%p))
		}
	}
	mix := make([]byte, 0, 400<<10)
	for len(mix) < 400<<10 {
		switch rng.IntN(3) {
		case 0:
			n := rng.IntN(5000)
			mix = append(mix, random[:n]...)
		case 1:
			o := rng.IntN(text.Len() - 2000)
			mix = append(mix, text.Bytes()[o:o+rng.IntN(2000)]...)
		default:
			mix = append(mix, bytes.Repeat([]byte{byte(rng.Uint32())}, rng.IntN(3000))...)
		}
	}
	return map[string][]byte{
		"empty":   nil,
		"byte":    {'x'},
		"text":    text.Bytes(),
		"random":  random,
		"zeros":   make([]byte, 1<<20),
		"periods": periods,
		"mix":     mix,
	}
}

// encoders compress with every strategy compress/flate and klauspost have.
func encoders() map[string]func([]byte) []byte {
	m := map[string]func([]byte) []byte{}
	for _, level := range []int{gzip.NoCompression, gzip.HuffmanOnly, gzip.BestSpeed, 2, 5, 6, gzip.BestCompression} {
		m[fmt.Sprintf("stdlib-%d", level)] = func(p []byte) []byte {
			var b bytes.Buffer
			w, _ := gzip.NewWriterLevel(&b, level)
			w.Write(p)
			w.Close()
			return b.Bytes()
		}
	}
	for _, level := range []int{kflate.NoCompression, kflate.HuffmanOnly, kflate.ConstantCompression, 1, 4, 6, 9} {
		m[fmt.Sprintf("klauspost-%d", level)] = func(p []byte) []byte {
			var b bytes.Buffer
			w, _ := kgzip.NewWriterLevel(&b, level)
			w.Write(p)
			w.Close()
			return b.Bytes()
		}
	}
	// Sync flushes put empty stored blocks between Huffman blocks.
	m["stdlib-flushes"] = func(p []byte) []byte {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, 6)
		for len(p) > 0 {
			n := min(len(p), 777)
			w.Write(p[:n])
			w.Flush()
			p = p[n:]
		}
		w.Close()
		return b.Bytes()
	}
	return m
}

func TestDecodeMatchesCompressGzip(t *testing.T) {
	for sname, s := range samples(t) {
		for ename, enc := range encoders() {
			checkSame(t, sname+"/"+ename, enc(s))
		}
	}
}

// TestGzipCommand decodes what the gzip program writes, at its fastest and
// best levels (it uses fixed Huffman blocks where they are shorter).
func TestGzipCommand(t *testing.T) {
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Skip("no gzip program")
	}
	for sname, s := range samples(t) {
		for _, level := range []string{"-1", "-6", "-9"} {
			cmd := exec.Command("gzip", "-c", "-n", level)
			cmd.Stdin = bytes.NewReader(s)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, sname+"/gzip"+level, out)
		}
	}
}

func TestMultipleMembers(t *testing.T) {
	s := samples(t)
	enc := encoders()
	var data, want []byte
	for _, part := range []struct{ sample, encoder string }{
		{"text", "stdlib-9"}, {"empty", "stdlib-6"}, {"random", "klauspost-1"}, {"zeros", "stdlib-0"}, {"mix", "klauspost-4"},
	} {
		data = append(data, enc[part.encoder](s[part.sample])...)
		want = append(want, s[part.sample]...)
	}
	checkSame(t, "members", data)
	got, err := decodeWith(NewParallelReader, bytes.NewReader(data), false)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("members: %v, equal %v", err, bytes.Equal(got, want))
	}
}

// TestOnMember: every member start is reported with its compressed and
// decoded offsets, in order, before Read returns any byte of that member,
// whichever way the stream is read.
func TestOnMember(t *testing.T) {
	s := samples(t)
	enc := encoders()
	var data []byte
	var want []Member
	var out int64
	// Empty members, tiny ones and ones larger than a round, so that several
	// members start in one round and one member spans many.
	for i, part := range []struct{ sample, encoder string }{
		{"text", "stdlib-9"}, {"empty", "stdlib-6"}, {"empty", "klauspost-1"}, {"random", "klauspost-1"},
		{"zeros", "stdlib-0"}, {"mix", "klauspost-4"}, {"empty", "stdlib-6"}, {"text", "klauspost-4"},
	} {
		b := s[part.sample]
		if i%2 == 1 && len(b) > 100 {
			b = b[:100]
		}
		want = append(want, Member{Offset: int64(len(data)), Out: out})
		data = append(data, enc[part.encoder](b)...)
		out += int64(len(b))
	}
	for _, d := range decoders {
		for _, readSize := range []int{1, 97, 64 << 10} {
			var got []Member
			var returned int64
			zr, err := d.open(bytes.NewReader(data), OnMember(func(m Member) {
				if returned > m.Out {
					t.Errorf("%s: member at %d told after %d bytes were returned", d.name, m.Out, returned)
				}
				got = append(got, m)
			}))
			if err != nil {
				t.Fatal(err)
			}
			p := make([]byte, readSize)
			for {
				n, err := zr.Read(p)
				returned += int64(n)
				if err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("%s: %v", d.name, err)
				}
			}
			zr.Close()
			if returned != out || !slices.Equal(got, want) {
				t.Errorf("%s, reads of %d: %d bytes, members %v; want %d, %v", d.name, readSize, returned, got, out, want)
			}
		}
	}
}

// TestHeaderFields covers the optional header fields and their limits.
func TestHeaderFields(t *testing.T) {
	body := encoders()["stdlib-6"]([]byte("hello, header"))
	deflated := body[10 : len(body)-8]
	trailer := body[len(body)-8:]
	build := func(flags byte, fields ...[]byte) []byte {
		h := []byte{0x1f, 0x8b, 8, flags, 1, 2, 3, 4, 0, 3}
		for _, f := range fields {
			h = append(h, f...)
		}
		return append(append(h, deflated...), trailer...)
	}
	name := append(bytes.Repeat([]byte("n\xe9"), 100), 0)
	long := append(bytes.Repeat([]byte("x"), 511), 0)
	tooLong := append(bytes.Repeat([]byte("x"), 512), 0)
	withCRC := func(flags byte, fields ...[]byte) []byte {
		h := []byte{0x1f, 0x8b, 8, flags | flagHdrCrc, 1, 2, 3, 4, 0, 3}
		for _, f := range fields {
			h = append(h, f...)
		}
		c := crc32.ChecksumIEEE(h)
		return append(append(append(h, byte(c), byte(c>>8)), deflated...), trailer...)
	}
	cases := map[string][]byte{
		"plain":        build(0),
		"text flag":    build(flagText),
		"extra":        build(flagExtra, []byte{3, 0, 'a', 'b', 'c'}),
		"extra big":    build(flagExtra, []byte{0x10, 0x01}, bytes.Repeat([]byte{7}, 0x110)),
		"name":         build(flagName, name),
		"name 511":     build(flagName, long),
		"name 512":     build(flagName, tooLong),
		"comment":      build(flagComment, []byte("c\x00")),
		"all":          build(flagExtra|flagName|flagComment, []byte{1, 0, 9}, name, []byte("c\x00")),
		"header crc":   withCRC(flagName, name),
		"bad crc":      append(build(flagHdrCrc), 0, 0),
		"reserved":     build(0xe0),
		"not deflate":  append([]byte{0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 3}, body[10:]...),
		"bad magic":    append([]byte{0x1f, 0x8c}, body[2:]...),
		"short header": body[:7],
		"empty":        {},
		"extra short":  {0x1f, 0x8b, 8, flagExtra, 0, 0, 0, 0, 0, 3, 9, 0, 1},
		"name unended": {0x1f, 0x8b, 8, flagName, 0, 0, 0, 0, 0, 3, 'a', 'b'},
	}
	for n, data := range cases {
		checkSame(t, n, data)
		_, wantErr := reference(data)
		_, err := decodeWith(NewReader, bytes.NewReader(data), false)
		if errors.Is(wantErr, gzip.ErrHeader) != errors.Is(err, gzip.ErrHeader) || errors.Is(wantErr, io.EOF) != errors.Is(err, io.EOF) {
			t.Errorf("%s: error %v, compress/gzip: %v", n, err, wantErr)
		}
	}
}

// TestTruncatedAndDamaged cuts and flips a stream everywhere and expects
// compress/gzip's verdict every time.
func TestTruncatedAndDamaged(t *testing.T) {
	s := samples(t)
	enc := encoders()
	for _, c := range []struct{ sample, encoder string }{{"text", "stdlib-6"}, {"mix", "klauspost-1"}, {"periods", "stdlib-9"}, {"random", "stdlib-6"}} {
		data := enc[c.encoder](s[c.sample][:min(len(s[c.sample]), 20000)])
		for cut := 0; cut < len(data); cut += 1 + cut/50 {
			checkSame(t, fmt.Sprintf("%s cut at %d", c.sample, cut), data[:cut])
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for range 300 {
			d := bytes.Clone(data)
			d[rng.IntN(len(d))] ^= byte(1 << rng.IntN(8))
			checkSame(t, c.sample+" flipped", d)
		}
		for i := len(data) - 8; i < len(data); i++ {
			// A damaged CRC-32 or length: compress/gzip fails, and so must this.
			d := bytes.Clone(data)
			d[i] ^= 0x10
			if _, err := decodeWith(NewReader, bytes.NewReader(d), false); !errors.Is(err, gzip.ErrChecksum) {
				t.Fatalf("%s: trailer byte %d damaged: error %v, want gzip.ErrChecksum", c.sample, i-(len(data)-8), err)
			}
		}
		checkSame(t, c.sample+" trailing garbage", append(bytes.Clone(data), 1, 2, 3))
		checkSame(t, c.sample+" trailing zero bytes", append(bytes.Clone(data), make([]byte, 10)...))
		checkSame(t, c.sample+" partial next header", append(bytes.Clone(data), 0x1f, 0x8b))
	}
}

// TestHandMadeBlocks covers block forms encoders rarely write.
func TestHandMadeBlocks(t *testing.T) {
	var bw bitWriter
	// Fixed block: literal 'a', match length 258 distance 1, end.
	bw.fixedBlock(true, func(b *bitWriter) {
		b.fixedLiteral('a')
		b.fixedLength(285, 0, 0)
		b.fixedDistance(0, 0, 0)
		b.fixedLiteral(256)
	})
	checkSame(t, "fixed run", wrap(bw.bytes(), bytes.Repeat([]byte{'a'}, 259)))

	// Distance reaching before the start of the stream.
	bw = bitWriter{}
	bw.fixedBlock(true, func(b *bitWriter) {
		b.fixedLiteral('a')
		b.fixedLength(257, 0, 0)
		b.fixedDistance(1, 0, 0) // distance 2
		b.fixedLiteral(256)
	})
	checkSame(t, "distance too far", wrap(bw.bytes(), []byte("aaaa")))

	// Length symbols 286/287 and distance symbols 30/31 (fixed code only).
	for _, sym := range []int{286, 287} {
		bw = bitWriter{}
		bw.fixedBlock(true, func(b *bitWriter) {
			b.fixedLiteral('a')
			b.fixedLength(sym, 0, 0)
			b.fixedDistance(0, 0, 0)
			b.fixedLiteral(256)
		})
		checkSame(t, fmt.Sprintf("length symbol %d", sym), wrap(bw.bytes(), []byte("a")))
	}
	for _, sym := range []int{30, 31} {
		bw = bitWriter{}
		bw.fixedBlock(true, func(b *bitWriter) {
			b.fixedLiteral('a')
			b.fixedLength(257, 0, 0)
			b.fixedDistance(sym, 0, 0)
			b.fixedLiteral(256)
		})
		checkSame(t, fmt.Sprintf("distance symbol %d", sym), wrap(bw.bytes(), []byte("a")))
	}
	// Reserved block type 3.
	bw = bitWriter{}
	bw.put(1|3<<1, 3)
	checkSame(t, "block type 3", wrap(bw.bytes(), nil))

	// Stored block whose length disagrees with its complement.
	checkSame(t, "stored complement", wrap([]byte{1, 3, 0, 0xfc, 0xfe, 'a', 'b', 'c'}, []byte("abc")))
	checkSame(t, "stored ok", wrap([]byte{1, 3, 0, 0xfc, 0xff, 'a', 'b', 'c'}, []byte("abc")))
	checkSame(t, "stored empty final", wrap([]byte{1, 0, 0, 0xff, 0xff}, nil))
}

// wrap makes a gzip member of a raw DEFLATE stream and its content.
func wrap(deflate []byte, content []byte) []byte {
	h := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}
	c := crc32.ChecksumIEEE(content)
	n := len(content)
	return append(append(h, deflate...), byte(c), byte(c>>8), byte(c>>16), byte(c>>24), byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
}

// bitWriter writes DEFLATE bits for hand-made blocks.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (b *bitWriter) put(v uint64, n uint) {
	b.acc |= v << b.nacc
	b.nacc += n
	for b.nacc >= 8 {
		b.out = append(b.out, byte(b.acc))
		b.acc >>= 8
		b.nacc -= 8
	}
}

// putCode writes a Huffman code, first bit first.
func (b *bitWriter) putCode(code int, n uint) {
	b.put(uint64(reverse(code, int(n))), n)
}

func (b *bitWriter) bytes() []byte {
	if b.nacc > 0 {
		return append(b.out, byte(b.acc))
	}
	return b.out
}

func (b *bitWriter) fixedBlock(final bool, body func(*bitWriter)) {
	f := uint64(0)
	if final {
		f = 1
	}
	b.put(f|1<<1, 3)
	body(b)
}

func (b *bitWriter) fixedLiteral(sym int) {
	switch {
	case sym < 144:
		b.putCode(0x30+sym, 8)
	case sym < 256:
		b.putCode(0x190+sym-144, 9)
	case sym < 280:
		b.putCode(sym-256, 7)
	default:
		b.putCode(0xc0+sym-280, 8)
	}
}

func (b *bitWriter) fixedLength(sym int, extra uint64, n uint) {
	b.fixedLiteral(sym)
	b.put(extra, n)
}

func (b *bitWriter) fixedDistance(sym int, extra uint64, n uint) {
	b.putCode(sym, 5)
	b.put(extra, n)
}

// canonical returns the canonical Huffman codes for lengths.
func canonical(lengths []uint8) []int {
	var count, next [17]int
	for _, n := range lengths {
		count[n]++
	}
	count[0] = 0
	code := 0
	for n := 1; n <= 16; n++ {
		code = (code + count[n-1]) << 1
		next[n] = code
	}
	codes := make([]int, len(lengths))
	for s, n := range lengths {
		if n > 0 {
			codes[s] = next[n]
			next[n]++
		}
	}
	return codes
}

// dynamicHeader starts a final dynamic block with the given code lengths
// (sent with a code-length code of sixteen 4-bit codes) and returns the
// canonical codes of the literal/length and distance codes.
func (b *bitWriter) dynamicHeader(litLens, distLens []uint8) (lc, dc []int) {
	b.put(1|2<<1, 3)
	b.put(uint64(len(litLens)-257), 5)
	b.put(uint64(len(distLens)-1), 5)
	b.put(19-4, 4)
	clen := make([]uint8, 19)
	for s := range 16 {
		clen[s] = 4
	}
	for _, s := range codeLengthOrder {
		b.put(uint64(clen[s]), 3)
	}
	cc := canonical(clen)
	for _, n := range append(append([]uint8{}, litLens...), distLens...) {
		b.putCode(cc[n], 4)
	}
	return canonical(litLens), canonical(distLens)
}

// dynamicBlock writes a final dynamic block with the given code lengths,
// then the symbols: values below 286 are literal/length symbols, 1000+d
// distance symbol d (no extra bits).
func dynamicBlock(litLens, distLens []uint8, syms ...int) []byte {
	var b bitWriter
	lc, dc := b.dynamicHeader(litLens, distLens)
	for _, s := range syms {
		if s >= 1000 {
			b.putCode(dc[s-1000], uint(distLens[s-1000]))
		} else {
			b.putCode(lc[s], uint(litLens[s]))
		}
	}
	return b.bytes()
}

// TestCodeShapes decodes dynamic blocks with codes at compress/flate's
// limits: complete, single-code, empty, incomplete, over-subscribed.
func TestCodeShapes(t *testing.T) {
	valid := func(name string, data []byte) {
		t.Helper()
		if _, err := reference(data); err != nil {
			t.Fatalf("%s: the test's stream is invalid: %v", name, err)
		}
		checkSame(t, name, data)
	}
	// Literal/length code: 'a', 'b', EOB and length 3 (symbol 257).
	lit := make([]uint8, 258)
	lit['a'], lit['b'], lit[256], lit[257] = 2, 2, 2, 2
	dist1 := []uint8{1} // a single distance code of length 1
	valid("single distance code", wrap(dynamicBlock(lit, dist1, 'a', 'b', 257, 1000, 256), []byte("abbbb")))
	distEmpty := []uint8{0}
	lit2 := make([]uint8, 257)
	lit2['a'], lit2[256] = 1, 1
	valid("no distance codes", wrap(dynamicBlock(lit2, distEmpty, 'a', 'a', 256), []byte("aa")))
	// The length code needs a distance, and there is none.
	checkSame(t, "distance from an empty code", wrap(dynamicBlock(lit, distEmpty, 'a', 'b', 257, 256), []byte("ababa")))
	// The codeword a single-code distance code lacks.
	distTwo := []uint8{0, 2}
	checkSame(t, "incomplete distance code", wrap(dynamicBlock(lit, distTwo, 'a', 'b', 257, 1001, 256), []byte("ababa")))
	over := append([]uint8{}, lit...)
	over['c'] = 2
	checkSame(t, "over-subscribed literal code", wrap(dynamicBlock(over, dist1, 'a', 256), []byte("a")))
	under := make([]uint8, 257)
	under['a'], under[256] = 2, 2
	checkSame(t, "incomplete literal code", wrap(dynamicBlock(under, dist1, 'a', 256), []byte("a")))
	// Codes of every length up to 15 reach the subtables: lengths 1, 2,
	// ..., 15, 15 are complete.
	long := make([]uint8, 286)
	longDist := make([]uint8, 30)
	for i := range 16 {
		long['a'+i] = uint8(min(i+1, 15))
		longDist[i] = uint8(min(i+1, 15))
	}
	long['a'+14], long['a'+15], long[256], long[284] = 0, 0, 15, 15
	content := []byte("nmlkjihgfedcba")
	syms := []int{}
	for _, c := range content {
		syms = append(syms, int(c))
	}
	syms = append(syms, 256)
	valid("long codes", wrap(dynamicBlock(long, longDist, syms...), content))
	// 'm', 'n', then length 227+5 (symbol 284, 15 bits) at distance 2
	// (distance symbol 1), then the end.
	withMatch := dynamicBlockExtra(long, longDist, []int{'m', 'n'}, 284, 5, 5, 1001, 0, 0)
	want := bytes.Repeat([]byte("mn"), 1+(227+5)/2)
	valid("long codes with a match", wrap(withMatch, want))
	// The same with the longest distance code (symbol 15: base 257, 6
	// extra bits) reaching back 257+0 bytes: too far in a 2-byte stream.
	far := dynamicBlockExtra(long, longDist, []int{'m', 'n'}, 284, 5, 5, 1015, 0, 6)
	checkSame(t, "long distance code too far", wrap(far, want))
}

// dynamicBlockExtra is dynamicBlock with literals, then one match (length
// symbol with extra bits, distance symbol with extra bits), then the end.
func dynamicBlockExtra(litLens, distLens []uint8, lits []int, lsym int, lextra uint64, lbits uint, dsym int, dextra uint64, dbits uint) []byte {
	var b bitWriter
	lc, dc := b.dynamicHeader(litLens, distLens)
	for _, s := range lits {
		b.putCode(lc[s], uint(litLens[s]))
	}
	b.putCode(lc[lsym], uint(litLens[lsym]))
	b.put(lextra, lbits)
	b.putCode(dc[dsym-1000], uint(distLens[dsym-1000]))
	b.put(dextra, dbits)
	b.putCode(lc[256], uint(litLens[256]))
	return b.bytes()
}

// TestCloseMidStream stops a parallel reader that is decoding ahead: Close
// returns (the goroutine ends) and a second Close is harmless.
func TestCloseMidStream(t *testing.T) {
	data := encoders()["stdlib-1"](samples(t)["zeros"])
	for range 20 {
		z, err := newParallelReader(bytes.NewReader(data), 700, nil)
		if err != nil {
			t.Fatal(err)
		}
		var p [10]byte
		if _, err := z.Read(p[:]); err != nil {
			t.Fatal(err)
		}
		z.Close()
		z.Close()
	}
}

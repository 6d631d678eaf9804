package zstdchunked

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
)

// oldChunker is the first chunker (feed splits its input at every zero byte
// and rolls one byte at a time through the window), checked byte for byte
// against compressor.ZstdCompressor; it is the oracle for the faster one.
type oldChunker struct {
	rs      rollsum
	zrun    int64
	emitted bool
	sink    frameSink
}

func (c *oldChunker) reset(sink frameSink) {
	c.rs.reset()
	c.zrun = 0
	c.emitted = false
	c.sink = sink
}

func (c *oldChunker) feed(p []byte) error {
	for len(p) > 0 {
		if p[0] == 0 {
			n := leadingZeros(p)
			c.zrun += int64(n)
			p = p[n:]
			if len(p) == 0 {
				return nil
			}
		}
		if c.zrun > 0 {
			if err := c.flushZeros(); err != nil {
				return err
			}
		}
		j := bytes.IndexByte(p, 0)
		if j < 0 {
			j = len(p)
		}
		if err := c.dataBytes(p[:j]); err != nil {
			return err
		}
		p = p[j:]
	}
	return nil
}

func (c *oldChunker) finish() error {
	if c.zrun > 0 {
		if err := c.flushZeros(); err != nil {
			return err
		}
	}
	if c.emitted {
		return c.sink.cut(false)
	}
	return nil
}

func (c *oldChunker) flushZeros() error {
	n := c.zrun
	c.zrun = 0
	if n >= HolesThreshold {
		if c.emitted {
			if err := c.sink.cut(false); err != nil {
				return err
			}
		}
		c.rs.rollZeros(n)
		c.emitted = true
		if err := c.sink.zeros(n); err != nil {
			return err
		}
		return c.sink.cut(true)
	}
	return c.dataBytes(zeroBuf[:n])
}

func (c *oldChunker) dataBytes(p []byte) error {
	start := 0
	for i := 0; i < len(p); i++ {
		c.rs.roll(p[i])
		if c.rs.onSplit() {
			c.emitted = true
			if err := c.sink.data(p[start : i+1]); err != nil {
				return err
			}
			if err := c.sink.cut(false); err != nil {
				return err
			}
			start = i + 1
		}
	}
	if start < len(p) {
		c.emitted = true
		return c.sink.data(p[start:])
	}
	return nil
}

// eventSink records the frames a chunker makes: their bytes and kinds.
type eventSink struct {
	frames []string
	cur    bytes.Buffer
	nzeros int64
}

func (s *eventSink) data(p []byte) error { s.cur.Write(p); return nil }
func (s *eventSink) zeros(n int64) error { s.nzeros += n; return nil }
func (s *eventSink) cut(z bool) error {
	s.frames = append(s.frames, fmt.Sprintf("%v %d %x %d", z, s.cur.Len(), sha256Sum(s.cur.Bytes()), s.nzeros))
	s.cur.Reset()
	s.nzeros = 0
	return nil
}

func sha256Sum(b []byte) string { return sha(b) }

// chunkerInput is payload with zero runs of every interesting length
// (around the window, HolesThreshold and the sampling step of the hole
// search) at random places, between random, text and constant bytes.
func chunkerInput(r *rand.Rand) []byte {
	var b []byte
	lens := []int{1, 7, 8, 9, 63, 64, 65, 511, 512, 513, 1015, 1016, 1023, 1024, 1025, 1031, 1032, 1033, 1535, 1536, 2047, 2048, 5000, 70000}
	for len(b) < 600000 {
		switch r.Intn(5) {
		case 0:
			b = append(b, randBytes(r, r.Intn(100000))...)
		case 1:
			b = append(b, textBytes(r, r.Intn(20000))...)
		case 2:
			b = append(b, bytes.Repeat([]byte{byte(1 + r.Intn(255))}, r.Intn(3000))...)
		default:
			b = append(b, zeros(lens[r.Intn(len(lens))])...)
			if r.Intn(4) == 0 {
				b = append(b, byte(1+r.Intn(255)))
			}
		}
		if r.Intn(3) == 0 {
			b = append(b, splitPrefix(r)...)
		}
	}
	if r.Intn(2) == 0 {
		b = append(b, zeros(lens[r.Intn(len(lens))])...)
	}
	return b
}

// TestChunkerMatchesOld: the chunker makes the oracle's frames, whatever the
// sizes of the pieces it is fed.
func TestChunkerMatchesOld(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewSource(seed))
		in := chunkerInput(r)
		if seed%5 == 0 {
			in = in[:r.Intn(3000)]
		}
		var want eventSink
		var old oldChunker
		old.reset(&want)
		if err := old.feed(in); err != nil {
			t.Fatal(err)
		}
		old.finish()
		for trial := 0; trial < 6; trial++ {
			var got eventSink
			var ck chunker
			ck.reset(&got)
			for p := in; len(p) > 0; {
				n := len(p)
				switch trial {
				case 0:
				case 1:
					n = min(n, 1)
				case 2:
					n = min(n, 1+r.Intn(100))
				default:
					n = min(n, 1+r.Intn(300000))
				}
				if err := ck.feed(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			ck.finish()
			if len(got.frames) != len(want.frames) {
				t.Fatalf("seed %d trial %d: %d frames, oracle %d", seed, trial, len(got.frames), len(want.frames))
			}
			for i := range got.frames {
				if got.frames[i] != want.frames[i] {
					t.Fatalf("seed %d trial %d: frame %d is %s, oracle %s", seed, trial, i, got.frames[i], want.frames[i])
				}
			}
		}
	}
}

package zstdchunked

import (
	"encoding/binary"
)

// This file holds the chunking half of the writer: it decides where frames
// start and end and what kind they are, and knows nothing about compression.
// The compressing half implements frameSink (see encode.go). Keeping them apart
// is what a parallel writer needs: it can implement frameSink by copying each
// frame's bytes into a job and compressing jobs on several encoders, writing
// the results in order (see the note on Encode).

// frameSink receives one file's payload, cut into frames, from the chunker.
type frameSink interface {
	// data appends payload bytes to the current frame. The first call for a
	// file (data or zeros) closes the frame holding the tar headers.
	data(p []byte) error
	// zeros appends n zero bytes of a hole to the current frame.
	zeros(n int64) error
	// cut closes the current frame, which may be empty. zeros reports that the
	// frame holds a run of zeros (a "zeros" chunk).
	cut(zeros bool) error
}

// rollsum is c/storage's (Perkeep/bup) rolling checksum, compressor.RollSum,
// with the state in plain fields so that the hot loop can keep it in
// registers. The tests check it against compressor.RollSum.
type rollsum struct {
	s1, s2 uint32
	window [rollsumWindow]byte
	wofs   int
}

const (
	rollsumWindow     = 64 // a power of two
	rollsumCharOffset = 31
	rollsumSplitMask  = 1<<RollsumBits - 1
)

func (r *rollsum) reset() {
	*r = rollsum{
		s1: rollsumWindow * rollsumCharOffset,
		s2: rollsumWindow * (rollsumWindow - 1) * rollsumCharOffset,
	}
}

func (r *rollsum) roll(ch byte) {
	drop := uint32(r.window[r.wofs])
	r.s1 += uint32(ch) - drop
	r.s2 += r.s1 - rollsumWindow*(drop+rollsumCharOffset)
	r.window[r.wofs] = ch
	r.wofs = (r.wofs + 1) & (rollsumWindow - 1)
}

func (r *rollsum) onSplit() bool { return r.s2&rollsumSplitMask == rollsumSplitMask }

// digest is compressor.RollSum.Digest (for tests).
func (r *rollsum) digest() uint32 { return r.s1<<16 | r.s2&0xffff }

// rollZeros rolls n zero bytes. Once the window holds only zeros, s1 equals
// 64*31 and a further zero changes neither s1 nor s2, only the window
// position; so n >= 64 zeros act like 64 + (n-64)%64 zeros.
func (r *rollsum) rollZeros(n int64) {
	if n >= 2*rollsumWindow {
		n = rollsumWindow + (n-rollsumWindow)%rollsumWindow
	}
	for ; n > 0; n-- {
		r.roll(0)
	}
}

// zeroBuf is a source of zero bytes; it must be at least HolesThreshold long.
var zeroBuf [64 << 10]byte

// chunker reproduces, for one file, the frame boundaries of c/storage's
// rollingChecksumReader + holesFinder:
//
//   - a maximal run of >= HolesThreshold zeros is a hole: the current frame is
//     cut before it (only if some payload was already emitted; the cut frame may
//     be empty), the zeros are rolled without split checks, and they form one
//     "zeros" frame;
//   - every other byte (including zeros of shorter runs) is rolled and, if the
//     rolling checksum then says so, ends the current data frame;
//   - at the end of the file the current frame is cut if anything was emitted
//     (again possibly empty).
type chunker struct {
	rs      rollsum
	zrun    int64 // zeros seen at the end of the input, not yet classified
	emitted bool  // some payload byte was passed to the sink
	sink    frameSink
}

func (c *chunker) reset(sink frameSink) {
	c.rs.reset()
	c.zrun = 0
	c.emitted = false
	c.sink = sink
}

// feed processes the next payload bytes. Only zero runs long enough to be
// holes split the input; everything else, short zero runs included, is
// rolled in long stretches.
func (c *chunker) feed(p []byte) error {
	if c.zrun > 0 {
		// A zero run reached the end of the previous input.
		n := leadingZeros(p)
		c.zrun += int64(n)
		p = p[n:]
		if len(p) == 0 {
			return nil // it may continue further
		}
		if err := c.flushZeros(); err != nil {
			return err
		}
	}
	// The zeros at the end may continue in the next input: keep them.
	t := trailingZeros(p)
	q := p[:len(p)-t]
	for len(q) > 0 {
		h, n := findHole(q)
		if err := c.dataBytes(q[:h]); err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if err := c.hole(int64(n)); err != nil {
			return err
		}
		q = q[h+n:]
	}
	c.zrun = int64(t)
	return nil
}

// holeSample is the step of the hole search: every run of HolesThreshold
// zeros covers the 8 bytes at some multiple of it.
const holeSample = HolesThreshold / 2

// findHole returns the first maximal run of at least HolesThreshold zeros in
// q as its start and length, or (len(q), 0). q must not end with a zero byte,
// and the byte before q (if any) must not be a zero.
func findHole(q []byte) (int, int) {
	low := 0 // no hole starts before low
	for s := 0; s+8 <= len(q); s += holeSample {
		if binary.LittleEndian.Uint64(q[s:]) != 0 || s < low {
			continue
		}
		start := s - trailingZeros(q[low:s])
		end := s + 8 + leadingZeros(q[s+8:])
		if end-start >= HolesThreshold {
			return start, end - start
		}
		low = end
	}
	return len(q), 0
}

// finish ends the file.
func (c *chunker) finish() error {
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

func (c *chunker) flushZeros() error {
	n := c.zrun
	c.zrun = 0
	if n >= HolesThreshold {
		return c.hole(n)
	}
	return c.dataBytes(zeroBuf[:n])
}

func (c *chunker) hole(n int64) error {
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

// dataBytes rolls data bytes and cuts frames where the checksum says so
// (rollsum.go rolls them, 16 at a time where it can).
func (c *chunker) dataBytes(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	c.emitted = true
	start := 0
	err := c.rs.rollData(p, rollsumSplitMask, func(i int) error {
		err := c.split(p[start : i+1])
		start = i + 1
		return err
	})
	if err != nil {
		return err
	}
	if start < len(p) {
		return c.sink.data(p[start:])
	}
	return nil
}

// split ends a data frame with p.
func (c *chunker) split(p []byte) error {
	if err := c.sink.data(p); err != nil {
		return err
	}
	return c.sink.cut(false)
}

// leadingZeros counts the zero bytes at the start of p.
func leadingZeros(p []byte) int {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		if binary.LittleEndian.Uint64(p[i:]) != 0 {
			break
		}
	}
	for ; i < len(p) && p[i] == 0; i++ {
	}
	return i
}

// trailingZeros counts the zero bytes at the end of p.
func trailingZeros(p []byte) int {
	i := len(p)
	for ; i >= 8; i -= 8 {
		if binary.LittleEndian.Uint64(p[i-8:]) != 0 {
			break
		}
	}
	for ; i > 0 && p[i-1] == 0; i-- {
	}
	return len(p) - i
}

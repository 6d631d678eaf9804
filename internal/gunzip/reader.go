// Package gunzip decodes gzip streams (RFC 1952) about twice as fast as
// compress/gzip and klauspost/compress's flate, because a layer's gzip
// decoding is on the critical path of every conversion from gzip.
//
// The speed comes from the decoding loop (inflate.go): a 64-bit bit buffer
// refilled with one 8-byte load, one table lookup per symbol with the
// length, distance and extra-bit counts packed in the entry, and matches
// copied 8 bytes at a time. It accepts exactly the streams compress/gzip
// accepts (multi-member streams included) and fails the same ones, which
// the differential fuzz test checks; errors are compress/gzip's ErrHeader
// and ErrChecksum, io.ErrUnexpectedEOF, or a *CorruptInputError.
package gunzip

import (
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"
)

// Reader decodes a gzip stream. Read returns the decoded bytes; the stream's
// CRC-32 and length are checked at the end of every member.
type Reader struct {
	f      inflater
	crc    uint32
	size   uint32
	crcPos int   // out[:crcPos] of the current buffer is in crc and size
	err    error // the decoder's end: io.EOF or the error

	// What Read hands out: buf[pos:end], then (once empty) bufErr. The
	// synchronous reader points buf into f.out.
	buf      []byte
	pos, end int
	bufErr   error

	// out counts the decoded bytes. members are the member starts the
	// decoder passed that onMember has not been told of yet.
	out      int64
	onMember func(Member)
	members  []Member

	async *async
}

// Member is where a gzip member starts: the offset of its header in the
// compressed input, and how many decoded bytes the members before it gave.
type Member struct {
	Offset, Out int64
}

// An Option changes how a Reader decodes.
type Option func(*Reader)

// OnMember has fn told of every member of the stream, in order, on the
// goroutine that calls Read or WriteTo, before any byte of that member is
// returned (a parallel reader may tell it earlier: when it hands out the
// round the member starts in). Formats made of many members (eStargz) use it
// to check that their index points at member starts.
func OnMember(fn func(Member)) Option { return func(z *Reader) { z.onMember = fn } }

// NewReader returns a Reader that decodes as it is read. It reads and
// checks the first member's header (io.EOF: r is empty).
func NewReader(r io.Reader, opts ...Option) (*Reader, error) {
	return newReader(r, defaultRound, opts)
}

func newReader(r io.Reader, round int, opts []Option) (*Reader, error) {
	z := &Reader{}
	for _, o := range opts {
		o(z)
	}
	z.f.src = r
	z.f.in = make([]byte, inBufSize)
	z.f.out = make([]byte, windowSize+round+outSlack)
	z.f.limit = windowSize + round
	if err := z.memberStart(); err != nil {
		return nil, err
	}
	z.f.reset()
	return z, nil
}

// memberStart reads a member header and notes where the member starts.
func (z *Reader) memberStart() error {
	off := z.f.inBase + int64(z.f.ip)
	if err := z.header(); err != nil {
		return err
	}
	if z.onMember != nil {
		z.members = append(z.members, Member{Offset: off, Out: z.out})
	}
	return nil
}

// tellMembers reports the member starts noted so far to onMember.
func tellMembers(fn func(Member), ms []Member) {
	for _, m := range ms {
		fn(m)
	}
}

// Read implements io.Reader.
func (z *Reader) Read(p []byte) (int, error) {
	for z.pos == z.end {
		if err := z.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, z.buf[z.pos:z.end])
	z.pos += n
	return n, nil
}

// WriteTo implements io.WriterTo: it writes the decoded bytes straight from
// the decoder's buffers.
func (z *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if z.pos == z.end {
			if err := z.next(); err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
			continue
		}
		n, err := w.Write(z.buf[z.pos:z.end])
		z.pos += n
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// next makes more decoded bytes available in buf[pos:end], or returns the
// decoder's end (io.EOF or the error).
func (z *Reader) next() error {
	if z.async != nil {
		return z.async.next(z)
	}
	if z.err != nil {
		return z.err
	}
	if z.f.w >= z.f.limit {
		z.slide()
	}
	z.decodeRound()
	if len(z.members) > 0 {
		tellMembers(z.onMember, z.members)
		z.members = z.members[:0]
	}
	z.buf, z.end = z.f.out, z.f.w
	return nil
}

// Close stops a parallel reader's goroutine. It does not close the
// underlying reader.
func (z *Reader) Close() error {
	if z.async != nil {
		z.async.stop()
	}
	return nil
}

// slide moves the history to the front of the output buffer.
func (z *Reader) slide() {
	f := &z.f
	keep := min(f.w-f.histStart, windowSize)
	copy(f.out[:keep], f.out[f.w-keep:f.w])
	f.w, f.histStart = keep, 0
	z.pos, z.end, z.crcPos = keep, keep, keep
}

// decodeRound decodes into f.out up to its limit, the end of the stream or
// an error, which it leaves in z.err.
func (z *Reader) decodeRound() {
	f := &z.f
	for f.w < f.limit && z.err == nil {
		err := f.decode()
		z.crc = crc32.Update(z.crc, crc32.IEEETable, f.out[z.crcPos:f.w])
		z.size += uint32(f.w - z.crcPos)
		z.out += int64(f.w - z.crcPos)
		z.crcPos = f.w
		if err != nil {
			z.err = err
		} else if f.state == stEnd {
			z.err = z.memberEnd()
		}
	}
}

// memberEnd checks a member's trailer and reads the next member's header:
// nil if there is one, io.EOF if the stream ends.
func (z *Reader) memberEnd() error {
	f := &z.f
	if err := f.alignToByte(); err != nil {
		return err
	}
	var t [8]byte
	if _, err := f.readFull(t[:]); err != nil {
		return noEOF(err)
	}
	if binary.LittleEndian.Uint32(t[:4]) != z.crc || binary.LittleEndian.Uint32(t[4:]) != z.size {
		return gzip.ErrChecksum
	}
	z.crc, z.size = 0, 0
	if err := z.memberStart(); err != nil {
		return err
	}
	f.reset()
	return nil
}

const (
	flagText    = 1 << 0
	flagHdrCrc  = 1 << 1
	flagExtra   = 1 << 2
	flagName    = 1 << 3
	flagComment = 1 << 4
)

// header reads a member header (RFC 1952 section 2.3) as compress/gzip
// does: io.EOF if the input ends before it, gzip.ErrHeader if it is not one.
func (z *Reader) header() error {
	f := &z.f
	var h [10]byte
	if n, err := f.readFull(h[:]); err != nil {
		if n > 0 && err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
		return gzip.ErrHeader
	}
	flags := h[3]
	crc := crc32.ChecksumIEEE(h[:])
	if flags&flagExtra != 0 {
		var l [2]byte
		if _, err := f.readFull(l[:]); err != nil {
			return noEOF(err)
		}
		crc = crc32.Update(crc, crc32.IEEETable, l[:])
		n := int(binary.LittleEndian.Uint16(l[:]))
		for n > 0 {
			var b [256]byte
			k, err := f.readFull(b[:min(n, len(b))])
			crc = crc32.Update(crc, crc32.IEEETable, b[:k])
			if err != nil {
				return noEOF(err)
			}
			n -= k
		}
	}
	for _, flag := range []byte{flagName, flagComment} {
		if flags&flag == 0 {
			continue
		}
		// compress/gzip reads these into a 512-byte buffer: a longer
		// string is a header error there, and so here.
		var s [512]byte
		for i := 0; ; i++ {
			if i >= len(s) {
				return gzip.ErrHeader
			}
			c, err := f.readByte()
			if err != nil {
				return noEOF(err)
			}
			s[i] = c
			if c == 0 {
				crc = crc32.Update(crc, crc32.IEEETable, s[:i+1])
				break
			}
		}
	}
	if flags&flagHdrCrc != 0 {
		var c [2]byte
		if _, err := f.readFull(c[:]); err != nil {
			return noEOF(err)
		}
		if binary.LittleEndian.Uint16(c[:]) != uint16(crc) {
			return gzip.ErrHeader
		}
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readFull reads len(p) bytes of the input, past the bit buffer (which must
// be empty: alignToByte).
func (f *inflater) readFull(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if f.ip == f.inEnd {
			f.fill()
			if f.ip == f.inEnd {
				if f.rerr == nil {
					continue
				}
				return n, f.rerr
			}
		}
		k := copy(p[n:], f.in[f.ip:f.inEnd])
		f.ip += k
		n += k
	}
	return n, nil
}

func (f *inflater) readByte() (byte, error) {
	var b [1]byte
	_, err := f.readFull(b[:])
	return b[0], err
}

// Parallel decoding: a goroutine decodes ahead into a few output buffers in
// turn, each starting with the history the previous one ended with, and
// Read takes the decoded bytes from them without another copy.

const (
	asyncBuffers  = 4
	parallelRound = 1 << 20
)

type asyncBlock struct {
	buf        []byte
	start, end int
	err        error
	members    []Member // the member starts before end
}

type async struct {
	full    chan asyncBlock
	free    chan []byte
	quit    chan struct{}
	done    chan struct{}
	cur     []byte // the buffer Read takes from, to give back
	stopped bool
	once    sync.Once
}

// NewParallelReader returns a Reader that decodes on a goroutine of its own,
// up to four rounds (1 MiB each) ahead of its reader, so the decoding runs
// beside whatever consumes the stream. Close stops the goroutine; the
// underlying reader is read from that goroutine until then.
func NewParallelReader(r io.Reader, opts ...Option) (*Reader, error) {
	return newParallelReader(r, parallelRound, opts)
}

func newParallelReader(r io.Reader, round int, opts []Option) (*Reader, error) {
	z, err := newReader(r, round, opts)
	if err != nil {
		return nil, err
	}
	a := &async{
		full: make(chan asyncBlock, asyncBuffers),
		free: make(chan []byte, asyncBuffers),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range asyncBuffers - 1 {
		a.free <- make([]byte, len(z.f.out))
	}
	z.async = a
	go a.run(z)
	return z, nil
}

func (a *async) run(z *Reader) {
	defer close(a.done)
	f := &z.f
	for {
		start := f.w
		z.decodeRound()
		blk := asyncBlock{buf: f.out, start: start, end: f.w, err: z.err}
		if len(z.members) > 0 {
			blk.members, z.members = z.members, nil
		}
		select {
		case a.full <- blk:
		case <-a.quit:
			return
		}
		if z.err != nil {
			return
		}
		var next []byte
		select {
		case next = <-a.free:
		case <-a.quit:
			return
		}
		// The reader may still be reading f.out: only read it here.
		keep := min(f.w-f.histStart, windowSize)
		copy(next[:keep], f.out[f.w-keep:f.w])
		f.out, f.w, f.histStart, z.crcPos = next, keep, 0, keep
	}
}

// next makes the next decoded block current, or returns the decoder's end.
func (a *async) next(z *Reader) error {
	if z.bufErr != nil {
		return z.bufErr
	}
	if a.cur != nil {
		a.free <- a.cur
		a.cur = nil
	}
	blk := <-a.full
	if len(blk.members) > 0 {
		tellMembers(z.onMember, blk.members)
	}
	a.cur = blk.buf
	z.buf, z.pos, z.end, z.bufErr = blk.buf, blk.start, blk.end, blk.err
	return nil
}

func (a *async) stop() {
	a.once.Do(func() {
		close(a.quit)
		<-a.done
	})
}

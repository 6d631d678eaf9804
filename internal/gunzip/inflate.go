package gunzip

import (
	"encoding/binary"
	"fmt"
	"io"
)

// CorruptInputError is invalid DEFLATE data at a byte offset of the member's
// compressed data.
type CorruptInputError struct {
	Offset int64
	Reason string
}

func (e *CorruptInputError) Error() string {
	return fmt.Sprintf("gzip: corrupt deflate data at compressed offset %d: %s", e.Offset, e.Reason)
}

const (
	windowSize = 1 << 15
	maxMatch   = 258

	// The output buffer holds the window and then the bytes of one round
	// of decoding. The fast loop writes a match of up to maxMatch bytes
	// with 8-byte stores that may run up to 7 bytes past it.
	defaultRound = 256 << 10
	outSlack     = maxMatch + 16

	inBufSize = 64 << 10
	// The fast loop refills the bit buffer with 8-byte loads: it runs while
	// that many input bytes are buffered.
	inMargin = 8
)

// Inflater states between calls.
const (
	stBlockHeader = iota // a block header comes next
	stHuffman            // inside a Huffman-coded block
	stStored             // inside a stored block: storedLeft bytes to copy
	stEnd                // the final block is done
)

// inflater decodes one DEFLATE stream (RFC 1951) from a buffered input into
// out, which holds the 32 KiB history before the bytes it decodes.
//
// The bit buffer bb holds nb valid bits, lowest first. The bits above them
// may hold a copy of the next input byte's low bits (the 8-byte refill loads
// more than it accounts for); every later load puts the same bytes at the
// same positions, so that copy never disagrees with the real data. At the
// end of the input the buffer is padded with zero bytes, counted in phantom
// (bits); consuming any of them means the stream was truncated.
type inflater struct {
	src   io.Reader
	in    []byte // in[ip:inEnd] is buffered, unread input
	ip    int
	inEnd int
	rerr  error // from src: io.EOF or a read error, once the buffer is drained
	// inBase is the input offset of in[0], for error messages.
	inBase int64

	bb      uint64
	nb      uint
	phantom uint

	out []byte
	w   int // next output position
	// limit is where a round of decoding stops: symbols start below it, and
	// out has outSlack bytes after it.
	limit int
	// histStart is where the current stream's output begins in out: no
	// distance reaches below it.
	histStart int

	state      int
	final      bool
	storedLeft int

	litlen *[litlenTableSize]uint32
	dist   *[distTableSize]uint32
	// The current dynamic block's tables.
	dynLitlen [litlenTableSize]uint32
	dynDist   [distTableSize]uint32
	clen      [clenTableSize]uint32
	lengths   [286 + 30]uint8
}

func (f *inflater) corrupt(reason string) error {
	return &CorruptInputError{Offset: f.inBase + int64(f.ip), Reason: reason}
}

// fill moves the unread input to the front of the buffer and reads more,
// until at least inMargin bytes are buffered or src has nothing more.
func (f *inflater) fill() {
	// The 8 bytes before ip stay: the bit buffer may hold them, and
	// alignToByte gives them back.
	if keep := min(f.ip, 8); f.ip > keep {
		n := copy(f.in, f.in[f.ip-keep:f.inEnd])
		f.inBase += int64(f.ip - keep)
		f.ip, f.inEnd = keep, n
	}
	for empty := 0; f.rerr == nil && f.inEnd-f.ip < inMargin; {
		n, err := f.src.Read(f.in[f.inEnd:])
		f.inEnd += n
		if err != nil {
			f.rerr = err
		} else if n == 0 {
			if empty++; empty >= 100 {
				f.rerr = io.ErrNoProgress
			}
		}
	}
}

// refill tops the bit buffer up to at least 56 bits, with zero bytes past
// the end of the input. It fails only on a read error.
func (f *inflater) refill() error {
	if f.ip+inMargin > f.inEnd && f.rerr == nil {
		f.fill()
	}
	if f.ip+inMargin <= f.inEnd {
		f.bb |= binary.LittleEndian.Uint64(f.in[f.ip:]) << (f.nb & 63)
		f.ip += int((63 - f.nb) >> 3)
		f.nb |= 56
		return nil
	}
	for f.nb <= 56 {
		if f.ip < f.inEnd {
			f.bb |= uint64(f.in[f.ip]) << f.nb
			f.ip++
		} else {
			if f.rerr != io.EOF {
				return f.rerr
			}
			f.phantom += 8
		}
		f.nb += 8
	}
	return nil
}

// bits consumes and returns the next n (at most 32) bits.
func (f *inflater) bits(n uint) (uint32, error) {
	if f.nb < n {
		if err := f.refill(); err != nil {
			return 0, err
		}
	}
	v := uint32(f.bb & (1<<n - 1))
	f.bb >>= n
	f.nb -= n
	if f.nb < f.phantom {
		return 0, io.ErrUnexpectedEOF
	}
	return v, nil
}

// clenSymbol decodes one symbol of the code-length code (its table has no
// subtables: those codes are at most 7 bits).
func (f *inflater) clenSymbol() (int, error) {
	if f.nb < clenTableBits {
		if err := f.refill(); err != nil {
			return 0, err
		}
	}
	e := f.clen[f.bb&(clenTableSize-1)]
	if e&flagExceptional != 0 {
		return 0, f.corrupt("invalid code-length code")
	}
	n := uint(e & 31)
	f.bb >>= n
	f.nb -= n
	if f.nb < f.phantom {
		return 0, io.ErrUnexpectedEOF
	}
	return int(e >> 16), nil
}

// alignToByte drops the bits up to the next byte boundary and gives the
// whole bytes still in the bit buffer back to the input.
func (f *inflater) alignToByte() error {
	drop := f.nb & 7
	f.nb -= drop
	if f.nb < f.phantom {
		return io.ErrUnexpectedEOF
	}
	f.ip -= int((f.nb - f.phantom) >> 3)
	f.bb, f.nb, f.phantom = 0, 0, 0
	return nil
}

// reset prepares for a new DEFLATE stream whose output continues in out at w
// (nothing before it is history).
func (f *inflater) reset() {
	f.state = stBlockHeader
	f.final = false
	f.histStart = f.w
}

// decode decodes until the output reaches its limit, the stream ends
// (state stEnd) or an error.
func (f *inflater) decode() error {
	for f.w < f.limit {
		switch f.state {
		case stBlockHeader:
			if err := f.blockHeader(); err != nil {
				return err
			}
		case stHuffman:
			if err := f.huffman(); err != nil {
				return err
			}
		case stStored:
			if err := f.stored(); err != nil {
				return err
			}
		case stEnd:
			return nil
		}
	}
	return nil
}

var codeLengthOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

func (f *inflater) blockHeader() error {
	h, err := f.bits(3)
	if err != nil {
		return err
	}
	f.final = h&1 != 0
	switch h >> 1 {
	case 0:
		if err := f.alignToByte(); err != nil {
			return err
		}
		if f.ip+4 > f.inEnd {
			f.fill()
			if f.ip+4 > f.inEnd {
				return f.inputEnd()
			}
		}
		n := binary.LittleEndian.Uint16(f.in[f.ip:])
		nn := binary.LittleEndian.Uint16(f.in[f.ip+2:])
		if n != ^nn {
			return f.corrupt("stored block length does not match its complement")
		}
		f.ip += 4
		f.storedLeft = int(n)
		f.state = stStored
	case 1:
		f.litlen, f.dist = &fixedLitlen, &fixedDist
		f.state = stHuffman
	case 2:
		if err := f.dynamicTables(); err != nil {
			return err
		}
		f.litlen, f.dist = &f.dynLitlen, &f.dynDist
		f.state = stHuffman
	default:
		return f.corrupt("reserved block type")
	}
	return nil
}

// inputEnd is the error for input that ends inside the stream.
func (f *inflater) inputEnd() error {
	if f.rerr != nil && f.rerr != io.EOF {
		return f.rerr
	}
	return io.ErrUnexpectedEOF
}

func (f *inflater) dynamicTables() error {
	h, err := f.bits(14)
	if err != nil {
		return err
	}
	nlit := int(h&31) + 257
	ndist := int(h>>5&31) + 1
	nclen := int(h>>10) + 4
	// 286 literal/length and 30 distance codes are all the format has
	// (compress/flate refuses more too).
	if nlit > 286 || ndist > 30 {
		return f.corrupt("too many literal/length or distance codes")
	}
	var clens [19]uint8
	for i := range nclen {
		v, err := f.bits(3)
		if err != nil {
			return err
		}
		clens[codeLengthOrder[i]] = uint8(v)
	}
	if !buildTable(f.clen[:], clenTableBits, clens[:], clenPayload[:19]) {
		return f.corrupt("invalid code-length code")
	}
	lengths := f.lengths[:nlit+ndist]
	for i := 0; i < len(lengths); {
		sym, err := f.clenSymbol()
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep uint32
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return f.corrupt("repeat of no previous code length")
			}
			val = lengths[i-1]
			rep, err = f.bits(2)
			rep += 3
		case 17:
			rep, err = f.bits(3)
			rep += 3
		default:
			rep, err = f.bits(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if i+int(rep) > len(lengths) {
			return f.corrupt("code lengths repeat past their end")
		}
		for range rep {
			lengths[i] = val
			i++
		}
	}
	if !buildTable(f.dynLitlen[:], litlenTableBits, lengths[:nlit], litlenPayload[:nlit]) {
		return f.corrupt("invalid literal/length code")
	}
	if !buildTable(f.dynDist[:], distTableBits, lengths[nlit:], distPayload[:ndist]) {
		return f.corrupt("invalid distance code")
	}
	return nil
}

// stored copies a stored block's bytes.
func (f *inflater) stored() error {
	for f.storedLeft > 0 {
		room := f.limit - f.w
		if room <= 0 {
			return nil
		}
		if f.ip == f.inEnd {
			f.fill()
			if f.ip == f.inEnd {
				return f.inputEnd()
			}
		}
		n := copy(f.out[f.w:f.w+min(room, f.storedLeft)], f.in[f.ip:f.inEnd])
		f.ip += n
		f.w += n
		f.storedLeft -= n
	}
	f.endBlock()
	return nil
}

func (f *inflater) endBlock() {
	if f.final {
		f.state = stEnd
	} else {
		f.state = stBlockHeader
	}
}

// huffman decodes a Huffman-coded block until its end or until out is full.
//
// The loop keeps the bit buffer, positions and tables in locals; each pass
// decodes one literal or one length/distance pair, which takes at most
// 15+5+15+13 = 48 bits, so one refill per pass is enough.
func (f *inflater) huffman() error {
	in := f.in[:f.inEnd]
	out := f.out
	bb, nb, ip, w := f.bb, f.nb, f.ip, f.w
	phantom := f.phantom
	litlen, dist := f.litlen, f.dist
	limit := f.limit
	histStart := f.histStart
	var err error
	for w < limit {
		if nb < 48 {
			if ip+inMargin <= len(in) {
				bb |= binary.LittleEndian.Uint64(in[ip:]) << (nb & 63)
				ip += int((63 - nb) >> 3)
				nb |= 56
			} else {
				f.bb, f.nb, f.ip = bb, nb, ip
				if err = f.refill(); err != nil {
					break
				}
				in = f.in[:f.inEnd]
				bb, nb, ip, phantom = f.bb, f.nb, f.ip, f.phantom
			}
		}
		e := litlen[bb&(1<<litlenTableBits-1)]
		if e&flagSub != 0 {
			bb >>= litlenTableBits
			nb -= litlenTableBits
			e = litlen[(e>>16)+uint32(bb)&(1<<(e>>8&31)-1)]
		}
		n := uint(e & 31)
		bb >>= n
		nb -= n
		if e&flagLiteral != 0 {
			if nb < phantom {
				err = io.ErrUnexpectedEOF
				break
			}
			out[w] = byte(e >> 16)
			w++
			// A second literal without a refill when the bits allow.
			if nb >= 15 {
				e = litlen[bb&(1<<litlenTableBits-1)]
				if e&(flagLiteral|flagSub) == flagLiteral {
					n := uint(e & 31)
					bb >>= n
					nb -= n
					if nb < phantom {
						err = io.ErrUnexpectedEOF
						break
					}
					out[w] = byte(e >> 16)
					w++
				}
			}
			continue
		}
		if e&flagExceptional != 0 {
			if nb < phantom {
				err = io.ErrUnexpectedEOF
				break
			}
			if e>>16 == valueBad {
				f.bb, f.nb, f.ip = bb, nb, ip
				err = f.corrupt("invalid literal/length symbol")
				break
			}
			f.endBlock()
			break
		}
		eb := uint(e >> 8 & 31)
		length := int(e>>16) + int(bb&(1<<eb-1))
		bb >>= eb
		nb -= eb

		d := dist[bb&(1<<distTableBits-1)]
		if d&flagSub != 0 {
			bb >>= distTableBits
			nb -= distTableBits
			d = dist[(d>>16)+uint32(bb)&(1<<(d>>8&31)-1)]
		}
		n = uint(d & 31)
		bb >>= n
		nb -= n
		if d&flagExceptional != 0 {
			f.bb, f.nb, f.ip = bb, nb, ip
			if nb < phantom {
				err = io.ErrUnexpectedEOF
			} else {
				err = f.corrupt("invalid distance symbol")
			}
			break
		}
		eb = uint(d >> 8 & 31)
		distance := int(d>>16) + int(bb&(1<<eb-1))
		bb >>= eb
		nb -= eb
		if nb < phantom {
			err = io.ErrUnexpectedEOF
			break
		}
		src := w - distance
		if src < histStart {
			f.bb, f.nb, f.ip = bb, nb, ip
			err = f.corrupt("distance too far back")
			break
		}
		if distance >= 8 {
			// 8 bytes at a time, overlapping the source's own output when
			// distance < length (each word reads bytes at least 8 back).
			// Most matches are short: the first 16 bytes go without a loop.
			end := w + length
			s := out[src : src+16]
			d := out[w : w+16]
			binary.LittleEndian.PutUint64(d, binary.LittleEndian.Uint64(s))
			binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(s[8:]))
			for w, src = w+16, src+16; w < end; w, src = w+8, src+8 {
				binary.LittleEndian.PutUint64(out[w:], binary.LittleEndian.Uint64(out[src:]))
			}
			w = end
		} else if distance == 1 {
			b := out[src]
			end := w + length
			for i := w; i < end; i++ {
				out[i] = b
			}
			w = end
		} else {
			// Short period: each copy doubles what the next can take.
			end := w + length
			for w < end {
				w += copy(out[w:end], out[src:w])
			}
		}
	}
	f.bb, f.nb, f.ip, f.w, f.phantom = bb, nb, ip, w, phantom
	return err
}

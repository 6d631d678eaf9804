package zstdchunked

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// frameInfo is one frame of a blob, found by walking the frame and block
// headers (RFC 8878 §3.1) without decompressing.
type frameInfo struct {
	Start, End int64 // [Start, End) in the blob
	Skippable  bool
	// MaxContent is an upper bound of the frame's decompressed size (exact
	// for raw and RLE blocks, the block maximum for compressed ones).
	MaxContent int64
}

// errFrame is returned by frameReader.next for bytes that are not a frame.
type errFrame struct {
	off    int64
	reason string
}

func (e *errFrame) Error() string { return fmt.Sprintf("offset %d: %s", e.off, e.reason) }

const (
	zstdFrameMagicLE   = 0xFD2FB528
	zstdBlockMaxSize   = 128 << 10
	frameWindowBufSize = 4096
)

// frameReader walks frame headers through a small window over a ReaderAt,
// so that a walk reads the block headers, not the blocks.
type frameReader struct {
	ra     io.ReaderAt
	size   int64
	buf    []byte
	bufOff int64
	bufLen int
}

func newFrameReader(ra io.ReaderAt, size int64) *frameReader {
	return &frameReader{ra: ra, size: size, buf: make([]byte, frameWindowBufSize), bufOff: -1}
}

// at returns n (<= len(buf)) bytes at off, or an *errFrame if the blob ends
// before.
func (r *frameReader) at(off int64, n int) ([]byte, error) {
	if off < 0 || off > r.size || int64(n) > r.size-off {
		return nil, &errFrame{off, "truncated frame"}
	}
	if r.bufOff >= 0 && off >= r.bufOff && off+int64(n) <= r.bufOff+int64(r.bufLen) {
		i := int(off - r.bufOff)
		return r.buf[i : i+n], nil
	}
	want := min(int64(len(r.buf)), r.size-off)
	m, err := r.ra.ReadAt(r.buf[:want], off)
	if int64(m) < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.bufOff = -1
		return nil, fmt.Errorf("reading blob at %d: %w", off, err)
	}
	r.bufOff, r.bufLen = off, m
	return r.buf[:n], nil
}

// next parses the frame starting at off.
func (r *frameReader) next(off int64) (frameInfo, error) {
	b, err := r.at(off, 4)
	if err != nil {
		return frameInfo{}, err
	}
	magic := binary.LittleEndian.Uint32(b)
	if magic&0xFFFFFFF0 == SkippableFrameMagic {
		b, err := r.at(off+4, 4)
		if err != nil {
			return frameInfo{}, err
		}
		end := off + 8 + int64(binary.LittleEndian.Uint32(b))
		if end > r.size {
			return frameInfo{}, &errFrame{off, "skippable frame longer than the blob"}
		}
		return frameInfo{Start: off, End: end, Skippable: true}, nil
	}
	if magic != zstdFrameMagicLE {
		return frameInfo{}, &errFrame{off, fmt.Sprintf("no zstd frame magic (%02x %02x %02x %02x)", b[0], b[1], b[2], b[3])}
	}
	b, err = r.at(off+4, 1)
	if err != nil {
		return frameInfo{}, err
	}
	fhd := b[0]
	fcsFlag := fhd >> 6
	single := fhd&0x20 != 0
	if fhd&0x08 != 0 {
		return frameInfo{}, &errFrame{off, "reserved bit set in the frame header"}
	}
	hasChecksum := fhd&0x04 != 0
	pos := off + 5
	var window uint64
	if !single {
		b, err := r.at(pos, 1)
		if err != nil {
			return frameInfo{}, err
		}
		exp, mant := uint64(b[0]>>3), uint64(b[0]&7)
		base := uint64(1) << (10 + exp)
		window = base + base/8*mant
		pos++
	}
	pos += [4]int64{0, 1, 2, 4}[fhd&3] // dictionary id
	fcsSize := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsSize = 1
	}
	if fcsSize > 0 {
		b, err := r.at(pos, fcsSize)
		if err != nil {
			return frameInfo{}, err
		}
		var fcs uint64
		switch fcsSize {
		case 1:
			fcs = uint64(b[0])
		case 2:
			fcs = uint64(binary.LittleEndian.Uint16(b)) + 256
		case 4:
			fcs = uint64(binary.LittleEndian.Uint32(b))
		case 8:
			fcs = binary.LittleEndian.Uint64(b)
		}
		if single {
			window = fcs
		}
		pos += int64(fcsSize)
	}
	blockMax := int64(zstdBlockMaxSize)
	if window < uint64(blockMax) {
		blockMax = int64(window)
	}
	var content int64
	for blocks := 0; ; blocks++ {
		b, err := r.at(pos, 3)
		if err != nil {
			return frameInfo{}, err
		}
		bh := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		last := bh&1 != 0
		bsize := int64(bh >> 3)
		pos += 3
		switch (bh >> 1) & 3 {
		case 0: // raw
			if bsize > blockMax {
				return frameInfo{}, &errFrame{pos - 3, "raw block larger than the block maximum"}
			}
			pos += bsize
			content += bsize
		case 1: // RLE
			if bsize > blockMax {
				return frameInfo{}, &errFrame{pos - 3, "RLE block larger than the block maximum"}
			}
			pos++
			content += bsize
		case 2: // compressed
			if bsize > blockMax {
				return frameInfo{}, &errFrame{pos - 3, "compressed block larger than the block maximum"}
			}
			pos += bsize
			content += blockMax
		default:
			return frameInfo{}, &errFrame{pos - 3, "reserved block type"}
		}
		if pos > r.size {
			return frameInfo{}, &errFrame{off, "truncated frame"}
		}
		if last {
			break
		}
	}
	if hasChecksum {
		pos += 4
		if pos > r.size {
			return frameInfo{}, &errFrame{off, "truncated frame checksum"}
		}
	}
	return frameInfo{Start: off, End: pos, MaxContent: content}, nil
}

package nydus

import "errors"

// LZ4 block decompression (the "lz4_block" compressor of nydus: a raw LZ4 block
// as produced by LZ4_compress_default, no frame, no size prefix). Format
// (lz4/doc/lz4_Block_format.md): a sequence of
//
//	token (1 byte: high nibble literal length, low nibble match length − 4)
//	[extra literal length bytes: 255… then < 255, if high nibble is 15]
//	literals
//	offset (u16 LE, 1..65535, distance back into the output)
//	[extra match length bytes, if low nibble is 15]
//
// The last sequence has only literals (the block ends after them).

var errLZ4 = errors.New("nydus: corrupt lz4 block")

// lz4DecompressBlock decompresses src into dst, which must have exactly the
// uncompressed size; it fails if src does not decode to exactly len(dst) bytes.
func lz4DecompressBlock(src, dst []byte) error {
	si, di := 0, 0
	for {
		if si >= len(src) {
			return errLZ4
		}
		token := src[si]
		si++
		// literals
		lit := int(token >> 4)
		if lit == 15 {
			for {
				if si >= len(src) {
					return errLZ4
				}
				b := src[si]
				si++
				lit += int(b)
				if lit > len(dst) {
					return errLZ4
				}
				if b != 255 {
					break
				}
			}
		}
		if lit > len(src)-si || lit > len(dst)-di {
			return errLZ4
		}
		copy(dst[di:], src[si:si+lit])
		si += lit
		di += lit
		if si == len(src) {
			// end of block: the last sequence has no match part
			if di != len(dst) {
				return errLZ4
			}
			return nil
		}
		// match
		if len(src)-si < 2 {
			return errLZ4
		}
		off := int(src[si]) | int(src[si+1])<<8
		si += 2
		if off == 0 || off > di {
			return errLZ4
		}
		ml := int(token & 15)
		if ml == 15 {
			for {
				if si >= len(src) {
					return errLZ4
				}
				b := src[si]
				si++
				ml += int(b)
				if ml > len(dst) {
					return errLZ4
				}
				if b != 255 {
					break
				}
			}
		}
		ml += 4
		if ml > len(dst)-di {
			return errLZ4
		}
		// overlapping copy, byte by byte when the distance is short
		m := di - off
		if off >= ml {
			copy(dst[di:di+ml], dst[m:m+ml])
		} else {
			for i := 0; i < ml; i++ {
				dst[di+i] = dst[m+i]
			}
		}
		di += ml
	}
}

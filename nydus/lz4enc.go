package nydus

import (
	"encoding/binary"
	"math/bits"
)

// LZ4 block compression for the "lz4_block" compressor: one raw LZ4 block per
// chunk, no frame, no size prefix (what LZ4_compress_default produces, though
// not byte for byte). The format's end-of-block rules are kept (the last 5
// bytes are literals, the last match starts at least 12 bytes before the end),
// so LZ4_decompress_safe — nydusd's decoder — accepts every block.
//
// It is the greedy single-probe hash-table compressor of LZ4's "fast" mode
// with its skip acceleration over incompressible data; the table (up to 2^16
// entries) is sized to the input so small chunks do not pay for clearing it.

const (
	lz4MinMatch     = 4
	lz4LastLiterals = 5  // the last 5 bytes are always literals
	lz4MFLimit      = 12 // a match must start at least 12 bytes before the end
	lz4MaxOffset    = 65535
	lz4MaxTableBits = 16
	lz4SkipTrigger  = 6
)

// lz4Encoder holds the hash table of one compressing goroutine.
type lz4Encoder struct {
	table [1 << lz4MaxTableBits]int32 // position + 1, 0 = empty
}

// compressBlock appends the LZ4 block of src to dst[:0] and returns it, or
// returns nil when the block would not be smaller than src (the caller then
// stores src raw).
func (e *lz4Encoder) compressBlock(dst, src []byte) []byte {
	limit := len(src) - 1 // stop as soon as the output cannot be smaller
	dst = dst[:0]
	if len(src) < lz4MFLimit+1 {
		return nil // too short for any match: never smaller
	}
	tableBits := uint(min(max(bits.Len(uint(len(src))), 8), lz4MaxTableBits))
	table := e.table[:1<<tableBits]
	clear(table)
	shift := 32 - tableBits
	hash := func(v uint32) uint32 { return (v * 2654435761) >> shift }

	ipLimit := len(src) - lz4MFLimit         // matches start before this
	matchLimit := len(src) - lz4LastLiterals // and end at or before this
	anchor, ip := 0, 0
	for {
		// find a match
		step, searches := 1, 1<<lz4SkipTrigger
		ref := -1
		for ip < ipLimit {
			v := binary.LittleEndian.Uint32(src[ip:])
			h := hash(v)
			cand := int(table[h]) - 1
			table[h] = int32(ip + 1)
			if cand >= 0 && ip-cand <= lz4MaxOffset && binary.LittleEndian.Uint32(src[cand:]) == v {
				ref = cand
				break
			}
			ip += step
			searches++
			step = searches >> lz4SkipTrigger
		}
		if ref < 0 {
			break
		}
		// extend backwards over pending literals, then forwards
		for ip > anchor && ref > 0 && src[ip-1] == src[ref-1] {
			ip--
			ref--
		}
		ml := lz4MinMatch
		for ip+ml < matchLimit && src[ref+ml] == src[ip+ml] {
			ml++
		}
		dst = lz4AppendSequence(dst, src[anchor:ip], ip-ref, ml)
		if len(dst) > limit {
			return nil
		}
		ip += ml
		anchor = ip
		if ip < ipLimit && ip >= 2 {
			table[hash(binary.LittleEndian.Uint32(src[ip-2:]))] = int32(ip - 2 + 1)
		}
	}
	dst = lz4AppendSequence(dst, src[anchor:], 0, 0)
	if len(dst) > limit {
		return nil
	}
	return dst
}

// lz4AppendSequence appends one sequence: literals, then a match of ml bytes at
// distance off (ml = 0: the last sequence, literals only).
func lz4AppendSequence(dst, lit []byte, off, ml int) []byte {
	token := byte(min(len(lit), 15)) << 4
	if ml > 0 {
		token |= byte(min(ml-lz4MinMatch, 15))
	}
	dst = append(dst, token)
	if len(lit) >= 15 {
		dst = lz4AppendLength(dst, len(lit)-15)
	}
	dst = append(dst, lit...)
	if ml == 0 {
		return dst
	}
	dst = append(dst, byte(off), byte(off>>8))
	if ml-lz4MinMatch >= 15 {
		dst = lz4AppendLength(dst, ml-lz4MinMatch-15)
	}
	return dst
}

func lz4AppendLength(dst []byte, n int) []byte {
	for ; n >= 255; n -= 255 {
		dst = append(dst, 255)
	}
	return append(dst, byte(n))
}

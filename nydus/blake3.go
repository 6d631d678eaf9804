package nydus

import (
	"encoding/binary"
	"math/bits"
)

// A small, portable BLAKE3-256 (hash mode only, default 32-byte output), used for
// nydus chunk digests. It follows the reference implementation of the BLAKE3
// paper (github.com/BLAKE3-team/BLAKE3, reference_impl): 1 KiB chunks of 64-byte
// blocks, compressed with 7 rounds, chunk chaining values merged in a binary tree.

const (
	b3BlockLen = 64
	b3ChunkLen = 1024

	b3ChunkStart = 1 << 0
	b3ChunkEnd   = 1 << 1
	b3Parent     = 1 << 2
	b3Root       = 1 << 3
)

var b3IV = [8]uint32{
	0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
	0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
}

var b3Perm = [16]int{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8}

func b3g(s *[16]uint32, a, b, c, d int, mx, my uint32) {
	s[a] = s[a] + s[b] + mx
	s[d] = bits.RotateLeft32(s[d]^s[a], -16)
	s[c] = s[c] + s[d]
	s[b] = bits.RotateLeft32(s[b]^s[c], -12)
	s[a] = s[a] + s[b] + my
	s[d] = bits.RotateLeft32(s[d]^s[a], -8)
	s[c] = s[c] + s[d]
	s[b] = bits.RotateLeft32(s[b]^s[c], -7)
}

// b3Compress is the BLAKE3 compression function; it returns the full 16-word state.
func b3Compress(cv *[8]uint32, m *[16]uint32, counter uint64, blockLen, flags uint32) [16]uint32 {
	s := [16]uint32{
		cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
		b3IV[0], b3IV[1], b3IV[2], b3IV[3],
		uint32(counter), uint32(counter >> 32), blockLen, flags,
	}
	msg := *m
	for r := 0; r < 7; r++ {
		b3g(&s, 0, 4, 8, 12, msg[0], msg[1])
		b3g(&s, 1, 5, 9, 13, msg[2], msg[3])
		b3g(&s, 2, 6, 10, 14, msg[4], msg[5])
		b3g(&s, 3, 7, 11, 15, msg[6], msg[7])
		b3g(&s, 0, 5, 10, 15, msg[8], msg[9])
		b3g(&s, 1, 6, 11, 12, msg[10], msg[11])
		b3g(&s, 2, 7, 8, 13, msg[12], msg[13])
		b3g(&s, 3, 4, 9, 14, msg[14], msg[15])
		if r < 6 {
			var p [16]uint32
			for i := range p {
				p[i] = msg[b3Perm[i]]
			}
			msg = p
		}
	}
	for i := 0; i < 8; i++ {
		s[i] ^= s[i+8]
		s[i+8] ^= cv[i]
	}
	return s
}

func b3Words(block []byte) (m [16]uint32) {
	var buf [b3BlockLen]byte
	copy(buf[:], block)
	for i := range m {
		m[i] = binary.LittleEndian.Uint32(buf[4*i:])
	}
	return m
}

// b3Output is what is needed to produce either a chaining value or the root hash.
type b3Output struct {
	cv       [8]uint32
	block    [16]uint32
	counter  uint64
	blockLen uint32
	flags    uint32
}

func (o *b3Output) chainingValue() (cv [8]uint32) {
	s := b3Compress(&o.cv, &o.block, o.counter, o.blockLen, o.flags)
	copy(cv[:], s[:8])
	return cv
}

func (o *b3Output) root() (out [32]byte) {
	s := b3Compress(&o.cv, &o.block, 0, o.blockLen, o.flags|b3Root)
	for i := 0; i < 8; i++ {
		binary.LittleEndian.PutUint32(out[4*i:], s[i])
	}
	return out
}

// b3ChunkOutput hashes one chunk (1..1024 bytes, or 0 bytes for empty input)
// up to its last block and returns the output for that last block.
func b3ChunkOutput(chunk []byte, counter uint64) b3Output {
	cv := b3IV
	flags := uint32(b3ChunkStart)
	for len(chunk) > b3BlockLen {
		m := b3Words(chunk[:b3BlockLen])
		s := b3Compress(&cv, &m, counter, b3BlockLen, flags)
		copy(cv[:], s[:8])
		chunk = chunk[b3BlockLen:]
		flags = 0
	}
	return b3Output{cv: cv, block: b3Words(chunk), counter: counter, blockLen: uint32(len(chunk)), flags: flags | b3ChunkEnd}
}

func b3ParentOutput(left, right [8]uint32) b3Output {
	var m [16]uint32
	copy(m[:8], left[:])
	copy(m[8:], right[:])
	return b3Output{cv: b3IV, block: m, counter: 0, blockLen: b3BlockLen, flags: b3Parent}
}

// blake3Sum256 returns the 32-byte BLAKE3 hash of data.
func blake3Sum256(data []byte) [32]byte {
	var stack [64][8]uint32
	n := 0
	var counter uint64
	// All chunks but the last are finalized and merged as in the reference
	// implementation's add_chunk_chaining_value.
	for len(data) > b3ChunkLen {
		o := b3ChunkOutput(data[:b3ChunkLen], counter)
		cv := o.chainingValue()
		data = data[b3ChunkLen:]
		counter++
		for total := counter; total&1 == 0; total >>= 1 {
			n--
			p := b3ParentOutput(stack[n], cv)
			cv = p.chainingValue()
		}
		stack[n] = cv
		n++
	}
	out := b3ChunkOutput(data, counter)
	for n > 0 {
		n--
		out = b3ParentOutput(stack[n], out.chainingValue())
	}
	return out.root()
}

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
// It is the reference compression (b3CompressRef) unrolled by hand (generated): the
// seven rounds with the message schedule applied at compile time.
func b3Compress(cv *[8]uint32, m *[16]uint32, counter uint64, blockLen, flags uint32) [16]uint32 {
	m0, m1, m2, m3, m4, m5, m6, m7 := m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]
	m8, m9, m10, m11, m12, m13, m14, m15 := m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15]
	v0, v1, v2, v3, v4, v5, v6, v7 := cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7]
	v8, v9, v10, v11 := b3IV[0], b3IV[1], b3IV[2], b3IV[3]
	v12, v13, v14, v15 := uint32(counter), uint32(counter>>32), blockLen, flags
	// round 1
	v0 += v4 + m0
	v12 = bits.RotateLeft32(v12^v0, -16)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -12)
	v0 += v4 + m1
	v12 = bits.RotateLeft32(v12^v0, -8)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -7)
	v1 += v5 + m2
	v13 = bits.RotateLeft32(v13^v1, -16)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -12)
	v1 += v5 + m3
	v13 = bits.RotateLeft32(v13^v1, -8)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -7)
	v2 += v6 + m4
	v14 = bits.RotateLeft32(v14^v2, -16)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -12)
	v2 += v6 + m5
	v14 = bits.RotateLeft32(v14^v2, -8)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -7)
	v3 += v7 + m6
	v15 = bits.RotateLeft32(v15^v3, -16)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -12)
	v3 += v7 + m7
	v15 = bits.RotateLeft32(v15^v3, -8)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -7)
	v0 += v5 + m8
	v15 = bits.RotateLeft32(v15^v0, -16)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -12)
	v0 += v5 + m9
	v15 = bits.RotateLeft32(v15^v0, -8)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -7)
	v1 += v6 + m10
	v12 = bits.RotateLeft32(v12^v1, -16)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -12)
	v1 += v6 + m11
	v12 = bits.RotateLeft32(v12^v1, -8)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -7)
	v2 += v7 + m12
	v13 = bits.RotateLeft32(v13^v2, -16)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -12)
	v2 += v7 + m13
	v13 = bits.RotateLeft32(v13^v2, -8)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -7)
	v3 += v4 + m14
	v14 = bits.RotateLeft32(v14^v3, -16)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -12)
	v3 += v4 + m15
	v14 = bits.RotateLeft32(v14^v3, -8)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -7)
	// round 2
	v0 += v4 + m2
	v12 = bits.RotateLeft32(v12^v0, -16)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -12)
	v0 += v4 + m6
	v12 = bits.RotateLeft32(v12^v0, -8)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -7)
	v1 += v5 + m3
	v13 = bits.RotateLeft32(v13^v1, -16)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -12)
	v1 += v5 + m10
	v13 = bits.RotateLeft32(v13^v1, -8)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -7)
	v2 += v6 + m7
	v14 = bits.RotateLeft32(v14^v2, -16)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -12)
	v2 += v6 + m0
	v14 = bits.RotateLeft32(v14^v2, -8)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -7)
	v3 += v7 + m4
	v15 = bits.RotateLeft32(v15^v3, -16)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -12)
	v3 += v7 + m13
	v15 = bits.RotateLeft32(v15^v3, -8)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -7)
	v0 += v5 + m1
	v15 = bits.RotateLeft32(v15^v0, -16)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -12)
	v0 += v5 + m11
	v15 = bits.RotateLeft32(v15^v0, -8)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -7)
	v1 += v6 + m12
	v12 = bits.RotateLeft32(v12^v1, -16)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -12)
	v1 += v6 + m5
	v12 = bits.RotateLeft32(v12^v1, -8)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -7)
	v2 += v7 + m9
	v13 = bits.RotateLeft32(v13^v2, -16)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -12)
	v2 += v7 + m14
	v13 = bits.RotateLeft32(v13^v2, -8)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -7)
	v3 += v4 + m15
	v14 = bits.RotateLeft32(v14^v3, -16)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -12)
	v3 += v4 + m8
	v14 = bits.RotateLeft32(v14^v3, -8)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -7)
	// round 3
	v0 += v4 + m3
	v12 = bits.RotateLeft32(v12^v0, -16)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -12)
	v0 += v4 + m4
	v12 = bits.RotateLeft32(v12^v0, -8)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -7)
	v1 += v5 + m10
	v13 = bits.RotateLeft32(v13^v1, -16)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -12)
	v1 += v5 + m12
	v13 = bits.RotateLeft32(v13^v1, -8)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -7)
	v2 += v6 + m13
	v14 = bits.RotateLeft32(v14^v2, -16)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -12)
	v2 += v6 + m2
	v14 = bits.RotateLeft32(v14^v2, -8)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -7)
	v3 += v7 + m7
	v15 = bits.RotateLeft32(v15^v3, -16)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -12)
	v3 += v7 + m14
	v15 = bits.RotateLeft32(v15^v3, -8)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -7)
	v0 += v5 + m6
	v15 = bits.RotateLeft32(v15^v0, -16)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -12)
	v0 += v5 + m5
	v15 = bits.RotateLeft32(v15^v0, -8)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -7)
	v1 += v6 + m9
	v12 = bits.RotateLeft32(v12^v1, -16)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -12)
	v1 += v6 + m0
	v12 = bits.RotateLeft32(v12^v1, -8)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -7)
	v2 += v7 + m11
	v13 = bits.RotateLeft32(v13^v2, -16)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -12)
	v2 += v7 + m15
	v13 = bits.RotateLeft32(v13^v2, -8)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -7)
	v3 += v4 + m8
	v14 = bits.RotateLeft32(v14^v3, -16)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -12)
	v3 += v4 + m1
	v14 = bits.RotateLeft32(v14^v3, -8)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -7)
	// round 4
	v0 += v4 + m10
	v12 = bits.RotateLeft32(v12^v0, -16)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -12)
	v0 += v4 + m7
	v12 = bits.RotateLeft32(v12^v0, -8)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -7)
	v1 += v5 + m12
	v13 = bits.RotateLeft32(v13^v1, -16)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -12)
	v1 += v5 + m9
	v13 = bits.RotateLeft32(v13^v1, -8)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -7)
	v2 += v6 + m14
	v14 = bits.RotateLeft32(v14^v2, -16)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -12)
	v2 += v6 + m3
	v14 = bits.RotateLeft32(v14^v2, -8)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -7)
	v3 += v7 + m13
	v15 = bits.RotateLeft32(v15^v3, -16)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -12)
	v3 += v7 + m15
	v15 = bits.RotateLeft32(v15^v3, -8)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -7)
	v0 += v5 + m4
	v15 = bits.RotateLeft32(v15^v0, -16)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -12)
	v0 += v5 + m0
	v15 = bits.RotateLeft32(v15^v0, -8)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -7)
	v1 += v6 + m11
	v12 = bits.RotateLeft32(v12^v1, -16)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -12)
	v1 += v6 + m2
	v12 = bits.RotateLeft32(v12^v1, -8)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -7)
	v2 += v7 + m5
	v13 = bits.RotateLeft32(v13^v2, -16)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -12)
	v2 += v7 + m8
	v13 = bits.RotateLeft32(v13^v2, -8)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -7)
	v3 += v4 + m1
	v14 = bits.RotateLeft32(v14^v3, -16)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -12)
	v3 += v4 + m6
	v14 = bits.RotateLeft32(v14^v3, -8)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -7)
	// round 5
	v0 += v4 + m12
	v12 = bits.RotateLeft32(v12^v0, -16)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -12)
	v0 += v4 + m13
	v12 = bits.RotateLeft32(v12^v0, -8)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -7)
	v1 += v5 + m9
	v13 = bits.RotateLeft32(v13^v1, -16)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -12)
	v1 += v5 + m11
	v13 = bits.RotateLeft32(v13^v1, -8)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -7)
	v2 += v6 + m15
	v14 = bits.RotateLeft32(v14^v2, -16)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -12)
	v2 += v6 + m10
	v14 = bits.RotateLeft32(v14^v2, -8)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -7)
	v3 += v7 + m14
	v15 = bits.RotateLeft32(v15^v3, -16)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -12)
	v3 += v7 + m8
	v15 = bits.RotateLeft32(v15^v3, -8)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -7)
	v0 += v5 + m7
	v15 = bits.RotateLeft32(v15^v0, -16)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -12)
	v0 += v5 + m2
	v15 = bits.RotateLeft32(v15^v0, -8)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -7)
	v1 += v6 + m5
	v12 = bits.RotateLeft32(v12^v1, -16)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -12)
	v1 += v6 + m3
	v12 = bits.RotateLeft32(v12^v1, -8)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -7)
	v2 += v7 + m0
	v13 = bits.RotateLeft32(v13^v2, -16)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -12)
	v2 += v7 + m1
	v13 = bits.RotateLeft32(v13^v2, -8)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -7)
	v3 += v4 + m6
	v14 = bits.RotateLeft32(v14^v3, -16)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -12)
	v3 += v4 + m4
	v14 = bits.RotateLeft32(v14^v3, -8)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -7)
	// round 6
	v0 += v4 + m9
	v12 = bits.RotateLeft32(v12^v0, -16)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -12)
	v0 += v4 + m14
	v12 = bits.RotateLeft32(v12^v0, -8)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -7)
	v1 += v5 + m11
	v13 = bits.RotateLeft32(v13^v1, -16)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -12)
	v1 += v5 + m5
	v13 = bits.RotateLeft32(v13^v1, -8)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -7)
	v2 += v6 + m8
	v14 = bits.RotateLeft32(v14^v2, -16)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -12)
	v2 += v6 + m12
	v14 = bits.RotateLeft32(v14^v2, -8)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -7)
	v3 += v7 + m15
	v15 = bits.RotateLeft32(v15^v3, -16)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -12)
	v3 += v7 + m1
	v15 = bits.RotateLeft32(v15^v3, -8)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -7)
	v0 += v5 + m13
	v15 = bits.RotateLeft32(v15^v0, -16)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -12)
	v0 += v5 + m3
	v15 = bits.RotateLeft32(v15^v0, -8)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -7)
	v1 += v6 + m0
	v12 = bits.RotateLeft32(v12^v1, -16)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -12)
	v1 += v6 + m10
	v12 = bits.RotateLeft32(v12^v1, -8)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -7)
	v2 += v7 + m2
	v13 = bits.RotateLeft32(v13^v2, -16)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -12)
	v2 += v7 + m6
	v13 = bits.RotateLeft32(v13^v2, -8)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -7)
	v3 += v4 + m4
	v14 = bits.RotateLeft32(v14^v3, -16)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -12)
	v3 += v4 + m7
	v14 = bits.RotateLeft32(v14^v3, -8)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -7)
	// round 7
	v0 += v4 + m11
	v12 = bits.RotateLeft32(v12^v0, -16)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -12)
	v0 += v4 + m15
	v12 = bits.RotateLeft32(v12^v0, -8)
	v8 += v12
	v4 = bits.RotateLeft32(v4^v8, -7)
	v1 += v5 + m5
	v13 = bits.RotateLeft32(v13^v1, -16)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -12)
	v1 += v5 + m0
	v13 = bits.RotateLeft32(v13^v1, -8)
	v9 += v13
	v5 = bits.RotateLeft32(v5^v9, -7)
	v2 += v6 + m1
	v14 = bits.RotateLeft32(v14^v2, -16)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -12)
	v2 += v6 + m9
	v14 = bits.RotateLeft32(v14^v2, -8)
	v10 += v14
	v6 = bits.RotateLeft32(v6^v10, -7)
	v3 += v7 + m8
	v15 = bits.RotateLeft32(v15^v3, -16)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -12)
	v3 += v7 + m6
	v15 = bits.RotateLeft32(v15^v3, -8)
	v11 += v15
	v7 = bits.RotateLeft32(v7^v11, -7)
	v0 += v5 + m14
	v15 = bits.RotateLeft32(v15^v0, -16)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -12)
	v0 += v5 + m10
	v15 = bits.RotateLeft32(v15^v0, -8)
	v10 += v15
	v5 = bits.RotateLeft32(v5^v10, -7)
	v1 += v6 + m2
	v12 = bits.RotateLeft32(v12^v1, -16)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -12)
	v1 += v6 + m12
	v12 = bits.RotateLeft32(v12^v1, -8)
	v11 += v12
	v6 = bits.RotateLeft32(v6^v11, -7)
	v2 += v7 + m3
	v13 = bits.RotateLeft32(v13^v2, -16)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -12)
	v2 += v7 + m4
	v13 = bits.RotateLeft32(v13^v2, -8)
	v8 += v13
	v7 = bits.RotateLeft32(v7^v8, -7)
	v3 += v4 + m7
	v14 = bits.RotateLeft32(v14^v3, -16)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -12)
	v3 += v4 + m13
	v14 = bits.RotateLeft32(v14^v3, -8)
	v9 += v14
	v4 = bits.RotateLeft32(v4^v9, -7)
	return [16]uint32{
		v0 ^ v8, v1 ^ v9, v2 ^ v10, v3 ^ v11, v4 ^ v12, v5 ^ v13, v6 ^ v14, v7 ^ v15,
		v8 ^ cv[0], v9 ^ cv[1], v10 ^ cv[2], v11 ^ cv[3], v12 ^ cv[4], v13 ^ cv[5], v14 ^ cv[6], v15 ^ cv[7],
	}
}

// b3CompressRef is the straightforward compression function of the reference
// implementation (state array, message permuted after each round).
func b3CompressRef(cv *[8]uint32, m *[16]uint32, counter uint64, blockLen, flags uint32) [16]uint32 {
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
	if len(block) >= b3BlockLen {
		block = block[:b3BlockLen]
		for i := range m {
			m[i] = binary.LittleEndian.Uint32(block[4*i:])
		}
		return m
	}
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

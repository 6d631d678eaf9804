package zstdchunked

import "golang.org/x/sys/cpu"

// rollsumKernel: rollState.roll uses the AVX-512 kernel rollsumScan, which
// needs AVX512F and AVX512BW (x/sys/cpu also checks that the OS saves the
// opmask and ZMM state). A variable so that the tests can run the pure-Go
// loop too.
var rollsumKernel = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

// rollsumScan rolls in[k] in and out[k] out for k < n, n a positive multiple
// of 32, and stops after the first 32-byte block holding a cut point (a byte
// after which s2&mask == mask; mask is 2^b-1, b <= 16). It returns that
// block's offset (n if there is none) and its cut points as a bit mask (bit
// j: byte off+j), and leaves in *st the state after the last byte rolled
// (off+32 or n), of which only the low 16 bits of s1 and s2 are right.
//
//go:noescape
func rollsumScan(in, out *byte, n int, st *rollState, mask uint32) (off int, hits uint32)

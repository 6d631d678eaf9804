//go:build !amd64

package zstdchunked

// rollsumKernel: no vector kernel on this architecture; rollState.roll uses
// its pure-Go loop.
var rollsumKernel = false

func rollsumScan(in, out *byte, n int, st *rollState, mask uint32) (off int, hits uint32) {
	panic("zstdchunked: no rolling-checksum kernel")
}

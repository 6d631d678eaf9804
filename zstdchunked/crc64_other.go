//go:build !amd64

package zstdchunked

const crcHasCLMUL = false

func crcFold(crc uint64, p []byte, k *[4]uint64) (lo, hi uint64) {
	panic("zstdchunked: no carry-less multiplication")
}

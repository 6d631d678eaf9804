package zstdchunked

// crcHasCLMUL: CPUID leaf 1 reports PCLMULQDQ in ECX bit 1 (SSE2, which the
// folding also uses, is part of amd64).
var crcHasCLMUL = crcCPUIDLeaf1ECX()&(1<<1) != 0

func crcCPUIDLeaf1ECX() uint32

// crcFold folds p (a multiple of 16 bytes, at least 64) with crc xored into
// its first word, down to one 16-byte block (see crc64.go).
//
//go:noescape
func crcFold(crc uint64, p []byte, k *[4]uint64) (lo, hi uint64)

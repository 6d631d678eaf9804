package zstdchunked

import "golang.org/x/sys/cpu"

// crcHasCLMUL: the folding needs PCLMULQDQ (and SSE2, part of amd64).
var crcHasCLMUL = cpu.X86.HasPCLMULQDQ

// crcFold folds p (a multiple of 16 bytes, at least 64) with crc xored into
// its first word, down to one 16-byte block (see crc64.go).
//
//go:noescape
func crcFold(crc uint64, p []byte, k *[4]uint64) (lo, hi uint64)

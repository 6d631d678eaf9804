package zstdchunked

import (
	"encoding/binary"
	"hash"
	"hash/crc64"
	"math/bits"
)

// The tar-split records the crc64 (ISO polynomial, as
// storage.CRCTable) of every file's payload: hash/crc64 computes it at about
// 0.9 GB/s (slicing by 8), a few percent of a conversion's CPU time. On amd64
// with PCLMULQDQ, crc64ISO folds 16-byte blocks with carry-less
// multiplications (four lanes of 64 bytes, then one) and lets hash/crc64
// finish the last 16 bytes and the tail; the value is the same.
//
// The folding, in the reflected bit order of this CRC: a 64-bit
// little-endian word w stands for the polynomial Σ w_j·x^(63-j), a 128-bit
// block for lo·x^64 + hi, and the carry-less product of two words for x times
// the product of their polynomials. A block X folded forward by d bits onto
// the block D at that distance becomes clmul(X.lo, k(64+d-1)) ⊕ clmul(X.hi,
// k(d-1)) ⊕ D, congruent modulo P to X·x^d + D, where k(n) is x^n mod P in
// that bit order. The CRC's initial value is xored into the first word, and
// the raw CRC of the folded block followed by the tail is the CRC of the
// whole input.

var crcISOTable = crc64.MakeTable(crc64.ISO)

// crcFoldKeys: fold by 512 bits (four lanes), then by 128.
var crcFoldKeys = [4]uint64{crcKey(512 + 63), crcKey(511), crcKey(128 + 63), crcKey(127)}

// crcKey returns x^n mod P (P = x^64 + x^4 + x^3 + x + 1), bit-reversed.
func crcKey(n int) uint64 {
	r := uint64(1)
	for range n {
		carry := r >> 63
		r <<= 1
		if carry != 0 {
			r ^= 0x1b
		}
	}
	return bits.Reverse64(r)
}

// crcMinFold is the shortest input worth folding.
const crcMinFold = 256

// crc64ISOUpdate is crc64.Update(crc, crc64.MakeTable(crc64.ISO), p).
func crc64ISOUpdate(crc uint64, p []byte) uint64 {
	if !crcHasCLMUL || len(p) < crcMinFold {
		return crc64.Update(crc, crcISOTable, p)
	}
	n := len(p) &^ 15
	lo, hi := crcFold(crc, p[:n], &crcFoldKeys)
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], lo)
	binary.LittleEndian.PutUint64(b[8:], hi)
	return crc64.Update(crc64.Update(^uint64(0), crcISOTable, b[:]), crcISOTable, p[n:])
}

// crc64ISO is crc64.New(storage.CRCTable), faster.
type crc64ISO struct{ crc uint64 }

var _ hash.Hash64 = (*crc64ISO)(nil)

func newCRC64ISO() *crc64ISO { return &crc64ISO{} }

func (d *crc64ISO) Size() int      { return crc64.Size }
func (d *crc64ISO) BlockSize() int { return 1 }
func (d *crc64ISO) Reset()         { d.crc = 0 }
func (d *crc64ISO) Sum64() uint64  { return d.crc }

func (d *crc64ISO) Write(p []byte) (int, error) {
	d.crc = crc64ISOUpdate(d.crc, p)
	return len(p), nil
}

func (d *crc64ISO) Sum(in []byte) []byte {
	return binary.BigEndian.AppendUint64(in, d.crc)
}

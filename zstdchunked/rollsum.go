package zstdchunked

import "math/bits"

// Rolling many bytes at once.
//
// Per byte, with in the byte entering the window and out the one leaving it
// (64 positions earlier), the checksum does
//
//	s1 += in - out
//	s2 += s1 - 64*(out+31)
//	cut after this byte if s2&mask == mask
//
// in uint32 arithmetic. The state after a byte does not depend on the cuts,
// so a block of bytes can be rolled at once and its cut points read off
// afterwards. For a block of bytes j = 0..31 starting from s1, s2:
//
//	d[j] = in[j] - out[j]
//	P[j] = d[0] + ... + d[j]                  (inclusive prefix sum)
//	s1 after byte j = s1 + P[j]
//	e[j] = s1 + P[j] - 64*(out[j]+31)         (what byte j adds to s2)
//	Q[j] = e[0] + ... + e[j]
//	s2 after byte j = s2 + Q[j]
//
// The kernel (rollsum_amd64.s) computes both prefix sums as vector scans over
// 32 lanes, one per byte. The lanes are 16 bits wide: the cut test reads only
// s2's low 16 bits, and those depend only on the low 16 bits of s1, in, out
// and the old s2 (addition, subtraction and multiplication by 64 carry only
// upwards), so arithmetic mod 2^16 finds exactly the same cut points as the
// uint32 loop. The state carried from block to block is s1 += P[31],
// s2 += Q[31], mod 2^16. The cut test is done on s2+1, carried instead of s2:
// for mask = 2^b-1, s2&mask == mask exactly when (s2+1)&mask == 0, one
// VPTESTNMW. A block with no cut point (nearly all of them: one byte in
// 64 KiB is a cut point on average) costs no taken branch; on a hit the
// kernel returns and Go cuts at every set bit of the block's mask, in order.
//
// The high 16 bits are restored once per rollData call by a closed form.
// Number the byte stream x, with x[-64..-1] the window before p (oldest
// first) and x[0..n-1] = p, so that the byte leaving when x[i] enters is
// x[i-64]. The sums telescope:
//
//	s1' = s1 + sum(x[i] - x[i-64], 0 <= i < n)
//	    = s1 + sum(x[m], n-64 <= m < n) - sum(x[m], -64 <= m < 0)
//
// and, since s1 after byte i is s1 + sum(x[k] - x[k-64], k <= i),
//
//	s2' = s2 + sum(s1 after byte i - 64*x[i-64] - 64*31, 0 <= i < n)
//	    = s2 + n*(s1 - 64*31) + sum((n-k)*(x[k] - x[k-64]), 0 <= k < n)
//	         - 64*sum(x[k-64], 0 <= k < n)
//	    = s2 + n*(s1 - 64*31) + sum((n-m)*x[m], n-64 <= m < n)
//	         - sum((n-m)*x[m], -64 <= m < 0)
//
// (every x[m] with 0 <= m < n-64 enters with weight n-m and leaves with
// weight n-m-64 plus 64: it cancels). All of it is exact in uint32 wrapping
// arithmetic and needs only the old window and the last 64 bytes.
//
// The byte leaving the window is p[i-64] from p[64] on; before that it comes
// from the window. rollData rolls the first 64 bytes against a copy of the
// window laid out oldest first, then the rest against p itself, so the kernel
// only ever sees two plain arrays, in and out.

// rollsumBlock is the kernel's block size in bytes.
const rollsumBlock = 32

// rollState is the part of rollsum that rollsumScan updates (the kernel reads
// and writes s1 at offset 0 and s2 at offset 4).
type rollState struct {
	s1, s2 uint32
}

// rollData rolls p through r, exactly as r.roll byte by byte, and calls
// cut(i) for every i (ascending) after which r.s2&mask == mask. mask must be
// 2^b-1 with b <= 16 (rollsumSplitMask; the tests use fewer bits). If
// len(p) > 64 the window ends up as p's last 64 bytes with wofs 0 (the same
// window as rolling byte by byte, rotated). If cut fails, rollData returns
// its error at once and leaves r as it was.
func (r *rollsum) rollData(p []byte, mask uint32, cut func(i int) error) error {
	var old [rollsumWindow]byte // the window, oldest byte first
	k := copy(old[:], r.window[r.wofs:])
	copy(old[k:], r.window[:r.wofs])
	st := rollState{r.s1, r.s2}
	head := min(len(p), rollsumWindow)
	if err := st.roll(p[:head], old[:head], 0, mask, cut); err != nil {
		return err
	}
	if len(p) > rollsumWindow {
		if err := st.roll(p[rollsumWindow:], p[:len(p)-rollsumWindow], rollsumWindow, mask, cut); err != nil {
			return err
		}
	}
	if rollsumKernel && len(p) >= rollsumBlock {
		// The kernel ran and left only the low 16 bits right.
		st = rollsumAfter(r.s1, r.s2, &old, p)
	}
	if len(p) > rollsumWindow {
		copy(r.window[:], p[len(p)-rollsumWindow:])
		r.wofs = 0
	} else {
		for _, ch := range p {
			r.window[r.wofs] = ch
			r.wofs = (r.wofs + 1) & (rollsumWindow - 1)
		}
	}
	r.s1, r.s2 = st.s1, st.s2
	return nil
}

// rollsumAfter is the exact state after rolling p from s1, s2 with the window
// old (oldest byte first): the closed form above.
func rollsumAfter(s1, s2 uint32, old *[rollsumWindow]byte, p []byte) rollState {
	n := uint32(len(p))
	var sumOld, wOld uint32
	for j, x := range old {
		// m = j-64, weight n-m.
		sumOld += uint32(x)
		wOld += (n + rollsumWindow - uint32(j)) * uint32(x)
	}
	var sumNew, wNew uint32
	// m from len(p)-64 to len(p)-1, weight n-m from 64 down to 1; m < 0 is
	// in the old window.
	for m := len(p) - rollsumWindow; m < len(p); m++ {
		var x byte
		if m >= 0 {
			x = p[m]
		} else {
			x = old[m+rollsumWindow]
		}
		sumNew += uint32(x)
		wNew += uint32(len(p)-m) * uint32(x)
	}
	return rollState{
		s1: s1 + sumNew - sumOld,
		s2: s2 + n*(s1-rollsumWindow*rollsumCharOffset) + wNew - wOld,
	}
}

// roll rolls in[k] in and out[k] out for every k, calling cut(base+k) at the
// cut points: whole blocks with the kernel if there is one, the rest (and
// everything without a kernel) one byte at a time.
func (st *rollState) roll(in, out []byte, base int, mask uint32, cut func(i int) error) error {
	out = out[:len(in)]
	k := 0
	if n := len(in) &^ (rollsumBlock - 1); n > 0 && rollsumKernel {
		for k < n {
			off, hits := rollsumScan(&in[k], &out[k], n-k, st, mask)
			k += off
			if hits == 0 {
				break // k == n
			}
			for ; hits != 0; hits &= hits - 1 {
				if err := cut(base + k + bits.TrailingZeros32(hits)); err != nil {
					return err
				}
			}
			k += rollsumBlock
		}
	}
	s1, s2 := st.s1, st.s2
	for ; k < len(in); k++ {
		drop := uint32(out[k])
		s1 += uint32(in[k]) - drop
		s2 += s1 - rollsumWindow*(drop+rollsumCharOffset)
		if s2&mask == mask {
			if err := cut(base + k); err != nil {
				return err
			}
		}
	}
	st.s1, st.s2 = s1, s2
	return nil
}

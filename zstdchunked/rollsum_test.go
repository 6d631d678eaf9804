package zstdchunked

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

// refRollData is the reference for rollsum.rollData: the byte-at-a-time loop
// that chunker.dataBytes used before the kernel, with the mask as a
// parameter. It returns the cut points.
func refRollData(r *rollsum, p []byte, mask uint32) []int {
	var cuts []int
	s1, s2, wofs := r.s1, r.s2, r.wofs
	w := &r.window
	head := min(len(p), rollsumWindow)
	for i := 0; i < head; i++ {
		ch := p[i]
		drop := uint32(w[wofs])
		s1 += uint32(ch) - drop
		s2 += s1 - rollsumWindow*(drop+rollsumCharOffset)
		w[wofs] = ch
		wofs = (wofs + 1) & (rollsumWindow - 1)
		if s2&mask == mask {
			cuts = append(cuts, i)
		}
	}
	if len(p) > rollsumWindow {
		in := p[rollsumWindow:]
		out := p[:len(in)]
		for k := 0; k < len(in); k++ {
			drop := uint32(out[k])
			s1 += uint32(in[k]) - drop
			s2 += s1 - rollsumWindow*(drop+rollsumCharOffset)
			if s2&mask == mask {
				cuts = append(cuts, k+rollsumWindow)
			}
		}
		copy(w[:], p[len(p)-rollsumWindow:])
		wofs = 0
	}
	r.s1, r.s2, r.wofs = s1, s2, wofs
	return cuts
}

// withKernel runs f with the kernel on (if the machine has one) and off.
func withKernel(t *testing.T, f func(t *testing.T)) {
	has := rollsumKernel
	defer func() { rollsumKernel = has }()
	for _, on := range []bool{true, false} {
		if on && !has {
			t.Log("no rolling-checksum kernel on this machine: pure Go only")
			continue
		}
		rollsumKernel = on
		t.Run(fmt.Sprintf("kernel=%v", on), f)
	}
}

// checkRollData rolls p from state r with both rollData and the reference
// and fails unless the cuts and the whole final state (s1, s2, window, wofs)
// agree. It returns the reference's final state.
func checkRollData(t *testing.T, what string, r rollsum, p []byte, mask uint32) rollsum {
	t.Helper()
	want := r
	wantCuts := refRollData(&want, p, mask)
	got := r
	var gotCuts []int
	if err := got.rollData(p, mask, func(i int) error { gotCuts = append(gotCuts, i); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotCuts, wantCuts) || got != want {
		t.Fatalf("%s: len %d, mask %#x, from s1 %#x s2 %#x wofs %d:\ncuts %v\nwant %v\nstate s1 %#x s2 %#x wofs %d window %x\nwant  s1 %#x s2 %#x wofs %d window %x",
			what, len(p), mask, r.s1, r.s2, r.wofs, gotCuts, wantCuts,
			got.s1, got.s2, got.wofs, got.window, want.s1, want.s2, want.wofs, want.window)
	}
	return want
}

// randomState is the state after rolling some random bytes (so the window
// offset is anything), with, half the time, s1 and s2 scrambled so that the
// high bits matter too (the loop is defined for any uint32 state).
func randomState(r *rand.Rand) rollsum {
	var rs rollsum
	rs.reset()
	for range r.Intn(200) {
		rs.roll(byte(r.Intn(256)))
	}
	if r.Intn(2) == 0 {
		rs.s1, rs.s2 = r.Uint32(), r.Uint32()
	}
	return rs
}

var rollsumTestMasks = []uint32{rollsumSplitMask, 0x3ff, 0x3f, 0x7, 0x1, 0}

// TestRollDataLengths: every length 0..300 at every alignment of p (the
// kernel's loads are unaligned, and the 32-byte blocks and the scalar tail
// fall differently), from random states, on random, text and constant data,
// with cut masks from the real one (rare cuts) to none (a cut after every
// byte: 32 in every block).
func TestRollDataLengths(t *testing.T) {
	withKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(1))
		bufs := [][]byte{randBytes(r, 400), textBytes(r, 400), zeros(400)}
		for i := range bufs[2] {
			bufs[2][i] = 0xff
		}
		for n := 0; n <= 300; n++ {
			for align := 0; align < 64; align++ {
				for bi, buf := range bufs {
					mask := rollsumTestMasks[(n+align+bi)%len(rollsumTestMasks)]
					checkRollData(t, fmt.Sprintf("buf %d align %d", bi, align), randomState(r), buf[align:align+n], mask)
				}
			}
		}
	})
}

// TestRollDataCarried: many calls of random lengths in a row, the state
// carried from one to the next, compared after every call.
func TestRollDataCarried(t *testing.T) {
	withKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(2))
		for _, mask := range rollsumTestMasks {
			var rs rollsum
			rs.reset()
			for range 2000 {
				var p []byte
				switch n := r.Intn(3000); r.Intn(4) {
				case 0:
					p = textBytes(r, n)
				case 1:
					p = randBytes(r, r.Intn(100))
				default:
					p = randBytes(r, n)
				}
				rs = checkRollData(t, "carried", rs, p, mask)
			}
		}
	})
}

// craftCuts returns n bytes that, rolled from rs, have a real (16-bit) cut
// point after every byte listed in at (ascending) and perhaps elsewhere: the
// byte at such a position is chosen to make s2's low 16 bits all ones, after
// re-drawing up to 64 bytes just before it (not before the previous cut made)
// until some byte value can. A position where that fails (at 0, or right
// after another cut point, there is little or nothing to re-draw) is left
// out; the positions hit are returned.
func craftCuts(r *rand.Rand, rs rollsum, n int, at []int) ([]byte, []int) {
	p := randBytes(r, n)
	var hit []int
	lo := 0 // bytes before lo are final
	for _, i := range at {
		if i >= n || i < lo {
			continue
		}
		from := max(lo, i-64)
		base := rs
		for _, c := range p[:from] {
			base.roll(c)
		}
		for try := 0; try < 4096; try++ {
			s := base
			for _, c := range p[from:i] {
				s.roll(c)
			}
			drop := uint32(s.window[s.wofs])
			// s2 + s1 + in - drop - 64*(drop+31) must be 0xffff mod 2^16.
			need := (rollsumSplitMask - s.s2 - s.s1 + drop + rollsumWindow*(drop+rollsumCharOffset)) & rollsumSplitMask
			if need < 256 {
				p[i] = byte(need)
				hit = append(hit, i)
				lo = i + 1
				break
			}
			if from == i {
				break
			}
			r.Read(p[from:i])
		}
	}
	return p, hit
}

// TestRollDataCrafted: real cut points where the kernel could go wrong: in
// the first 64 bytes (the byte leaving comes from the window), at the first
// and last byte of a block, at the last byte of p, two in a row, and several
// in one block.
func TestRollDataCrafted(t *testing.T) {
	withKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(3))
		total, inWindow, last, sameBlock := 0, 0, 0, 0
		for trial := range 2000 {
			rs := randomState(r)
			n := 1 + r.Intn(300)
			var at []int
			switch trial % 5 {
			case 0: // in the window
				at = []int{r.Intn(64)}
			case 1: // block edges
				b := r.Intn(10) * 32
				at = []int{b, b + 31}
			case 2: // the last byte
				at = []int{n - 1}
			case 3: // a run, in one block
				b := r.Intn(n)
				at = []int{b, b + 1, b + 2, b + 5}
			default:
				for i := r.Intn(20); i < n; i += 1 + r.Intn(40) {
					at = append(at, i)
				}
			}
			p, hit := craftCuts(r, rs, n, at)
			total += len(hit)
			for j, i := range hit {
				switch {
				case i < rollsumWindow:
					inWindow++
				case i == n-1:
					last++
				}
				if j > 0 && hit[j-1]/rollsumBlock == i/rollsumBlock {
					sameBlock++
				}
			}
			want := rs
			cuts := refRollData(&want, p, rollsumSplitMask)
			for _, i := range hit {
				if !slices.Contains(cuts, i) {
					t.Fatalf("craftCuts: no cut at %d (cuts %v)", i, cuts)
				}
			}
			checkRollData(t, "crafted", rs, p, rollsumSplitMask)
			// The same, fed in two pieces.
			k := r.Intn(n + 1)
			rs = checkRollData(t, "crafted, first piece", rs, p[:k], rollsumSplitMask)
			checkRollData(t, "crafted, second piece", rs, p[k:], rollsumSplitMask)
		}
		t.Logf("%d cut points crafted: %d in the first 64 bytes, %d at the last byte, %d in the block of the one before", total, inWindow, last, sameBlock)
		if total < 2000 || inWindow < 300 || last < 200 || sameBlock < 200 {
			t.Fatal("too few cut points crafted")
		}
	})
}

// TestRollsumAfter: the closed form of the final state agrees with rolling
// byte by byte, from any state and window offset, for every length.
func TestRollsumAfter(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for n := 0; n <= 300; n++ {
		for range 20 {
			rs := randomState(r)
			var old [rollsumWindow]byte
			k := copy(old[:], rs.window[rs.wofs:])
			copy(old[k:], rs.window[:rs.wofs])
			p := randBytes(r, n)
			got := rollsumAfter(rs.s1, rs.s2, &old, p)
			for _, c := range p {
				rs.roll(c)
			}
			if got.s1 != rs.s1 || got.s2 != rs.s2 {
				t.Fatalf("len %d: s1 %#x s2 %#x, want %#x %#x", n, got.s1, got.s2, rs.s1, rs.s2)
			}
		}
	}
}

// TestRollDataCutError: an error from cut stops rollData at once and leaves
// the state as it was.
func TestRollDataCutError(t *testing.T) {
	withKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(5))
		rs := randomState(r)
		p := randBytes(r, 1000)
		before := rs
		calls := 0
		err := rs.rollData(p, 0x7, func(int) error { calls++; return fmt.Errorf("stop") })
		if err == nil || calls != 1 || rs != before {
			t.Fatalf("err %v after %d calls, state changed: %v", err, calls, rs != before)
		}
	})
}

package zstdchunked

import (
	"hash/crc64"
	"math/rand"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"
)

// TestCRC64ISO: crc64ISO gives what crc64.New(storage.CRCTable) gives, for
// every length around the folding thresholds, unaligned inputs, any initial
// value and any split into writes.
func TestCRC64ISO(t *testing.T) {
	r := rand.New(rand.NewSource(64))
	buf := make([]byte, 70000)
	r.Read(buf)
	check := func(what string, crc uint64, p []byte) {
		t.Helper()
		if got, want := crc64ISOUpdate(crc, p), crc64.Update(crc, storage.CRCTable, p); got != want {
			t.Fatalf("%s: len %d, crc %#x: %#x, want %#x", what, len(p), crc, got, want)
		}
	}
	for n := 0; n <= 3*crcMinFold; n++ {
		check("length", 0, buf[:n])
		check("unaligned", r.Uint64(), buf[1+n%13:1+n%13+n])
	}
	for range 300 {
		n := r.Intn(len(buf))
		off := r.Intn(len(buf) - n + 1)
		check("random", r.Uint64(), buf[off:off+n])
	}
	zeros := make([]byte, 1<<20)
	check("zeros", 0, zeros)
	check("zeros", ^uint64(0), zeros)

	h, ref := newCRC64ISO(), crc64.New(storage.CRCTable)
	for range 50 {
		h.Reset()
		ref.Reset()
		for p := buf[:r.Intn(len(buf))]; len(p) > 0; {
			k := min(len(p), r.Intn(5000))
			h.Write(p[:k])
			ref.Write(p[:k])
			p = p[k:]
		}
		if string(h.Sum([]byte("x"))) != string(ref.Sum([]byte("x"))) || h.Sum64() != ref.Sum64() {
			t.Fatalf("split writes: %x, want %x", h.Sum(nil), ref.Sum(nil))
		}
	}
	if h.Size() != ref.Size() || h.BlockSize() != ref.BlockSize() {
		t.Fatal("Size or BlockSize differ")
	}
	t.Logf("carry-less multiplication: %v", crcHasCLMUL)
}

func BenchmarkCRC64ISO(b *testing.B) {
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.Run("stdlib", func(b *testing.B) {
		for range b.N {
			crc64.Update(0, storage.CRCTable, buf)
		}
	})
	b.Run("folding", func(b *testing.B) {
		for range b.N {
			crc64ISOUpdate(0, buf)
		}
	})
}

//go:build linux

package convert

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// The write-back writer writes every byte it is given, in order, and asks the kernel to start
// writing each full writebackEvery-byte stretch (the rest is left to the final fsync).
func TestWritebackWriter(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "layer"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 2*writebackEvery+12345)
	rand.New(rand.NewSource(1)).Read(data)
	type call struct{ off, n int64 }
	var calls []call
	defer func(f func(int, int64, int64, int) error) { syncFileRange = f }(syncFileRange)
	real := syncFileRange
	syncFileRange = func(fd int, off, n int64, flags int) error {
		calls = append(calls, call{off, n})
		if err := real(fd, off, n, flags); err != nil {
			t.Errorf("sync_file_range(%d, %d): %v", off, n, err)
		}
		return nil
	}
	w := newWritebackWriter(f)
	for p := data; len(p) > 0; {
		k := min(len(p), 1<<20-7)
		if n, err := w.Write(p[:k]); n != k || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		p = p[k:]
	}
	// The kernel was asked for consecutive stretches of at least writebackEvery bytes from 0 to
	// within writebackEvery of the end.
	var next int64
	for _, c := range calls {
		if c.off != next || c.n < writebackEvery {
			t.Fatalf("write-back calls %v: want consecutive stretches of at least %d bytes from 0", calls, writebackEvery)
		}
		next += c.n
	}
	if len(calls) == 0 || int64(len(data))-next >= writebackEvery {
		t.Errorf("write-back calls %v cover %d of %d bytes, want all but less than %d", calls, next, len(data), writebackEvery)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("the file differs from what was written")
	}
}

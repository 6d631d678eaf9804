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
	w := newWritebackWriter(f)
	for p := data; len(p) > 0; {
		k := min(len(p), 1<<20-7)
		if n, err := w.Write(p[:k]); n != k || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		p = p[k:]
	}
	if w.written != int64(len(data)) || w.begun <= 0 || w.written-w.begun >= writebackEvery {
		t.Errorf("write-back started up to %d of %d bytes, want all but less than %d", w.begun, w.written, writebackEvery)
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

package gunzip

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
)

// TestSpeedFile decodes $GUNZIP_SPEED_FILE with this package and klauspost's
// gzip and prints both times (a measuring aid, not a timed assertion).
func TestSpeedFile(t *testing.T) {
	path := os.Getenv("GUNZIP_SPEED_FILE")
	if path == "" {
		t.Skip("GUNZIP_SPEED_FILE not set")
	}
	run := func(name string, open func(io.Reader) (io.Reader, error)) {
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		start := time.Now()
		r, err := open(bufio.NewReaderSize(fh, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fmt.Printf("%-10s %d bytes %x %v\n", name, n, h.Sum(nil)[:8], time.Since(start))
	}
	for range 3 {
		run("klauspost", func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) })
		run("gunzip", func(r io.Reader) (io.Reader, error) { return NewReader(r) })
		run("parallel", func(r io.Reader) (io.Reader, error) { return NewParallelReader(r) })
	}
}

func BenchmarkFile(b *testing.B) {
	path := os.Getenv("GUNZIP_SPEED_FILE")
	if path == "" {
		b.Skip("GUNZIP_SPEED_FILE not set")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := NewReader(bytesReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

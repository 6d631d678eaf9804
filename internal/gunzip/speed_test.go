package gunzip

import (
	"bytes"
	"io"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// BenchmarkDecode compares this package with klauspost's gzip reader on the
// mixed sample at gzip level 6 (go test -bench Decode ./internal/gunzip).
// The layer-sized figures are in make bench.
func BenchmarkDecode(b *testing.B) {
	s := samples(b)
	var content []byte
	for _, k := range []string{"text", "mix", "periods", "random"} {
		content = append(content, s[k]...)
	}
	data := encoders()["stdlib-6"](content)
	for _, d := range []struct {
		name string
		open func(io.Reader) (io.Reader, error)
	}{
		{"gunzip", func(r io.Reader) (io.Reader, error) { return NewReader(r) }},
		{"gunzip-parallel", func(r io.Reader) (io.Reader, error) {
			z, err := NewParallelReader(r)
			return struct{ io.Reader }{z}, err
		}},
		{"klauspost", func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) }},
	} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(content)))
			for b.Loop() {
				r, err := d.open(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, r); err != nil || n != int64(len(content)) {
					b.Fatal(n, err)
				}
			}
		})
	}
}

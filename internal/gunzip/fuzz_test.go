package gunzip

import (
	"bytes"
	"testing"
)

// FuzzDecode: whatever the input, this package and compress/gzip agree on
// whether it is a valid gzip stream, and on its content when it is.
func FuzzDecode(f *testing.F) {
	for _, s := range samples(f) {
		s = s[:min(len(s), 3000)]
		for _, name := range []string{"stdlib-6", "stdlib-0", "stdlib--2", "klauspost-1", "stdlib-flushes"} {
			f.Add(encoders()[name](s))
		}
	}
	// A raw dynamic block with long codes, wrapped.
	f.Add(append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}, dynamicBlock(func() []uint8 {
		l := make([]uint8, 257)
		l['a'], l[256] = 1, 1
		return l
	}(), []uint8{0}, 'a', 256)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := reference(data)
		for _, d := range decoders {
			got, err := decodeWith(d.open, bytes.NewReader(data), false)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%s: error %v, compress/gzip: %v", d.name, err, wantErr)
			}
			if err == nil && !bytes.Equal(got, want) {
				t.Fatalf("%s: content differs from compress/gzip's", d.name)
			}
		}
	})
}

package testimages

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
)

// Content describes the data of a regular file as a sequence of chunks:
// literal bytes, runs of zeros, and pseudo-random data generated from a seed.
// The zero value is an empty file. Content values are immutable and cheap to
// copy; the data is only materialised by Bytes or WriteTo.
type Content struct {
	chunks []chunk
}

type chunkKind int

const (
	chunkBytes  chunkKind = iota // literal data
	chunkZeros                   // n zero bytes
	chunkRandom                  // n incompressible pseudo-random bytes
	chunkText                    // n bytes of compressible pseudo-random text
)

type chunk struct {
	kind chunkKind
	data []byte
	n    int64
	seed uint64
}

// Bytes returns Content holding a copy of b.
func Bytes(b []byte) Content {
	if len(b) == 0 {
		return Content{}
	}
	return Content{chunks: []chunk{{kind: chunkBytes, data: bytes.Clone(b), n: int64(len(b))}}}
}

// String returns Content holding s.
func String(s string) Content { return Bytes([]byte(s)) }

// Zeros returns Content made of n zero bytes.
func Zeros(n int64) Content { return Content{chunks: []chunk{{kind: chunkZeros, n: n}}} }

// Random returns n bytes of incompressible pseudo-random data derived from
// seed (a PCG stream); the same seed always gives the same bytes.
func Random(seed uint64, n int64) Content {
	return Content{chunks: []chunk{{kind: chunkRandom, n: n, seed: seed}}}
}

// Text returns n bytes of compressible pseudo-random text (lines of words
// picked from a small vocabulary) derived from seed.
func Text(seed uint64, n int64) Content {
	return Content{chunks: []chunk{{kind: chunkText, n: n, seed: seed}}}
}

// Concat returns the concatenation of parts.
func Concat(parts ...Content) Content {
	var c Content
	for _, p := range parts {
		c.chunks = append(c.chunks, p.chunks...)
	}
	return c
}

// Size returns the total length of the content in bytes.
func (c Content) Size() int64 {
	var n int64
	for _, ch := range c.chunks {
		n += ch.n
	}
	return n
}

// Bytes materialises the content.
func (c Content) Bytes() []byte {
	var buf bytes.Buffer
	buf.Grow(int(c.Size()))
	_, _ = c.WriteTo(&buf)
	return buf.Bytes()
}

// WriteTo writes the content to w.
func (c Content) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, ch := range c.chunks {
		var data []byte
		switch ch.kind {
		case chunkBytes:
			data = ch.data
		case chunkZeros:
			data = make([]byte, ch.n)
		case chunkRandom:
			data = randomBytes(ch.seed, ch.n)
		case chunkText:
			data = randomText(ch.seed, ch.n)
		}
		n, err := w.Write(data)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// newRand returns the package's deterministic generator for seed. Only
// PCG.Uint64 is used (never the *rand.Rand helpers), so the streams depend
// on nothing but the PCG algorithm itself.
func newRand(seed uint64) *rand.PCG {
	return rand.NewPCG(seed, 0x66_6d_74_63_6f_6e_76) // "fmtconv"
}

func randomBytes(seed uint64, n int64) []byte {
	r := newRand(seed)
	out := make([]byte, (n+7)/8*8)
	for i := 0; i < len(out); i += 8 {
		binary.LittleEndian.PutUint64(out[i:], r.Uint64())
	}
	return out[:n]
}

var vocabulary = []string{
	"container", "image", "layer", "tar", "gzip", "zstd", "chunked", "stargz",
	"nydus", "blob", "digest", "manifest", "index", "config", "rootfs",
	"diff", "whiteout", "opaque", "xattr", "symlink", "hardlink", "device",
	"the", "a", "of", "and", "to", "in", "is", "for", "with", "on", "lorem",
	"ipsum", "dolor", "sit", "amet", "registry", "storage", "overlay",
	"mount", "kernel", "bytes", "offset", "compression", "format", "convert",
	"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
	"0", "1", "42", "1024", "65535", "deadbeef", "/usr/bin", "/etc/passwd",
}

func randomText(seed uint64, n int64) []byte {
	r := newRand(seed)
	out := make([]byte, 0, n+64)
	line := 0
	for int64(len(out)) < n {
		w := vocabulary[r.Uint64()%uint64(len(vocabulary))]
		if line > 0 && line+1+len(w) > 72 {
			out = append(out, '\n')
			line = 0
		} else if line > 0 {
			out = append(out, ' ')
			line++
		}
		out = append(out, w...)
		line += len(w)
	}
	return out[:n]
}

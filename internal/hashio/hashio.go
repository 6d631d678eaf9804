// Package hashio holds the stream wrappers every stage uses: readers and writers that hash (sha256)
// and count what passes through them, and a reader that stops once its context is done.
package hashio

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"

	digest "github.com/opencontainers/go-digest"
)

// Reader hashes and counts what is read through it.
type Reader struct {
	r io.Reader
	h hash.Hash
	N int64
}

// NewReader wraps r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r, h: sha256.New()} }

func (c *Reader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.N += int64(n)
	return n, err
}

// Digest is the sha256 of what was read so far.
func (c *Reader) Digest() digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, c.h.Sum(nil))
}

// Writer hashes and counts what is written through it.
type Writer struct {
	w io.Writer
	h hash.Hash
	N int64
}

// NewWriter wraps w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, h: sha256.New()} }

func (c *Writer) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.N += int64(n)
	return n, err
}

// Digest is the sha256 of what was written so far.
func (c *Writer) Digest() digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, c.h.Sum(nil))
}

// ContextReader makes reads from r fail once ctx is done, so long copies stop on cancellation.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

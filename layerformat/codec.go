package layerformat

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
)

// Decode returns the uncompressed tar stream of a blob in format f. Chunked formats decode as
// the plain gzip or zstd streams they are, so every byte of their tar view (TOC entries and landmarks
// included) comes out; stripping those is a conversion decision, not a decoding one.
func Decode(f Format, r io.Reader) (io.ReadCloser, error) {
	switch f.Kind {
	case Uncompressed:
		return io.NopCloser(r), nil
	case Gzip, Estargz:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case Zstd, ZstdChunked:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("cannot decode a %s layer", f)
}

// EncodeResult describes what an encoder wrote.
type EncodeResult struct {
	// Annotations are the layer annotations the target format needs (for instance the TOC position).
	Annotations map[string]string
	// DiffID is the sha256 of the uncompressed stream the blob decodes to.
	DiffID digest.Digest
	// UncompressedSize is that stream's length.
	UncompressedSize int64
	// TOCDigest is the digest runtimes look a chunked layer up by, if the format has one.
	TOCDigest digest.Digest
	// Deviation is set when the blob differs from what the format's reference writer would have
	// produced for the same input and level, and says why (for example to keep the diff_id).
	Deviation string
}

// ErrNotImplemented marks targets whose encoder does not exist yet.
var ErrNotImplemented = errors.New("not implemented")

// Encode compresses the tar stream tar into w in format k at the given level. It reads tar to its
// end; the returned DiffID is computed from the stream the blob really decodes to.
func Encode(ctx context.Context, k Kind, w io.Writer, tar io.Reader, level int) (*EncodeResult, error) {
	switch k {
	case Uncompressed:
		return encodeStream(ctx, w, tar, func(w io.Writer) (io.WriteCloser, error) { return nopWriteCloser{w}, nil })
	case Gzip:
		// pgzip at a given level writes the same bytes whatever GOMAXPROCS is (fixed 1 MiB blocks),
		// and the same bytes as containers/image, so registries deduplicate our blobs with skopeo's.
		return encodeStream(ctx, w, tar, func(w io.Writer) (io.WriteCloser, error) { return pgzip.NewWriterLevel(w, level) })
	case Zstd:
		// The same encoder settings as containers/image, whose output does not depend on concurrency.
		return encodeStream(ctx, w, tar, func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
		})
	case ZstdChunked:
		return encodeZstdChunked(ctx, w, tar, level)
	}
	return nil, fmt.Errorf("encoding to %s: %w", k, ErrNotImplemented)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// encodeStream runs a plain (lossless, non-chunked) compressor; its diff_id is the input's digest.
func encodeStream(ctx context.Context, w io.Writer, tar io.Reader, newWriter func(io.Writer) (io.WriteCloser, error)) (*EncodeResult, error) {
	cw, err := newWriter(w)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(cw, h), ContextReader(ctx, tar))
	if err != nil {
		cw.Close()
		return nil, err
	}
	if err := cw.Close(); err != nil {
		return nil, err
	}
	return &EncodeResult{DiffID: digestOf(h), UncompressedSize: n}, nil
}

func digestOf(h hash.Hash) digest.Digest { return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)) }

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

// ContentError is a layer whose content the target format cannot represent (duplicate paths, a
// PAX global header, ...). Code is the stable refusal code.
type ContentError struct {
	Code   string
	Path   string
	Reason string
}

func (e *ContentError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("%s: %s", e.Path, e.Reason)
	}
	return e.Reason
}

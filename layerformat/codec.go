package layerformat

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/fmtconv/fmtconv/estargz"
	"github.com/fmtconv/fmtconv/internal/gunzip"
	"github.com/fmtconv/fmtconv/internal/hashio"
	"github.com/fmtconv/fmtconv/nydus"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
)

// DecodeOptions say how a layer is read as a tar stream.
type DecodeOptions struct {
	// StripEstargzFiles removes what eStargz adds to the tar (stargz.index.json, the landmark
	// files) and ends the archive properly, so the stream is an ordinary layer. Without it every
	// format decodes to exactly the stream its diff_id is the digest of.
	StripEstargzFiles bool
}

// StripsEstargzFiles reports whether decoding f with StripEstargzFiles changes the stream.
func StripsEstargzFiles(f Format) bool {
	return f.Kind == Estargz || (f.Kind == ZstdChunked && f.Dialect == DialectStargz)
}

// Decode returns the uncompressed tar stream of a blob in format f. Chunked formats decode as
// the plain gzip or zstd streams they are; whether eStargz's own files stay is the caller's choice.
// The caller must Close it: a gzip stream is inflated on a goroutine of its own until then.
func Decode(f Format, r io.Reader, o DecodeOptions) (io.ReadCloser, error) {
	switch f.Kind {
	case Uncompressed:
		return io.NopCloser(r), nil
	case Gzip, Estargz, NydusBootstrap: // nydus-snapshotter writes the bootstrap layer as tar+gzip
		// The stream is inflated on a goroutine of its own, up to 1 MiB ahead of the reader, so
		// the hashing and encoding that read it run beside the inflating, not after it.
		zr, err := gunzip.NewParallelReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if o.StripEstargzFiles && StripsEstargzFiles(f) {
			return closeBoth{StripEstargzFiles(zr), zr}, nil
		}
		return zr, nil
	case Zstd, ZstdChunked:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		rc := zr.IOReadCloser()
		if o.StripEstargzFiles && StripsEstargzFiles(f) {
			return closeBoth{StripEstargzFiles(rc), rc}, nil
		}
		return rc, nil
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
	// NydusLayer is what the image's merged Nydus bootstrap needs of a packed layer (its own
	// bootstrap, blob id and size, TOC digest, the directories its tar only implied).
	NydusLayer *nydus.LayerBootstrap
	// Deviation is set when the blob differs from what the format's reference writer would have
	// produced for the same input and level, and says why (for example to keep the diff_id).
	Deviation string
}

// ErrNotImplemented marks targets whose encoder does not exist yet.
var ErrNotImplemented = errors.New("not implemented")

// EncodeOptions are the encoder settings; a zero field means the format's default.
type EncodeOptions struct {
	// Level is the compression level (gzip 1-9, zstd 1-22); 0 means DefaultLevel.
	Level int
	// Estargz settings: the largest payload per gzip member, how many uncompressed bytes small
	// files may share one member with, and the files to put first (prefetched).
	EstargzChunkSize, EstargzMinChunkSize int
	EstargzPrioritizedFiles               []string
	// Nydus settings: chunk compressor ("zstd", "lz4_block", "none"), chunk size, prefetch patterns.
	NydusCompressor       string
	NydusChunkSize        uint32
	NydusPrefetchPatterns []string
	// TempDir is where encoders that must spool (eStargz with prioritized files) do so.
	TempDir string
}

// Encode compresses the tar stream tar into w in format k. It reads tar to its end; the returned
// DiffID is computed from the stream the blob really decodes to.
func Encode(ctx context.Context, k Kind, w io.Writer, tar io.Reader, o EncodeOptions) (*EncodeResult, error) {
	level := o.Level
	if level == 0 {
		level = DefaultLevel(k)
	}
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
	case Estargz:
		o.Level = level
		return encodeEstargz(ctx, w, tar, o)
	case NydusBlob:
		return encodeNydus(ctx, w, tar, o)
	}
	return nil, fmt.Errorf("encoding to %s: %w", k, ErrNotImplemented)
}

// EncodeMemory is about how much live heap converting one layer to kind k keeps, whatever the
// layer's size: the encoder's buffers, windows and workers, the decoder of the source, and what
// a destination keeps while a blob streams to it. Measured on the GOROOT corpus at GOMAXPROCS 2
// (GODEBUG=gctrace=1, the largest live heap after a collection, rounded up); encoders whose
// workers follow GOMAXPROCS need more on machines with more cores. Converters use it to run
// layers in parallel only as far as the process's memory limit allows.
func EncodeMemory(k Kind) int64 {
	const mib = 1 << 20
	switch k {
	case ZstdChunked:
		return 96 * mib // 16 MiB ring, 8 MiB of batches, an 8 MiB window per worker and for large frames
	case Estargz:
		return 112 * mib // 4 MiB chunks compressed ahead on every worker
	case NydusBlob, Nydus:
		return 64 * mib
	case Zstd:
		return 32 * mib
	case Gzip:
		return 16 * mib
	}
	return 8 * mib // uncompressed, or a blob copied as it is
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// encodeStream runs a plain (lossless, non-chunked) compressor; its diff_id is the input's digest.
// A tar that is a *hashio.Reader nothing was read from yet is already hashed as it is read: its
// digest is the diff_id, without a second sha256 pass over the stream.
func encodeStream(ctx context.Context, w io.Writer, tar io.Reader, newWriter func(io.Writer) (io.WriteCloser, error)) (*EncodeResult, error) {
	cw, err := newWriter(w)
	if err != nil {
		return nil, err
	}
	src, ok := tar.(*hashio.Reader)
	if !ok || src.N != 0 {
		src = hashio.NewReader(tar)
	}
	// The compressors read straight into their block buffers (io.ReaderFrom).
	n, err := io.Copy(cw, hashio.ContextReader(ctx, src))
	if err != nil {
		cw.Close()
		return nil, err
	}
	if err := cw.Close(); err != nil {
		return nil, err
	}
	return &EncodeResult{DiffID: src.Digest(), UncompressedSize: n}, nil
}

func digestOf(h hash.Hash) digest.Digest { return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)) }

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

// StripEstargzFiles filters an uncompressed eStargz tar stream into an ordinary layer: the
// stargz.index.json entry and the landmark files are removed, every other entry is copied byte for
// byte, and the archive ends with two zero blocks.
func StripEstargzFiles(tar io.Reader) io.ReadCloser { return estargz.StripTar(tar) }

type closeBoth struct {
	io.ReadCloser
	inner io.Closer
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if e := c.inner.Close(); err == nil {
		err = e
	}
	return err
}

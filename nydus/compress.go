package nydus

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstdDecoders pools streaming decoders. Chunks are at most 16 MiB, so the
// window is bounded accordingly; the output is always bounded by the caller.
var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(64<<20),
		zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		panic(err)
	}
	return d
}}

// zstdChunkDecoders decode whole chunks with DecodeAll; the output of one call
// is bounded by the largest chunk size.
var zstdChunkDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(64<<20),
		zstd.WithDecoderMaxMemory(MaxChunkSize+1))
	if err != nil {
		panic(err)
	}
	return d
}}

// ErrUnsupported is wrapped by errors for valid but unsupported features
// (gzip/zran chunks, batch chunks, encryption, tarfs mode).
var ErrUnsupported = errors.New("nydus: unsupported feature")

// decompressChunk decompresses one chunk that must have exactly n bytes;
// anything else (short, long, corrupt) is an error. Memory for the output is
// only committed once the input can plausibly produce it.
func decompressChunk(algo Compressor, src []byte, n int) ([]byte, error) {
	if n > MaxChunkSize {
		return nil, fmt.Errorf("chunk of %d bytes over the maximum chunk size", n)
	}
	switch algo {
	case CompressNone:
		if len(src) != n {
			return nil, fmt.Errorf("stored size %d ≠ expected %d", len(src), n)
		}
		return bytes.Clone(src), nil
	case CompressLZ4Block:
		// an LZ4 sequence expands at most ~255× (one length byte → 255 bytes)
		if n > 255*len(src)+64 {
			return nil, fmt.Errorf("lz4: %d bytes cannot decompress to %d", len(src), n)
		}
		dst := make([]byte, n)
		if err := lz4DecompressBlock(src, dst); err != nil {
			return nil, err
		}
		return dst, nil
	case CompressZstd:
		var h zstd.Header
		if err := h.Decode(src); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if h.HasFCS && h.FrameContentSize != uint64(n) {
			return nil, fmt.Errorf("zstd: frame holds %d bytes, expected %d", h.FrameContentSize, n)
		}
		d := zstdChunkDecoders.Get().(*zstd.Decoder)
		defer zstdChunkDecoders.Put(d)
		out, err := d.DecodeAll(src, make([]byte, 0, min(n, 64*len(src)+64<<10)))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(out) != n {
			return nil, fmt.Errorf("zstd: decompressed %d bytes, expected %d", len(out), n)
		}
		return out, nil
	case CompressGzip:
		return nil, fmt.Errorf("%w: gzip (zran) chunks", ErrUnsupported)
	}
	return nil, fmt.Errorf("%w: compressor %d", ErrUnsupported, uint32(algo))
}

// decompressLimited decompresses a whole section (a bootstrap or a ci array)
// whose uncompressed size is expected to be want bytes; at most limit bytes are
// produced, and memory grows only with real output. With CompressNone, src
// itself is returned.
func decompressLimited(algo Compressor, src []byte, want, limit int64) ([]byte, error) {
	if want < 0 || want > limit {
		return nil, fmt.Errorf("uncompressed size %d over the limit %d", want, limit)
	}
	switch algo {
	case CompressNone:
		if int64(len(src)) != want {
			return nil, fmt.Errorf("stored size %d ≠ expected %d", len(src), want)
		}
		return src, nil
	case CompressLZ4Block:
		dst := make([]byte, want)
		if err := lz4DecompressBlock(src, dst); err != nil {
			return nil, err
		}
		return dst, nil
	case CompressZstd:
		d := zstdDecoders.Get().(*zstd.Decoder)
		defer func() {
			_ = d.Reset(nil)
			zstdDecoders.Put(d)
		}()
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			return nil, err
		}
		// preallocate what the input can plausibly expand to, grow beyond only with real output
		buf := bytes.NewBuffer(make([]byte, 0, min(want+1, 64*int64(len(src))+64<<10)))
		n, err := io.Copy(buf, io.LimitReader(d, want+1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if n != want {
			return nil, fmt.Errorf("zstd: decompressed %d bytes, expected %d", n, want)
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("%w: compressor %d", ErrUnsupported, uint32(algo))
}

// chunkDigest computes the chunk digest of uncompressed data.
func chunkDigest(algo Digester, data []byte) ([32]byte, error) {
	switch algo {
	case DigestBlake3:
		return blake3Sum256(data), nil
	case DigestSHA256:
		return sha256.Sum256(data), nil
	}
	return [32]byte{}, fmt.Errorf("%w: digester %d", ErrUnsupported, uint32(algo))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

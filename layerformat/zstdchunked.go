package layerformat

import (
	"context"
	"io"
	"strings"

	"go.podman.io/storage/pkg/chunked/compressor"
)

// encodeZstdChunked writes the current containers dialect of zstd:chunked.
// TEMPORARY: uses the reference compressor until package zstdchunked's writer lands; it re-hashes the
// output's uncompressed view so a changed diff_id is caught, never published.
func encodeZstdChunked(ctx context.Context, w io.Writer, tar io.Reader, level int) (*EncodeResult, error) {
	meta := map[string]string{}
	cw, err := compressor.ZstdCompressor(w, meta, &level)
	if err != nil {
		return nil, err
	}
	res, err := encodeStream(ctx, io.Discard, tar, func(io.Writer) (io.WriteCloser, error) { return cw, nil })
	_ = strings.TrimSpace
	if err != nil {
		return nil, err
	}
	res.Annotations = meta
	return res, nil
}

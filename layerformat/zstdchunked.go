package layerformat

import (
	"context"
	"errors"
	"io"

	"github.com/fmtconv/fmtconv/zstdchunked"
)

// encodeZstdChunked writes the current containers dialect of zstd:chunked with package
// zstdchunked, whose blob is byte-identical to go.podman.io/storage's compressor except where
// keeping the input bytes (the diff_id) needs a different stream; Deviation then says why.
func encodeZstdChunked(ctx context.Context, w io.Writer, tar io.Reader, level int) (*EncodeResult, error) {
	res, err := zstdchunked.Encode(ctx, w, tar, zstdchunked.EncodeOptions{Level: level})
	if err != nil {
		var u *zstdchunked.UnsupportedInputError
		if errors.As(err, &u) {
			return nil, &ContentError{Code: u.Code, Path: u.Path, Reason: u.Reason}
		}
		return nil, err
	}
	out := &EncodeResult{Annotations: res.Annotations, DiffID: res.DiffID, UncompressedSize: res.UncompressedSize, TOCDigest: res.TOCDigest}
	if res.Deviated {
		out.Deviation = "zstd:chunked stream differs from containers/storage's compressor to keep the diff_id: " + res.DeviationReason
	}
	return out, nil
}

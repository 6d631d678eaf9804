package layerformat

import (
	"context"
	"errors"
	"io"

	"github.com/fmtconv/fmtconv/internal/hashio"
	"github.com/fmtconv/fmtconv/zstdchunked"
)

// encodeZstdChunked writes the current containers dialect of zstd:chunked with package
// zstdchunked, whose blob is byte-identical to go.podman.io/storage's compressor except where
// keeping the input bytes (the diff_id) needs a different stream; Deviation then says why.
func encodeZstdChunked(ctx context.Context, w io.Writer, tar io.Reader, level int) (*EncodeResult, error) {
	// What the caller's hashio reader and writer hash already is not hashed again.
	in, hashedIn := tar.(*hashio.Reader)
	hashedIn = hashedIn && in.N == 0
	_, hashedOut := w.(*hashio.Writer)
	res, err := zstdchunked.Encode(ctx, w, tar, zstdchunked.EncodeOptions{Level: level, NoDiffID: hashedIn, NoDigest: hashedOut})
	if err != nil {
		var u *zstdchunked.UnsupportedInputError
		if errors.As(err, &u) {
			return nil, &ContentError{Code: u.Code, Path: u.Path, Reason: u.Reason}
		}
		return nil, err
	}
	if hashedIn {
		// Encode keeps the input bytes: the diff_id is the input's digest.
		res.DiffID = in.Digest()
	}
	out := &EncodeResult{Annotations: res.Annotations, DiffID: res.DiffID, UncompressedSize: res.UncompressedSize, TOCDigest: res.TOCDigest}
	if res.Deviated {
		out.Deviation = "zstd:chunked stream differs from containers/storage's compressor to keep the diff_id: " + res.DeviationReason
	}
	return out, nil
}

package layerformat

import (
	"context"
	"errors"
	"io"

	"github.com/fmtconv/fmtconv/estargz"
)

// encodeEstargz writes an eStargz blob with package estargz (reproducible whatever GOMAXPROCS is).
// The tar is rewritten (landmark first, TOC entry last), so the diff_id changes.
func encodeEstargz(ctx context.Context, w io.Writer, tar io.Reader, o EncodeOptions) (*EncodeResult, error) {
	res, err := estargz.Encode(ctx, w, tar, estargz.EncodeOptions{Level: o.Level, ChunkSize: o.EstargzChunkSize,
		MinChunkSize: o.EstargzMinChunkSize, PrioritizedFiles: o.EstargzPrioritizedFiles, TempDir: o.TempDir,
		// Each layer takes the prioritized files it holds: one list serves a whole image.
		AllowPrioritizedNotFound: true,
		// A layer's hard link target is relative to its root; anything else is refused.
		StrictHardlinks: true})
	if err != nil {
		var u *estargz.UnsupportedInputError
		if errors.As(err, &u) {
			return nil, &ContentError{Code: u.Code, Path: u.Path, Reason: u.Reason}
		}
		return nil, err
	}
	return &EncodeResult{Annotations: res.Annotations, DiffID: res.DiffID, UncompressedSize: res.UncompressedSize, TOCDigest: res.TOCDigest}, nil
}

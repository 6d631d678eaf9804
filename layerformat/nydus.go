package layerformat

import (
	"context"
	"errors"
	"io"

	"github.com/fmtconv/fmtconv/nydus"
)

// encodeNydus packs one layer into a Nydus data blob (chunk data, blob.meta, blob.digest, the
// layer's own bootstrap and the blob TOC) with package nydus. A Nydus blob is not compressed at the
// layer level, so its diff_id is its digest.
func encodeNydus(ctx context.Context, w io.Writer, tar io.Reader, o EncodeOptions) (*EncodeResult, error) {
	res, err := nydus.Pack(ctx, w, tar, nydus.PackOptions{Compressor: o.NydusCompressor, ChunkSize: o.NydusChunkSize,
		PrefetchPatterns: o.NydusPrefetchPatterns, TempDir: o.TempDir})
	if err != nil {
		var pe *nydus.PackError
		if errors.As(err, &pe) {
			return nil, &ContentError{Code: pe.Code, Path: pe.Path, Reason: pe.Msg}
		}
		return nil, err
	}
	lb := res.LayerBootstrap()
	return &EncodeResult{Annotations: map[string]string{AnnotationNydusBlob: "true"}, DiffID: res.Digest,
		UncompressedSize: res.Size, NydusLayer: &lb}, nil
}

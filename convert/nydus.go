package convert

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/nydus"
	digest "github.com/opencontainers/go-digest"
)

// fromNydus rebuilds an ordinary layer from a Nydus data blob: the blob is spooled (its bootstrap
// and chunks are read out of order), its own inline bootstrap is opened, and the tree is written as
// a tar stream (whiteouts as .wh. entries) into the target encoder. A Nydus blob's diff_id is its
// digest, since the blob is stored uncompressed.
func (c *converter) fromNydus(ctx context.Context, j *layerJob, r io.Reader, out io.Writer, from layerformat.Format,
	plan manifestedit.LayerPlan, rep *LayerReport) (*layerResult, error) {
	spool, err := os.CreateTemp(c.o.TempDir, "fmtconv-nydus-")
	if err != nil {
		return nil, err
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(spool, h), layerformat.ContextReader(ctx, r))
	if err != nil {
		return nil, err
	}
	sourceDiffID := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
	fs, err := nydus.OpenLayer(spool, n, nil)
	if err != nil {
		return nil, manifestedit.Refuse(manifestedit.UnknownLayerFormat, j.desc.Digest.String(),
			fmt.Sprintf("the Nydus blob cannot be read: %v", err), "check it with fmtconv verify")
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(fs.ToTar(pw, &nydus.TarOptions{Whiteouts: nydus.WhiteoutOCI}))
	}()
	defer pr.Close()
	enc, err := layerformat.Encode(ctx, plan.To.Kind, out, pr, c.encodeOptions())
	if err != nil {
		return nil, fmt.Errorf("encoding to %s: %w", plan.To, err)
	}
	rep.Action, rep.DiffID, rep.TOCDigest = "converted", enc.DiffID, enc.TOCDigest
	rep.Target = LayerSide{Format: plan.To.String()}
	return &layerResult{from: from, sourceDiffID: sourceDiffID, diffID: enc.DiffID, report: *rep,
		change: manifestedit.LayerChange{Target: plan.To.Kind, Annotations: enc.Annotations}}, nil
}

package convert

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/fmtconv/fmtconv/internal/hashio"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/nydus"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
	n, err := io.Copy(spool, hashio.ContextReader(ctx, r))
	if err != nil {
		return nil, err
	}
	// r checked the blob against its digest as it was read to the end, and a Nydus blob is stored
	// uncompressed: its digest is its diff_id, no second hash needed.
	sourceDiffID := j.desc.Digest
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

// nydusBootstraps returns, when the image's layers were packed into Nydus blobs by this run, each
// layer's own bootstrap with its blob id, bottom first (nil otherwise).
func (c *converter) nydusBootstraps(m *manifestedit.Manifest) []nydus.LayerBootstrap {
	if c.o.Target != layerformat.Nydus {
		return nil
	}
	var out []nydus.LayerBootstrap
	for _, l := range m.Layers {
		j, ok := c.layers[l.Digest]
		if !ok || j.result == nil {
			continue // dropped
		}
		if j.result.nydusLayer == nil {
			return nil // already a Nydus image: its bootstrap layer is reused
		}
		out = append(out, *j.result.nydusLayer)
	}
	return out
}

// writeNydusBootstrap merges the layers' bootstraps (applying whiteouts and opaque directories) and
// writes the bootstrap layer as nydus-snapshotter does: a gzip tar holding image/image.boot.
func (c *converter) writeNydusBootstrap(ctx context.Context, layers []nydus.LayerBootstrap) (ocispec.Descriptor, digest.Digest, error) {
	merged, err := nydus.Merge(layers, nydus.MergeOptions{PrefetchPatterns: c.o.NydusPrefetchPatterns})
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("merging Nydus bootstraps: %w", err)
	}
	tmp, err := os.CreateTemp(c.o.TempDir, "fmtconv-bootstrap-")
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	info, err := nydus.BootstrapLayerTar(tmp, merged.Bootstrap)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc := ocispec.Descriptor{MediaType: layerformat.MediaTypeOCIGzip, Digest: info.Digest, Size: info.Size,
		Annotations: map[string]string{layerformat.AnnotationNydusBootstrap: "true", layerformat.AnnotationNydusFSVersion: "6"}}
	err = c.retry(ctx, "nydus bootstrap", func() error {
		if ok, err := c.dst.HasBlob(ctx, desc); err != nil || ok {
			return err
		}
		return c.putBlobFile(ctx, tmp, desc)
	})
	return desc, info.DiffID, err
}

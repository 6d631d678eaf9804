package convert

import (
	"context"
	"fmt"

	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeMergedOCI writes the blobs of the OCI manifest kept beside an image's Nydus manifest
// (--nydus-merge-platform): the empty layer and the edited config. The source layers were copied
// with the other blobs. The manifest is the one the plan decided, digest for digest.
func (c *converter) writeMergedOCI(ctx context.Context, img *image) (*editedImage, error) {
	mo, err := manifestedit.NydusMergedOCI(img.src)
	if err != nil {
		return nil, err
	}
	if mo.Descriptor.Digest != img.plan.MergedOCI.Digest {
		return nil, fmt.Errorf("manifest %s: the OCI manifest beside the Nydus one is %s, the plan said %s", img.src.Digest, mo.Descriptor.Digest, img.plan.MergedOCI.Digest)
	}
	emptyBlob, emptyDesc := manifestedit.NydusEmptyLayer()
	if err := c.retry(ctx, "empty layer", func() error { return c.putBytes(ctx, emptyBlob, emptyDesc, false) }); err != nil {
		return nil, fmt.Errorf("empty layer: %w", err)
	}
	if err := c.retry(ctx, "config "+mo.ConfigDescriptor.Digest.String(), func() error {
		return c.putBytes(ctx, mo.Config, mo.ConfigDescriptor, true)
	}); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	m := img.src.Manifest
	c.report.Manifests = append(c.report.Manifests, ManifestReport{Platform: img.plan.Platform, SourceDigest: img.src.Digest,
		Digest: mo.Descriptor.Digest, MediaType: mo.Descriptor.MediaType, SourceConfig: m.Config.Digest, Config: mo.ConfigDescriptor.Digest,
		ConfigRewrites: true, Merged: "oci"})
	c.report.Layers = append(c.report.Layers, LayerReport{Manifest: img.src.Digest, Index: -1, Action: "added",
		Target: LayerSide{Digest: emptyDesc.Digest, Format: string(layerformat.Gzip), Size: emptyDesc.Size, MediaType: emptyDesc.MediaType},
		DiffID: manifestedit.NydusEmptyLayerDiffID, Note: "empty first layer of the OCI manifest beside the Nydus one (--nydus-merge-platform)"})
	return &editedImage{raw: mo.Manifest, desc: mo.Descriptor}, nil
}

// writeMergedIndex writes every manifest of a --nydus-merge-platform conversion and the index
// holding them: the OCI manifests (and whatever else the source index held, attestations
// following their subject's OCI manifest) first, then the Nydus manifests, then the commit.
func (c *converter) writeMergedIndex(ctx context.Context, index *manifestedit.Index, images []*image, edited []*editedImage) error {
	var ociEntries, nydusEntries []ocispec.Descriptor
	newDigest := map[digest.Digest]digest.Digest{}
	for k, img := range images {
		if e := edited[k].mergedOCI; e != nil {
			newDigest[img.src.Digest] = e.desc.Digest
		}
	}
	put := func(e *editedImage) error {
		return c.retry(ctx, "manifest "+e.desc.Digest.String(), func() error { return c.dst.PutManifest(ctx, e.raw, e.desc.MediaType, &e.desc.Digest) })
	}
	for k, img := range images {
		e := edited[k]
		var src ocispec.Descriptor
		if index != nil {
			src = index.Manifests[img.slot]
		}
		if e.mergedOCI == nil { // an attestation or artifact of the source index, passed through
			if err := put(e); err != nil {
				return err
			}
			if img.plan.Role == manifestedit.RoleAttestation {
				src.Annotations = manifestedit.RewriteAttestationReference(src.Annotations, newDigest)
			}
			ociEntries = append(ociEntries, src)
			continue
		}
		for _, m := range []*editedImage{e.mergedOCI, e} {
			if err := put(m); err != nil {
				return err
			}
		}
		oci, ny := manifestedit.NydusMergedEntries(src, img.src.Config, img.src.Digest, e.mergedOCI.desc, e.desc)
		ociEntries, nydusEntries = append(ociEntries, oci), append(nydusEntries, ny)
	}
	b, err := manifestedit.NydusMergedIndex(index, append(ociEntries, nydusEntries...))
	if err != nil {
		return err
	}
	if err := c.retry(ctx, "index", func() error { return c.dst.PutManifest(ctx, b, layerformat.MediaTypeOCIIndex, nil) }); err != nil {
		return err
	}
	c.report.Digest, c.report.MediaType = digest.FromBytes(b), layerformat.MediaTypeOCIIndex
	return c.retry(ctx, "commit", func() error { return c.dst.Commit(ctx) })
}

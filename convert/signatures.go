package convert

import (
	"context"
	"fmt"
	"strings"

	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/transport"
	digest "github.com/opencontainers/go-digest"
)

// signatureArtifactTypes are the artifact types of signatures found as OCI referrers.
var signatureArtifactTypes = map[string]string{
	"application/vnd.dev.cosign.artifact.sig.v1+json":      "cosign signature",
	"application/vnd.cncf.notary.signature":                "notation signature",
	"application/vnd.dev.sigstore.bundle.v0.3+json":        "sigstore bundle",
	"application/vnd.dev.sigstore.bundle+json;version=0.3": "sigstore bundle",
}

// signatureReferrers reads the referrers fallback tag (an index of the manifests that refer to
// a digest) and names the signatures among them; SBOMs and other referrers do not count.
func (c *converter) signatureReferrers(ctx context.Context, tag string) ([]string, error) {
	name := c.src.Name()
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	} else if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	src, err := transport.OpenSource(ctx, name+":"+tag, c.o.Src)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	raw, mt, err := src.Manifest(ctx, nil)
	if err != nil {
		return nil, err
	}
	if mt != layerformat.MediaTypeOCIIndex {
		return nil, nil
	}
	ix, err := manifestedit.ParseIndex(raw, mt)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range ix.Manifests {
		if kind, ok := signatureArtifactTypes[d.ArtifactType]; ok {
			out = append(out, kind)
		}
	}
	return out, nil
}

// findSignatures lists what signs the source: signatures containers/image returns for the top
// manifest or any selected instance, and, for registries, cosign's `sha256-<hex>.sig` tags and the
// referrers fallback tag `sha256-<hex>` of any of those manifests. The rules decide what to do.
func (c *converter) findSignatures(ctx context.Context, top []byte, images []*image) ([]string, error) {
	digests := []digest.Digest{digest.FromBytes(top)}
	var out []string
	sigs, err := c.src.Signatures(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reading signatures: %w", err)
	}
	if len(sigs) > 0 {
		out = append(out, fmt.Sprintf("%d containers/image signature(s) on %s", len(sigs), digests[0]))
	}
	for _, img := range images {
		if img.slot < 0 {
			continue
		}
		digests = append(digests, img.src.Digest)
		d := img.src.Digest
		sigs, err := c.src.Signatures(ctx, &d)
		if err != nil {
			return nil, fmt.Errorf("reading signatures of %s: %w", d, err)
		}
		if len(sigs) > 0 {
			out = append(out, fmt.Sprintf("%d containers/image signature(s) on %s", len(sigs), d))
		}
	}
	tags, err := c.src.Tags(ctx)
	if err != nil {
		// Some registries do not let everyone list tags; the conversion goes on, and says so.
		c.report.Warnings = append(c.report.Warnings, fmt.Sprintf("could not list tags to look for signature tags: %v", err))
	}
	have := map[string]bool{}
	for _, t := range tags {
		have[t] = true
	}
	for _, d := range digests {
		base := strings.Replace(d.String(), ":", "-", 1)
		if have[base+".sig"] {
			out = append(out, fmt.Sprintf("cosign signature tag %s.sig for %s", base, d))
		}
		if have[base] {
			kinds, err := c.signatureReferrers(ctx, base)
			if err != nil {
				return nil, fmt.Errorf("reading the referrers tag %s: %w", base, err)
			}
			for _, k := range kinds {
				out = append(out, fmt.Sprintf("%s referrer of %s (tag %s)", k, d, base))
			}
		}
	}
	return out, nil
}

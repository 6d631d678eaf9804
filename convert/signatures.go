package convert

import (
	"context"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

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
			out = append(out, fmt.Sprintf("referrers tag %s for %s", base, d))
		}
	}
	return out, nil
}

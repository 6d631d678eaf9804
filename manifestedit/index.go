package manifestedit

import (
	"encoding/json"
	"fmt"
	"maps"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Index is an OCI image index or a Docker manifest list, with its raw bytes.
type Index struct {
	MediaType string
	Raw       []byte
	Manifests []ocispec.Descriptor
	fields    map[string]json.RawMessage
}

// ParseIndex parses an OCI image index or Docker manifest list.
func ParseIndex(raw []byte, mediaType string) (*Index, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("parsing index: %w", err)
	}
	var ix struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &ix); err != nil {
		return nil, fmt.Errorf("parsing index: %w", err)
	}
	for i, d := range ix.Manifests {
		if err := d.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("index entry %d: %w", i, err)
		}
	}
	return &Index{MediaType: mediaType, Raw: raw, Manifests: ix.Manifests, fields: fields}, nil
}

// InstanceChange is what happened to one index entry: dropped (filtered out) or rewritten to a
// new manifest. Platform, annotations and every other descriptor field are kept.
type InstanceChange struct {
	Drop bool
	// Digest gives the entry's new media type, digest and size.
	Digest ocispec.Descriptor
	// Annotations, if not nil, replace the entry's annotations.
	Annotations map[string]string
}

// EditIndex returns the index bytes with each entry changed as told (changes[i] applies to
// ix.Manifests[i]) and the given media type. An unchanged index keeps its bytes.
func EditIndex(ix *Index, outType string, changes []InstanceChange) ([]byte, error) {
	if len(changes) != len(ix.Manifests) {
		return nil, fmt.Errorf("index has %d entries, %d changes given", len(ix.Manifests), len(changes))
	}
	out := make([]ocispec.Descriptor, 0, len(ix.Manifests))
	for i, d := range ix.Manifests {
		c := changes[i]
		if c.Drop {
			continue
		}
		d.Annotations = maps.Clone(d.Annotations)
		if c.Annotations != nil {
			d.Annotations = c.Annotations
		}
		d.Digest, d.Size, d.MediaType = c.Digest.Digest, c.Digest.Size, c.Digest.MediaType
		out = append(out, d)
	}
	fields := maps.Clone(ix.fields)
	if outType == "application/vnd.docker.distribution.manifest.list.v2+json" {
		for _, k := range []string{"annotations", "subject", "artifactType"} {
			delete(fields, k)
		}
	}
	set := map[string]any{"manifests": out}
	if _, had := fields["mediaType"]; had || outType != ix.MediaType {
		set["mediaType"] = outType
	}
	for k, v := range set {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		fields[k] = b
	}
	if sameJSON(fields, ix.fields) {
		return ix.Raw, nil
	}
	return marshalOrdered(fields, indexKeyOrder)
}

// RewriteAttestationReference returns an attestation entry's annotations with the digest of the
// manifest it attests replaced by that manifest's new digest.
func RewriteAttestationReference(ann map[string]string, newDigest map[digest.Digest]digest.Digest) map[string]string {
	out := maps.Clone(ann)
	if nd, ok := newDigest[digest.Digest(ann[AnnotationReferenceDigest])]; ok {
		out[AnnotationReferenceDigest] = nd.String()
	}
	return out
}

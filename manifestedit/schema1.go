package manifestedit

import (
	"encoding/json"
	"fmt"

	"github.com/fmtconv/fmtconv/layerformat"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
)

// Schema1 is a Docker schema1 source. It has no config: the pipeline computes every layer's
// diff_id from the content and then builds the config (containers/image's own translation of the
// v1Compatibility history), so the image can only become OCI.
type Schema1 struct {
	m *manifest.Schema1
}

// ParseSchema1 reads a schema1 manifest as a Manifest whose layers are its non-empty layers, root
// first, with unknown sizes (-1), and the Schema1 needed to build the config later.
func ParseSchema1(raw []byte, mediaType string) (*Manifest, *Schema1, error) {
	s1, err := manifest.Schema1FromManifest(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing schema1 manifest: %w", err)
	}
	m := &Manifest{MediaType: mediaType, Raw: raw, fields: map[string]json.RawMessage{"schemaVersion": json.RawMessage("2")}}
	for _, l := range s1.LayerInfos() {
		if l.EmptyLayer {
			continue
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerformat.MediaTypeDockerGzip, Digest: l.Digest, Size: -1})
	}
	if len(m.Layers) == 0 {
		return nil, nil, fmt.Errorf("schema1 manifest has no layers")
	}
	m.Config = ocispec.Descriptor{MediaType: layerformat.MediaTypeOCIConfig}
	return m, &Schema1{m: s1}, nil
}

// Config builds the image config from the schema1 history and the diff_ids computed from content.
func (s *Schema1) Config(diffIDs []digest.Digest) ([]byte, error) {
	return s.m.ToSchema2Config(diffIDs)
}

// IsSchema1 reports whether a manifest media type is Docker schema1.
func IsSchema1(mediaType string) bool {
	return mediaType == layerformat.MediaTypeDockerSchema1 || mediaType == layerformat.MediaTypeDockerSchema1Signed
}

package manifestedit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/fmtconv/fmtconv/layerformat"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest is an image manifest (OCI or Docker schema2, which share this shape) with its raw
// bytes, so that fields fmtconv does not know survive an edit.
type Manifest struct {
	MediaType string
	Raw       []byte
	Config    ocispec.Descriptor
	Layers    []ocispec.Descriptor
	fields    map[string]json.RawMessage
}

// ParseManifest parses an OCI or Docker schema2 image manifest.
func ParseManifest(raw []byte, mediaType string) (*Manifest, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	var m struct {
		Config ocispec.Descriptor   `json:"config"`
		Layers []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if m.Config.Digest == "" {
		return nil, fmt.Errorf("manifest has no config descriptor")
	}
	for i, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("manifest layer %d: %w", i, err)
		}
	}
	return &Manifest{MediaType: mediaType, Raw: raw, Config: m.Config, Layers: m.Layers, fields: fields}, nil
}

// ArtifactType returns the manifest's artifactType field, if any.
func (m *Manifest) ArtifactType() string {
	var s string
	if raw, ok := m.fields["artifactType"]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// LayerChange is what the pipeline produced for one layer.
type LayerChange struct {
	// Reused means the source blob is used as it is.
	Reused bool
	Digest digest.Digest
	Size   int64
	// Target is the kind the new blob is in.
	Target layerformat.Kind
	// Annotations are the target format's own annotations for the new blob.
	Annotations map[string]string
}

// EditLayer returns the descriptor of a layer after a change, in a manifest of type outType. A layer
// that leaves a format loses that format's annotations and gains the target's; every other
// annotation is kept. A reused layer keeps its descriptor, with only its media type mapped when the
// manifest type changes (Docker schema2 to OCI, or back).
func EditLayer(src ocispec.Descriptor, from layerformat.Format, ch LayerChange, outType string) ocispec.Descriptor {
	oci := outType == layerformat.MediaTypeOCIManifest
	d := src
	d.Annotations = maps.Clone(src.Annotations)
	nondist := layerformat.IsNondistributable(src.MediaType)
	kind := ch.Target
	if ch.Reused {
		kind = from.Kind
		if d.Size < 0 { // a schema1 source: sizes are learnt from the blob
			d.Size = ch.Size
		}
	} else {
		d.Digest, d.Size = ch.Digest, ch.Size
		// A new blob: what the old format's annotations said about the old blob is wrong now, also
		// when the format stays (another dialect, or --force). The encoder gives the new ones.
		for _, k := range layerformat.OwnedAnnotations(from.Kind) {
			delete(d.Annotations, k)
		}
		// A converted blob is a new blob: its old URLs (foreign layers) no longer point at it.
		d.URLs = nil
	}
	// The media type follows the bytes, except when a reused layer keeps its type in an unchanged manifest type.
	if !ch.Reused || src.MediaType == "" || mediaTypeFamilyChanged(src.MediaType, oci) {
		if mt := layerformat.LayerMediaType(kind, oci, nondist); mt != "" {
			d.MediaType = mt
		}
	}
	if !ch.Reused {
		for k, v := range ch.Annotations {
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations[k] = v
		}
	}
	if len(d.Annotations) == 0 {
		d.Annotations = nil
	}
	if !oci {
		// Docker schema2 descriptors have no annotations field.
		d.Annotations = nil
	}
	return d
}

func mediaTypeFamilyChanged(mt string, oci bool) bool {
	isOCI := bytes.HasPrefix([]byte(mt), []byte("application/vnd.oci."))
	return isOCI != oci
}

// DroppedAnnotations lists the layer annotations that a schema2 manifest would lose, for a warning.
func DroppedAnnotations(layers []ocispec.Descriptor, outType string) []string {
	if outType == layerformat.MediaTypeOCIManifest {
		return nil
	}
	var out []string
	for i, l := range layers {
		for k := range l.Annotations {
			out = append(out, fmt.Sprintf("layer %d: %s", i, k))
		}
	}
	return out
}

// ConfigMediaType is the config media type for a manifest type. The config bytes never change
// because of a manifest type change: OCI and Docker image configs are the same JSON.
func ConfigMediaType(src string, outType string, target layerformat.Kind) string {
	switch {
	case src == layerformat.MediaTypeNydusConfig && target != layerformat.Nydus:
		// A Nydus manifest of a merged-platform index that becomes an ordinary image.
		if outType == layerformat.MediaTypeDockerManifest {
			return layerformat.MediaTypeDockerConfig
		}
		return layerformat.MediaTypeOCIConfig
	case outType == layerformat.MediaTypeOCIManifest && src == layerformat.MediaTypeDockerConfig:
		return layerformat.MediaTypeOCIConfig
	case outType == layerformat.MediaTypeDockerManifest && src == layerformat.MediaTypeOCIConfig:
		return layerformat.MediaTypeDockerConfig
	}
	return src
}

// EditManifest returns the bytes of m with a new media type, config and layers. When nothing
// changes it returns m.Raw itself, so the manifest digest stays.
func EditManifest(m *Manifest, outType string, config ocispec.Descriptor, layers []ocispec.Descriptor) ([]byte, error) {
	return editManifest(m, outType, config, layers, nil)
}

// editManifest is EditManifest that also sets manifest annotations (OCI only).
func editManifest(m *Manifest, outType string, config ocispec.Descriptor, layers []ocispec.Descriptor, annotations map[string]string) ([]byte, error) {
	fields := maps.Clone(m.fields)
	if outType == layerformat.MediaTypeDockerManifest {
		// Fields Docker schema2 does not have.
		for _, k := range []string{"annotations", "subject", "artifactType"} {
			delete(fields, k)
		}
	}
	set := func(k string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fields[k] = b
		return nil
	}
	if _, had := fields["mediaType"]; had || outType != m.MediaType {
		if err := set("mediaType", outType); err != nil {
			return nil, err
		}
	}
	if err := set("config", config); err != nil {
		return nil, err
	}
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	if err := set("layers", layers); err != nil {
		return nil, err
	}
	if len(annotations) > 0 && outType == layerformat.MediaTypeOCIManifest {
		ann := map[string]string{}
		if raw, ok := fields["annotations"]; ok {
			if err := json.Unmarshal(raw, &ann); err != nil {
				return nil, fmt.Errorf("manifest annotations: %w", err)
			}
		}
		maps.Copy(ann, annotations)
		if err := set("annotations", ann); err != nil {
			return nil, err
		}
	}
	if sameJSON(fields, m.fields) {
		return m.Raw, nil
	}
	return marshalOrdered(fields, manifestKeyOrder)
}

var manifestKeyOrder = []string{"schemaVersion", "mediaType", "artifactType", "config", "layers", "subject", "annotations"}
var indexKeyOrder = []string{"schemaVersion", "mediaType", "artifactType", "manifests", "subject", "annotations"}

func sameJSON(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !jsonEqual(v, w) {
			return false
		}
	}
	return true
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// marshalOrdered writes a JSON object with the well-known keys first, in the order the specs
// show them, then the rest sorted, so that output is deterministic and reads naturally.
func marshalOrdered(fields map[string]json.RawMessage, order []string) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	write := func(k string, v json.RawMessage) {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		var c bytes.Buffer
		if json.Compact(&c, v) == nil {
			buf.Write(c.Bytes())
		} else {
			buf.Write(v)
		}
	}
	done := map[string]bool{}
	for _, k := range order {
		if v, ok := fields[k]; ok {
			write(k, v)
			done[k] = true
		}
	}
	rest := make([]string, 0, len(fields))
	for k := range fields {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	slicesSort(rest)
	for _, k := range rest {
		write(k, fields[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

package manifestedit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"github.com/fmtconv/fmtconv/layerformat"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A merged-platform Nydus index (nydusify --merge-platform, acceleration-service merge_manifest,
// fmtconv --nydus-merge-platform) holds, per platform, the source's OCI manifest with an empty
// gzip layer prepended, followed by the Nydus manifests. Plain runtimes pick the OCI manifest;
// nydus-snapshotter picks the Nydus one by its artifactType. The empty layer gives the OCI
// image's layers new chain IDs, so a runtime never mixes its snapshots with those of the stock
// image (acceleration-service pkg/driver/nydus PrependEmptyLayer).
const (
	// AnnotationNydusEmptyLayer marks the prepended empty layer.
	AnnotationNydusEmptyLayer = "containerd.io/snapshot/nydus-empty-layer"
	// AnnotationNydusSourceDigest is the source manifest's digest, on the OCI manifest and its
	// index entry.
	AnnotationNydusSourceDigest = "containerd.io/snapshot/nydus-source-digest"
)

// NydusEmptyLayerHistory is the history entry acceleration-service prepends for the empty layer
// (no timestamp, so that converting twice gives the same config).
var NydusEmptyLayerHistory = map[string]string{"created_by": "Nydus Converter", "comment": "Nydus Empty Layer"}

// NydusEmptyLayer returns the empty layer's blob (Go's gzip of an empty tar: 1024 zero bytes, as
// acceleration-service writes it), its descriptor in an OCI manifest and its diff_id.
var NydusEmptyLayer = sync.OnceValues(func() ([]byte, ocispec.Descriptor) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if tw.Close() != nil || gz.Close() != nil {
		panic("gzip of an empty tar into memory failed")
	}
	b := buf.Bytes()
	return b, ocispec.Descriptor{MediaType: layerformat.MediaTypeOCIGzip, Digest: digest.FromBytes(b), Size: int64(len(b)),
		Annotations: map[string]string{AnnotationNydusEmptyLayer: "true"}}
})

// NydusEmptyLayerDiffID is the diff_id of the empty layer: sha256 of 1024 zero bytes.
var NydusEmptyLayerDiffID = digest.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256(make([]byte, 1024))))

// MergedOCIImage is the OCI manifest a merged-platform index keeps beside a Nydus manifest: the
// source's layers as they are, after the empty layer; the config's diff_ids and history with the
// empty layer's first; the manifest annotated with the source digest. The manifest is always OCI,
// since Docker schema2 cannot carry the annotations and the index holding it is an OCI index.
type MergedOCIImage struct {
	Manifest         []byte
	Descriptor       ocispec.Descriptor
	Config           []byte
	ConfigDescriptor ocispec.Descriptor
}

// NydusMergedOCI builds the OCI side of one image of a merged-platform index from its source
// manifest and config.
func NydusMergedOCI(sm SourceManifest) (*MergedOCIImage, error) {
	m := sm.Manifest
	if sm.Schema1 != nil || sm.Config == nil {
		return nil, fmt.Errorf("manifest %s: no image config to prepend the empty layer to", sm.Digest)
	}
	diffIDs, err := ConfigDiffIDs(sm.Config)
	if err != nil {
		return nil, err
	}
	config, err := EditConfigDiffIDs(sm.Config, append([]digest.Digest{NydusEmptyLayerDiffID}, diffIDs...))
	if err == nil {
		config, err = addHistory(config, NydusEmptyLayerHistory, true)
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", sm.Digest, err)
	}
	oci := layerformat.MediaTypeOCIManifest
	cfgDesc := m.Config
	cfgDesc.MediaType = ConfigMediaType(m.Config.MediaType, oci, layerformat.Gzip)
	cfgDesc.Digest, cfgDesc.Size = digest.FromBytes(config), int64(len(config))
	_, empty := NydusEmptyLayer()
	layers := []ocispec.Descriptor{empty}
	for _, l := range m.Layers {
		layers = append(layers, EditLayer(l, claimedFormat(l), LayerChange{Reused: true}, oci))
	}
	raw, err := editManifest(m, oci, cfgDesc, layers, map[string]string{AnnotationNydusSourceDigest: sm.Digest.String()})
	if err != nil {
		return nil, err
	}
	return &MergedOCIImage{Manifest: raw, Descriptor: ocispec.Descriptor{MediaType: oci, Digest: digest.FromBytes(raw), Size: int64(len(raw))},
		Config: config, ConfigDescriptor: cfgDesc}, nil
}

// ConfigPlatform is the platform an image config states (nil if it states none), for the index
// entries of an image that had none.
func ConfigPlatform(config []byte) *ocispec.Platform {
	var c struct {
		OS           string   `json:"os"`
		Architecture string   `json:"architecture"`
		Variant      string   `json:"variant"`
		OSVersion    string   `json:"os.version"`
		OSFeatures   []string `json:"os.features"`
	}
	if json.Unmarshal(config, &c) != nil || c.OS == "" || c.Architecture == "" {
		return nil
	}
	return &ocispec.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant, OSVersion: c.OSVersion, OSFeatures: c.OSFeatures}
}

// NydusMergedEntries returns one image's two index entries: the OCI manifest's (the source entry's
// fields, annotated with the source digest) and the Nydus manifest's (the same platform and
// annotations, with the Nydus artifactType). src is the source index entry (zero for a single
// image, whose platform comes from its config).
func NydusMergedEntries(src ocispec.Descriptor, config []byte, sourceDigest digest.Digest, oci, nydus ocispec.Descriptor) (ociEntry, nydusEntry ocispec.Descriptor) {
	platform := src.Platform
	if platform == nil {
		platform = ConfigPlatform(config)
	}
	if platform == nil {
		platform = &ocispec.Platform{} // as acceleration-service: registries reject entries without one
	}
	ociEntry = src
	ociEntry.MediaType, ociEntry.Digest, ociEntry.Size, ociEntry.Platform = oci.MediaType, oci.Digest, oci.Size, platform
	ociEntry.Annotations = maps.Clone(src.Annotations)
	if ociEntry.Annotations == nil {
		ociEntry.Annotations = map[string]string{}
	}
	ociEntry.Annotations[AnnotationNydusSourceDigest] = sourceDigest.String()

	nydusEntry = src
	nydusEntry.MediaType, nydusEntry.Digest, nydusEntry.Size, nydusEntry.Platform = nydus.MediaType, nydus.Digest, nydus.Size, platform
	nydusEntry.Annotations = maps.Clone(src.Annotations)
	nydusEntry.ArtifactType = layerformat.ArtifactTypeNydusManifest
	return ociEntry, nydusEntry
}

// NydusMergedIndex returns the OCI index of a merged-platform conversion: entries in order (the
// OCI manifests and whatever else the source index held, then the Nydus manifests). The source
// index's other fields are kept; src is nil when the source was a single image.
func NydusMergedIndex(src *Index, entries []ocispec.Descriptor) ([]byte, error) {
	fields := map[string]json.RawMessage{"schemaVersion": json.RawMessage("2")}
	if src != nil {
		fields = maps.Clone(src.fields)
	}
	for k, v := range map[string]any{"mediaType": layerformat.MediaTypeOCIIndex, "manifests": entries} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		fields[k] = b
	}
	return marshalOrdered(fields, indexKeyOrder)
}

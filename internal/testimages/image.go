package testimages

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultCreated is the creation time written to configs and history when
// ImageSpec.Created is zero.
var DefaultCreated = time.Date(2024, time.January, 2, 3, 4, 5, 0, time.UTC)

// MediaTypeDockerManifestList is the Docker schema2 manifest list type.
const MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

// ManifestFormat selects the manifest (and config) flavour of an image.
type ManifestFormat int

const (
	// OCI: application/vnd.oci.image.manifest.v1+json with an
	// application/vnd.oci.image.config.v1+json config (OCI image index for
	// IndexSpec).
	OCI ManifestFormat = iota
	// DockerSchema2: application/vnd.docker.distribution.manifest.v2+json
	// with an application/vnd.docker.container.image.v1+json config (Docker
	// manifest list for IndexSpec). Annotations are not allowed.
	DockerSchema2
)

func (f ManifestFormat) String() string {
	switch f {
	case OCI:
		return "oci"
	case DockerSchema2:
		return "docker-schema2"
	}
	return fmt.Sprintf("ManifestFormat(%d)", int(f))
}

// LayerBlob is one layer of an ImageSpec.
type LayerBlob struct {
	// Tar is the uncompressed layer; unless DiffID is set, DiffID(Tar) is
	// its rootfs.diff_ids entry.
	Tar []byte
	// Compression encodes Tar into the blob (ignored when Blob is set).
	Compression Compression
	// Blob, if non-nil, is used verbatim as the layer blob (for example a
	// zstd:chunked or eStargz blob produced by the code under test).
	Blob []byte
	// DiffID overrides DiffID(Tar).
	DiffID digest.Digest
	// MediaType overrides LayerMediaType(format, Compression).
	MediaType string
	// Annotations go on the layer descriptor (OCI only).
	Annotations map[string]string
	// CreatedBy is this layer's history created_by (when ImageSpec.History
	// is nil); default "testimages: layer <index>".
	CreatedBy string
}

// ImageSpec describes one image.
type ImageSpec struct {
	Format ManifestFormat
	Layers []LayerBlob
	// Platform is written to the config and, inside an index, to the
	// manifest descriptor. Zero means linux/amd64.
	Platform v1.Platform
	// Config is the config's "config" section (Env, Cmd, Labels, ...).
	Config v1.ImageConfig
	// Created is the config's created time; zero means DefaultCreated.
	Created time.Time
	// History replaces the default history (one entry per layer).
	History []v1.History
	// Annotations are the manifest's annotations (OCI only).
	Annotations map[string]string
	// DescriptorAnnotations go on the descriptor that points at this
	// manifest from an index (or from an OCI layout's index.json).
	DescriptorAnnotations map[string]string
}

// IndexSpec describes an image index (or Docker manifest list) of several
// images, each listed with its Platform.
type IndexSpec struct {
	Format      ManifestFormat // OCI image index or Docker manifest list
	Images      []ImageSpec
	Annotations map[string]string // the index's own annotations (OCI only)
	// DescriptorAnnotations go on the descriptor pointing at the index from
	// an OCI layout's index.json.
	DescriptorAnnotations map[string]string
}

// BuiltImage is an ImageSpec encoded into blobs.
type BuiltImage struct {
	Manifest Blob
	Config   Blob
	Layers   []Blob
	DiffIDs  []digest.Digest
	// Descriptor points at Manifest, with DescriptorAnnotations and (when
	// built as part of an index) the platform.
	Descriptor v1.Descriptor
}

// Blobs returns the config and layer blobs (not the manifest), in manifest
// order.
func (b *BuiltImage) Blobs() []Blob {
	return append([]Blob{b.Config}, b.Layers...)
}

// BuiltIndex is an IndexSpec encoded into blobs.
type BuiltIndex struct {
	Index      Blob
	Images     []*BuiltImage
	Descriptor v1.Descriptor // points at Index, with DescriptorAnnotations
}

// dockerDescriptor is a Docker schema2 descriptor (no annotations).
type dockerDescriptor struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Digest    digest.Digest `json:"digest"`
}

type dockerManifest struct {
	SchemaVersion int                `json:"schemaVersion"`
	MediaType     string             `json:"mediaType"`
	Config        dockerDescriptor   `json:"config"`
	Layers        []dockerDescriptor `json:"layers"`
}

func toDocker(d v1.Descriptor) dockerDescriptor {
	return dockerDescriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
}

func (img ImageSpec) platform() v1.Platform {
	p := img.Platform
	if p.OS == "" && p.Architecture == "" {
		p.OS, p.Architecture = "linux", "amd64"
	}
	return p
}

// BuildImage encodes img: it compresses the layers, writes the config (with
// rootfs.diff_ids, history, os/architecture) and the manifest.
func BuildImage(img ImageSpec) (*BuiltImage, error) {
	if img.Format == DockerSchema2 && len(img.Annotations) > 0 {
		return nil, errors.New("docker schema2 manifests cannot carry annotations")
	}
	created := img.Created
	if created.IsZero() {
		created = DefaultCreated
	}
	out := &BuiltImage{}
	var layerDescs []v1.Descriptor
	history := img.History
	for i, l := range img.Layers {
		data := l.Blob
		if data == nil {
			var err error
			if data, err = Compress(l.Tar, l.Compression); err != nil {
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
		}
		mt := l.MediaType
		if mt == "" {
			var err error
			if mt, err = LayerMediaType(img.Format, l.Compression); err != nil {
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
		}
		if img.Format == DockerSchema2 && len(l.Annotations) > 0 {
			return nil, fmt.Errorf("layer %d: docker schema2 layers cannot carry annotations", i)
		}
		diffID := l.DiffID
		if diffID == "" {
			if l.Tar == nil {
				return nil, fmt.Errorf("layer %d: neither Tar nor DiffID set", i)
			}
			diffID = DiffID(l.Tar)
		}
		b := newBlob(mt, data)
		out.Layers = append(out.Layers, b)
		out.DiffIDs = append(out.DiffIDs, diffID)
		d := b.Descriptor()
		d.Annotations = l.Annotations
		layerDescs = append(layerDescs, d)
		if img.History == nil {
			createdBy := l.CreatedBy
			if createdBy == "" {
				createdBy = fmt.Sprintf("testimages: layer %d", i)
			}
			history = append(history, v1.History{Created: &created, CreatedBy: createdBy})
		}
	}

	cfg := v1.Image{
		Created:  &created,
		Platform: img.platform(),
		Config:   img.Config,
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: out.DiffIDs},
		History:  history,
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []digest.Digest{}
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}

	var manifestJSON []byte
	var manifestType string
	switch img.Format {
	case OCI:
		out.Config = newBlob(v1.MediaTypeImageConfig, cfgJSON)
		if layerDescs == nil {
			layerDescs = []v1.Descriptor{}
		}
		manifestType = v1.MediaTypeImageManifest
		manifestJSON, err = json.Marshal(v1.Manifest{
			Versioned:   specs.Versioned{SchemaVersion: 2},
			MediaType:   manifestType,
			Config:      out.Config.Descriptor(),
			Layers:      layerDescs,
			Annotations: img.Annotations,
		})
	case DockerSchema2:
		out.Config = newBlob(MediaTypeDockerConfig, cfgJSON)
		m := dockerManifest{SchemaVersion: 2, MediaType: MediaTypeDockerManifest, Config: toDocker(out.Config.Descriptor()), Layers: []dockerDescriptor{}}
		for _, d := range layerDescs {
			m.Layers = append(m.Layers, toDocker(d))
		}
		manifestType = MediaTypeDockerManifest
		manifestJSON, err = json.Marshal(m)
	default:
		return nil, fmt.Errorf("unknown manifest format %v", img.Format)
	}
	if err != nil {
		return nil, err
	}
	out.Manifest = newBlob(manifestType, manifestJSON)
	out.Descriptor = out.Manifest.Descriptor()
	out.Descriptor.Annotations = img.DescriptorAnnotations
	return out, nil
}

// BuildIndex builds every image of idx and an index listing them with their
// platforms and DescriptorAnnotations.
func BuildIndex(idx IndexSpec) (*BuiltIndex, error) {
	index := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []v1.Descriptor{}, Annotations: idx.Annotations}
	switch idx.Format {
	case OCI:
		index.MediaType = v1.MediaTypeImageIndex
	case DockerSchema2:
		index.MediaType = MediaTypeDockerManifestList
		if len(idx.Annotations) > 0 {
			return nil, errors.New("docker manifest lists cannot carry annotations")
		}
	default:
		return nil, fmt.Errorf("unknown manifest format %v", idx.Format)
	}
	out := &BuiltIndex{}
	for i, img := range idx.Images {
		if idx.Format == DockerSchema2 && len(img.DescriptorAnnotations) > 0 {
			return nil, fmt.Errorf("image %d: docker manifest list entries cannot carry annotations", i)
		}
		b, err := BuildImage(img)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		p := img.platform()
		b.Descriptor.Platform = &p
		out.Images = append(out.Images, b)
		index.Manifests = append(index.Manifests, b.Descriptor)
	}
	data, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	out.Index = newBlob(index.MediaType, data)
	out.Descriptor = out.Index.Descriptor()
	out.Descriptor.Annotations = idx.DescriptorAnnotations
	return out, nil
}

// File modes used for everything written to disk.
const (
	FileMode fs.FileMode = 0o644
	DirMode  fs.FileMode = 0o755
)

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), DirMode); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, FileMode); err != nil {
		return err
	}
	return os.Chmod(path, FileMode) // independent of the umask
}

func writeOCIBlob(dir string, b Blob) error {
	if err := b.Digest.Validate(); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "blobs", b.Digest.Algorithm().String(), b.Digest.Encoded()), b.Data)
}

// WriteOCILayout stores img in the OCI image layout at dir (creating the
// layout, or adding to an existing one) and lists its manifest in
// index.json, tagged with tag through the org.opencontainers.image.ref.name
// annotation (any earlier entry with the same tag is replaced; an empty tag
// adds an untagged entry). The result is readable as "oci:<dir>:<tag>".
func WriteOCILayout(dir, tag string, img ImageSpec) (*BuiltImage, error) {
	b, err := BuildImage(img)
	if err != nil {
		return nil, err
	}
	blobs := append(b.Blobs(), b.Manifest)
	if err := addToOCILayout(dir, tag, b.Descriptor, blobs); err != nil {
		return nil, err
	}
	return b, nil
}

// WriteOCIIndex is WriteOCILayout for an image index: index.json's entry
// (tagged tag) points at the index blob, which lists the images.
func WriteOCIIndex(dir, tag string, idx IndexSpec) (*BuiltIndex, error) {
	b, err := BuildIndex(idx)
	if err != nil {
		return nil, err
	}
	var blobs []Blob
	for _, img := range b.Images {
		blobs = append(blobs, img.Blobs()...)
		blobs = append(blobs, img.Manifest)
	}
	blobs = append(blobs, b.Index)
	if err := addToOCILayout(dir, tag, b.Descriptor, blobs); err != nil {
		return nil, err
	}
	return b, nil
}

func addToOCILayout(dir, tag string, desc v1.Descriptor, blobs []Blob) error {
	for _, blob := range blobs {
		if err := writeOCIBlob(dir, blob); err != nil {
			return err
		}
	}
	layout, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, v1.ImageLayoutFile), layout); err != nil {
		return err
	}

	indexPath := filepath.Join(dir, "index.json")
	index := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{}}
	if old, err := os.ReadFile(indexPath); err == nil {
		if err := json.Unmarshal(old, &index); err != nil {
			return fmt.Errorf("parsing existing %s: %w", indexPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if tag != "" {
		kept := []v1.Descriptor{}
		for _, d := range index.Manifests {
			if d.Annotations[v1.AnnotationRefName] != tag {
				kept = append(kept, d)
			}
		}
		index.Manifests = kept
		ann := map[string]string{v1.AnnotationRefName: tag}
		for k, v := range desc.Annotations {
			ann[k] = v
		}
		desc.Annotations = ann
	}
	index.Manifests = append(index.Manifests, desc)
	data, err := json.Marshal(index)
	if err != nil {
		return err
	}
	return writeFile(indexPath, data)
}

// DirTransportVersion is the content of the "version" file of a
// containers/image "dir:" directory holding only sha256 blobs.
const DirTransportVersion = "Directory Transport Version: 1.1\n"

// WriteDirImage stores img in dir using the layout of containers/image's
// "dir:" transport: a version file, manifest.json, and every blob (config
// and layers) in a file named by its sha256 hex digest, without the
// "sha256:" prefix. The result is readable as "dir:<dir>".
func WriteDirImage(dir string, img ImageSpec) (*BuiltImage, error) {
	b, err := BuildImage(img)
	if err != nil {
		return nil, err
	}
	for _, blob := range b.Blobs() {
		if blob.Digest.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("dir: layout version 1.1 needs sha256 digests, got %s", blob.Digest)
		}
		if err := writeFile(filepath.Join(dir, blob.Digest.Encoded()), blob.Data); err != nil {
			return nil, err
		}
	}
	if err := writeFile(filepath.Join(dir, "manifest.json"), b.Manifest.Data); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, "version"), []byte(DirTransportVersion)); err != nil {
		return nil, err
	}
	return b, nil
}

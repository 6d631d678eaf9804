// Package convert is the conversion pipeline: read an image (or index) from a source transport,
// detect each layer's real format, decode it to a tar stream and encode it to the target format,
// edit the manifests and configs as package manifestedit decides, and write everything to the
// destination: blobs first, then manifests, then the index, then the commit.
package convert

import (
	"fmt"
	"strings"

	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options control a conversion.
type Options struct {
	// Target is the layer format to write (layerformat.Targets lists them).
	Target layerformat.Kind
	// Level is the compression level; a negative value means the target's default.
	Level int
	// ManifestFormat is "", "oci" or "v2s2" (see manifestedit.Format*).
	ManifestFormat string
	// Platforms filters the instances of an index; empty keeps every platform.
	Platforms []Platform
	// Force re-encodes layers that are already in the target format.
	Force bool
	// Jobs bounds how many layers are converted at once (0 = 2).
	Jobs int
	// Src and Dst configure the transports (credentials, TLS, certificates).
	Src, Dst transport.Options
	// TempDir holds one temporary file per running job ("" = the system default).
	TempDir string
	// Progress, if set, is told about each layer as it is read.
	Progress Progress
	// DryRun plans (reading manifests and configs, applying every rule) and writes nothing.
	DryRun bool
	// RemoveSignatures allows converting a signed source; the signatures are not copied.
	RemoveSignatures bool
	// KeepEstargzFiles keeps stargz.index.json and the landmark files when a layer leaves eStargz
	// (by default they are removed, so the result is an ordinary layer).
	KeepEstargzFiles bool
	// MaxLayerSize bounds the uncompressed size of one layer (0: DefaultMaxLayerSize, 256 GiB).
	MaxLayerSize int64
	// Retry retries failed registry and I/O steps (default: 3 times, from 1s, doubling).
	Retry Retry
	// Nydus encoder settings (zero: zstd chunks of 1 MiB, prefetch everything).
	NydusCompressor       string
	NydusChunkSize        uint32
	NydusPrefetchPatterns []string
	// NydusMergePlatform writes an OCI index holding, per platform, the source's OCI manifest (an
	// empty layer prepended) followed by the Nydus manifest (nydusify --merge-platform).
	NydusMergePlatform bool
	// eStargz encoder settings (zero: 4 MiB chunks, no packing, no prioritized files).
	EstargzChunkSize, EstargzMinChunkSize int
	EstargzPrioritizedFiles               []string
}

// Progress receives per-layer progress.
type Progress interface {
	// Layer is called when a layer starts; the returned LayerProgress is fed the source bytes.
	Layer(d ocispec.Descriptor, action string) LayerProgress
}

// LayerProgress is one layer's progress.
type LayerProgress interface {
	Add(n int64)
	Done(err error)
}

// Platform selects index instances (os/arch[/variant]).
type Platform = manifestedit.Platform

// ParsePlatform parses "os/arch[/variant]".
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, fmt.Errorf("platform %q: want os/arch[/variant]", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// Report says what a conversion did. It is written as JSON by --report.
type Report struct {
	Source      string           `json:"source"`
	Destination string           `json:"destination"`
	Target      string           `json:"target"`
	Level       int              `json:"level"` // 0 for nydus (its chunk compressor has no level here)
	Digest      digest.Digest    `json:"digest"`
	MediaType   string           `json:"mediaType"`
	Manifests   []ManifestReport `json:"manifests"`
	Layers      []LayerReport    `json:"layers"`
	Warnings    []string         `json:"warnings,omitempty"`
	Seconds     float64          `json:"seconds"`
	DryRun      bool             `json:"dryRun,omitempty"`
	// Retries lists every failed attempt that was retried.
	Retries []string `json:"retries,omitempty"`
	// Plan is every decision, made before anything was written.
	Plan *manifestedit.Plan `json:"plan,omitempty"`
}

// ManifestReport is one image manifest written.
type ManifestReport struct {
	Platform       string        `json:"platform,omitempty"`
	SourceDigest   digest.Digest `json:"sourceDigest"`
	Digest         digest.Digest `json:"digest"`
	MediaType      string        `json:"mediaType"`
	SourceConfig   digest.Digest `json:"sourceConfig"`
	Config         digest.Digest `json:"config"`
	ConfigRewrites bool          `json:"configRewritten"`
	PassedThrough  bool          `json:"passedThrough,omitempty"`
	// Merged is, in a merged-platform Nydus index, "oci" (the source's manifest with the empty
	// layer prepended) or "nydus".
	Merged string `json:"merged,omitempty"`
}

// LayerReport is one layer of one manifest.
type LayerReport struct {
	Manifest  digest.Digest `json:"manifest"`
	Index     int           `json:"index"`
	Source    LayerSide     `json:"source"`
	Target    LayerSide     `json:"target"`
	DiffID    digest.Digest `json:"diffID"`
	TOCDigest digest.Digest `json:"tocDigest,omitempty"`
	Seconds   float64       `json:"seconds"`
	// Action is "reused" (the source blob as it is) or "converted".
	Action string `json:"action"`
	Note   string `json:"note,omitempty"`
}

// LayerSide describes a layer blob.
type LayerSide struct {
	Digest    digest.Digest `json:"digest"`
	Format    string        `json:"format"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType,omitempty"`
}

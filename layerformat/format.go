// Package layerformat names the layer formats fmtconv knows, tells them apart from a layer's bytes
// and annotations, and decodes or encodes the simple ones (uncompressed tar, gzip, zstd). The
// chunked formats live in their own packages (zstdchunked, and later estargz and nydus); this package
// is the one place that dispatches to them, so the pipeline never switches on formats itself.
package layerformat

import (
	"fmt"
	"sort"
	"strings"
)

// Kind is a layer format as a user names it on the command line (`--to`).
type Kind string

const (
	Uncompressed   Kind = "uncompressed"
	Gzip           Kind = "gzip"
	Zstd           Kind = "zstd"
	ZstdChunked    Kind = "zstd:chunked"
	Estargz        Kind = "estargz"
	NydusBlob      Kind = "nydus-blob"
	NydusBootstrap Kind = "nydus-bootstrap"
	// Nydus is the --to value for a whole Nydus image (data blob layers plus a bootstrap layer).
	Nydus     Kind = "nydus"
	Encrypted Kind = "encrypted"
	Unknown   Kind = "unknown"
)

// Dialects of zstd:chunked. Only DialectContainers is written; the others are read.
const (
	// DialectContainers is what go.podman.io/storage v1.65 writes: io.github.containers.zstd-chunked.*
	// annotations, a 64-byte footer and a tar-split frame whose digest is in the TOC.
	DialectContainers = "containers"
	// DialectContainersLegacy is what containers/storage before tar-split wrote (skopeo 1.9, podman 4):
	// io.containers.zstd-chunked.* annotations, a 40-byte footer payload, no tar-split.
	DialectContainersLegacy = "containers-legacy"
	// DialectStargz is what stargz-snapshotter's zstdchunked writer (ctr-remote, nerdctl) emits: the legacy
	// keys plus the eStargz TOC digest, an eStargz JTOC with landmarks, and no tar end-of-archive blocks.
	DialectStargz = "stargz"
)

// Format is a detected layer format: a kind and, where a kind has several incompatible spellings,
// the dialect. Two layers are in the same format only if both match.
type Format struct {
	Kind    Kind   `json:"kind"`
	Dialect string `json:"dialect,omitempty"`
}

func (f Format) String() string {
	if f.Dialect == "" {
		return string(f.Kind)
	}
	return string(f.Kind) + "(" + f.Dialect + ")"
}

// TargetFormat is the exact format fmtconv writes for a --to kind.
func TargetFormat(k Kind) Format {
	switch k {
	case ZstdChunked:
		return Format{Kind: ZstdChunked, Dialect: DialectContainers}
	case Nydus:
		// Each layer becomes a Nydus data blob; the image also gets a bootstrap layer.
		return Format{Kind: NydusBlob}
	}
	return Format{Kind: k}
}

// Targets are the --to values fmtconv accepts, with whether their encoder exists yet.
var Targets = map[Kind]bool{
	Uncompressed: true,
	Gzip:         true,
	Zstd:         true,
	ZstdChunked:  true,
	Estargz:      true,
	Nydus:        true,
}

// ParseTarget parses a --to value.
func ParseTarget(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	if _, ok := Targets[k]; ok {
		return k, nil
	}
	names := make([]string, 0, len(Targets))
	for t := range Targets {
		names = append(names, string(t))
	}
	sort.Strings(names)
	return "", fmt.Errorf("unknown target format %q (want one of %s)", s, strings.Join(names, ", "))
}

// DefaultLevel is the compression level used when the user gives none. gzip and zstd default to
// what containers/image writes when given no level (pgzip's DefaultCompression is klauspost's
// level 5; zstd's SpeedDefault is level 3), so a layer fmtconv compresses has the same digest as
// the one skopeo or podman push would upload. zstd:chunked defaults to 3, not containers/storage's
// 10, which is about twice as slow for a few percent of size. eStargz defaults to 6.
func DefaultLevel(k Kind) int {
	switch k {
	case Gzip:
		return 5
	case Estargz:
		return 6
	case Zstd, ZstdChunked:
		return 3
	}
	return 0
}

// Compressed reports whether layers of kind k are compressed (so a media type needs a suffix).
func (k Kind) Compressed() bool { return k != Uncompressed }

// KeepsDiffID reports whether converting to kind k keeps every layer's uncompressed stream (and so
// its diff_id) bit for bit. eStargz and Nydus rebuild the tar; the others only recompress it.
func KeepsDiffID(k Kind) bool {
	switch k {
	case Uncompressed, Gzip, Zstd, ZstdChunked:
		return true
	}
	return false
}

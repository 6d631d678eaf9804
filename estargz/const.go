package estargz

import (
	"fmt"
	"path"
	"strings"

	upstream "github.com/containerd/stargz-snapshotter/estargz"
)

// Annotation keys (the same strings as upstream's TOCJSONDigestAnnotation and
// StoreUncompressedSizeAnnotation, and as layerformat's AnnotationEstargz*; this
// package does not import layerformat so that layerformat can dispatch to it).
const (
	// AnnotationTOCDigest is "sha256:<hex>" of the UNCOMPRESSED TOC JSON.
	AnnotationTOCDigest = upstream.TOCJSONDigestAnnotation
	// AnnotationUncompressedSize is the decimal size of the uncompressed layer.
	AnnotationUncompressedSize = upstream.StoreUncompressedSizeAnnotation
)

// Names and sizes of the format.
const (
	// TOCTarName is the name of the tar entry holding the TOC JSON.
	TOCTarName = upstream.TOCTarName
	// PrefetchLandmark follows the prioritized files.
	PrefetchLandmark = upstream.PrefetchLandmark
	// NoPrefetchLandmark is the first entry of a layer without prioritized files.
	NoPrefetchLandmark = upstream.NoPrefetchLandmark
	// LandmarkContents is the one byte a landmark file holds.
	LandmarkContents = 0x0f
	// FooterSize is the size of the current footer; LegacyFooterSize of the stargz one.
	FooterSize       = upstream.FooterSize
	LegacyFooterSize = 47
	// DefaultChunkSize is the largest payload of one gzip member (upstream's default).
	DefaultChunkSize = 4 << 20
	// DefaultLevel is the gzip level Encode uses when EncodeOptions.Level is 0.
	DefaultLevel = 6
)

// Default limits of the readers (see Limits).
const (
	// DefaultMaxTOCSize bounds the compressed TOC member and the TOC JSON
	// (c/storage's maxTocSize).
	DefaultMaxTOCSize = 150 << 20
	// DefaultMaxEntries bounds the number of TOC entries.
	DefaultMaxEntries = 1 << 21
	// DefaultMaxNameLength bounds name and linkName of an entry.
	DefaultMaxNameLength = 64 << 10
)

// Check ids of Verify; stable, documented in the README.
const (
	CheckFooter           = "estargz.footer"
	CheckTOCDigest        = "estargz.toc-digest"
	CheckTOC              = "estargz.toc"
	CheckChunkDigest      = "estargz.chunk-digest"
	CheckViewMismatch     = "estargz.view-mismatch"
	CheckUncompressedSize = "estargz.uncompressed-size"
	CheckLandmark         = "estargz.landmark"
	// CheckDiffID and CheckDecode are the shared layer ids (package verify's).
	CheckDiffID = "layer.diffid"
	CheckDecode = "layer.decode"
)

// Unsupported-input codes of UnsupportedInputError (the same strings as
// zstdchunked's and manifestedit's refusal codes).
const (
	// CodePAXGlobalHeader: a PAX global header ('g'); upstream refuses it too
	// ("unsupported input tar entry").
	CodePAXGlobalHeader = "PAX_GLOBAL_HEADER"
	// CodeDuplicatePath: two entries whose names are equal once cleaned.
	// Upstream drops the earlier one and moves the later one to its place in
	// the stream; that needs the whole tar before the first byte is written, so
	// this encoder refuses instead.
	CodeDuplicatePath = "DUPLICATE_PATH"
	// CodeSparseFile: a GNU sparse file; the tar would be rewritten expanded.
	CodeSparseFile = "SPARSE_FILE"
	// CodeUnsupportedEntryType: an entry type the TOC cannot name.
	CodeUnsupportedEntryType = "UNSUPPORTED_ENTRY_TYPE"
	// CodeNonUTF8Name: a name, link target, owner name or xattr name that is
	// not valid UTF-8; JSON would change it, so the TOC would not match the tar.
	CodeNonUTF8Name = "NON_UTF8_NAME"
	// CodeHardlinkMissing: a hard link whose target is not an earlier entry of
	// the written layer (a full pull could not extract it; upstream's Open
	// fails when the target is nowhere in the TOC).
	CodeHardlinkMissing = "HARDLINK_MISSING"
	// CodePrioritizedNotFound: a prioritized file is not in the layer.
	CodePrioritizedNotFound = "PRIORITIZED_NOT_FOUND"
)

// UnsupportedInputError reports a tar that this encoder will not turn into eStargz.
type UnsupportedInputError struct {
	Code   string // one of the Code* constants
	Path   string // the tar name of the offending entry (may be empty)
	Reason string
}

func (e *UnsupportedInputError) Error() string {
	return fmt.Sprintf("estargz cannot represent this tar (%s) at %q: %s", e.Code, e.Path, e.Reason)
}

// JTOC and TOCEntry are upstream's TOC types: the JSON is theirs.
type (
	JTOC     = upstream.JTOC
	TOCEntry = upstream.TOCEntry
)

// CleanEntryName is how upstream (and this package) names an entry for lookups:
// relative to the root, cleaned, without a leading "./" or "/".
func CleanEntryName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

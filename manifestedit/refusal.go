// Package manifestedit decides what a conversion does to manifests, configs and indexes, and
// whether it may happen at all. Everything here is a pure function of its arguments: no I/O, no
// clocks. The pipeline (package convert) asks these functions and never decides on its own.
package manifestedit

import "fmt"

// Code is a stable refusal code. Codes appear in error text, in --report JSON and in the README;
// they never change meaning.
type Code string

const (
	// DestSchema2NoZstd: zstd and zstd:chunked layers need an OCI manifest, and the destination (or
	// --format v2s2) can only hold Docker schema2.
	DestSchema2NoZstd Code = "DEST_SCHEMA2_NO_ZSTD"
	// DestSchema2NoAnnotations: the target format depends on layer annotations, which Docker schema2
	// cannot carry.
	DestSchema2NoAnnotations Code = "DEST_SCHEMA2_NO_ANNOTATIONS"
	// DestNoIndex: the source is a multi-platform index and the destination can hold one image only.
	DestNoIndex Code = "DEST_NO_INDEX"
	// UnsupportedManifest: the source manifest type cannot be converted.
	UnsupportedManifest Code = "UNSUPPORTED_MANIFEST"
	// EncryptedLayer: an ocicrypt-encrypted layer cannot be read, so it cannot be converted.
	EncryptedLayer Code = "ENCRYPTED_LAYER"
	// NoMatchingPlatform: --platform matched nothing in the source index.
	NoMatchingPlatform Code = "NO_MATCHING_PLATFORM"
	// SignedSource: the source is signed and --remove-signatures was not given.
	SignedSource Code = "SIGNED_SOURCE"
	// ArtifactSource: the source holds no container image, only artifacts.
	ArtifactSource Code = "ARTIFACT_SOURCE"
	// DualTOC: a layer carries both the eStargz TOC digest and the containers zstd:chunked checksum.
	DualTOC Code = "DUAL_TOC"
	// NydusMixed: a manifest mixes Nydus and non-Nydus layers.
	NydusMixed Code = "NYDUS_MIXED"
	// NondistributableNydus: Nydus needs every file, and a layer is foreign (non-distributable).
	NondistributableNydus Code = "NONDISTRIBUTABLE_NYDUS"
	// NydusMergeSource: --nydus-merge-platform keeps the source's OCI manifest beside the Nydus one,
	// and the source manifest is already Nydus, or is Docker schema1 (which cannot take the empty
	// first layer).
	NydusMergeSource Code = "NYDUS_MERGE_SOURCE"
	// Schema1Destination: the destination can only hold Docker schema1, which cannot describe
	// any conversion result.
	Schema1Destination Code = "DEST_SCHEMA1"

	// Codes decided from layer content, mid-run (still before any manifest is written).

	// SourceDiffIDMismatch: a source layer does not decompress to the diff_id its config claims.
	SourceDiffIDMismatch Code = "SOURCE_DIFFID_MISMATCH"
	// DiffIDNotPreserved: a lossless conversion would have changed a layer's diff_id.
	DiffIDNotPreserved Code = "DIFFID_NOT_PRESERVED"
	// DuplicatePath: the layer holds one path twice, which the target format cannot represent.
	DuplicatePath Code = "DUPLICATE_PATH"
	// PAXGlobalHeader: the layer has a PAX global header, which the target format cannot represent.
	PAXGlobalHeader Code = "PAX_GLOBAL_HEADER"
	// SparseFile: the layer has a GNU sparse file, which the target's TOC cannot describe bit for bit.
	SparseFile Code = "SPARSE_FILE"
	// UnsupportedEntryType: a tar entry type the target's TOC cannot name.
	UnsupportedEntryType Code = "UNSUPPORTED_ENTRY_TYPE"
	// NonUTF8Name: a name that is not valid UTF-8, which a JSON TOC cannot carry unchanged.
	NonUTF8Name Code = "NON_UTF8_NAME"
	// UnrepresentableTar: the layer's tar stream has a shape (such as an end inside a file's
	// padding) that the target format cannot rebuild bit for bit in a form its readers accept.
	UnrepresentableTar Code = "UNREPRESENTABLE_TAR"
	// HardlinkMissing: a hard link whose target is not an earlier entry of the layer, which
	// eStargz's TOC cannot resolve.
	HardlinkMissing Code = "HARDLINK_MISSING"
	// MalformedTar: the layer's tar stream is broken (truncated entry, bad header) and the target
	// format must read every entry to build its TOC.
	MalformedTar Code = "MALFORMED_TAR"
	// LayerTooLarge: a layer decompresses beyond --max-layer-size or beyond the size its format
	// declares (a compression bomb, or a corrupt layer).
	LayerTooLarge Code = "LAYER_TOO_LARGE"
	// UnknownLayerFormat: the layer's bytes are not a tar, gzip or zstd stream fmtconv can read.
	UnknownLayerFormat Code = "UNKNOWN_LAYER_FORMAT"
)

// Refusal is a conversion fmtconv will not do, with the reason and what to do instead.
type Refusal struct {
	Code Code
	// Subject names what is refused: a manifest digest, a layer digest, a destination.
	Subject string
	Reason  string
	Instead string
}

func (r *Refusal) Error() string {
	s := fmt.Sprintf("refused (%s)", r.Code)
	if r.Subject != "" {
		s += " " + r.Subject
	}
	s += ": " + r.Reason
	if r.Instead != "" {
		s += "; " + r.Instead
	}
	return s
}

// Refuse builds a Refusal.
func Refuse(code Code, subject, reason, instead string) *Refusal {
	return &Refusal{Code: code, Subject: subject, Reason: reason, Instead: instead}
}

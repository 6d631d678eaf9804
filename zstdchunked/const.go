package zstdchunked

// Annotation keys of the "containers" dialect (c/storage ≥ 1.5x, podman ≥ 5).
const (
	// AnnotationManifestChecksum holds "sha256:<hex>" of the compressed TOC, i.e.
	// of the bytes of the zstd frame inside the TOC's skippable frame. It is the
	// TOC digest c/image and c/storage use for zstd:chunked layers.
	AnnotationManifestChecksum = "io.github.containers.zstd-chunked.manifest-checksum"
	// AnnotationManifestPosition holds "offset:compressedLength:uncompressedLength:type"
	// (four decimal integers) of the TOC; offset is past the 8-byte skippable header
	// and type is always ManifestTypeCRFS (1).
	AnnotationManifestPosition = "io.github.containers.zstd-chunked.manifest-position"
	// AnnotationTarSplitPosition holds "offset:compressedLength:uncompressedLength"
	// of the tar-split frame.
	AnnotationTarSplitPosition = "io.github.containers.zstd-chunked.tarsplit-position"
	// AnnotationTarSplitChecksum is deprecated and never written: the tar-split
	// digest moved into the TOC (TOC.TarSplitDigest). Old layers may carry it;
	// ReadTarSplit uses it only when the TOC has no tarSplitDigest.
	AnnotationTarSplitChecksum = "io.github.containers.zstd-chunked.tarsplit-checksum"
)

// Annotation keys of the "containers-legacy" and "stargz" dialects.
const (
	// AnnotationLegacyManifestChecksum is the legacy spelling of
	// AnnotationManifestChecksum (no "github."), written by c/storage ≤ 1.4x
	// (skopeo 1.9, podman 4) and by stargz-snapshotter's estargz/zstdchunked.
	AnnotationLegacyManifestChecksum = "io.containers.zstd-chunked.manifest-checksum"
	// AnnotationLegacyManifestPosition is the legacy spelling of
	// AnnotationManifestPosition, same "offset:clen:ulen:1" value.
	AnnotationLegacyManifestPosition = "io.containers.zstd-chunked.manifest-position"
	// AnnotationStargzTOCDigest is the eStargz TOC digest: sha256 of the
	// UNCOMPRESSED TOC JSON. Together with the legacy keys it marks the stargz dialect.
	AnnotationStargzTOCDigest = "containerd.io/snapshot/stargz/toc.digest"
	// AnnotationStargzUncompressedSize is the decimal size of the uncompressed
	// layer, written by stargz-snapshotter; informative only.
	AnnotationStargzUncompressedSize = "io.containers.estargz.uncompressed-size"
)

// ChunkedAnnotations lists every annotation key this package knows for chunked
// layers. Code that converts a layer to a non-chunked format must delete them
// (plus AnnotationStargzUncompressedSize).
var ChunkedAnnotations = []string{
	AnnotationManifestChecksum,
	AnnotationManifestPosition,
	AnnotationTarSplitPosition,
	AnnotationTarSplitChecksum,
	AnnotationLegacyManifestChecksum,
	AnnotationLegacyManifestPosition,
	AnnotationStargzTOCDigest,
}

// Byte-level constants.
const (
	// SkippableFrameMagic is the magic of the zstd skippable frame used for the
	// TOC, the tar-split and the footer; on disk it is the 4 bytes 50 2A 4D 18
	// (little endian). RFC 8878 allows 0x184D2A50..0x184D2A5F; writers use 0x50.
	SkippableFrameMagic uint32 = 0x184D2A50
	// SkippableFrameHeaderSize is the skippable magic plus the 4-byte
	// little-endian length that precede the frame's data.
	SkippableFrameHeaderSize = 8

	// FooterSize is the payload size of the "containers" footer: 8 little-endian
	// uint64 slots (TOC offset, TOC compressed length, TOC uncompressed length,
	// manifest type, tar-split offset, compressed length, uncompressed length, magic).
	// The blob ends with SkippableFrameHeaderSize+FooterSize = 72 footer bytes.
	FooterSize = 64
	// LegacyFooterSize is the payload size of the footer of the
	// "containers-legacy" and "stargz" dialects: 5 slots (TOC offset, compressed
	// length, uncompressed length, manifest type, magic). The blob ends with 48
	// footer bytes.
	LegacyFooterSize = 40
	// IntermediateFooterSize is the payload size of the footer c/storage
	// 1.47-1.49 wrote (the first versions with a tar-split, located only by
	// annotations then): the four TOC slots, LegacyFooterMagic at bytes 32-39
	// and 16 zero bytes. The blob ends with 64 footer bytes.
	IntermediateFooterSize = 56

	// FooterMagic closes the 64-byte footer: 47 4E 55 6C 49 6E 55 78.
	FooterMagic = "GNUlInUx"
	// LegacyFooterMagic closes the 40-byte footer: 47 6E 55 6C 49 6E 55 78
	// (lower-case 'n' in the second byte).
	LegacyFooterMagic = "GnUlInUx"

	// ManifestTypeCRFS is the only manifest (TOC) type: a CRFS-style JSON TOC.
	ManifestTypeCRFS = 1

	// RollsumBits is the number of low bits of the rolling checksum that must
	// all be ones to end a data chunk (average chunk about 64 KiB).
	RollsumBits = 16
	// HolesThreshold is the minimum length of a run of zero bytes that becomes
	// its own "zeros" chunk.
	HolesThreshold = 1024

	// TarSplitSegmentSize is the maximum size of one tar-split segment for the
	// bytes after the end-of-archive blocks.
	TarSplitSegmentSize = 1 << 20
)

// ZstdFrameMagic is the magic of an ordinary zstd frame: 28 B5 2F FD.
var ZstdFrameMagic = [4]byte{0x28, 0xb5, 0x2f, 0xfd}

// Default limits for the readers (see Limits).
const (
	// DefaultMaxTOCSize is c/storage's limit (maxTocSize) for the compressed
	// and the uncompressed TOC: 150 MiB.
	DefaultMaxTOCSize = 150 << 20
	// DefaultMaxTarSplitSize bounds the compressed and the uncompressed tar-split.
	DefaultMaxTarSplitSize = 1 << 30
	// DefaultMaxEntries bounds the number of TOC entries (about 256 bytes of
	// memory each once parsed).
	DefaultMaxEntries = 1 << 21
	// DefaultMaxNameLength bounds the length of an entry's name and linkName.
	DefaultMaxNameLength = 64 << 10
	// DefaultMaxUncompressedSize bounds what Verify decompresses for one
	// layer in each view: 256 GiB, more than any layer a runtime pulls.
	// Verify's time is linear in the uncompressed size (about 1 GB/s per view
	// per core); zstd can expand a blob up to ~32,000 times, so callers that
	// verify untrusted blobs should lower it or bound the context's time.
	DefaultMaxUncompressedSize = 256 << 30
	// DefaultMaxFindings is the number of findings Verify keeps per check id.
	DefaultMaxFindings = 100
)

// Entry types of the TOC ("type").
const (
	TypeReg     = "reg"
	TypeLink    = "hardlink"
	TypeChar    = "char"
	TypeBlock   = "block"
	TypeDir     = "dir"
	TypeFifo    = "fifo"
	TypeSymlink = "symlink"
	// TypeChunk marks the 2nd and later chunks of a regular file.
	TypeChunk = "chunk"
)

// Chunk types of the TOC ("chunkType", containers dialects only).
const (
	ChunkTypeData  = ""
	ChunkTypeZeros = "zeros"
)

// eStargz landmark file names (stargz dialect).
const (
	PrefetchLandmark   = ".prefetch.landmark"
	NoPrefetchLandmark = ".no.prefetch.landmark"
)

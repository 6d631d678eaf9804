package zstdchunked

import (
	"encoding/base64"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
)

// Dialect names one of the three zstd:chunked flavours (see the package
// documentation).
type Dialect string

const (
	// DialectContainers: io.github.containers.zstd-chunked.* annotations,
	// 64-byte "GNUlInUx" footer, tar-split frame, minimal TOC schema.
	DialectContainers Dialect = "containers"
	// DialectContainersLegacy: io.containers.zstd-chunked.* annotations, 40-byte
	// "GnUlInUx" footer, no tar-split, minimal TOC schema (endOffset, chunkType).
	DialectContainersLegacy Dialect = "containers-legacy"
	// DialectStargz: io.containers.zstd-chunked.* plus
	// containerd.io/snapshot/stargz/toc.digest, 40-byte "GnUlInUx" footer,
	// eStargz JTOC with landmarks, no tar end-of-archive blocks.
	DialectStargz Dialect = "stargz"
)

// TOCShape says which JSON schema a TOC follows, judged from its content.
type TOCShape string

const (
	// ShapeContainers is c/storage's minimal.TOC schema: tarSplitDigest,
	// endOffset, chunkType, accesstime/changetime, no chunkDigest on
	// single-chunk files.
	ShapeContainers TOCShape = "containers"
	// ShapeEStargz is the eStargz JTOC schema: landmark entries, userName/
	// groupName, innerOffset, chunkDigest on every chunk, no endOffset.
	ShapeEStargz TOCShape = "estargz"
	// ShapeMixed means the TOC carries signs of both schemas.
	ShapeMixed TOCShape = "mixed"
	// ShapeUnknown means nothing in the TOC tells the schemas apart (e.g. an
	// archive with no regular file content).
	ShapeUnknown TOCShape = "unknown"
)

// TOC is the table of contents. It is a superset of c/storage's minimal.TOC
// and of the eStargz JTOC; marshalled with json-iterator's
// ConfigCompatibleWithStandardLibrary it gives exactly the bytes c/storage
// writes (the eStargz-only fields are empty then and omitted).
type TOC struct {
	// Version is 1 in every dialect.
	Version int `json:"version"`
	// Entries in tar order (see FileMetadata).
	Entries []FileMetadata `json:"entries"`
	// TarSplitDigest is the sha256 of the compressed tar-split frame
	// (containers dialect only).
	TarSplitDigest digest.Digest `json:"tarSplitDigest,omitempty"`

	// Dialect is filled in by ReadTOC: from the annotations, or, when there are
	// none, from the footer form and the TOC shape ("" when that is ambiguous).
	Dialect Dialect `json:"-"`
	// Shape is filled in by ReadTOC.
	Shape TOCShape `json:"-"`
	// Digest is the sha256 of the compressed TOC (the containers TOC digest),
	// filled in by ReadTOC.
	Digest digest.Digest `json:"-"`
	// JSONDigest is the sha256 of the uncompressed TOC JSON (the eStargz TOC
	// digest), filled in by ReadTOC.
	JSONDigest digest.Digest `json:"-"`
}

// FileMetadata is one TOC entry. The fields up to ChunkType mirror
// c/storage's minimal.FileMetadata in order, names and tags; the remaining ones
// exist only in eStargz JTOCs.
type FileMetadata struct {
	Type       string     `json:"type"`
	Name       string     `json:"name"`
	Linkname   string     `json:"linkName,omitempty"`
	Mode       int64      `json:"mode,omitempty"`
	Size       int64      `json:"size,omitempty"`
	UID        int        `json:"uid,omitempty"`
	GID        int        `json:"gid,omitempty"`
	ModTime    *time.Time `json:"modtime,omitempty"`
	AccessTime *time.Time `json:"accesstime,omitempty"`
	ChangeTime *time.Time `json:"changetime,omitempty"`
	Devmajor   int64      `json:"devMajor,omitempty"`
	Devminor   int64      `json:"devMinor,omitempty"`
	// Xattrs maps an xattr name to its base64-encoded value (both dialects
	// store base64 in JSON). See DecodedXattrs.
	Xattrs map[string]string `json:"xattrs,omitempty"`
	// Digest is "sha256:<hex>" of the whole file content; empty for empty files.
	Digest string `json:"digest,omitempty"`
	// Offset is the blob offset of the frame holding this entry's (first) chunk.
	Offset int64 `json:"offset,omitempty"`
	// EndOffset is the end of the file's last frame (containers dialects only;
	// not set on "chunk" entries).
	EndOffset int64 `json:"endOffset,omitempty"`

	ChunkSize   int64  `json:"chunkSize,omitempty"`
	ChunkOffset int64  `json:"chunkOffset,omitempty"`
	ChunkDigest string `json:"chunkDigest,omitempty"`
	ChunkType   string `json:"chunkType,omitempty"`

	// eStargz JTOC only.
	UserName    string `json:"userName,omitempty"`
	GroupName   string `json:"groupName,omitempty"`
	InnerOffset int64  `json:"innerOffset,omitempty"`
	NumLink     int    `json:"NumLink,omitempty"`
}

// DecodedXattrs returns the xattrs with their values base64-decoded.
func (m *FileMetadata) DecodedXattrs() (map[string][]byte, error) {
	if len(m.Xattrs) == 0 {
		return nil, nil
	}
	out := make(map[string][]byte, len(m.Xattrs))
	for k, v := range m.Xattrs {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("xattr %q of %q: %w", k, m.Name, err)
		}
		out[k] = b
	}
	return out, nil
}

func isLandmark(name string) bool {
	switch name {
	case PrefetchLandmark, NoPrefetchLandmark, "./" + PrefetchLandmark, "./" + NoPrefetchLandmark:
		return true
	}
	return false
}

// shapeOf judges the schema of a parsed TOC.
func shapeOf(t *TOC) TOCShape {
	containers := t.TarSplitDigest != ""
	estargz := false
	for i := range t.Entries {
		e := &t.Entries[i]
		if e.EndOffset != 0 || e.ChunkType != "" || e.AccessTime != nil || e.ChangeTime != nil {
			containers = true
		}
		if e.UserName != "" || e.GroupName != "" || e.InnerOffset != 0 || e.NumLink != 0 || isLandmark(e.Name) {
			estargz = true
		}
		// c/storage gives a single-chunk file no chunkDigest; eStargz gives
		// every non-empty regular file one.
		if e.Type == TypeReg && e.Size > 0 && e.ChunkDigest == "" {
			containers = true
		}
	}
	switch {
	case containers && estargz:
		return ShapeMixed
	case containers:
		return ShapeContainers
	case estargz:
		return ShapeEStargz
	}
	return ShapeUnknown
}

// Unsupported-input codes of UnsupportedInputError.
const (
	// CodePAXGlobalHeader: a PAX global header ('g'); the TOC has no type for it
	// and c/storage's compressor fails ("unknown tarball type: 103").
	CodePAXGlobalHeader = "PAX_GLOBAL_HEADER"
	// CodeDuplicatePath: two entries whose names are equal after
	// filepath.Clean; tar-split refuses them and c/storage requires unique TOC names.
	CodeDuplicatePath = "DUPLICATE_PATH"
	// CodeSparseFile: a GNU sparse file (old 'S' type or PAX GNU.sparse.*
	// records); the TOC would describe the expanded file while the tar stream
	// holds the sparse map, so the tar could not be rebuilt bit for bit.
	CodeSparseFile = "SPARSE_FILE"
	// CodeUnsupportedEntryType: an entry type the TOC cannot name (anything
	// but regular, hard link, symlink, char, block, dir and fifo).
	CodeUnsupportedEntryType = "UNSUPPORTED_ENTRY_TYPE"
	// CodeNonUTF8Name: a name, link name or xattr name that is not valid UTF-8;
	// JSON would replace the bad bytes with U+FFFD, so the TOC and the tar-split
	// would disagree and c/storage would refuse the layer.
	CodeNonUTF8Name = "NON_UTF8_NAME"
)

// UnsupportedInputError reports a valid tar that zstd:chunked cannot represent.
type UnsupportedInputError struct {
	// Code is one of the Code* constants.
	Code string
	// Path is the tar name of the offending entry (may be empty).
	Path string
	// Reason is a human-readable explanation.
	Reason string
}

func (e *UnsupportedInputError) Error() string {
	return fmt.Sprintf("zstd:chunked cannot represent this tar (%s) at %q: %s", e.Code, e.Path, e.Reason)
}

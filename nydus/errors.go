package nydus

import (
	"errors"
	"fmt"

	"github.com/fmtconv/fmtconv/check"
)

// Check ids reported by Verify and carried by FormatError. They are stable.
const (
	// CheckBootstrap: superblock, extended superblock, table placement, version (RAFS v5 is refused here).
	CheckBootstrap = "nydus.bootstrap"
	// CheckBlobTable: blob table and device table entries (index, chunk size, counts, algorithms, features, sizes).
	CheckBlobTable = "nydus.blob-table"
	// CheckBlobID: blob ids well formed, unique, equal in device and blob table, resolvable,
	// and equal to the sha256 of the blob (or to a known layer digest).
	CheckBlobID = "nydus.blob-id"
	// CheckInodeRange: a nid, an inode, its xattrs, data blocks or chunk indexes outside the bootstrap.
	CheckInodeRange = "nydus.inode-range"
	// CheckInode: inode fields (format, layout, mode, nlink, sizes, symlink target, inline tail placement).
	CheckInode = "nydus.inode"
	// CheckXattr: inline xattr area malformed or an unknown namespace.
	CheckXattr = "nydus.xattr"
	// CheckDirent: directory blocks: name offsets, name lengths and characters, "." and "..", file types, duplicates.
	CheckDirent = "nydus.dirent"
	// CheckDirentOrder: names in a directory are not sorted bytewise.
	CheckDirentOrder = "nydus.dirent-order"
	// CheckDirLoop: a directory reachable twice (loop or directory hard link).
	CheckDirLoop = "nydus.dir-loop"
	// CheckHardlink: nlink of a regular file differs from the number of its names.
	CheckHardlink = "nydus.hardlink"
	// CheckChunkIndex: a chunk index names no blob, a ci index beyond the blob, a hole, or a block
	// address that disagrees with the chunk's uncompressed offset.
	CheckChunkIndex = "nydus.chunk-index"
	// CheckChunkInfo: ci array or chunk table entries out of range or disagreeing with each other.
	CheckChunkInfo = "nydus.chunk-info"
	// CheckChunkDigest: a chunk does not decompress to its size or its digest/CRC differs
	// (chunk table, blob.digest array).
	CheckChunkDigest = "nydus.chunk-digest"
	// CheckBlobMeta: the blob.meta header or ci array in a blob is missing or disagrees with the blob table.
	CheckBlobMeta = "nydus.blob-meta"
	// CheckBlobMissing: a blob the bootstrap references could not be read (or no blobs were given).
	CheckBlobMissing = "nydus.blob-missing"
	// CheckTOC: the reverse-tar sections or the TOC of a blob are malformed or inconsistent.
	CheckTOC = "nydus.toc"
	// CheckTOCDigest: the TOC digest differs from the blob table, or a TOC entry digest differs
	// from its section's content.
	CheckTOCDigest = "nydus.toc-digest"
	// CheckPrefetch: the prefetch table lists nids that are not inodes of the tree.
	CheckPrefetch = "nydus.prefetch"
)

// FormatError is a malformed structure; Check is the check id Verify reports for it.
type FormatError struct {
	Check  string
	Path   string // file path inside the image, if known
	Offset int64  // byte offset in the bootstrap or blob, -1 if not meaningful
	Msg    string
	Err    error // wrapped cause, may be nil
}

func (e *FormatError) Error() string {
	s := "nydus: " + e.Check + ": " + e.Msg
	if e.Path != "" {
		s += " (path " + e.Path + ")"
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf(" (offset %d)", e.Offset)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(id string, off int64, format string, a ...any) *FormatError {
	return &FormatError{Check: id, Offset: off, Msg: fmt.Sprintf(format, a...)}
}

// ErrRAFSV5 is matched (errors.Is) by the error returned for a RAFS v5 bootstrap.
var ErrRAFSV5 = errors.New("nydus: RAFS v5 bootstrap")

// VersionError reports a bootstrap of a RAFS version this package does not read.
type VersionError struct {
	FSVersion int    // 5
	Magic     uint32 // magic at offset 0
	Version   uint32 // version field at offset 4
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("nydus: bootstrap is RAFS v%d (magic %#x, version %#x); only RAFS v6 is supported — rebuild the image with fs-version 6 (the default of nydus-image and nydusify)", e.FSVersion, e.Magic, e.Version)
}

// Is makes errors.Is(err, ErrRAFSV5) true for a v5 bootstrap.
func (e *VersionError) Is(target error) bool { return target == ErrRAFSV5 && e.FSVersion == 5 }

// findingOf converts an error into a finding with its check id.
func findingOf(err error, fallback string) check.Finding {
	var fe *FormatError
	if errors.As(err, &fe) {
		f := check.Errorf(fe.Check, "%s", trimPrefix(fe))
		f.Path = fe.Path
		return f
	}
	return check.Errorf(fallback, "%v", err)
}

func trimPrefix(fe *FormatError) string {
	s := fe.Msg
	if fe.Offset >= 0 {
		s += fmt.Sprintf(" (offset %d)", fe.Offset)
	}
	if fe.Err != nil {
		s += ": " + fe.Err.Error()
	}
	return s
}

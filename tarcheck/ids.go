package tarcheck

import "github.com/fmtconv/fmtconv/check"

// Check ids reported by Scan; stable, documented in the README. The severity
// in brackets is the default (see DefaultSeverity and Options.Severity).
const (
	// CheckPathAbsolute [error]: an entry name starts with '/'. Names with a
	// "./" prefix are normal and are the same path as without it.
	CheckPathAbsolute = "tar.path-absolute"
	// CheckPathTraversal [error]: an entry name has ".." components that
	// leave the root once the name is cleaned ("a/../../etc/passwd"; "a/../b"
	// is fine).
	CheckPathTraversal = "tar.path-traversal"
	// CheckLinkEscape [error]: a symlink whose relative target, resolved
	// lexically from the link's own directory, leaves the root through ".."
	// (absolute symlink targets resolve inside the container root and are
	// not reported), or a hard link whose target is absolute or leaves the
	// root.
	CheckLinkEscape = "tar.link-escape"
	// CheckDuplicatePath [warning]: two entries with the same normalised
	// path (also two directories of the same type): readers that keep the
	// first and readers that keep the last see different trees, and formats
	// with a table of contents (zstd:chunked) cannot represent it.
	CheckDuplicatePath = "tar.duplicate-path"
	// CheckHardlinkMissing [error]: a hard link whose target is not an
	// earlier entry of the layer, or was whited out (itself or a parent
	// directory) after it appeared.
	CheckHardlinkMissing = "tar.hardlink-missing"
	// CheckWhiteoutInvalid [error]: a ".wh." entry that is not an empty
	// regular file; a whiteout naming nothing, "." or ".."; a whiteout whose
	// name nests another ".wh." prefix (".wh..wh.foo", aufs metadata); an
	// entry inside a ".wh." directory; an opaque marker ".wh..wh..opq" at
	// the layer root or inside an entry that is not a directory.
	CheckWhiteoutInvalid = "tar.whiteout-invalid"
	// CheckWhiteoutShadowed [warning]: a whiteout ".wh.x" and a real entry
	// "x" in the same layer (in either order): whether "x" survives depends
	// on the order the applier processes them in.
	CheckWhiteoutShadowed = "tar.whiteout-shadowed"
	// CheckDeviceNode [warning]: a character or block device entry
	// (legitimate in base images, but worth a look elsewhere).
	CheckDeviceNode = "tar.device-node"
	// CheckPAXGlobal [warning]: a PAX global extended header ('g'). Go's
	// archive/tar does not apply its records to the entries that follow,
	// GNU tar and libarchive do, so readers disagree.
	CheckPAXGlobal = "tar.pax-global"
	// CheckNameInvalidUTF8 [warning]: a name or link target that is not
	// valid UTF-8 (JSON-based tables of contents cannot carry it).
	CheckNameInvalidUTF8 = "tar.name-invalid-utf8"
	// CheckNameNUL [error]: a NUL byte inside a name or link target: in a PAX
	// path/linkpath/GNU.sparse.name record or a GNU long name/link ('L'/'K')
	// followed by more name bytes. Readers cut such names at different
	// places (archive/tar refuses PAX ones, C readers stop at the NUL).
	CheckNameNUL = "tar.name-nul"
	// CheckHeader [error]: a header that does not parse (bad checksum, bad
	// number, malformed PAX record, a zero block followed by a header), a
	// stream that ends inside a header or inside an entry's data, non-zero
	// bytes after the end-of-archive marker; also an empty name, and a
	// sparse file whose map does not match its data. Where the stream
	// cannot be parsed further the scan of entries stops, but the rest of
	// the stream is still read so that Result.Digest and Result.Size cover
	// all of it.
	CheckHeader = "tar.header"
	// CheckHeaderOnlySize [error]: a directory, link, device or fifo entry
	// whose header claims data (a non-zero size). archive/tar and most
	// readers read none and take the next block as the next header; others
	// (pax readers, for hard links) read the data, so readers see different
	// entries.
	CheckHeaderOnlySize = "tar.header-only-size"
	// CheckNoEOF [warning]: the stream ends without the two zero blocks of
	// the end-of-archive marker (none, one, or a cut one, also when it ends
	// inside the last entry's padding). Many real layers do this; readers
	// accept it. Extra zero padding after the marker is not reported.
	CheckNoEOF = "tar.no-eof"

	// CheckLimitEntries [error]: more than Limits.MaxEntries entries.
	CheckLimitEntries = "limit.entries"
	// CheckLimitNameLength [error]: a name or link target longer than
	// Limits.MaxNameLength bytes.
	CheckLimitNameLength = "limit.name-length"
	// CheckLimitPAXSize [error]: extended header data of one entry (PAX
	// records, GNU long names, sparse maps) larger than
	// Limits.MaxPAXRecordsSize (archive/tar itself refuses more than 1 MiB).
	CheckLimitPAXSize = "limit.pax-size"
	// CheckLimitEntrySize [error]: a header claiming more than
	// Limits.MaxEntrySize bytes of data.
	CheckLimitEntrySize = "limit.entry-size"
	// CheckLimitTotalSize [error]: the stream is longer than
	// Limits.MaxTotalSize bytes.
	CheckLimitTotalSize = "limit.total-size"
)

// CheckIDs lists every check id Scan can report, in documentation order.
var CheckIDs = []string{
	CheckPathAbsolute, CheckPathTraversal, CheckLinkEscape, CheckDuplicatePath, CheckHardlinkMissing,
	CheckWhiteoutInvalid, CheckWhiteoutShadowed, CheckDeviceNode, CheckPAXGlobal, CheckNameInvalidUTF8,
	CheckNameNUL, CheckHeader, CheckHeaderOnlySize, CheckNoEOF,
	CheckLimitEntries, CheckLimitNameLength, CheckLimitPAXSize, CheckLimitEntrySize, CheckLimitTotalSize,
}

// DefaultSeverity returns the severity Scan gives findings of check id
// unless Options.Severity overrides it (Error for unknown ids).
func DefaultSeverity(id string) check.Severity {
	switch id {
	case CheckDuplicatePath, CheckWhiteoutShadowed, CheckDeviceNode, CheckPAXGlobal, CheckNameInvalidUTF8, CheckNoEOF:
		return check.Warning
	}
	return check.Error
}

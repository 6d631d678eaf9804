package nydus

import "fmt"

// Codes of PackError and MergeError. They are stable.
const (
	// CodeOptions: invalid PackOptions or MergeOptions.
	CodeOptions = "OPTIONS"
	// CodeInvalidTar: the input is not a readable tar stream (or ends inside an entry).
	CodeInvalidTar = "INVALID_TAR"
	// CodePAXGlobalHeader: a PAX global header ('g') with records that change how
	// later entries read (extractors disagree on applying them). Global headers
	// holding only comment/charset records are ignored, as Go and containerd do.
	CodePAXGlobalHeader = "PAX_GLOBAL_HEADER"
	// CodeDuplicatePath: a path appears twice (only with PackOptions.RejectDuplicates;
	// by default the last entry wins, as extraction does).
	CodeDuplicatePath = "DUPLICATE_PATH"
	// CodeUnsupportedEntry: a tar entry type RAFS cannot hold.
	CodeUnsupportedEntry = "UNSUPPORTED_ENTRY"
	// CodeHardlinkTarget: a hard link to a path that does not exist (yet) in the
	// layer, or to a directory.
	CodeHardlinkTarget = "HARDLINK_TARGET"
	// CodeNotADirectory: a path goes through a non-directory.
	CodeNotADirectory = "NOT_A_DIRECTORY"
	// CodeNameTooLong: a path component over 255 bytes.
	CodeNameTooLong = "NAME_TOO_LONG"
	// CodeSymlinkTarget: an empty symlink target or one over 4095 bytes (what
	// Linux can read back).
	CodeSymlinkTarget = "SYMLINK_TARGET"
	// CodeXattr: an xattr RAFS cannot store (namespace other than user., trusted.,
	// security., system.posix_acl_*; name over 255 or value over 65535 bytes;
	// all xattrs of a file over 64 KiB).
	CodeXattr = "XATTR"
	// CodeDeviceNumber: a device major over 4095 or minor over 1048575.
	CodeDeviceNumber = "DEVICE_NUMBER"
	// CodeIDRange: a uid or gid that does not fit 32 bits, or a negative mode/size.
	CodeIDRange = "ID_RANGE"
	// CodeTooLarge: a layer over the format's limits (2^24 chunks per blob, 1 TiB
	// of compressed chunk data, 16 TiB of raw device).
	CodeTooLarge = "TOO_LARGE"
	// CodeMergeInput: a layer bootstrap Merge cannot use (unreadable, inconsistent
	// chunk sizes or digesters, chunks without chunk table entries, holes).
	CodeMergeInput = "MERGE_INPUT"
)

// PackError is a tar stream (or Merge input) the writer refuses. Code is one
// of the Code* constants; Path names the tar entry or file when known.
type PackError struct {
	Code string
	Path string
	Msg  string
	Err  error
}

func (e *PackError) Error() string {
	s := "nydus: " + e.Code + ": " + e.Msg
	if e.Path != "" {
		s += fmt.Sprintf(" (path %q)", e.Path)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *PackError) Unwrap() error { return e.Err }

func packErr(code, path, format string, a ...any) *PackError {
	return &PackError{Code: code, Path: path, Msg: fmt.Sprintf(format, a...)}
}

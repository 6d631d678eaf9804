package tarcheck

import (
	"crypto/sha256"
	"path"
	"strings"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// NormalizePath returns the path an entry name denotes inside the layer:
// leading slashes dropped, then cleaned ("./a/b/", "a//b", "/a/b" and
// "a/x/../b" all give "a/b"); the root is ".". A result that is ".." or
// starts with "../" leaves the root.
func NormalizePath(name string) string {
	return path.Clean(strings.TrimLeft(name, "/"))
}

// escapes reports whether a cleaned relative path leaves the root.
func escapes(clean string) bool {
	return clean == ".." || strings.HasPrefix(clean, "../")
}

// pathKey identifies a normalised path: the first 128 bits of its SHA-256,
// so that the table costs the same per entry however long the names are.
type pathKey [16]byte

func keyOf(p string) pathKey {
	sum := sha256.Sum256([]byte(p))
	return pathKey(sum[:16])
}

// pathInfo is what the scan remembers about one normalised path.
type pathInfo struct {
	entrySeq uint32 // 1-based index of the last entry with this path; 0: none
	whSeq    uint32 // 1-based index of the last whiteout naming this path; 0: none
	typ      byte   // type of the last entry with this path
}

// pathTable is the per-layer set of paths seen, for duplicate, hard link
// and whiteout checks. Its memory is bounded by MaxEntries: at most two
// keys per entry (its own path and, for a whiteout, the path it hides).
type pathTable map[pathKey]pathInfo

// whitedOut reports whether p, or one of its parent directories, was whited
// out after p last appeared.
func (t pathTable) whitedOut(p string, seq uint32) bool {
	for {
		if t[keyOf(p)].whSeq > seq {
			return true
		}
		d := path.Dir(p)
		if d == p || d == "." || d == "/" {
			return false
		}
		p = d
	}
}

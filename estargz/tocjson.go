package estargz

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
)

// appendTOCJSON appends json.MarshalIndent(toc, "", "\t") to dst, the bytes
// upstream's writer stores, without reflection. A TOC of a large layer has
// tens of thousands of entries and is written after the last payload member,
// when nothing else runs beside it: encoding/json (marshal, then re-indent)
// made that tail about a twentieth of an eStargz conversion. The tests compare
// this with encoding/json on generated and real TOCs.
func appendTOCJSON(dst []byte, toc *JTOC) []byte {
	dst = append(dst, "{\n\t\"version\": "...)
	dst = strconv.AppendInt(dst, int64(toc.Version), 10)
	dst = append(dst, ",\n\t\"entries\": "...)
	switch {
	case toc.Entries == nil:
		dst = append(dst, "null"...)
	case len(toc.Entries) == 0:
		dst = append(dst, "[]"...)
	default:
		dst = append(dst, '[')
		for i, ent := range toc.Entries {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, "\n\t\t"...)
			dst = appendEntryJSON(dst, ent)
		}
		dst = append(dst, "\n\t]"...)
	}
	return append(dst, "\n}"...)
}

// appendEntryJSON appends one entry as it appears inside the TOC (its fields
// at depth 3), in TOCEntry's field order with its omitempty rules.
func appendEntryJSON(dst []byte, e *TOCEntry) []byte {
	if e == nil {
		return append(dst, "null"...)
	}
	const field = "\n\t\t\t\""
	dst = append(dst, '{')
	str := func(name, v string, always bool) {
		if v == "" && !always {
			return
		}
		if dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		dst = append(dst, field...)
		dst = append(dst, name...)
		dst = append(dst, "\": "...)
		dst = appendJSONString(dst, v)
	}
	num := func(name string, v int64) {
		if v == 0 {
			return
		}
		dst = append(dst, ',')
		dst = append(dst, field...)
		dst = append(dst, name...)
		dst = append(dst, "\": "...)
		dst = strconv.AppendInt(dst, v, 10)
	}
	str("name", e.Name, true)
	str("type", e.Type, true)
	num("size", e.Size)
	str("modtime", e.ModTime3339, false)
	str("linkName", e.LinkName, false)
	num("mode", e.Mode)
	num("uid", int64(e.UID))
	num("gid", int64(e.GID))
	str("userName", e.Uname, false)
	str("groupName", e.Gname, false)
	num("offset", e.Offset)
	num("innerOffset", e.InnerOffset)
	num("devMajor", int64(e.DevMajor))
	num("devMinor", int64(e.DevMinor))
	if len(e.Xattrs) > 0 {
		dst = append(dst, ","+field+"xattrs\": {"...)
		keys := make([]string, 0, len(e.Xattrs))
		for k := range e.Xattrs {
			keys = append(keys, k)
		}
		slices.Sort(keys) // encoding/json sorts map keys bytewise
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, "\n\t\t\t\t"...)
			dst = appendJSONString(dst, k)
			dst = append(dst, ": "...)
			if v := e.Xattrs[k]; v == nil {
				dst = append(dst, "null"...)
			} else {
				dst = append(dst, '"')
				dst = base64.StdEncoding.AppendEncode(dst, v)
				dst = append(dst, '"')
			}
		}
		dst = append(dst, "\n\t\t\t}"...)
	}
	str("digest", e.Digest, false)
	num("chunkOffset", e.ChunkOffset)
	num("chunkSize", e.ChunkSize)
	str("chunkDigest", e.ChunkDigest, false)
	return append(dst, "\n\t\t}"...)
}

// appendJSONString appends s as encoding/json writes a string: quoted, with
// HTML-safe escaping. Plain printable ASCII, which almost every path is, is
// copied; anything else goes through encoding/json itself.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

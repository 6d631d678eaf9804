package tarcheck

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

const blockSize = 512

// rawInfo is what inspectRaw learns from the raw header blocks of one entry:
// things archive/tar hides (it cuts names at NUL, refuses PAX names with NUL
// with a bare ErrHeader, and does not say which check failed).
type rawInfo struct {
	allZero     bool   // every captured byte is zero (possibly a cut end-of-archive marker)
	paxSize     int64  // total data size claimed by the 'x'/'g' headers of the entry
	longMax     int64  // largest data size claimed by one 'L'/'K' header
	nulName     string // the name cut at its NUL, when a name holds a NUL; "" otherwise
	nulWhere    string // which record or header held it
	hasNUL      bool
	badChecksum int64 // stream offset of a header block with a bad checksum, or -1
	badNumber   int64 // stream offset of a header block whose size field does not parse, or -1
	mainEnd     int64 // stream offset just after the entry's own header block, or -1
	mainSize    int64 // the size field of the entry's own header block
}

// inspectRaw walks the captured header blocks b of one entry, which start at
// stream offset base: extension headers ('x', 'g', 'L', 'K') with their data,
// up to and including the entry's own header block.
func inspectRaw(b []byte, base int64) rawInfo {
	ri := rawInfo{allZero: isZero(b), badChecksum: -1, badNumber: -1, mainEnd: -1}
	off := 0
	for off+blockSize <= len(b) {
		blk := b[off : off+blockSize]
		if isZero(blk) {
			break
		}
		if !checksumOK(blk) {
			ri.badChecksum = base + int64(off)
			break
		}
		size, ok := parseNumber(blk[124:136])
		if !ok || size < 0 {
			ri.badNumber = base + int64(off)
			break
		}
		off += blockSize
		typ := blk[156]
		if typ != 'x' && typ != 'g' && typ != 'L' && typ != 'K' {
			ri.mainEnd, ri.mainSize = base+int64(off), size // the entry's own header
			break
		}
		data := b[off:]
		if int64(len(data)) > size {
			data = data[:size]
		}
		switch typ {
		case 'x', 'g':
			ri.paxSize = satAdd(ri.paxSize, size)
			ri.checkPAX(data)
		case 'L', 'K':
			ri.longMax = max(ri.longMax, size)
			// GNU long names are NUL-terminated; a NUL followed by more
			// name bytes hides the rest of the name from C readers.
			if i := bytes.IndexByte(data, 0); i >= 0 && len(bytes.TrimRight(data, "\x00")) > i && !ri.hasNUL {
				ri.hasNUL = true
				ri.nulName = string(data[:i])
				ri.nulWhere = fmt.Sprintf("GNU long %s header at offset %d", map[byte]string{'L': "name", 'K': "link"}[typ], base+int64(off-blockSize))
			}
		}
		if size > int64(len(b)-off) {
			break
		}
		off += int((size + blockSize - 1) / blockSize * blockSize)
		if off < 0 || off > len(b) {
			break
		}
	}
	return ri
}

// checkPAX looks for NUL bytes in the name records of PAX data.
func (ri *rawInfo) checkPAX(data []byte) {
	for len(data) > 0 && !ri.hasNUL {
		sp := bytes.IndexByte(data, ' ')
		if sp <= 0 || sp > 20 {
			return
		}
		n, err := strconv.Atoi(string(data[:sp]))
		if err != nil || n <= sp+1 || n > len(data) {
			return
		}
		rec := data[sp+1 : n]
		data = data[n:]
		rec = bytes.TrimSuffix(rec, []byte("\n"))
		k, v, ok := bytes.Cut(rec, []byte("="))
		if !ok {
			return
		}
		switch string(k) {
		case "path", "linkpath", "GNU.sparse.name":
			if i := bytes.IndexByte(v, 0); i >= 0 {
				ri.hasNUL = true
				ri.nulName = string(v[:i])
				ri.nulWhere = "PAX " + string(k) + " record"
			}
		}
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checksumOK verifies a header block's checksum the way archive/tar does:
// the unsigned or the signed byte sum, with the checksum field as spaces.
func checksumOK(blk []byte) bool {
	stored, ok := parseOctal(blk[148:156])
	if !ok {
		return false
	}
	var u, s int64
	for i, c := range blk {
		if i >= 148 && i < 156 {
			c = ' '
		}
		u += int64(c)
		s += int64(int8(c))
	}
	return stored == u || stored == s
}

// parseNumber parses a numeric header field: octal text, or GNU base-256
// (first byte 0x80). Negative base-256 numbers and overflows are not ok.
func parseNumber(b []byte) (int64, bool) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0]&0x40 != 0 {
			return 0, false // negative
		}
		v := int64(b[0] & 0x3f)
		for _, c := range b[1:] {
			if v > math.MaxInt64>>8 {
				return 0, false
			}
			v = v<<8 | int64(c)
		}
		return v, true
	}
	return parseOctal(b)
}

// parseOctal parses an octal field as archive/tar does: spaces and NULs
// trimmed at both ends, then cut at the first NUL.
func parseOctal(b []byte) (int64, bool) {
	b = bytes.Trim(b, " \x00")
	if len(b) == 0 {
		return 0, true
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	v, err := strconv.ParseUint(string(b), 8, 63)
	if err != nil {
		return 0, false
	}
	return int64(v), true
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

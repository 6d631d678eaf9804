package tarcheck

import (
	"archive/tar"
	"strconv"
	"strings"
)

// sparseKind tells whether archive/tar reads hdr as a sparse file, and
// whether its sparse map is in the PAX 1.0 layout (at the start of the data).
func sparseKind(hdr *tar.Header) (sparse, map1x0 bool) {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true, false
	}
	major, minor := hdr.PAXRecords["GNU.sparse.major"], hdr.PAXRecords["GNU.sparse.minor"]
	switch {
	case major == "0" && (minor == "0" || minor == "1"):
		return true, false
	case major == "1" && minor == "0":
		return true, true
	case major != "" || minor != "":
		return false, false
	}
	return hdr.PAXRecords["GNU.sparse.map"] != "", false
}

// sparseFragments returns the number of data bytes the sparse map of a
// sparse entry describes (the sum of its fragment lengths), read from where
// archive/tar read it: the PAX records (GNU sparse 0.0 and 0.1; archive/tar
// turns 0.0's records into GNU.sparse.map), the map at the start of the data
// section (1.0), or the old GNU header and its extension blocks ('S'). raw
// holds the entry's captured header bytes, from stream offset base; mapEnd is
// where archive/tar stopped reading. ok is false when the map cannot be
// read (not expected once archive/tar has accepted it).
func sparseFragments(hdr *tar.Header, raw []byte, base int64, ri rawInfo, mapEnd int64) (sum int64, ok bool) {
	add := func(s string) bool {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return false
		}
		sum = satAdd(sum, n)
		return true
	}
	switch sparse, map1x0 := sparseKind(hdr); {
	case !sparse:
		return 0, false
	case hdr.Typeflag == tar.TypeGNUSparse:
		i := ri.mainEnd - blockSize - base
		if ri.mainEnd < 0 || i < 0 || i+blockSize > int64(len(raw)) {
			return 0, false
		}
		blk := raw[i : i+blockSize]
		entries, more := blk[386:482], blk[482] != 0
		for {
			for e := 0; e+24 <= len(entries); e += 24 {
				if entries[e] == 0 {
					break
				}
				n, ok := parseNumber(entries[e+12 : e+24])
				if !ok {
					return 0, false
				}
				sum = satAdd(sum, n)
			}
			if !more {
				return sum, true
			}
			i += blockSize
			if i+blockSize > int64(len(raw)) {
				return 0, false
			}
			blk = raw[i : i+blockSize]
			entries, more = blk[:21*24], blk[504] != 0
		}
	case map1x0:
		if ri.mainEnd < 0 || mapEnd < ri.mainEnd || mapEnd-base > int64(len(raw)) {
			return 0, false
		}
		toks := strings.Split(string(raw[ri.mainEnd-base:mapEnd-base]), "\n")
		count, err := strconv.ParseInt(toks[0], 10, 64)
		if err != nil || count < 0 || count > int64(len(toks)) || int64(len(toks)) < 1+2*count {
			return 0, false
		}
		for k := int64(0); k < count; k++ {
			if !add(toks[2+2*k]) {
				return 0, false
			}
		}
		return sum, true
	default:
		m := hdr.PAXRecords["GNU.sparse.map"]
		if m == "" {
			return 0, true
		}
		fields := strings.Split(m, ",")
		if len(fields)%2 != 0 {
			return 0, false
		}
		for k := 1; k < len(fields); k += 2 {
			if !add(fields[k]) {
				return 0, false
			}
		}
		return sum, true
	}
}

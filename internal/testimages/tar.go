package testimages

import (
	"archive/tar"
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// DefaultModTime is the modification time of every Entry whose ModTime is
// the zero time.Time.
var DefaultModTime = time.Date(2024, time.January, 2, 3, 4, 5, 0, time.UTC)

// BlockSize is the tar block size.
const BlockSize = 512

// GNURecordSize is GNU tar's default record size (20 blocks): GNU tar pads
// every archive with zeros to a multiple of it.
const GNURecordSize = 10240

// Entry describes one tar entry. Fields are used literally (a Mode of 0
// really is mode 0000); only ModTime has a default.
type Entry struct {
	// Type is an archive/tar type flag: tar.TypeReg, tar.TypeDir,
	// tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock,
	// tar.TypeFifo, or tar.TypeXGlobalHeader. A global header is written
	// as raw blocks ('g' typeflag, Name defaulting to "pax_global_header",
	// Mode, ModTime and PAXRecords as its records); the other fields are
	// ignored for it.
	Type byte
	Name string
	// Mode holds the permission bits including setuid (0o4000), setgid
	// (0o2000) and sticky (0o1000); the file type comes from Type.
	Mode         int64
	UID, GID     int
	Uname, Gname string
	// ModTime defaults to DefaultModTime. A non-zero sub-second part makes
	// the entry use the PAX format (an "mtime" record with nanoseconds)
	// unless Format says otherwise.
	ModTime  time.Time
	Linkname string // symlink target or hardlink target path
	// Xattrs are stored as PAX "SCHILY.xattr.<name>" records, in sorted
	// order. Values may be arbitrary binary data (NUL bytes included).
	Xattrs             map[string]string
	Devmajor, Devminor int64   // for tar.TypeChar and tar.TypeBlock
	Content            Content // data of a tar.TypeReg entry; must be empty for other types
	// PAXRecords are extra PAX records for this entry (or the records of a
	// global header).
	PAXRecords map[string]string
	// Format forces a header format: tar.FormatGNU gives GNU long names
	// ("././@LongLink" 'L'/'K' entries) and base-256 numbers,
	// tar.FormatPAX / tar.FormatUSTAR force those. The zero value lets
	// archive/tar pick the most compact format that can represent the entry.
	Format tar.Format
}

// EndingKind selects how BuildTar terminates the archive.
type EndingKind int

const (
	// EndEOF is the standard ending: two 512-byte zero blocks, as written
	// by archive/tar's Close.
	EndEOF EndingKind = iota
	// EndRecord writes the two zero blocks and then pads with zeros to a
	// multiple of N bytes (GNURecordSize if N is 0), as GNU tar does.
	EndRecord
	// EndNoEOF stops right after the last entry (data and its padding to a
	// block boundary); there are no end-of-archive blocks at all.
	EndNoEOF
	// EndInsidePadding stops N bytes into the padding that follows the last
	// entry's data, so the stream is not a multiple of 512 bytes. N must be
	// smaller than that padding (and the last entry must have some).
	EndInsidePadding
	// EndExtraZeros writes the two zero blocks followed by N more zero
	// bytes.
	EndExtraZeros
)

// Ending says how BuildTar terminates the archive; the zero value is the
// standard EndEOF.
type Ending struct {
	Kind EndingKind
	N    int
}

// BuildTar writes entries, in order, into a tar stream and terminates it as
// end says. Normal entries are written by archive/tar; global headers and
// the unusual endings are written as raw blocks.
func BuildTar(entries []Entry, end Ending) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	lastDataEnd, lastPad := -1, 0
	for i, e := range entries {
		if e.Type == tar.TypeXGlobalHeader {
			if err := tw.Flush(); err != nil {
				return nil, err
			}
			raw, err := paxGlobalHeader(e)
			if err != nil {
				return nil, fmt.Errorf("entry %d (%q): %w", i, e.Name, err)
			}
			buf.Write(raw)
			lastDataEnd, lastPad = -1, 0
			continue
		}
		hdr, err := e.header()
		if err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i, e.Name, err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i, e.Name, err)
		}
		if hdr.Size > 0 {
			if _, err := e.Content.WriteTo(tw); err != nil {
				return nil, fmt.Errorf("entry %d (%q): %w", i, e.Name, err)
			}
		}
		lastDataEnd = buf.Len()
		lastPad = int(-hdr.Size & (BlockSize - 1))
	}

	switch end.Kind {
	case EndEOF:
		if err := tw.Close(); err != nil {
			return nil, err
		}
	case EndRecord:
		if err := tw.Close(); err != nil {
			return nil, err
		}
		record := end.N
		if record == 0 {
			record = GNURecordSize
		}
		if record < 0 || record%BlockSize != 0 {
			return nil, fmt.Errorf("record size %d is not a positive multiple of %d", record, BlockSize)
		}
		if rem := buf.Len() % record; rem != 0 {
			buf.Write(make([]byte, record-rem))
		}
	case EndNoEOF:
		if err := tw.Flush(); err != nil {
			return nil, err
		}
	case EndInsidePadding:
		if err := tw.Flush(); err != nil {
			return nil, err
		}
		if lastDataEnd < 0 {
			return nil, fmt.Errorf("EndInsidePadding needs a last entry that is not a global header")
		}
		if end.N < 0 || end.N >= lastPad {
			return nil, fmt.Errorf("EndInsidePadding: keeping %d bytes of a %d-byte padding does not end inside it", end.N, lastPad)
		}
		buf.Truncate(lastDataEnd + end.N)
	case EndExtraZeros:
		if err := tw.Close(); err != nil {
			return nil, err
		}
		if end.N < 0 {
			return nil, fmt.Errorf("EndExtraZeros: negative count %d", end.N)
		}
		buf.Write(make([]byte, end.N))
	default:
		return nil, fmt.Errorf("unknown ending kind %d", end.Kind)
	}
	return buf.Bytes(), nil
}

// MustBuildTar is BuildTar for statically known entries; it panics on error.
func MustBuildTar(entries []Entry, end Ending) []byte {
	b, err := BuildTar(entries, end)
	if err != nil {
		panic(err)
	}
	return b
}

func (e Entry) modTime() time.Time {
	if e.ModTime.IsZero() {
		return DefaultModTime
	}
	return e.ModTime
}

func (e Entry) header() (*tar.Header, error) {
	hdr := &tar.Header{
		Typeflag: e.Type,
		Name:     e.Name,
		Linkname: e.Linkname,
		Mode:     e.Mode,
		Uid:      e.UID,
		Gid:      e.GID,
		Uname:    e.Uname,
		Gname:    e.Gname,
		ModTime:  e.modTime(),
		Devmajor: e.Devmajor,
		Devminor: e.Devminor,
		Format:   e.Format,
	}
	switch e.Type {
	case tar.TypeReg:
		hdr.Size = e.Content.Size()
	default:
		if e.Content.Size() != 0 {
			return nil, fmt.Errorf("content on a non-regular entry (type %q)", e.Type)
		}
	}
	if len(e.PAXRecords) > 0 || len(e.Xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(e.PAXRecords)+len(e.Xattrs))
		maps.Copy(hdr.PAXRecords, e.PAXRecords)
		for _, k := range slices.Sorted(maps.Keys(e.Xattrs)) {
			hdr.PAXRecords["SCHILY.xattr."+k] = e.Xattrs[k]
		}
	}
	if hdr.Format == tar.FormatUnknown && hdr.ModTime.Nanosecond() != 0 {
		// archive/tar rounds ModTime to seconds unless a format is chosen.
		hdr.Format = tar.FormatPAX
	}
	return hdr, nil
}

// paxGlobalHeader encodes a PAX global extended header ('g') and its
// records as raw blocks.
func paxGlobalHeader(e Entry) ([]byte, error) {
	var data []byte
	for _, k := range slices.Sorted(maps.Keys(e.PAXRecords)) {
		rec, err := paxRecord(k, e.PAXRecords[k])
		if err != nil {
			return nil, err
		}
		data = append(data, rec...)
	}
	name := e.Name
	if name == "" {
		name = "pax_global_header"
	}
	hdr, err := rawUSTARHeader(name, tar.TypeXGlobalHeader, e.Mode, int64(len(data)), e.modTime().Unix())
	if err != nil {
		return nil, err
	}
	out := append(hdr, data...)
	out = append(out, make([]byte, -len(data)&(BlockSize-1))...)
	return out, nil
}

// paxRecord formats one "%d %s=%s\n" PAX record; the length prefix counts
// itself.
func paxRecord(k, v string) (string, error) {
	if k == "" || bytes.ContainsAny([]byte(k), "=\x00") {
		return "", fmt.Errorf("invalid PAX record key %q", k)
	}
	body := " " + k + "=" + v + "\n"
	size := len(body) + len(strconv.Itoa(len(body)))
	if rec := strconv.Itoa(size) + body; len(rec) == size {
		return rec, nil
	}
	size++ // adding the prefix carried it over to one more digit
	return strconv.Itoa(size) + body, nil
}

// rawUSTARHeader builds a 512-byte ustar header block.
func rawUSTARHeader(name string, typeflag byte, mode, size, mtime int64) ([]byte, error) {
	if len(name) > 100 {
		return nil, fmt.Errorf("raw header name %q longer than 100 bytes", name)
	}
	blk := make([]byte, BlockSize)
	copy(blk[0:100], name)
	for _, f := range []struct {
		off, len int
		v        int64
	}{
		{100, 8, mode}, {108, 8, 0}, {116, 8, 0}, {124, 12, size}, {136, 12, mtime},
		{329, 8, 0}, {337, 8, 0},
	} {
		s := strconv.FormatInt(f.v, 8)
		if f.v < 0 || len(s) > f.len-1 {
			return nil, fmt.Errorf("value %d does not fit a %d-byte octal field", f.v, f.len)
		}
		for len(s) < f.len-1 {
			s = "0" + s
		}
		copy(blk[f.off:], s) // trailing NUL already there
	}
	blk[156] = typeflag
	copy(blk[257:], "ustar\x0000")
	copy(blk[148:156], "        ")
	var sum int64
	for _, b := range blk {
		sum += int64(b)
	}
	copy(blk[148:], fmt.Sprintf("%06o\x00 ", sum))
	return blk, nil
}

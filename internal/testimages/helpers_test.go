package testimages

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// rawHeader is a header block found by walkRaw.
type rawHeader struct {
	off      int
	typeflag byte
	name     string // the 100-byte name field only
	prefix   string // the ustar prefix field
	size     int64
}

// walkRaw walks the header blocks of a tar stream without interpreting
// extended headers. It stops at the first all-zero block (returning its
// offset as eof) or at the end of the data (eof = -1).
func walkRaw(t *testing.T, b []byte) (hdrs []rawHeader, eof int) {
	t.Helper()
	off := 0
	for off+BlockSize <= len(b) {
		blk := b[off : off+BlockSize]
		if isZero(blk) {
			return hdrs, off
		}
		h := rawHeader{
			off:      off,
			typeflag: blk[156],
			name:     cstring(blk[0:100]),
			size:     parseNumeric(t, blk[124:136]),
		}
		if string(blk[257:263]) == "ustar\x00" {
			h.prefix = cstring(blk[345:500])
		}
		hdrs = append(hdrs, h)
		off += BlockSize + int((h.size+BlockSize-1)/BlockSize*BlockSize)
	}
	return hdrs, -1
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func parseNumeric(t *testing.T, b []byte) int64 {
	t.Helper()
	if b[0]&0x80 != 0 {
		var v int64
		for i, c := range b {
			if i == 0 {
				c &= 0x7f
			}
			v = v<<8 | int64(c)
		}
		return v
	}
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0
	}
	v, err := strconv.ParseInt(s, 8, 64)
	if err != nil {
		t.Fatalf("bad octal field %q: %v", b, err)
	}
	return v
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readEntry is one entry read back with archive/tar.
type readEntry struct {
	hdr  *tar.Header
	data []byte
}

// readTar reads every entry with archive/tar; the error is the one that
// ended the walk (nil for a clean io.EOF).
func readTar(b []byte) ([]readEntry, error) {
	tr := tar.NewReader(bytes.NewReader(b))
	var out []readEntry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return out, err
		}
		out = append(out, readEntry{h, data})
	}
}

// decompress decodes a layer blob according to its media type.
func decompress(t *testing.T, mediaType string, data []byte) []byte {
	t.Helper()
	switch {
	case strings.HasSuffix(mediaType, "+gzip") || strings.HasSuffix(mediaType, ".tar.gzip"):
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", mediaType, err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", mediaType, err)
		}
		return out
	case strings.HasSuffix(mediaType, "+zstd"):
		zr, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", mediaType, err)
		}
		defer zr.Close()
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", mediaType, err)
		}
		return out
	case strings.HasSuffix(mediaType, ".tar") || strings.HasSuffix(mediaType, "layer.v1.tar"):
		return data
	}
	t.Fatalf("unexpected layer media type %q", mediaType)
	return nil
}

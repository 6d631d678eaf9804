package estargz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// Footer is the last gzip member of an eStargz blob: an empty member whose
// FEXTRA field holds the offset of the TOC member.
type Footer struct {
	// TOCOffset is where the gzip member holding the TOC tar entry starts.
	TOCOffset int64
	// Legacy is set for the 47-byte stargz footer (the extra field is the bare
	// "%016xSTARGZ"); otherwise the footer is the 51-byte eStargz one (a
	// subfield 'S','G' of length 22 holding the same string).
	Legacy bool
}

// Size is the footer's length in bytes: FooterSize or LegacyFooterSize.
func (f Footer) Size() int64 {
	if f.Legacy {
		return LegacyFooterSize
	}
	return FooterSize
}

// Bytes encodes the footer as upstream writes it (gzip header with FLG=FEXTRA,
// MTIME 0, XFL 0, OS 255; an empty stored final block; CRC32 0, ISIZE 0).
func (f Footer) Bytes() []byte {
	payload := fmt.Sprintf("%016xSTARGZ", f.TOCOffset)
	var extra []byte
	if f.Legacy {
		extra = []byte(payload)
	} else {
		extra = append([]byte{'S', 'G', 0, 0}, payload...)
		binary.LittleEndian.PutUint16(extra[2:4], uint16(len(payload)))
	}
	b := []byte{0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255, 0, 0}
	binary.LittleEndian.PutUint16(b[10:12], uint16(len(extra)))
	b = append(b, extra...)
	b = append(b, 1, 0, 0, 0xff, 0xff)
	return append(b, make([]byte, 8)...)
}

// ErrNoFooter is wrapped by ReadFooter's and ParseFooter's errors.
var ErrNoFooter = errors.New("no eStargz footer")

// ParseFooter parses a footer: p must be exactly FooterSize or LegacyFooterSize
// bytes. Like upstream it accepts any gzip member that decodes to nothing and
// carries the right extra field; unlike upstream it also requires the member
// to decode cleanly (CRC and size) and the offset to be 16 lower- or
// upper-case hex digits.
func ParseFooter(p []byte) (Footer, error) {
	var legacy bool
	switch len(p) {
	case FooterSize:
	case LegacyFooterSize:
		legacy = true
	default:
		return Footer{}, fmt.Errorf("%w: a footer is %d or %d bytes, not %d", ErrNoFooter, FooterSize, LegacyFooterSize, len(p))
	}
	if len(p) < 4 || p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 {
		return Footer{}, fmt.Errorf("%w: not a gzip member", ErrNoFooter)
	}
	if p[3]&4 == 0 {
		return Footer{}, fmt.Errorf("%w: gzip header without FEXTRA", ErrNoFooter)
	}
	zr, err := gzip.NewReader(bytes.NewReader(p))
	if err != nil {
		return Footer{}, fmt.Errorf("%w: %v", ErrNoFooter, err)
	}
	zr.Multistream(false)
	n, err := io.Copy(io.Discard, zr)
	if err != nil {
		return Footer{}, fmt.Errorf("%w: footer member does not decode: %v", ErrNoFooter, err)
	}
	if n != 0 {
		return Footer{}, fmt.Errorf("%w: footer member holds %d bytes of data", ErrNoFooter, n)
	}
	extra := zr.Extra
	var payload []byte
	if legacy {
		if len(extra) != 22 {
			return Footer{}, fmt.Errorf("%w: legacy footer extra field is %d bytes, want 22", ErrNoFooter, len(extra))
		}
		payload = extra
	} else {
		if len(extra) != 26 {
			return Footer{}, fmt.Errorf("%w: footer extra field is %d bytes, want 26", ErrNoFooter, len(extra))
		}
		if extra[0] != 'S' || extra[1] != 'G' {
			return Footer{}, fmt.Errorf("%w: footer subfield id %q, want \"SG\"", ErrNoFooter, extra[:2])
		}
		if l := binary.LittleEndian.Uint16(extra[2:4]); l != 22 {
			return Footer{}, fmt.Errorf("%w: footer subfield length %d, want 22", ErrNoFooter, l)
		}
		payload = extra[4:]
	}
	if string(payload[16:]) != "STARGZ" {
		return Footer{}, fmt.Errorf("%w: magic %q, want \"STARGZ\"", ErrNoFooter, payload[16:])
	}
	var off uint64
	for _, c := range payload[:16] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return Footer{}, fmt.Errorf("%w: TOC offset %q is not hexadecimal", ErrNoFooter, payload[:16])
		}
		off = off<<4 | uint64(d)
	}
	if off > 1<<62 {
		return Footer{}, fmt.Errorf("%w: TOC offset %#x out of range", ErrNoFooter, off)
	}
	return Footer{TOCOffset: int64(off), Legacy: legacy}, nil
}

// ReadFooter reads the footer at the end of a blob of the given size, trying
// the 51-byte form first and then the legacy 47-byte one (as upstream Open
// does). The TOC offset must lie before the footer.
func ReadFooter(ra io.ReaderAt, size int64) (Footer, error) {
	if size < LegacyFooterSize {
		return Footer{}, fmt.Errorf("%w: blob of %d bytes is smaller than a footer", ErrNoFooter, size)
	}
	n := int64(FooterSize)
	if size < n {
		n = size
	}
	buf := make([]byte, n)
	if err := readAt(ra, buf, size-n); err != nil {
		return Footer{}, fmt.Errorf("reading footer: %w", err)
	}
	var errs []error
	for _, fs := range []int64{FooterSize, LegacyFooterSize} {
		if fs > n {
			continue
		}
		f, err := ParseFooter(buf[n-fs:])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if f.TOCOffset >= size-fs {
			return Footer{}, fmt.Errorf("%w: TOC offset %d is not before the %d-byte footer of a %d-byte blob", ErrNoFooter, f.TOCOffset, fs, size)
		}
		return f, nil
	}
	return Footer{}, errors.Join(errs...)
}

// readAt fills p from ra at off; an io.EOF with a full read is success.
func readAt(ra io.ReaderAt, p []byte, off int64) error {
	n, err := ra.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

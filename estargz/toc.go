package estargz

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
)

// Limits bounds what the readers accept. A zero field means its default.
type Limits struct {
	// MaxTOCSize bounds the compressed TOC member and the TOC JSON
	// (DefaultMaxTOCSize). Both are checked before anything of that size is
	// allocated.
	MaxTOCSize int64
	// MaxEntries bounds the number of TOC entries (DefaultMaxEntries), checked
	// before each entry is decoded.
	MaxEntries int
	// MaxNameLength bounds the length of an entry's name and linkName
	// (DefaultMaxNameLength).
	MaxNameLength int
}

func (l Limits) withDefaults() Limits {
	if l.MaxTOCSize <= 0 {
		l.MaxTOCSize = DefaultMaxTOCSize
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxNameLength <= 0 {
		l.MaxNameLength = DefaultMaxNameLength
	}
	return l
}

// ErrLimit is wrapped by errors for inputs over a Limits bound.
var ErrLimit = errors.New("over limit")

// TOC is a TOC read from a blob.
type TOC struct {
	JTOC
	// Digest is the sha256 of the TOC JSON (the toc.digest annotation's value).
	Digest digest.Digest
	// JSON is the TOC JSON as stored.
	JSON []byte
	// Footer is the parsed footer; Footer.TOCOffset is where the TOC member starts.
	Footer Footer
	// Trailing counts compressed bytes between the end of the TOC member and
	// the footer (0 in every blob a known writer produces).
	Trailing int64
	// TrailingData is set when the TOC member holds more than the TOC entry and
	// zero blocks.
	TrailingData bool
}

// ReadTOC reads the footer and the TOC of an eStargz blob of the given size.
// The TOC member must hold a tar entry named stargz.index.json whose content
// is the TOC JSON (upstream's layout); the limits are checked before the
// member, the JSON and each entry are allocated.
func ReadTOC(ra io.ReaderAt, size int64, lim Limits) (*TOC, error) {
	lim = lim.withDefaults()
	f, err := ReadFooter(ra, size)
	if err != nil {
		return nil, err
	}
	memberLen := size - f.Size() - f.TOCOffset
	if memberLen > lim.MaxTOCSize {
		return nil, fmt.Errorf("TOC member of %d bytes: %w (%d)", memberLen, ErrLimit, lim.MaxTOCSize)
	}
	member := make([]byte, memberLen)
	if err := readAt(ra, member, f.TOCOffset); err != nil {
		return nil, fmt.Errorf("reading the TOC member: %w", err)
	}
	br := bytes.NewReader(member)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("TOC member at %d: %w", f.TOCOffset, err)
	}
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("no tar header in the TOC member: %w", err)
	}
	if h.Name != TOCTarName {
		return nil, fmt.Errorf("TOC tar entry is named %q, want %q", h.Name, TOCTarName)
	}
	if h.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("TOC tar entry has type %q, want a regular file", h.Typeflag)
	}
	if h.Size > lim.MaxTOCSize {
		return nil, fmt.Errorf("TOC JSON of %d bytes: %w (%d)", h.Size, ErrLimit, lim.MaxTOCSize)
	}
	js := make([]byte, h.Size)
	if _, err := io.ReadFull(tr, js); err != nil {
		return nil, fmt.Errorf("reading the TOC JSON: %w", err)
	}
	toc := &TOC{JSON: js, Digest: digest.FromBytes(js), Footer: f}
	// The rest of the member must be zeros (padding and end-of-archive
	// blocks); read at most MaxTOCSize of it.
	rest := io.LimitReader(zr, lim.MaxTOCSize)
	buf := make([]byte, 32<<10)
	for {
		n, err := rest.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				toc.TrailingData = true
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("TOC member: %w", err)
		}
	}
	if n, _ := io.Copy(io.Discard, io.LimitReader(zr, 1)); n > 0 {
		toc.TrailingData = true
	}
	toc.Trailing = int64(br.Len())
	if err := parseTOCJSON(js, lim, &toc.JTOC); err != nil {
		return nil, err
	}
	return toc, nil
}

// parseTOCJSON decodes TOC JSON into t, one entry at a time so that the
// entry count is checked before each allocation. Keys match
// case-insensitively, as in upstream's json.Unmarshal into JTOC.
func parseTOCJSON(js []byte, lim Limits, t *JTOC) error {
	lim = lim.withDefaults()
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("TOC JSON: %w", err)
		}
		key, _ := tok.(string)
		switch {
		case strings.EqualFold(key, "version"):
			if err := dec.Decode(&t.Version); err != nil {
				return fmt.Errorf("TOC JSON version: %w", err)
			}
		case strings.EqualFold(key, "entries"):
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("TOC JSON entries: %w", err)
			}
			if tok == nil {
				t.Entries = nil
				continue
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				return fmt.Errorf("TOC JSON entries: not an array")
			}
			t.Entries = t.Entries[:0]
			for dec.More() {
				if len(t.Entries) >= lim.MaxEntries {
					return fmt.Errorf("TOC with more than %d entries: %w", lim.MaxEntries, ErrLimit)
				}
				e := new(TOCEntry)
				if err := dec.Decode(e); err != nil {
					return fmt.Errorf("TOC JSON entry %d: %w", len(t.Entries), err)
				}
				if len(e.Name) > lim.MaxNameLength || len(e.LinkName) > lim.MaxNameLength {
					return fmt.Errorf("TOC entry %d: name or link target of %d bytes: %w (%d)", len(t.Entries), max(len(e.Name), len(e.LinkName)), ErrLimit, lim.MaxNameLength)
				}
				t.Entries = append(t.Entries, e)
			}
			if err := expectDelim(dec, ']'); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fmt.Errorf("TOC JSON %q: %w", key, err)
			}
		}
	}
	return expectDelim(dec, '}')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("TOC JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("TOC JSON: got %v, want %q", tok, want)
	}
	return nil
}

package zstdchunked

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
)

// Footer is a decoded footer, either form.
type Footer struct {
	// Magic is FooterMagic ("GNUlInUx", 64-byte form) or LegacyFooterMagic
	// ("GnUlInUx", 40- and 56-byte forms).
	Magic string
	// Size is the footer payload size: FooterSize, IntermediateFooterSize or
	// LegacyFooterSize. The blob ends with SkippableFrameHeaderSize+Size
	// footer bytes.
	Size int

	TOCOffset             uint64
	TOCLength             uint64
	TOCUncompressedLength uint64
	ManifestType          uint64

	// Only in the 64-byte form.
	TarSplitOffset             uint64
	TarSplitLength             uint64
	TarSplitUncompressedLength uint64
}

// Bytes encodes the footer payload (without the skippable frame header).
func (f *Footer) Bytes() []byte {
	if f.Size == LegacyFooterSize || f.Size == IntermediateFooterSize {
		b := make([]byte, f.Size)
		binary.LittleEndian.PutUint64(b[0:], f.TOCOffset)
		binary.LittleEndian.PutUint64(b[8:], f.TOCLength)
		binary.LittleEndian.PutUint64(b[16:], f.TOCUncompressedLength)
		binary.LittleEndian.PutUint64(b[24:], f.ManifestType)
		copy(b[32:], LegacyFooterMagic)
		return b
	}
	b := make([]byte, FooterSize)
	binary.LittleEndian.PutUint64(b[0:], f.TOCOffset)
	binary.LittleEndian.PutUint64(b[8:], f.TOCLength)
	binary.LittleEndian.PutUint64(b[16:], f.TOCUncompressedLength)
	binary.LittleEndian.PutUint64(b[24:], f.ManifestType)
	binary.LittleEndian.PutUint64(b[32:], f.TarSplitOffset)
	binary.LittleEndian.PutUint64(b[40:], f.TarSplitLength)
	binary.LittleEndian.PutUint64(b[48:], f.TarSplitUncompressedLength)
	copy(b[56:], FooterMagic)
	return b
}

// ErrNoFooter is returned by ReadFooter when the blob ends with neither footer form.
var ErrNoFooter = errors.New("zstd:chunked: no footer (blob does not end with GNUlInUx or GnUlInUx in a skippable frame)")

// ReadFooter reads the footer at the end of a blob of the given size. It
// recognises the 64-byte "GNUlInUx" form, the 40-byte "GnUlInUx" form and the
// 56-byte "GnUlInUx" form of c/storage 1.47-1.49 (magic in the middle, 16 zero
// bytes at the end, no tar-split fields), each of which must be wrapped in a
// skippable frame of exactly its size. The form alone does not tell the
// dialect (legacy and stargz share the 40-byte form).
func ReadFooter(ra io.ReaderAt, size int64) (*Footer, error) {
	if size < SkippableFrameHeaderSize+LegacyFooterSize {
		return nil, fmt.Errorf("%w: blob of %d bytes is too small", ErrNoFooter, size)
	}
	var magic [8]byte
	if _, err := ra.ReadAt(magic[:], size-8); err != nil {
		return nil, fmt.Errorf("reading footer: %w", err)
	}
	var payload int
	switch string(magic[:]) {
	case FooterMagic:
		payload = FooterSize
	case LegacyFooterMagic:
		payload = LegacyFooterSize
	default:
		if f, ok := readIntermediateFooter(ra, size); ok {
			return f, nil
		}
		return nil, ErrNoFooter
	}
	total := int64(SkippableFrameHeaderSize + payload)
	if size < total {
		return nil, fmt.Errorf("%w: blob of %d bytes is too small for a %d-byte footer", ErrNoFooter, size, payload)
	}
	b := make([]byte, total)
	if _, err := ra.ReadAt(b, size-total); err != nil {
		return nil, fmt.Errorf("reading footer: %w", err)
	}
	if m := binary.LittleEndian.Uint32(b[0:4]); m != SkippableFrameMagic {
		return nil, fmt.Errorf("%w: footer magic %q is not preceded by a skippable frame header (got %#08x)", ErrNoFooter, magic[:], m)
	}
	if n := binary.LittleEndian.Uint32(b[4:8]); int(n) != payload {
		return nil, fmt.Errorf("%w: footer skippable frame has length %d, want %d", ErrNoFooter, n, payload)
	}
	p := b[SkippableFrameHeaderSize:]
	f := &Footer{
		Magic:                 string(magic[:]),
		Size:                  payload,
		TOCOffset:             binary.LittleEndian.Uint64(p[0:]),
		TOCLength:             binary.LittleEndian.Uint64(p[8:]),
		TOCUncompressedLength: binary.LittleEndian.Uint64(p[16:]),
		ManifestType:          binary.LittleEndian.Uint64(p[24:]),
	}
	if payload == FooterSize {
		f.TarSplitOffset = binary.LittleEndian.Uint64(p[32:])
		f.TarSplitLength = binary.LittleEndian.Uint64(p[40:])
		f.TarSplitUncompressedLength = binary.LittleEndian.Uint64(p[48:])
	}
	return f, nil
}

// readIntermediateFooter recognises the 56-byte footer of c/storage
// 1.47-1.49: a skippable frame of length 56 whose payload is the four TOC
// slots, the "GnUlInUx" magic at bytes 32-39 and 16 zero bytes.
func readIntermediateFooter(ra io.ReaderAt, size int64) (*Footer, bool) {
	const total = SkippableFrameHeaderSize + IntermediateFooterSize
	if size < total {
		return nil, false
	}
	b := make([]byte, total)
	if _, err := ra.ReadAt(b, size-total); err != nil {
		return nil, false
	}
	p := b[SkippableFrameHeaderSize:]
	if binary.LittleEndian.Uint32(b[0:4]) != SkippableFrameMagic || binary.LittleEndian.Uint32(b[4:8]) != IntermediateFooterSize ||
		string(p[32:40]) != LegacyFooterMagic || !bytes.Equal(p[40:], make([]byte, 16)) {
		return nil, false
	}
	return &Footer{
		Magic:                 LegacyFooterMagic,
		Size:                  IntermediateFooterSize,
		TOCOffset:             binary.LittleEndian.Uint64(p[0:]),
		TOCLength:             binary.LittleEndian.Uint64(p[8:]),
		TOCUncompressedLength: binary.LittleEndian.Uint64(p[16:]),
		ManifestType:          binary.LittleEndian.Uint64(p[24:]),
	}, true
}

// DetectDialect tells the dialect from layer annotations. It returns false
// when the annotations name no zstd:chunked TOC, or when they mix the
// io.github.containers keys with the io.containers or stargz keys (c/storage
// refuses such layers).
func DetectDialect(annotations map[string]string) (Dialect, bool) {
	_, gc := annotations[AnnotationManifestChecksum]
	_, gp := annotations[AnnotationManifestPosition]
	_, lc := annotations[AnnotationLegacyManifestChecksum]
	_, lp := annotations[AnnotationLegacyManifestPosition]
	_, sg := annotations[AnnotationStargzTOCDigest]
	current := gc || gp
	legacy := lc || lp
	switch {
	case current && (legacy || sg):
		return "", false
	case current:
		return DialectContainers, true
	case legacy && sg:
		return DialectStargz, true
	case legacy:
		return DialectContainersLegacy, true
	}
	return "", false // nothing, or only an eStargz (gzip) TOC digest
}

// Limits bounds what the readers accept. A zero field means its default.
type Limits struct {
	// MaxTOCSize bounds the compressed and the uncompressed TOC
	// (DefaultMaxTOCSize, c/storage's 150 MiB).
	MaxTOCSize int64
	// MaxTarSplitSize bounds the compressed and the uncompressed tar-split
	// (DefaultMaxTarSplitSize).
	MaxTarSplitSize int64
	// MaxEntries bounds the number of TOC entries (DefaultMaxEntries).
	MaxEntries int
	// MaxNameLength bounds the length of name and linkName (DefaultMaxNameLength).
	MaxNameLength int
	// MaxUncompressedSize bounds, for Verify, the uncompressed stream and the
	// file content the TOC may make it decompress
	// (DefaultMaxUncompressedSize).
	MaxUncompressedSize int64
	// MaxFindings bounds, for Verify, the findings kept per check id; the
	// rest are counted in one last finding of that id (DefaultMaxFindings).
	MaxFindings int
}

// limitError is a limit being hit; id is its limit.* check id.
type limitError struct {
	id  string
	msg string
}

func (e *limitError) Error() string { return e.msg }

func (l Limits) withDefaults() Limits {
	if l.MaxTOCSize <= 0 {
		l.MaxTOCSize = DefaultMaxTOCSize
	}
	if l.MaxTarSplitSize <= 0 {
		l.MaxTarSplitSize = DefaultMaxTarSplitSize
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxNameLength <= 0 {
		l.MaxNameLength = DefaultMaxNameLength
	}
	if l.MaxUncompressedSize <= 0 {
		l.MaxUncompressedSize = DefaultMaxUncompressedSize
	}
	if l.MaxFindings <= 0 {
		l.MaxFindings = DefaultMaxFindings
	}
	return l
}

// position is a located skippable frame.
type position struct {
	offset, length, uncompressed uint64
}

func parsePosition(v string, fields int) (position, uint64, error) {
	parts := strings.Split(v, ":")
	if len(parts) != fields {
		return position{}, 0, fmt.Errorf("position %q: want %d colon-separated integers", v, fields)
	}
	var n [4]uint64
	for i, p := range parts {
		x, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return position{}, 0, fmt.Errorf("position %q: %w", v, err)
		}
		n[i] = x
	}
	return position{offset: n[0], length: n[1], uncompressed: n[2]}, n[3], nil
}

// readFrame checks that pos lies inside the blob (before the footer bytes
// `reserved` at the end), that a skippable frame header of exactly pos.length
// precedes it, and returns its bytes.
func readFrame(ra io.ReaderAt, size int64, pos position, maxLen int64, what string) ([]byte, error) {
	if pos.length == 0 {
		return nil, fmt.Errorf("%s: zero length", what)
	}
	if pos.length > uint64(maxLen) {
		return nil, fmt.Errorf("%s: compressed length %d exceeds the limit %d", what, pos.length, maxLen)
	}
	if pos.uncompressed > uint64(maxLen) {
		return nil, fmt.Errorf("%s: uncompressed length %d exceeds the limit %d", what, pos.uncompressed, maxLen)
	}
	if size < 0 || pos.offset < SkippableFrameHeaderSize || pos.offset > uint64(size) || pos.length > uint64(size)-pos.offset {
		return nil, fmt.Errorf("%s: range %d+%d is outside the blob of %d bytes", what, pos.offset, pos.length, size)
	}
	var hdr [SkippableFrameHeaderSize]byte
	if _, err := ra.ReadAt(hdr[:], int64(pos.offset)-SkippableFrameHeaderSize); err != nil {
		return nil, fmt.Errorf("%s: reading skippable frame header: %w", what, err)
	}
	if m := binary.LittleEndian.Uint32(hdr[0:4]); m != SkippableFrameMagic {
		return nil, fmt.Errorf("%s: no skippable frame magic before offset %d (got %#08x)", what, pos.offset, m)
	}
	if n := binary.LittleEndian.Uint32(hdr[4:8]); uint64(n) != pos.length {
		return nil, fmt.Errorf("%s: skippable frame length %d does not match the claimed length %d", what, n, pos.length)
	}
	buf := make([]byte, pos.length)
	if _, err := ra.ReadAt(buf, int64(pos.offset)); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return buf, nil
}

// maxDecoderWindow bounds the zstd window the readers accept (klauspost's
// writers use 8 MiB).
const maxDecoderWindow = 64 << 20

// decompressExact decompresses one zstd stream and requires exactly want bytes.
func decompressExact(comp []byte, want uint64, what string) ([]byte, error) {
	dec, err := zstd.NewReader(bytes.NewReader(comp), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxDecoderWindow))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out := bytes.NewBuffer(make([]byte, 0, want))
	n, err := io.Copy(out, io.LimitReader(dec, int64(want)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: decompressing: %w", what, err)
	}
	if uint64(n) != want {
		if uint64(n) > want {
			return nil, fmt.Errorf("%s: decompresses to more than the claimed %d bytes", what, want)
		}
		return nil, fmt.Errorf("%s: decompresses to %d bytes, claimed %d", what, n, want)
	}
	return out.Bytes(), nil
}

func verifyDigest(data []byte, want string, what string) error {
	d, err := digest.Parse(want)
	if err != nil {
		return fmt.Errorf("%s: invalid digest %q: %w", what, want, err)
	}
	if !d.Algorithm().Available() {
		return fmt.Errorf("%s: unsupported digest algorithm %q", what, d.Algorithm())
	}
	if got := d.Algorithm().FromBytes(data); got != d {
		return fmt.Errorf("%s: digest mismatch: got %s, want %s", what, got, d)
	}
	return nil
}

// ReadTOC locates, verifies and parses the TOC of a zstd:chunked blob.
//
// With zstd:chunked annotations the TOC is located by the manifest-position
// annotation and its compressed bytes must match the manifest-checksum
// annotation (and, for the stargz dialect, the uncompressed JSON must match
// containerd.io/snapshot/stargz/toc.digest). Without them, the footer locates
// it and nothing can be verified. Sizes are checked against lim before
// anything is allocated; decompression must give exactly the claimed size.
// The returned TOC has Dialect, Shape, Digest and JSONDigest set; a dialect
// whose TOC shape contradicts it is an error. The second result is the
// compressed TOC.
func ReadTOC(ra io.ReaderAt, size int64, annotations map[string]string, lim Limits) (*TOC, []byte, error) {
	lim = lim.withDefaults()
	dialect, annotated := DetectDialect(annotations)
	if annotationsMixed(annotations) {
		return nil, nil, errors.New("zstd:chunked: annotations mix the io.github.containers keys with the io.containers/stargz keys")
	}

	var pos position
	var wantChecksum string
	var footer *Footer
	if annotated {
		posKey, sumKey := AnnotationManifestPosition, AnnotationManifestChecksum
		if dialect != DialectContainers {
			posKey, sumKey = AnnotationLegacyManifestPosition, AnnotationLegacyManifestChecksum
		}
		pv, ok := annotations[posKey]
		if !ok {
			return nil, nil, fmt.Errorf("zstd:chunked: %s annotation missing", posKey)
		}
		var typ uint64
		var err error
		pos, typ, err = parsePosition(pv, 4)
		if err != nil {
			return nil, nil, fmt.Errorf("zstd:chunked: %s: %w", posKey, err)
		}
		if typ != ManifestTypeCRFS {
			return nil, nil, fmt.Errorf("zstd:chunked: %s: manifest type %d, want %d", posKey, typ, ManifestTypeCRFS)
		}
		if wantChecksum, ok = annotations[sumKey]; !ok {
			return nil, nil, fmt.Errorf("zstd:chunked: %s annotation missing", sumKey)
		}
	} else {
		var err error
		footer, err = ReadFooter(ra, size)
		if err != nil {
			return nil, nil, err
		}
		if footer.ManifestType != ManifestTypeCRFS {
			return nil, nil, fmt.Errorf("zstd:chunked: footer manifest type %d, want %d", footer.ManifestType, ManifestTypeCRFS)
		}
		pos = position{offset: footer.TOCOffset, length: footer.TOCLength, uncompressed: footer.TOCUncompressedLength}
	}

	compressed, err := readFrame(ra, size, pos, lim.MaxTOCSize, "zstd:chunked TOC")
	if err != nil {
		return nil, nil, err
	}
	if wantChecksum != "" {
		if err := verifyDigest(compressed, wantChecksum, "zstd:chunked TOC"); err != nil {
			return nil, nil, err
		}
	}
	tocJSON, err := decompressExact(compressed, pos.uncompressed, "zstd:chunked TOC")
	if err != nil {
		return nil, nil, err
	}
	if dialect == DialectStargz {
		if err := verifyDigest(tocJSON, annotations[AnnotationStargzTOCDigest], "eStargz TOC JSON"); err != nil {
			return nil, nil, err
		}
	}
	toc, err := parseTOC(tocJSON, lim)
	if err != nil {
		return nil, nil, err
	}
	toc.Shape = shapeOf(toc)
	toc.Digest = digest.FromBytes(compressed)
	toc.JSONDigest = digest.FromBytes(tocJSON)

	if annotated {
		want := ShapeContainers
		if dialect == DialectStargz {
			want = ShapeEStargz
		}
		if toc.Shape != want && toc.Shape != ShapeUnknown {
			return nil, nil, fmt.Errorf("zstd:chunked: the annotations say dialect %q but the TOC has the %s shape", dialect, toc.Shape)
		}
		toc.Dialect = dialect
	} else {
		switch {
		case footer.Size == FooterSize || footer.Size == IntermediateFooterSize:
			if toc.Shape != ShapeContainers && toc.Shape != ShapeUnknown {
				return nil, nil, fmt.Errorf("zstd:chunked: 64-byte footer but the TOC has the %s shape", toc.Shape)
			}
			toc.Dialect = DialectContainers
		case toc.Shape == ShapeEStargz:
			toc.Dialect = DialectStargz
		case toc.Shape == ShapeContainers:
			toc.Dialect = DialectContainersLegacy
		}
	}
	return toc, compressed, nil
}

func annotationsMixed(annotations map[string]string) bool {
	_, gc := annotations[AnnotationManifestChecksum]
	_, gp := annotations[AnnotationManifestPosition]
	_, lc := annotations[AnnotationLegacyManifestChecksum]
	_, lp := annotations[AnnotationLegacyManifestPosition]
	_, sg := annotations[AnnotationStargzTOCDigest]
	return (gc || gp) && (lc || lp || sg)
}

// parseTOC decodes the TOC JSON entry by entry, so that MaxEntries is
// enforced before the entries are allocated.
func parseTOC(data []byte, lim Limits) (*TOC, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	bad := func(err error) error { return fmt.Errorf("zstd:chunked TOC JSON: %w", err) }
	expectDelim := func(want json.Delim) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); !ok || d != want {
			return fmt.Errorf("unexpected %v, want %v", tok, want)
		}
		return nil
	}
	if err := expectDelim('{'); err != nil {
		return nil, bad(err)
	}
	toc := &TOC{}
	sawVersion := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		key, _ := tok.(string)
		switch key {
		case "version":
			if err := dec.Decode(&toc.Version); err != nil {
				return nil, bad(err)
			}
			sawVersion = true
		case "tarSplitDigest":
			if err := dec.Decode(&toc.TarSplitDigest); err != nil {
				return nil, bad(err)
			}
		case "entries":
			tok, err := dec.Token()
			if err != nil {
				return nil, bad(err)
			}
			if tok == nil {
				toc.Entries = nil
				continue
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				return nil, bad(fmt.Errorf("entries: unexpected %v", tok))
			}
			// Size the slice once: append would copy ~5 times the final
			// size of these 270-byte elements. Every entry has a "type" and
			// a "name" key, so the smaller count bounds the entries of a
			// valid TOC; it only sizes memory the JSON text could fill anyway.
			hint := min(bytes.Count(data, []byte(`"type"`)), bytes.Count(data, []byte(`"name"`)), lim.MaxEntries)
			toc.Entries = nil
			if hint > 0 {
				toc.Entries = make([]FileMetadata, 0, hint)
			}
			for dec.More() {
				if len(toc.Entries) >= lim.MaxEntries {
					return nil, &limitError{CheckLimitEntries, fmt.Sprintf("zstd:chunked TOC has more than %d entries", lim.MaxEntries)}
				}
				var e FileMetadata
				if err := dec.Decode(&e); err != nil {
					return nil, bad(err)
				}
				if len(e.Name) > lim.MaxNameLength || len(e.Linkname) > lim.MaxNameLength {
					return nil, &limitError{CheckLimitNameLength, fmt.Sprintf("zstd:chunked TOC entry %d: name or link name longer than %d bytes", len(toc.Entries), lim.MaxNameLength)}
				}
				toc.Entries = append(toc.Entries, e)
			}
			if err := expectDelim(']'); err != nil {
				return nil, bad(err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, bad(err)
			}
		}
	}
	if err := expectDelim('}'); err != nil {
		return nil, bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad(errors.New("trailing data after the TOC object"))
	}
	if !sawVersion || toc.Version != 1 {
		return nil, fmt.Errorf("zstd:chunked TOC: unsupported version %d", toc.Version)
	}
	return toc, nil
}

// ErrNoTarSplit is returned by ReadTarSplit for blobs without a tar-split.
var ErrNoTarSplit = errors.New("zstd:chunked: the layer has no tar-split")

// ReadTarSplit locates, verifies and decompresses the tar-split of a
// containers-dialect blob and returns its JSON lines.
//
// It is located by the tarsplit-position annotation, or, without it, by the
// 64-byte footer. Its compressed bytes must match toc.TarSplitDigest (or, for
// old layers whose TOC lacks it, the deprecated tarsplit-checksum
// annotation); without either digest it fails.
func ReadTarSplit(ra io.ReaderAt, size int64, annotations map[string]string, toc *TOC, lim Limits) ([]byte, error) {
	lim = lim.withDefaults()
	if d, ok := DetectDialect(annotations); ok && d != DialectContainers {
		return nil, fmt.Errorf("%w (dialect %s)", ErrNoTarSplit, d)
	}
	var pos position
	if pv, ok := annotations[AnnotationTarSplitPosition]; ok {
		var err error
		pos, _, err = parsePosition(pv+":0", 4)
		if err != nil {
			return nil, fmt.Errorf("zstd:chunked: %s: %w", AnnotationTarSplitPosition, err)
		}
	} else {
		if _, ok := annotations[AnnotationManifestChecksum]; ok {
			return nil, fmt.Errorf("%w: %s annotation missing", ErrNoTarSplit, AnnotationTarSplitPosition)
		}
		footer, err := ReadFooter(ra, size)
		if err != nil {
			return nil, err
		}
		if footer.Size != FooterSize || footer.TarSplitOffset == 0 {
			return nil, fmt.Errorf("%w (the footer has no tar-split fields)", ErrNoTarSplit)
		}
		pos = position{offset: footer.TarSplitOffset, length: footer.TarSplitLength, uncompressed: footer.TarSplitUncompressedLength}
	}

	want := ""
	if toc != nil && toc.TarSplitDigest != "" {
		want = toc.TarSplitDigest.String()
	} else if v, ok := annotations[AnnotationTarSplitChecksum]; ok {
		want = v
	}
	if want == "" {
		return nil, errors.New("zstd:chunked: no digest to verify the tar-split against (neither TOC.tarSplitDigest nor the deprecated tarsplit-checksum annotation)")
	}
	compressed, err := readFrame(ra, size, pos, lim.MaxTarSplitSize, "zstd:chunked tar-split")
	if err != nil {
		return nil, err
	}
	if err := verifyDigest(compressed, want, "zstd:chunked tar-split"); err != nil {
		return nil, err
	}
	return decompressExact(compressed, pos.uncompressed, "zstd:chunked tar-split")
}

// Decode returns the uncompressed tar stream of a blob of any dialect (plain
// zstd decoding; the skippable TOC, tar-split and footer frames are skipped).
func Decode(r io.Reader) (io.ReadCloser, error) {
	dec, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(maxDecoderWindow))
	if err != nil {
		return nil, err
	}
	return decoderCloser{dec}, nil
}

type decoderCloser struct{ *zstd.Decoder }

func (d decoderCloser) Close() error {
	d.Decoder.Close()
	return nil
}

// RebuildTar writes the tar stream as a partial pull sees it: tar-split
// segments plus each regular file's content decoded from the blob range
// [Offset, EndOffset) of its TOC entry (containers dialect). Each file's
// length and sha256 are checked against the TOC and its crc64 against the
// tar-split. The result must equal Decode's output; c/storage compares its
// digest with the layer's diff_id.
func RebuildTar(w io.Writer, ra io.ReaderAt, size int64, toc *TOC, tarSplit []byte) error {
	files := make(map[string]*FileMetadata, len(toc.Entries))
	for i := range toc.Entries {
		e := &toc.Entries[i]
		if e.Type == TypeChunk {
			continue
		}
		if _, dup := files[e.Name]; dup {
			return fmt.Errorf("zstd:chunked TOC has duplicate entries for %q", e.Name)
		}
		files[e.Name] = e
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxDecoderWindow))
	if err != nil {
		return err
	}
	defer dec.Close()
	getter := &tocFileGetter{ra: ra, size: size, files: files, dec: dec}
	return asm.WriteOutputTarStream(getter, storage.NewJSONUnpacker(bytes.NewReader(tarSplit)), w)
}

type tocFileGetter struct {
	ra    io.ReaderAt
	size  int64
	files map[string]*FileMetadata
	dec   *zstd.Decoder
}

func (g *tocFileGetter) Get(name string) (io.ReadCloser, error) {
	e, ok := g.files[name]
	if !ok {
		return nil, fmt.Errorf("tar-split names %q, which is not in the TOC", name)
	}
	if e.Type != TypeReg || e.Size == 0 {
		// Hard links and other header-only entries may have a size in the tar
		// header but no payload.
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if e.Offset <= 0 || e.EndOffset <= e.Offset || e.EndOffset > g.size {
		return nil, fmt.Errorf("TOC entry %q: invalid range [%d, %d) in a blob of %d bytes", name, e.Offset, e.EndOffset, g.size)
	}
	if err := g.dec.Reset(io.NewSectionReader(g.ra, e.Offset, e.EndOffset-e.Offset)); err != nil {
		return nil, err
	}
	vr := &verifyingReader{name: name, r: io.LimitReader(g.dec, e.Size+1), left: e.Size}
	if e.Digest != "" {
		d, err := digest.Parse(e.Digest)
		if err != nil {
			return nil, fmt.Errorf("TOC entry %q: %w", name, err)
		}
		vr.want, vr.v = d, d.Verifier()
	}
	return vr, nil
}

// verifyingReader checks a file's length and digest at EOF.
type verifyingReader struct {
	name string
	r    io.Reader
	left int64
	want digest.Digest
	v    digest.Verifier // nil when the TOC has no digest
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.left -= int64(n)
	if v.left < 0 {
		return n, fmt.Errorf("TOC entry %q: content longer than its size", v.name)
	}
	if v.v != nil {
		v.v.Write(p[:n])
	}
	if err == io.EOF {
		if v.left != 0 {
			return n, fmt.Errorf("TOC entry %q: content %d bytes shorter than its size", v.name, v.left)
		}
		if v.v != nil && !v.v.Verified() {
			return n, fmt.Errorf("TOC entry %q: content does not match digest %s", v.name, v.want)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return nil }

package zstdchunked

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fmtconv/fmtconv/check"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Limits bound what Verify reads, allocates and decompresses; zero fields
	// mean their defaults.
	Limits Limits
	// DiffID is the layer's diff_id from the image config, "" if unknown.
	DiffID digest.Digest
	// Stream, if set, receives the blob's plain decompression (the full-pull
	// view) as Verify reads it, so that a caller can run checks of its own on
	// the tar without decompressing the blob a second time. Verify closes it:
	// with nil after the last byte, or with why the view stopped early. Its
	// reader must read to the end; *io.PipeWriter is such a writer.
	Stream StreamWriter
}

// A StreamWriter receives a blob's uncompressed stream (VerifyOptions.Stream).
type StreamWriter interface {
	io.Writer
	CloseWithError(error) error
}

// ErrFullPullStopped closes VerifyOptions.Stream when the plain decompression
// stopped before the end of the blob; the findings say why.
var ErrFullPullStopped = errors.New("the blob's plain decompression (a full pull) stopped early: see " + CheckStream + " or " + CheckLimitDecompressedSize)

// LayerInfo describes a verified layer (as far as it could be read).
type LayerInfo struct {
	// Dialect from the annotations, or from the footer form and the TOC
	// schema when there are none ("" when undecidable).
	Dialect Dialect
	// Shape is the TOC's schema.
	Shape TOCShape
	// TOCDigest is the sha256 of the compressed TOC (the containers TOC digest).
	TOCDigest digest.Digest
	// Entries counts TOC entries; Files the regular files; Chunks the chunks
	// of non-empty regular files (a single-chunk file counts one);
	// ZeroChunks those of chunkType "zeros".
	Entries, Files, Chunks, ZeroChunks int
	// HasTarSplit: a tar-split was found and its digest verified.
	HasTarSplit bool
	// UncompressedDigest and UncompressedSize describe the blob's plain
	// decompression (the full-pull view; its digest is what the diff_id must
	// be); empty when the blob does not decompress.
	UncompressedDigest digest.Digest
	UncompressedSize   int64
	// PartialPull says which runtime generation reads this dialect partially,
	// and why not if none does.
	PartialPull string
}

// Verify checks one zstd:chunked layer of any dialect: its annotations, its
// footer, the TOC, the tar-split, every offset and digest, and that the two
// ways of reading the layer agree: the partial-pull view (the TOC, each
// file's frames at its offsets, the tar-split rebuilt around them, as
// c/storage and stargz-snapshotter read it) and the full-pull view (the
// blob decompressed as one zstd stream and read with a tar reader).
//
// Every problem of the blob is a finding with one of the VerifyCheckIDs;
// the error result is only for I/O errors from ra and for ctx. size is the
// blob's length; annotations are the layer descriptor's (nil when there are
// none). The returned LayerInfo is filled as far as the blob could be read.
//
// Memory is bounded by Limits: the TOC (MaxTOCSize, held once compressed
// and once parsed: about 256 bytes per entry) and, per TOC entry, about 250
// bytes of indexes and plans, so roughly 1 GB at the default MaxEntries of
// 2M (a hostile 500 KB blob can claim that many; lower MaxEntries for
// untrusted input); one tar-split line (64 MiB); decoder windows (64 MiB).
//
// Every byte is read from ra. The partial-pull view decompresses each file's
// frames once (stargz-dialect files that share a frame through innerOffset
// decompress it once each), the full-pull view decompresses the blob once;
// the two views run concurrently. Nothing is allocated from a size the blob
// claims without a limit; decompression stops at the claimed sizes and at
// Limits.MaxUncompressedSize.
func Verify(ctx context.Context, ra io.ReaderAt, size int64, annotations map[string]string, opts VerifyOptions) (*LayerInfo, []check.Finding, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	v := &verifier{
		ctx:  ctx,
		ra:   &errRecorderAt{ra: ra},
		size: size,
		ann:  annotations,
		opts: opts,
		lim:  opts.Limits.withDefaults(),
		info: &LayerInfo{},
	}
	v.tsClaimed, v.plainEnd = -1, size
	v.f = newFindings(v.lim.MaxFindings)
	err := v.run()
	if s := opts.Stream; s != nil {
		switch {
		case err != nil:
			s.CloseWithError(err)
		case v.info.UncompressedDigest == "": // set once the full-pull view reached the end
			s.CloseWithError(ErrFullPullStopped)
		default:
			s.CloseWithError(nil)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return v.info, v.f.result(), nil
}

// errRecorderAt remembers the first real I/O error of the underlying
// ReaderAt, so that a decoder failure caused by it is returned as an error
// and not reported as a defect of the blob.
type errRecorderAt struct {
	ra  io.ReaderAt
	mu  sync.Mutex
	err error
}

func (r *errRecorderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.ra.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		r.mu.Lock()
		if r.err == nil {
			r.err = fmt.Errorf("reading blob at offset %d: %w", off, err)
		}
		r.mu.Unlock()
	}
	return n, err
}

func (r *errRecorderAt) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

type verifier struct {
	ctx  context.Context
	ra   *errRecorderAt
	size int64
	ann  map[string]string
	opts VerifyOptions
	lim  Limits
	f    *findings
	info *LayerInfo

	// From the annotations.
	annDialect  Dialect   // "" without zstd:chunked annotations
	annPos      *position // TOC position, when present and valid
	annSum      digest.Digest
	annSumKey   string
	annTSPos    *position // tar-split position (containers dialect)
	hasTSPosKey bool
	annTSSum    digest.Digest // deprecated tarsplit-checksum
	stargzSum   digest.Digest // eStargz TOC digest (stargz dialect)
	esgzUSize   int64         // io.containers.estargz.uncompressed-size, -1 if absent

	footer *Footer

	// The TOC.
	tocPos    position
	tocFrame  int64 // start of the TOC's skippable frame
	toc       *TOC
	stargzSem bool // payloads are read the eStargz way (nextOffset, innerOffset)
	dataEnd   int64
	byName    map[string]int32 // name -> TOC index of its first non-chunk entry
	sameName  []int32          // TOC index -> next non-chunk entry of the same name, -1
	plans     []filePlan
	planOf    []int32 // TOC index -> plan index, -1
	lazySkip  bool    // the partial-pull view would exceed the limit

	// The tar-split.
	tsClaimed    int64 // start of the tar-split's skippable frame as claimed, -1 if none
	plainEnd     int64 // the full-pull view decodes [0, plainEnd)
	tsPos        *position
	tsTrusted    bool  // located, within limits, digest verified
	tsConsistent bool  // and its headers match the TOC
	tsTotal      int64 // length of the tar stream it describes
}

// filePlan is how the partial-pull view reads one regular file.
type filePlan struct {
	idx    int // TOC index of the "reg" entry
	name   string
	size   int64
	digest digest.Digest // "" when the TOC has none (or an invalid one)
	chunks []chunkPlan
	ok     bool // structure and offsets valid: the payload can be read
}

type chunkPlan struct {
	idx      int   // TOC index
	off, end int64 // compressed range: exact (containers) or [off, nextOffset) (stargz)
	inner    int64 // uncompressed bytes to skip first (stargz innerOffset)
	size     int64
	zeros    bool
	digest   digest.Digest
}

func (v *verifier) run() error {
	v.checkAnnotations()
	if err := v.readFooter(); err != nil {
		return err
	}
	if err := v.readTOC(); err != nil {
		return err
	}
	if v.toc != nil {
		v.checkEntries()
		if err := v.locateTarSplit(); err != nil {
			return err
		}
		if err := v.checkLayout(); err != nil {
			return err
		}
		if v.tsTrusted {
			if err := v.tarSplitAgainstTOC(); err != nil {
				return err
			}
		}
	}
	if err := v.ctx.Err(); err != nil {
		return err
	}
	if err := v.views(); err != nil {
		return err
	}
	v.info.PartialPull = v.partialPull()
	return nil
}

// ---- annotations ----

func (v *verifier) checkAnnotations() {
	a := v.ann
	has := func(k string) bool { _, ok := a[k]; return ok }
	gc, gp, gt, gts := has(AnnotationManifestChecksum), has(AnnotationManifestPosition), has(AnnotationTarSplitPosition), has(AnnotationTarSplitChecksum)
	lc, lp, sg := has(AnnotationLegacyManifestChecksum), has(AnnotationLegacyManifestPosition), has(AnnotationStargzTOCDigest)
	v.esgzUSize = -1

	if gc && sg {
		v.f.errorf(CheckDualTOC, "the layer has both %s and %s: c/storage refuses it (\"both zstd:chunked and eStargz TOC found\"); the eStargz key is ignored here", AnnotationStargzTOCDigest, AnnotationManifestChecksum)
	}
	var posKey, sumKey string
	switch {
	case gc || gp:
		v.annDialect = DialectContainers
		posKey, sumKey = AnnotationManifestPosition, AnnotationManifestChecksum
		if lc || lp {
			if a[AnnotationLegacyManifestChecksum] != a[AnnotationManifestChecksum] || a[AnnotationLegacyManifestPosition] != a[AnnotationManifestPosition] {
				v.f.errorf(CheckAnnotations, "the io.containers.zstd-chunked.* keys (read by c/storage < 1.44) and the io.github.containers.zstd-chunked.* keys (read by later versions) name different TOCs")
			}
		}
	case lc || lp:
		v.annDialect = DialectContainersLegacy
		if sg {
			v.annDialect = DialectStargz
		}
		posKey, sumKey = AnnotationLegacyManifestPosition, AnnotationLegacyManifestChecksum
	case sg:
		v.annDialect = DialectStargz
	}
	if !(gc || gp) && (gt || gts) {
		v.f.warnf(CheckAnnotations, "tar-split annotations without %s: ignored by every reader", AnnotationManifestChecksum)
	}

	if posKey != "" {
		if pv, ok := a[posKey]; ok {
			pos, typ, err := parsePosition(pv, 4)
			switch {
			case err != nil:
				v.f.errorf(CheckAnnotations, "%s: %v", posKey, err)
			case typ != ManifestTypeCRFS:
				v.f.errorf(CheckAnnotations, "%s: manifest type %d, want %d (c/storage fails: \"invalid manifest type\")", posKey, typ, ManifestTypeCRFS)
			default:
				v.annPos = &pos
			}
		}
		if sv, ok := a[sumKey]; ok {
			d, err := digest.Parse(sv)
			if err != nil {
				v.f.errorf(CheckAnnotations, "%s: %q is not a digest: %v", sumKey, sv, err)
			} else {
				v.annSum, v.annSumKey = d, sumKey
			}
		}
		_, hasPos := a[posKey]
		_, hasSum := a[sumKey]
		switch v.annDialect {
		case DialectContainers:
			if hasSum && !hasPos {
				v.f.errorf(CheckAnnotations, "%s without %s: c/storage fails the pull (it locates the TOC only through the position)", sumKey, posKey)
			}
			if hasPos && !hasSum {
				v.f.warnf(CheckAnnotations, "%s without %s: runtimes see no TOC digest and pull the layer whole", posKey, sumKey)
			}
		case DialectContainersLegacy:
			if hasPos && !hasSum {
				v.f.errorf(CheckAnnotations, "%s without %s: c/storage < 1.44 requires the checksum", posKey, sumKey)
			}
		case DialectStargz:
			if hasPos != hasSum {
				v.f.warnf(CheckAnnotations, "only one of %s and %s (stargz-snapshotter does not read them)", posKey, sumKey)
			}
		}
	}
	if v.annDialect == DialectContainers {
		if pv, ok := a[AnnotationTarSplitPosition]; ok {
			v.hasTSPosKey = true
			pos, _, err := parsePosition(pv+":0", 4)
			if err != nil {
				v.f.errorf(CheckAnnotations, "%s: %v (c/storage fails)", AnnotationTarSplitPosition, err)
			} else {
				v.annTSPos = &pos
			}
		}
		if sv, ok := a[AnnotationTarSplitChecksum]; ok {
			d, err := digest.Parse(sv)
			if err != nil {
				v.f.errorf(CheckAnnotations, "%s: %q is not a digest: %v", AnnotationTarSplitChecksum, sv, err)
			} else {
				v.annTSSum = d
			}
		}
	}
	if v.annDialect == DialectStargz {
		sv := a[AnnotationStargzTOCDigest]
		d, err := digest.Parse(sv)
		if err != nil {
			v.f.errorf(CheckAnnotations, "%s: %q is not a digest: %v", AnnotationStargzTOCDigest, sv, err)
		} else {
			v.stargzSum = d
		}
	}
	if sv, ok := a[AnnotationStargzUncompressedSize]; ok {
		n, err := strconv.ParseInt(sv, 10, 64)
		if err != nil || n < 0 {
			v.f.warnf(CheckAnnotations, "%s: %q is not a size", AnnotationStargzUncompressedSize, sv)
		} else {
			v.esgzUSize = n
		}
	}
}

// ---- footer ----

func (v *verifier) readFooter() error {
	f, err := ReadFooter(v.ra, v.size)
	if err != nil && !errors.Is(err, ErrNoFooter) {
		return err
	}
	if err := v.ra.failed(); err != nil {
		return err
	}
	v.footer = f
	if f == nil {
		why := "no footer"
		if err != ErrNoFooter && !strings.Contains(err.Error(), "too small") {
			why = "malformed footer: " + strings.TrimPrefix(err.Error(), ErrNoFooter.Error()+": ")
		}
		switch v.annDialect {
		case "":
			v.f.errorf(CheckFooter, "%s and no zstd:chunked annotations: nothing locates a TOC, this is not a zstd:chunked blob", why)
		case DialectContainers:
			v.f.warnf(CheckFooter, "%s: c/storage does not need it, but readers without the annotations cannot locate the TOC", why)
		case DialectContainersLegacy:
			if v.annPos == nil {
				v.f.errorf(CheckFooter, "%s and no usable %s: nothing locates the TOC", why, AnnotationLegacyManifestPosition)
			} else {
				v.f.warnf(CheckFooter, "%s: readers without the annotations cannot locate the TOC", why)
			}
		case DialectStargz:
			v.f.errorf(CheckFooter, "%s: stargz-snapshotter locates the TOC through the 40-byte footer", why)
		}
		return nil
	}
	if v.annDialect == "" {
		v.f.warnf(CheckFooter, "zstd:chunked footer but no zstd:chunked annotations: runtimes locate the TOC only through annotations and pull this layer whole as plain zstd")
	}
	if f.ManifestType != ManifestTypeCRFS {
		v.f.errorf(CheckFooter, "footer manifest type %d, want %d", f.ManifestType, ManifestTypeCRFS)
	}
	switch v.annDialect {
	case DialectContainersLegacy, DialectStargz:
		if f.Size != LegacyFooterSize {
			v.f.errorf(CheckFooter, "%d-byte %q footer on a %s-dialect layer, want the 40-byte %q form (stargz-snapshotter and c/storage < 1.44 read the last 40 bytes)", f.Size, f.Magic, v.annDialect, LegacyFooterMagic)
		}
	}
	if p := v.annPos; p != nil {
		if f.TOCOffset != p.offset || f.TOCLength != p.length || f.TOCUncompressedLength != p.uncompressed {
			v.f.errorf(CheckFooter, "the footer locates the TOC at %d:%d:%d, the annotations at %d:%d:%d", f.TOCOffset, f.TOCLength, f.TOCUncompressedLength, p.offset, p.length, p.uncompressed)
		}
	}
	if p := v.annTSPos; p != nil && f.Size == FooterSize {
		if f.TarSplitOffset != p.offset || f.TarSplitLength != p.length || f.TarSplitUncompressedLength != p.uncompressed {
			v.f.errorf(CheckFooter, "the footer locates the tar-split at %d:%d:%d, the annotations at %d:%d:%d", f.TarSplitOffset, f.TarSplitLength, f.TarSplitUncompressedLength, p.offset, p.length, p.uncompressed)
		}
	}
	return nil
}

// ---- TOC ----

// readSkippable checks that a skippable frame of exactly pos.length bytes
// starts 8 bytes before pos.offset, inside the blob; the problem, if any, is
// returned as a message.
func (v *verifier) checkSkippable(pos position) (string, error) {
	if pos.length == 0 {
		return "zero length", nil
	}
	if pos.offset < SkippableFrameHeaderSize || pos.offset > uint64(v.size) || pos.length > uint64(v.size)-pos.offset {
		return fmt.Sprintf("range %d+%d is outside the blob of %d bytes", pos.offset, pos.length, v.size), nil
	}
	var hdr [SkippableFrameHeaderSize]byte
	if _, err := v.ra.ReadAt(hdr[:], int64(pos.offset)-SkippableFrameHeaderSize); err != nil {
		return "", fmt.Errorf("reading blob at offset %d: %w", pos.offset-SkippableFrameHeaderSize, err)
	}
	if m := leUint32(hdr[0:4]); m != SkippableFrameMagic {
		return fmt.Sprintf("no skippable frame header before offset %d (got %#08x)", pos.offset, m), nil
	}
	if n := leUint32(hdr[4:8]); uint64(n) != pos.length {
		return fmt.Sprintf("the skippable frame before offset %d has length %d, not %d", pos.offset, n, pos.length), nil
	}
	return "", nil
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func (v *verifier) readTOC() error {
	var pos position
	var from string
	switch {
	case v.annPos != nil:
		pos, from = *v.annPos, "the annotations"
	case v.footer != nil:
		pos = position{offset: v.footer.TOCOffset, length: v.footer.TOCLength, uncompressed: v.footer.TOCUncompressedLength}
		from = "the footer"
	default:
		return nil
	}
	if pos.length > uint64(v.lim.MaxTOCSize) || pos.uncompressed > uint64(v.lim.MaxTOCSize) {
		v.f.errorf(CheckLimitTOCSize, "the TOC (%s) is %d bytes compressed, %d uncompressed: more than the limit of %d (c/storage's is 150 MiB)", from, pos.length, pos.uncompressed, v.lim.MaxTOCSize)
		return nil
	}
	msg, err := v.checkSkippable(pos)
	if err != nil {
		return err
	}
	if msg != "" {
		v.f.errorf(CheckTOC, "the TOC position from %s: %s", from, msg)
		return nil
	}
	compressed := make([]byte, pos.length)
	if _, err := v.ra.ReadAt(compressed, int64(pos.offset)); err != nil {
		return fmt.Errorf("reading the TOC: %w", err)
	}
	v.tocPos, v.tocFrame = pos, int64(pos.offset)-SkippableFrameHeaderSize
	v.info.TOCDigest = digest.FromBytes(compressed)
	if v.annSum != "" {
		if got := v.annSum.Algorithm().FromBytes(compressed); !v.annSum.Algorithm().Available() || got != v.annSum {
			v.f.errorf(CheckTOCChecksum, "%s is %s, the compressed TOC's digest is %s", v.annSumKey, v.annSum, got)
		}
	}
	tocJSON, lerr, derr := decompressCapped(compressed, pos.uncompressed)
	switch {
	case lerr != nil:
		v.f.errorf(CheckLimitDecompressedSize, "the TOC decompresses to more than the %d bytes %s claims", pos.uncompressed, from)
		return nil
	case derr != nil:
		v.f.errorf(CheckTOC, "the TOC frame does not decompress: %v", derr)
		return nil
	case uint64(len(tocJSON)) != pos.uncompressed:
		v.f.errorf(CheckTOC, "the TOC decompresses to %d bytes, %s claims %d", len(tocJSON), from, pos.uncompressed)
		return nil
	}
	if v.annDialect == DialectStargz && v.stargzSum != "" {
		if got := digest.FromBytes(tocJSON); got != v.stargzSum {
			v.f.errorf(CheckTOCChecksum, "%s is %s, the uncompressed TOC's sha256 is %s", AnnotationStargzTOCDigest, v.stargzSum, got)
		}
	}
	if !utf8.Valid(tocJSON) {
		// Go's encoding/json turns invalid bytes into U+FFFD, c/storage's
		// jsoniter reader does not: readers would see different names.
		v.f.errorf(CheckTOC, "the TOC JSON is not valid UTF-8: JSON readers disagree on the names it holds")
	}
	toc, err := parseTOC(tocJSON, v.lim)
	if err != nil {
		var le *limitError
		if errors.As(err, &le) {
			v.f.errorf(le.id, "%s", le.msg)
		} else {
			v.f.errorf(CheckTOC, "%v", err)
		}
		return nil
	}
	toc.Shape = shapeOf(toc)
	toc.Digest = v.info.TOCDigest
	toc.JSONDigest = digest.FromBytes(tocJSON)
	v.toc = toc
	v.info.Shape = toc.Shape

	// The dialect: the annotations say, the TOC's schema must agree.
	switch v.annDialect {
	case "":
		switch {
		case v.footer.Size != LegacyFooterSize:
			if toc.Shape == ShapeEStargz || toc.Shape == ShapeMixed {
				v.f.errorf(CheckDialect, "%d-byte footer (containers dialect) but the TOC has the %s schema", v.footer.Size, toc.Shape)
			}
			toc.Dialect = DialectContainers
		case toc.Shape == ShapeEStargz:
			toc.Dialect = DialectStargz
		case toc.Shape == ShapeContainers:
			toc.Dialect = DialectContainersLegacy
		}
	default:
		want := ShapeContainers
		if v.annDialect == DialectStargz {
			want = ShapeEStargz
		}
		if toc.Shape != want && toc.Shape != ShapeUnknown {
			v.f.errorf(CheckDialect, "the annotations say dialect %q, whose TOC schema is %q, but the TOC has the %s schema", v.annDialect, want, toc.Shape)
		}
		toc.Dialect = v.annDialect
	}
	v.info.Dialect = toc.Dialect
	v.stargzSem = toc.Shape == ShapeEStargz || (toc.Shape != ShapeContainers && toc.Dialect == DialectStargz)

	// Annotation rules that need the TOC.
	if v.annDialect == DialectContainers && toc.TarSplitDigest != "" && !v.hasTSPosKey {
		v.f.errorf(CheckAnnotations, "the TOC has tarSplitDigest but there is no %s annotation: c/storage fails the pull (\"TOC requires a tar-split\")", AnnotationTarSplitPosition)
	}
	if v.annTSSum != "" {
		if toc.TarSplitDigest != "" {
			v.f.warnf(CheckAnnotations, "deprecated %s annotation: ignored, the TOC's tarSplitDigest authenticates the tar-split", AnnotationTarSplitChecksum)
		} else {
			v.f.warnf(CheckAnnotations, "the tar-split is authenticated only by the deprecated %s annotation, not by the TOC: c/storage 1.54 fails on this layer and >= 1.57 pulls it whole", AnnotationTarSplitChecksum)
		}
	}
	if f := v.footer; f != nil && v.annDialect == DialectContainers {
		switch {
		case f.Size == IntermediateFooterSize && toc.TarSplitDigest != "":
			v.f.errorf(CheckFooter, "the 56-byte footer of c/storage 1.47-1.49 on a layer whose TOC has tarSplitDigest (>= 1.54): no writer makes this")
		case f.Size == LegacyFooterSize && (toc.TarSplitDigest != "" || v.hasTSPosKey):
			v.f.errorf(CheckFooter, "a 40-byte footer (c/storage < 1.47, no tar-split) on a layer with a tar-split")
		}
	}
	return nil
}

// syncDecoders pools single-goroutine zstd decoders: each holds a history
// buffer of its frames' window size (8 MiB for klauspost's writers), which
// would otherwise be allocated and cleared for every chunk reader.
var syncDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxDecoderWindow), zstd.WithDecoderLowmem(true))
	if err != nil {
		panic(err) // only invalid options fail
	}
	return d
}}

// getDecoder returns a pooled decoder reset to r.
func getDecoder(r io.Reader) (*zstd.Decoder, error) {
	d := syncDecoders.Get().(*zstd.Decoder)
	if err := d.Reset(r); err != nil {
		syncDecoders.Put(d)
		return nil, err
	}
	return d, nil
}

func putDecoder(d *zstd.Decoder) {
	if d.Reset(nil) == nil {
		syncDecoders.Put(d)
	}
}

// decompressCapped decompresses one zstd stream, expecting want bytes and
// never producing more than want+1. lerr is set when there was more.
func decompressCapped(comp []byte, want uint64) (out []byte, lerr, derr error) {
	dec, err := getDecoder(bytes.NewReader(comp))
	if err != nil {
		return nil, nil, err
	}
	defer putDecoder(dec)
	buf := bytes.NewBuffer(make([]byte, 0, min(want, 16<<20)))
	n, err := io.Copy(buf, io.LimitReader(dec, int64(want)+1))
	if err != nil {
		return nil, nil, err
	}
	if uint64(n) > want {
		return nil, errors.New("more than claimed"), nil
	}
	return buf.Bytes(), nil, nil
}

package estargz

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/gunzip"
	digest "github.com/opencontainers/go-digest"
)

// maxFindingsPerCheck caps how many findings one check id reports; the rest
// are summarized in one more finding.
const maxFindingsPerCheck = 20

type findings struct {
	list    []check.Finding
	count   map[string]int
	dropped map[string]int
}

func (f *findings) add(fd check.Finding) {
	if f.count == nil {
		f.count, f.dropped = map[string]int{}, map[string]int{}
	}
	f.count[fd.Check]++
	if f.count[fd.Check] > maxFindingsPerCheck {
		f.dropped[fd.Check]++
		return
	}
	f.list = append(f.list, fd)
}

func (f *findings) errorf(id, format string, a ...any) { f.add(check.Errorf(id, format, a...)) }

func (f *findings) result() []check.Finding {
	for _, id := range slices.Sorted(maps.Keys(f.dropped)) {
		f.list = append(f.list, check.Errorf(id, "%d more %s findings not shown", f.dropped[id], id))
	}
	return f.list
}

// Verify checks an eStargz blob of the given size against its layer
// annotations and diff_id (pass "" to skip the diff_id check, for instance
// when the caller checks it itself). It reads the footer and TOC, then the
// whole blob once, sequentially. Findings use the estargz.* check ids:
//
//   - estargz.footer: the 51- or 47-byte footer parses and points before itself;
//     the last gzip member is the footer.
//   - estargz.toc-digest: the toc.digest annotation is present (a warning when
//     not), well formed, and the sha256 of the TOC JSON.
//   - estargz.toc: the TOC member holds the stargz.index.json entry and only
//     zeros after it, ends at the footer, parses within the limits, and its
//     entries are well formed (types, chunk sequences covering each file,
//     digests present and parseable, offsets inside the payload and in order,
//     hard link targets present); the in-stream TOC entry is the last entry
//     and equals it.
//   - estargz.chunk-digest: every chunk's offset is the start of a gzip
//     member, and the bytes a lazy pull reads there (innerOffset, chunkSize)
//     have the chunk's digest; every file's chunks have the file's digest.
//   - estargz.view-mismatch: the TOC entries (the lazy-pull view) and the tar
//     entries of the stream (the full-pull view) are the same files in the
//     same order: names, types, sizes, modes, owners, times (seconds), link
//     targets, devices, xattrs, and each chunk's offset lands on its file's
//     data in the tar.
//   - estargz.uncompressed-size: the annotation, if present, is the stream's
//     length.
//   - estargz.landmark: one landmark, .no.prefetch.landmark first or
//     .prefetch.landmark after the prioritized files, holding the byte 0x0f at
//     the start of a gzip member (a warning when there is none).
//   - layer.diffid: the stream's sha256 is diffID; layer.decode: it decompresses.
func Verify(ctx context.Context, ra io.ReaderAt, size int64, annotations map[string]string, diffID digest.Digest, lim Limits) []check.Finding {
	return VerifyStream(ctx, ra, size, annotations, diffID, lim, nil)
}

// A StreamWriter receives a blob's uncompressed stream; *io.PipeWriter is one.
type StreamWriter interface {
	io.Writer
	CloseWithError(error) error
}

// VerifyStream is Verify that also writes the blob's uncompressed stream to
// stream (if not nil) as its one pass reads it, so that a caller can run
// checks of its own on the tar without decompressing the blob a second time.
// The stream is closed when the pass ends: with nil after the last byte, or
// with the error that stopped the pass (the blob does not decompress, ctx is
// done). Its reader must read to the end.
func VerifyStream(ctx context.Context, ra io.ReaderAt, size int64, annotations map[string]string, diffID digest.Digest, lim Limits, stream StreamWriter) []check.Finding {
	var f findings
	lim = lim.withDefaults()
	toc, err := ReadTOC(ra, size, lim)
	if err != nil {
		id := CheckTOC
		if _, ferr := ReadFooter(ra, size); ferr != nil {
			id = CheckFooter
		}
		f.errorf(id, "%v", err)
		toc = nil
	}
	if toc != nil {
		checkTOCDigest(&f, toc, annotations)
		checkTOC(&f, toc, lim)
		checkLandmark(&f, toc)
	}
	s := newStreamCheck(&f, toc, size, diffID != "")
	uSize, uDigest, err := s.run(ctx, ra, size, stream)
	if err != nil {
		f.errorf(CheckDecode, "decompressing the blob: %v", err)
		return f.result()
	}
	if v, ok := annotations[AnnotationUncompressedSize]; ok {
		n, perr := strconv.ParseInt(v, 10, 64)
		switch {
		case perr != nil || n < 0:
			f.errorf(CheckUncompressedSize, "annotation %s=%q is not a size", AnnotationUncompressedSize, v)
		case n != uSize:
			f.errorf(CheckUncompressedSize, "annotation %s says %d bytes, the blob decompresses to %d", AnnotationUncompressedSize, n, uSize)
		}
	}
	if diffID != "" && diffID != uDigest {
		f.errorf(CheckDiffID, "the blob decompresses to %s, the diff_id is %s", uDigest, diffID)
	}
	return f.result()
}

func checkTOCDigest(f *findings, toc *TOC, annotations map[string]string) {
	v, ok := annotations[AnnotationTOCDigest]
	if !ok {
		f.add(check.Warnf(CheckTOCDigest, "no %s annotation: runtimes cannot verify the TOC (TOC digest %s)", AnnotationTOCDigest, toc.Digest))
		return
	}
	d, err := digest.Parse(v)
	if err != nil {
		f.errorf(CheckTOCDigest, "annotation %s=%q: %v", AnnotationTOCDigest, v, err)
		return
	}
	if d != toc.Digest {
		f.errorf(CheckTOCDigest, "annotation %s is %s, the TOC JSON's digest is %s", AnnotationTOCDigest, d, toc.Digest)
	}
}

func isData(e *TOCEntry) bool { return (e.Type == "reg" && e.Size > 0) || e.Type == "chunk" }

// chunkLen is an entry's chunk length with upstream's defaults (0 means up
// to the end of the file); file is the reg entry the chunk belongs to.
func chunkLen(e, file *TOCEntry) int64 {
	if e.ChunkSize > 0 {
		return e.ChunkSize
	}
	return file.Size - e.ChunkOffset
}

// checkTOC checks the TOC's structure on its own.
func checkTOC(f *findings, toc *TOC, lim Limits) {
	if toc.Trailing != 0 {
		f.errorf(CheckTOC, "%d bytes between the TOC member and the footer", toc.Trailing)
	}
	if toc.TrailingData {
		f.errorf(CheckTOC, "the TOC member holds data after the TOC entry")
	}
	if toc.Version != 1 {
		f.add(check.Warnf(CheckTOC, "TOC version %d (upstream writes 1)", toc.Version))
	}
	names := map[string]int{}
	var file *TOCEntry // the reg entry whose chunks follow
	var next int64     // the ChunkOffset the next chunk of file must have
	var lastOffset int64
	seenOffset := map[int64]bool{}
	shared := 0
	for i, e := range toc.Entries {
		at := func(format string, a ...any) {
			f.add(check.Errorf(CheckTOC, "entry %d: "+format, append([]any{i}, a...)...).At(e.Name))
		}
		switch e.Type {
		case "chunk":
			if file == nil {
				at("chunk entry without a preceding regular file")
				continue
			}
			if e.Name != "" && CleanEntryName(e.Name) != CleanEntryName(file.Name) {
				at("chunk of %q follows %q", e.Name, file.Name)
			}
		case "reg", "dir", "symlink", "hardlink", "char", "block", "fifo":
			if file != nil && next != file.Size {
				f.add(check.Errorf(CheckTOC, "chunks of %q cover %d of its %d bytes", file.Name, next, file.Size).At(file.Name))
			}
			file, next = nil, 0
			name := CleanEntryName(e.Name)
			if j, dup := names[name]; dup {
				f.add(check.Warnf(CheckTOC, "entries %d and %d are both %q; lazy pulls see only the last", j, i, name).At(e.Name))
			}
			names[name] = i
			if e.Type == "reg" {
				file = e
			}
			if e.Type == "hardlink" {
				if _, ok := names[CleanEntryName(e.LinkName)]; !ok {
					at("hard link to %q, which is not an earlier entry", e.LinkName)
				}
			}
		default:
			at("unknown type %q", e.Type)
			file = nil
			continue
		}
		if e.Type == "reg" && e.Size < 0 {
			at("negative size %d", e.Size)
			file = nil
			continue
		}
		if e.Digest != "" {
			if _, err := digest.Parse(e.Digest); err != nil {
				at("digest %q: %v", e.Digest, err)
			}
		}
		if file == nil || !isData(e) {
			continue
		}
		if e.ChunkOffset != next {
			at("chunk at file offset %d, want %d", e.ChunkOffset, next)
		}
		n := chunkLen(e, file)
		if n <= 0 || e.ChunkOffset+n > file.Size || e.ChunkSize < 0 {
			at("chunk of %d bytes at %d does not fit a %d-byte file", e.ChunkSize, e.ChunkOffset, file.Size)
			file = nil
			continue
		}
		next = e.ChunkOffset + n
		if e.ChunkDigest == "" {
			at("no chunkDigest (upstream's VerifyTOC refuses the layer)")
		} else if _, err := digest.Parse(e.ChunkDigest); err != nil {
			at("chunkDigest %q: %v", e.ChunkDigest, err)
		}
		if e.Offset < 0 || e.Offset >= toc.Footer.TOCOffset || e.InnerOffset < 0 {
			at("offset %d (inner %d) outside the payload [0,%d)", e.Offset, e.InnerOffset, toc.Footer.TOCOffset)
		}
		if e.Offset < lastOffset {
			at("offset %d goes back from %d", e.Offset, lastOffset)
		}
		if seenOffset[e.Offset] {
			shared++
		}
		seenOffset[e.Offset] = true
		lastOffset = e.Offset
	}
	if file != nil && next != file.Size {
		f.add(check.Errorf(CheckTOC, "chunks of %q cover %d of its %d bytes", file.Name, next, file.Size).At(file.Name))
	}
	if shared > 0 {
		f.add(check.Warnf(CheckTOC, "%d chunks share a gzip member with an earlier one (min chunk size); upstream's VerifyTOC (stargz-snapshotter v0.19.1) refuses such layers (\"offset found twice\"), so they cannot be lazily pulled with verification", shared))
	}
}

var landmarkDigest = digest.FromBytes([]byte{LandmarkContents})

func checkLandmark(f *findings, toc *TOC) {
	var found []int
	for i, e := range toc.Entries {
		if e.Type == "chunk" {
			continue
		}
		switch CleanEntryName(e.Name) {
		case PrefetchLandmark, NoPrefetchLandmark:
			found = append(found, i)
		}
	}
	if len(found) == 0 {
		f.add(check.Warnf(CheckLandmark, "no %s or %s: runtimes cannot tell whether to prefetch", PrefetchLandmark, NoPrefetchLandmark))
		return
	}
	if len(found) > 1 {
		f.errorf(CheckLandmark, "%d landmark entries (at %v), want one", len(found), found)
	}
	for _, i := range found {
		e := toc.Entries[i]
		name := CleanEntryName(e.Name)
		if name == NoPrefetchLandmark && i != 0 {
			f.add(check.Errorf(CheckLandmark, "%s is entry %d, it must be the first", name, i).At(e.Name))
		}
		if e.Type != "reg" || e.Size != 1 {
			f.add(check.Errorf(CheckLandmark, "%s is a %q of %d bytes, want a 1-byte regular file", name, e.Type, e.Size).At(e.Name))
			continue
		}
		if (e.ChunkDigest != "" && e.ChunkDigest != landmarkDigest.String()) || (e.Digest != "" && e.Digest != landmarkDigest.String()) {
			f.add(check.Errorf(CheckLandmark, "%s does not hold the byte 0x0f (digest %s)", name, e.ChunkDigest).At(e.Name))
		}
		if e.InnerOffset != 0 {
			f.add(check.Errorf(CheckLandmark, "%s does not start a gzip member (inner offset %d)", name, e.InnerOffset).At(e.Name))
		}
	}
}

// ---- the sequential pass ----

// chunkRange is a data entry's bytes in the uncompressed stream, as a lazy
// pull reads them.
type chunkRange struct {
	ent        *TOCEntry
	idx        int // index in the TOC
	start, end int64
	h          hash.Hash
	file       *fileState
}

type fileState struct {
	ent  *TOCEntry
	h    hash.Hash
	left int // chunks not finished
}

type streamCheck struct {
	f    *findings
	toc  *TOC
	size int64

	byOffset   map[int64][]int // TOC data entries by Offset
	matched    map[int64]bool  // offsets found at a member start
	members    map[int64]int64 // member start -> uncompressed offset
	lastMember int64           // the last member's start, -1 before the first
	files      map[int]*fileState
	fileOf     []int // TOC index -> index of its reg entry

	pending  []*chunkRange // sorted by start, not started
	active   []*chunkRange
	pos      int64         // uncompressed bytes so far
	diffID   hash.Hash     // nil: the caller does not check the diff_id
	expected map[int]int64 // TOC data entry -> where the tar has its bytes
	mr       *memberReader
}

// tarError reports a tar-level error of the full-pull view, unless it is a
// decompression error (returned, reported as layer.decode by Verify).
func (s *streamCheck) tarError(format string, a ...any) error {
	if s.mr.err != nil {
		return s.mr.err
	}
	if s.toc != nil {
		s.f.errorf(CheckViewMismatch, format, a...)
	}
	return nil
}

// newStreamCheck prepares the pass; hashDiffID: the stream's digest is wanted (a caller that
// checks the diff_id itself, on the stream it is handed, spares the pass a sha256).
func newStreamCheck(f *findings, toc *TOC, size int64, hashDiffID bool) *streamCheck {
	s := &streamCheck{f: f, toc: toc, size: size, members: map[int64]int64{}, lastMember: -1,
		byOffset: map[int64][]int{}, matched: map[int64]bool{}, files: map[int]*fileState{}, expected: map[int]int64{}}
	if hashDiffID {
		s.diffID = sha256.New()
	}
	if toc == nil {
		return s
	}
	s.fileOf = make([]int, len(toc.Entries))
	file := -1
	for i, e := range toc.Entries {
		switch e.Type {
		case "reg":
			file = i
		case "chunk":
		default:
			file = -1
		}
		s.fileOf[i] = file
		if file >= 0 && isData(e) {
			s.byOffset[e.Offset] = append(s.byOffset[e.Offset], i)
		}
	}
	return s
}

// member is called when a gzip member starts at compressed offset c and
// uncompressed offset u.
func (s *streamCheck) member(c, u int64) {
	s.members[c] = u
	s.lastMember = c
	idxs, ok := s.byOffset[c]
	if !ok {
		return
	}
	s.matched[c] = true
	var rs []*chunkRange
	for _, i := range idxs {
		e := s.toc.Entries[i]
		fi := s.fileOf[i]
		file := s.toc.Entries[fi]
		n := chunkLen(e, file)
		if n <= 0 || e.InnerOffset < 0 {
			continue // reported by checkTOC
		}
		fs := s.files[fi]
		if fs == nil {
			fs = &fileState{ent: file, h: sha256.New()}
			for j := fi; j < len(s.toc.Entries) && s.fileOf[j] == fi; j++ {
				if isData(s.toc.Entries[j]) {
					fs.left++
				}
			}
			s.files[fi] = fs
		}
		rs = append(rs, &chunkRange{ent: e, idx: i, start: u + e.InnerOffset, end: u + e.InnerOffset + n, h: sha256.New(), file: fs})
	}
	s.pending = append(s.pending, rs...)
	sort.SliceStable(s.pending, func(a, b int) bool { return s.pending[a].start < s.pending[b].start })
}

// maxActiveRanges bounds how many chunk ranges may overlap at one point of
// the stream (1 in any real layer), so that a hostile TOC cannot make the
// pass hash the stream over and over.
const maxActiveRanges = 16

// Write feeds the uncompressed stream.
func (s *streamCheck) Write(p []byte) (int, error) {
	if s.diffID != nil {
		s.diffID.Write(p)
	}
	lo, hi := s.pos, s.pos+int64(len(p))
	for len(s.pending) > 0 && s.pending[0].start < hi {
		r := s.pending[0]
		s.pending = s.pending[1:]
		if len(s.active) >= maxActiveRanges {
			s.f.add(check.Errorf(CheckChunkDigest, "chunk at file offset %d overlaps %d other chunks in the stream; not checked", r.ent.ChunkOffset, len(s.active)).At(r.file.ent.Name))
			r.file.left = -1 << 30 // the file digest cannot be checked either
			continue
		}
		s.active = append(s.active, r)
	}
	keep := s.active[:0]
	for _, r := range s.active {
		a, b := max(r.start, lo), min(r.end, hi)
		if a < b {
			r.h.Write(p[a-lo : b-lo])
			r.file.h.Write(p[a-lo : b-lo])
		}
		if r.end <= hi {
			s.finish(r)
		} else {
			keep = append(keep, r)
		}
	}
	s.active = keep
	s.pos = hi
	return len(p), nil
}

func (s *streamCheck) finish(r *chunkRange) {
	name := r.file.ent.Name
	if got := digest.NewDigest(digest.SHA256, r.h).String(); r.ent.ChunkDigest != "" && got != r.ent.ChunkDigest {
		s.f.add(check.Errorf(CheckChunkDigest, "chunk at file offset %d (blob offset %d, inner %d): digest %s, the TOC says %s",
			r.ent.ChunkOffset, r.ent.Offset, r.ent.InnerOffset, got, r.ent.ChunkDigest).At(name))
	}
	r.file.left--
	if r.file.left == 0 && r.file.ent.Digest != "" {
		if got := digest.NewDigest(digest.SHA256, r.file.h).String(); got != r.file.ent.Digest {
			s.f.add(check.Errorf(CheckChunkDigest, "file content has digest %s, the TOC says %s", got, r.file.ent.Digest).At(name))
		}
	}
}

// memberReader decompresses the blob, telling onStart where each gzip member
// starts before any byte of that member is returned. The inflating runs on a
// goroutine of its own, ahead of the checks that read the stream.
type memberReader struct {
	ctx context.Context
	zr  *gunzip.Reader // nil: the blob is empty, or its first header is bad (err)
	err error          // the first decompression error
}

func newMemberReader(ctx context.Context, ra io.ReaderAt, size int64, onStart func(c, u int64)) *memberReader {
	m := &memberReader{ctx: ctx}
	zr, err := gunzip.NewParallelReader(io.NewSectionReader(ra, 0, size), gunzip.OnMember(func(mb gunzip.Member) { onStart(mb.Offset, mb.Out) }))
	if err != nil && err != io.EOF {
		m.err = fmt.Errorf("gzip member at offset 0: %w", err)
	}
	m.zr = zr
	return m
}

func (m *memberReader) Read(p []byte) (int, error) {
	if m.zr == nil {
		if m.err != nil {
			return 0, m.err
		}
		return 0, io.EOF
	}
	if err := m.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := m.zr.Read(p)
	if err != nil && err != io.EOF && m.err == nil {
		m.err = err
	}
	return n, err
}

// close stops the inflating goroutine.
func (m *memberReader) close() {
	if m.zr != nil {
		m.zr.Close()
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// run makes the pass; it returns the stream's size and digest.
func (s *streamCheck) run(ctx context.Context, ra io.ReaderAt, size int64, tee StreamWriter) (_ int64, _ digest.Digest, err error) {
	mr := newMemberReader(ctx, ra, size, s.member)
	defer mr.close()
	var w io.Writer = s
	if tee != nil {
		w = io.MultiWriter(s, tee)
		defer func() { tee.CloseWithError(err) }()
	}
	stream := &countReader{r: io.TeeReader(mr, w)}
	s.mr = mr
	if err := s.compareViews(stream); err != nil {
		return 0, "", err
	}
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return 0, "", err
	}
	s.afterPass()
	if s.diffID == nil {
		return s.pos, "", nil
	}
	return s.pos, digest.NewDigest(digest.SHA256, s.diffID), nil
}

// afterPass reports what only the whole pass can tell.
func (s *streamCheck) afterPass() {
	if s.toc == nil {
		return
	}
	ft := s.size - s.toc.Footer.Size()
	if s.lastMember != ft {
		s.f.errorf(CheckFooter, "the last gzip member does not start at the footer (offset %d)", ft)
	}
	if _, ok := s.members[s.toc.Footer.TOCOffset]; !ok {
		s.f.errorf(CheckTOC, "the TOC offset %d is not the start of a gzip member", s.toc.Footer.TOCOffset)
	}
	for _, off := range slices.Sorted(maps.Keys(s.byOffset)) {
		if s.matched[off] {
			continue
		}
		i := s.byOffset[off][0]
		s.f.add(check.Errorf(CheckChunkDigest, "offset %d (%d chunks) is not the start of a gzip member: lazy pulls cannot read it", off, len(s.byOffset[off])).At(s.toc.Entries[s.fileOf[i]].Name))
	}
	for _, r := range append(s.active, s.pending...) {
		s.f.add(check.Errorf(CheckChunkDigest, "chunk at file offset %d runs past the end of the stream", r.ent.ChunkOffset).At(r.file.ent.Name))
	}
	for i, want := range s.expected {
		e := s.toc.Entries[i]
		u, ok := s.members[e.Offset]
		if !ok {
			continue // reported above
		}
		if got := u + e.InnerOffset; got != want {
			s.f.add(check.Errorf(CheckViewMismatch, "the TOC puts file offset %d at stream offset %d, the tar has it at %d", e.ChunkOffset, got, want).At(s.toc.Entries[s.fileOf[i]].Name))
		}
	}
}

func tocType(flag byte) string {
	switch flag {
	case tar.TypeReg:
		return "reg"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeDir:
		return "dir"
	case tar.TypeChar:
		return "char"
	case tar.TypeBlock:
		return "block"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("tar type %q", flag)
}

// compareViews walks the tar entries of the stream against the TOC entries.
func (s *streamCheck) compareViews(stream *countReader) error {
	tr := tar.NewReader(stream)
	var ents []int // TOC indexes of non-chunk entries
	if s.toc != nil {
		for i, e := range s.toc.Entries {
			if e.Type != "chunk" {
				ents = append(ents, i)
			}
		}
	}
	uname, gname := map[int]string{}, map[int]string{}
	k := 0 // next in ents
	sawTOC := false
	for {
		// Every entry's data is read before the next Next, so the header
		// starts after the padding.
		hdrStart := stream.n + (-stream.n & 511)
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return s.tarError("the stream is not a tar after %d entries: %v", k, err) // the rest is still hashed by run
		}
		if s.toc == nil {
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return s.tarError("the stream is not a tar: reading %q: %v", h.Name, err)
			}
			continue
		}
		if sawTOC {
			s.f.add(check.Errorf(CheckTOC, "tar entry after %s", TOCTarName).At(h.Name))
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return s.tarError("the stream is not a tar: reading %q: %v", h.Name, err)
			}
			continue
		}
		if h.Name == TOCTarName {
			sawTOC = true
			if u, ok := s.members[s.toc.Footer.TOCOffset]; ok && u != hdrStart {
				s.f.errorf(CheckTOC, "the TOC member starts at stream offset %d, the %s entry at %d", u, TOCTarName, hdrStart)
			}
			d := sha256.New()
			if _, err := io.Copy(d, tr); err != nil {
				return s.tarError("the stream is not a tar: reading %q: %v", h.Name, err)
			}
			if got := digest.NewDigest(digest.SHA256, d); got != s.toc.Digest {
				s.f.errorf(CheckTOC, "the %s entry in the stream has digest %s, the TOC the footer points at %s", TOCTarName, got, s.toc.Digest)
			}
			continue
		}
		if k >= len(ents) {
			s.f.add(check.Errorf(CheckViewMismatch, "tar entry %q (%s) is not in the TOC", h.Name, tocType(h.Typeflag)).At(h.Name))
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return s.tarError("the stream is not a tar: reading %q: %v", h.Name, err)
			}
			continue
		}
		i := ents[k]
		k++
		e := s.toc.Entries[i]
		tu, tg := e.Uname, e.Gname
		if tu != "" {
			uname[e.UID] = tu
		} else {
			tu = uname[e.UID]
		}
		if tg != "" {
			gname[e.GID] = tg
		} else {
			tg = gname[e.GID]
		}
		s.compareEntry(e, h, tu, tg)
		if h.Typeflag == tar.TypeReg && e.Type == "reg" && e.Size == h.Size && h.Size > 0 {
			dataStart := stream.n
			for j := i; j < len(s.toc.Entries) && s.fileOf[j] == i; j++ {
				if isData(s.toc.Entries[j]) {
					s.expected[j] = dataStart + s.toc.Entries[j].ChunkOffset
				}
			}
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return s.tarError("the stream is not a tar: reading %q: %v", h.Name, err)
		}
	}
	if s.toc == nil {
		return nil
	}
	for ; k < len(ents); k++ {
		e := s.toc.Entries[ents[k]]
		s.f.add(check.Errorf(CheckViewMismatch, "TOC entry %q (%s) is not in the tar", e.Name, e.Type).At(e.Name))
	}
	if !sawTOC {
		s.f.errorf(CheckTOC, "the stream has no %s entry", TOCTarName)
	}
	return nil
}

func (s *streamCheck) compareEntry(e *TOCEntry, h *tar.Header, uname, gname string) {
	var diffs []string
	d := func(what string, toc, tr any) {
		diffs = append(diffs, fmt.Sprintf("%s %v in the TOC, %v in the tar", what, toc, tr))
	}
	if CleanEntryName(e.Name) != CleanEntryName(h.Name) {
		d("name", strconv.Quote(e.Name), strconv.Quote(h.Name))
	}
	if t := tocType(h.Typeflag); t != e.Type {
		d("type", e.Type, t)
	}
	if e.Type == "reg" && e.Size != h.Size {
		d("size", e.Size, h.Size)
	}
	if e.Mode != h.Mode {
		d("mode", fmt.Sprintf("%#o", e.Mode), fmt.Sprintf("%#o", h.Mode))
	}
	if e.UID != h.Uid || e.GID != h.Gid {
		d("owner", fmt.Sprintf("%d:%d", e.UID, e.GID), fmt.Sprintf("%d:%d", h.Uid, h.Gid))
	}
	if (h.Uname != "" || e.Uname != "") && uname != h.Uname {
		d("user name", strconv.Quote(uname), strconv.Quote(h.Uname))
	}
	if (h.Gname != "" || e.Gname != "") && gname != h.Gname {
		d("group name", strconv.Quote(gname), strconv.Quote(h.Gname))
	}
	if mt := formatModtime(h.ModTime); mt != e.ModTime3339 {
		d("modtime", strconv.Quote(e.ModTime3339), strconv.Quote(mt))
	}
	switch e.Type {
	case "symlink":
		if e.LinkName != h.Linkname {
			d("link target", strconv.Quote(e.LinkName), strconv.Quote(h.Linkname))
		}
	case "hardlink":
		if CleanEntryName(e.LinkName) != CleanEntryName(h.Linkname) {
			d("link target", strconv.Quote(e.LinkName), strconv.Quote(h.Linkname))
		}
	case "char", "block":
		if int64(e.DevMajor) != h.Devmajor || int64(e.DevMinor) != h.Devminor {
			d("device", fmt.Sprintf("%d,%d", e.DevMajor, e.DevMinor), fmt.Sprintf("%d,%d", h.Devmajor, h.Devminor))
		}
	}
	tx := map[string][]byte{}
	for k, v := range h.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			tx[x] = []byte(v)
		}
	}
	if !maps.EqualFunc(tx, e.Xattrs, bytes.Equal) && !(len(tx) == 0 && len(e.Xattrs) == 0) {
		d("xattrs", fmtXattrs(e.Xattrs), fmtXattrs(tx))
	}
	if len(diffs) > 0 {
		s.f.add(check.Errorf(CheckViewMismatch, "lazy and full pulls differ: %s", strings.Join(diffs, "; ")).At(h.Name))
	}
}

func fmtXattrs(m map[string][]byte) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// Info is what Inspect reports about an eStargz blob without reading it whole.
type Info struct {
	TOCDigest    digest.Digest `json:"tocDigest"`
	TOCOffset    int64         `json:"tocOffset"`
	LegacyFooter bool          `json:"legacyFooter,omitempty"`
	Version      int           `json:"version"`
	// Entries counts the TOC entries that are files (not "chunk" entries);
	// Chunks counts the data chunks (reg and chunk entries with data).
	Entries int `json:"entries"`
	Chunks  int `json:"chunks"`
	// Landmark is PrefetchLandmark, NoPrefetchLandmark or "".
	Landmark string `json:"landmark,omitempty"`
	// PrioritizedFiles are the entries before .prefetch.landmark.
	PrioritizedFiles []string `json:"prioritizedFiles,omitempty"`
}

// Inspect reads the footer and the TOC and summarizes them.
func Inspect(ra io.ReaderAt, size int64, lim Limits) (*Info, error) {
	toc, err := ReadTOC(ra, size, lim)
	if err != nil {
		return nil, err
	}
	in := &Info{TOCDigest: toc.Digest, TOCOffset: toc.Footer.TOCOffset, LegacyFooter: toc.Footer.Legacy, Version: toc.Version}
	var names []string
	for _, e := range toc.Entries {
		if isData(e) {
			in.Chunks++
		}
		if e.Type == "chunk" {
			continue
		}
		in.Entries++
		switch n := CleanEntryName(e.Name); n {
		case PrefetchLandmark:
			if in.Landmark == "" {
				in.Landmark = n
				in.PrioritizedFiles = slices.Clone(names)
			}
		case NoPrefetchLandmark:
			if in.Landmark == "" {
				in.Landmark = n
			}
		default:
			names = append(names, e.Name)
		}
	}
	return in, nil
}

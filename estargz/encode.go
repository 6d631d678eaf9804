package estargz

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fmtconv/fmtconv/internal/hashio"
	digest "github.com/opencontainers/go-digest"
	tarsplit "github.com/vbatts/tar-split/archive/tar"
)

// EncodeOptions configure Encode. The zero value gives upstream's layout at
// gzip level 6.
type EncodeOptions struct {
	// Level is the gzip level, 1 (fastest) to 9 (smallest); 0 means
	// DefaultLevel (6). Upstream's Build defaults to 9.
	Level int
	// ChunkSize is the largest payload of one gzip member; 0 means
	// DefaultChunkSize (4 MiB). Larger files are split into "chunk" entries.
	ChunkSize int
	// MinChunkSize, if positive, lets several small payloads share one gzip
	// member (TOC entries with an innerOffset) until the member holds at least
	// MinChunkSize UNCOMPRESSED bytes. Upstream counts compressed bytes, which
	// forces it to compress sequentially; counting uncompressed bytes keeps the
	// output independent of the worker count. Landmarks always start a member.
	MinChunkSize int
	// PrioritizedFiles are moved to the front, in this order, each preceded by
	// its parent directories and hard link targets, and followed by
	// .prefetch.landmark (upstream's WithPrioritizedFiles; every path must
	// exist). Without them the layer starts with .no.prefetch.landmark.
	// Prioritizing needs the whole tar before writing: its payloads are then
	// spooled to a temporary file in TempDir.
	PrioritizedFiles []string
	// AllowPrioritizedNotFound skips prioritized paths the layer does not hold (a multi-layer
	// image has each file in one layer only) instead of refusing the layer.
	AllowPrioritizedNotFound bool
	// TempDir is where the spool file goes ("" means os.TempDir()).
	TempDir string
	// StrictHardlinks refuses hard links whose target is empty, absolute or leaves the root, as
	// HARDLINK_MISSING. Upstream accepts them and resolves the cleaned name, which is right for an
	// archive whose every name has the same prefix ("/a", "../a") and wrong for a layer, where the
	// target would silently become another file.
	StrictHardlinks bool
}

// EncodeResult describes an encoded blob.
type EncodeResult struct {
	// Annotations are the two layer annotations eStargz needs:
	// AnnotationTOCDigest and AnnotationUncompressedSize.
	Annotations map[string]string
	// TOCDigest is the sha256 of the uncompressed TOC JSON.
	TOCDigest digest.Digest
	// DiffID is the sha256 of the uncompressed blob: the rewritten tar, with
	// the landmark first and the TOC entry and end-of-archive blocks last. It
	// differs from the input's, so the config's rootfs.diff_ids must change.
	DiffID digest.Digest
	// UncompressedSize is the length of that uncompressed stream.
	UncompressedSize int64
	// TOCOffset is the offset of the TOC member (also in the footer).
	TOCOffset int64
}

// Encode reads an uncompressed tar stream to its end and writes it to w as an
// eStargz blob.
//
// The uncompressed stream is the one upstream's
// estargz.Build(WithParallelism(1), WithChunkSize, ...) produces for the same
// input: every header is re-encoded exactly as upstream does (archive/tar,
// then tar-split's archive/tar) and a landmark is added, so the stream up to
// the TOC entry, and the TOC except its compressed offsets, are byte for byte
// upstream's. (The DiffID is not: the TOC entry, with its offsets, is part of
// the stream.) The gzip members start where upstream's start
// (the blob start, every payload chunk, the TOC, the footer), but are
// compressed with klauspost/compress on GOMAXPROCS workers (see member.go),
// so the blob is not byte-identical to upstream's; it is the same whatever
// GOMAXPROCS is.
//
// Differences from upstream's Build: duplicate paths are refused
// (CodeDuplicatePath) instead of keeping the last one; MinChunkSize counts
// uncompressed bytes; non-UTF-8 names are refused. On error, what was written
// to w is garbage.
func Encode(ctx context.Context, w io.Writer, tarStream io.Reader, opts EncodeOptions) (*EncodeResult, error) {
	if opts.Level == 0 {
		opts.Level = DefaultLevel
	}
	if opts.Level < 1 || opts.Level > 9 {
		return nil, fmt.Errorf("estargz: gzip level %d out of range 1..9", opts.Level)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.MinChunkSize < 0 {
		opts.MinChunkSize = 0
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &encoder{
		opts:    opts,
		pipe:    newPipeline(ctx, bw, workers),
		toc:     &JTOC{Version: 1},
		seen:    map[string]struct{}{},
		written: map[string]struct{}{},
		workers: workers,
	}
	in := bufio.NewReaderSize(hashio.ContextReader(ctx, tarStream), 256<<10)
	var err error
	if len(opts.PrioritizedFiles) > 0 {
		err = e.spooled(in)
	} else {
		err = e.streamed(in)
	}
	if err == nil {
		err = e.closeMember()
	}
	if cerr := e.pipe.close(); cerr != nil && (err == nil || errors.Is(err, errPipelineFailed)) {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return e.finish(bw)
}

type memberRef struct {
	ent    *TOCEntry
	member int
}

type encoder struct {
	opts    EncodeOptions
	pipe    *pipeline
	workers int

	cur       *part // the open part of the open member, nil between members
	members   int   // members opened so far
	memberLen int64 // uncompressed bytes in the open member
	total     int64

	toc          *JTOC
	refs         []memberRef
	lastUsername map[int]string
	lastGroup    map[int]string
	seen         map[string]struct{} // input names (duplicates)
	written      map[string]struct{} // names written so far (hard link targets)

	rt1, rt2 bytes.Buffer // header re-encoding buffers
	chunkH   hash.Hash
	fileH    hash.Hash
}

// ---- member writing ----

// openMember opens a member if none is open; size is a guess of its length.
func (e *encoder) openMember(size int) {
	if e.cur == nil {
		e.cur = &part{raw: getRaw(size), first: true, level: e.opts.Level}
		e.members++
		e.memberLen = 0
	}
}

// cutPart sends the full current part and starts the member's next part.
func (e *encoder) cutPart() error {
	prev := e.cur
	next := &part{raw: getRaw(0), level: e.opts.Level}
	next.dict = append([]byte(nil), prev.raw[len(prev.raw)-dictLength:]...)
	e.cur = next
	return e.pipe.send(prev)
}

func (e *encoder) closeMember() error {
	if e.cur == nil {
		return nil
	}
	pt := e.cur
	pt.final = true
	e.cur = nil
	return e.pipe.send(pt)
}

// room makes room for up to n more bytes in the open part and returns how many fit (0 when the
// part is full).
func (e *encoder) room(n int) int {
	l := len(e.cur.raw)
	k := min(partCap-l, n)
	if cap(e.cur.raw) < l+k {
		e.cur.raw = growRaw(e.cur.raw, l+k)
	}
	return k
}

// appendBytes adds b to the open member (opening one if needed).
func (e *encoder) appendBytes(b []byte) error {
	e.openMember(len(b))
	e.total += int64(len(b))
	e.memberLen += int64(len(b))
	for len(b) > 0 {
		k := e.room(len(b))
		if k == 0 {
			if err := e.cutPart(); err != nil {
				return err
			}
			continue
		}
		e.cur.raw = append(e.cur.raw, b[:k]...)
		b = b[k:]
	}
	return nil
}

// appendFrom reads exactly n bytes of r into the open member, feeding hs too.
func (e *encoder) appendFrom(r io.Reader, n int64, hs ...hash.Hash) error {
	e.openMember(int(min(n, partCap)))
	for n > 0 {
		k := e.room(int(min(n, partCap)))
		if k == 0 {
			if err := e.cutPart(); err != nil {
				return err
			}
			continue
		}
		l := len(e.cur.raw)
		buf := e.cur.raw[l : l+k]
		if _, err := io.ReadFull(r, buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		e.cur.raw = e.cur.raw[:l+k]
		for _, h := range hs {
			h.Write(buf)
		}
		e.total += int64(k)
		e.memberLen += int64(k)
		n -= int64(k)
	}
	return nil
}

// ---- entries ----

var zeroBlock [512]byte

func landmarkHeader(name string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 1}
}

// checkEntry refuses what the encoder cannot represent and says whether the
// entry is one of ours (landmark, TOC) to drop.
func (e *encoder) checkEntry(h *tar.Header) (drop bool, err error) {
	name := CleanEntryName(h.Name)
	switch h.Typeflag {
	case tar.TypeXGlobalHeader:
		return false, &UnsupportedInputError{Code: CodePAXGlobalHeader, Path: h.Name, Reason: "PAX global headers have no TOC representation"}
	case tar.TypeGNUSparse:
		return false, &UnsupportedInputError{Code: CodeSparseFile, Path: h.Name, Reason: "GNU sparse file"}
	case tar.TypeReg, tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
	default:
		return false, &UnsupportedInputError{Code: CodeUnsupportedEntryType, Path: h.Name, Reason: fmt.Sprintf("entry type %q", h.Typeflag)}
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return false, &UnsupportedInputError{Code: CodeSparseFile, Path: h.Name, Reason: "PAX sparse file (" + k + ")"}
		}
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && !utf8.ValidString(x) {
			return false, &UnsupportedInputError{Code: CodeNonUTF8Name, Path: h.Name, Reason: "xattr name is not UTF-8"}
		}
	}
	for _, s := range []string{h.Name, h.Linkname, h.Uname, h.Gname} {
		if !utf8.ValidString(s) {
			return false, &UnsupportedInputError{Code: CodeNonUTF8Name, Path: h.Name, Reason: fmt.Sprintf("%q is not UTF-8", s)}
		}
	}
	switch name {
	case PrefetchLandmark, NoPrefetchLandmark, TOCTarName:
		return true, nil
	}
	if _, dup := e.seen[name]; dup {
		return false, &UnsupportedInputError{Code: CodeDuplicatePath, Path: h.Name, Reason: "the path occurs twice in the layer"}
	}
	e.seen[name] = struct{}{}
	if h.Typeflag != tar.TypeReg {
		// Header-only types carry no data whatever their size field says.
		h.Size = 0
	}
	return false, nil
}

// reencode is upstream's path of a header through Build: archive/tar writes
// it (readerFromEntries), tar-split's reader parses it and tar-split's writer
// writes it (Writer.AppendTar). It returns the parsed header and the bytes.
func (e *encoder) reencode(h0 *tar.Header) (*tarsplit.Header, []byte, error) {
	e.rt1.Reset()
	if err := tar.NewWriter(&e.rt1).WriteHeader(h0); err != nil {
		return nil, nil, fmt.Errorf("failed to write tar header %q: %w", h0.Name, err)
	}
	h, err := tarsplit.NewReader(bytes.NewReader(e.rt1.Bytes())).Next()
	if err != nil {
		return nil, nil, fmt.Errorf("re-reading tar header %q: %w", h0.Name, err)
	}
	e.rt2.Reset()
	if err := tarsplit.NewWriter(&e.rt2).WriteHeader(h); err != nil {
		return nil, nil, fmt.Errorf("failed to write tar header %q: %w", h0.Name, err)
	}
	return h, e.rt2.Bytes(), nil
}

func nameIfChanged(mp *map[int]string, id int, name string) string {
	if name == "" {
		return ""
	}
	if *mp == nil {
		*mp = make(map[int]string)
	}
	if (*mp)[id] == name {
		return ""
	}
	(*mp)[id] = name
	return name
}

func formatModtime(t time.Time) string {
	if t.IsZero() || t.Unix() == 0 {
		return ""
	}
	return t.UTC().Round(time.Second).Format(time.RFC3339)
}

// hardlinkProblem says why the TOC cannot resolve a hard link to target ("" when it can): one
// that is not an earlier entry resolves to nothing; with StrictHardlinks, one that is empty,
// absolute or leaves the root (the TOC names the cleaned path, another file in a layer).
func (e *encoder) hardlinkProblem(target string) string {
	rel := path.Clean(target)
	switch {
	case !e.opts.StrictHardlinks:
	case target == "":
		return "hard link without a target"
	case strings.HasPrefix(target, "/"):
		return fmt.Sprintf("hard link to the absolute path %q", target)
	case rel == ".." || strings.HasPrefix(rel, "../"):
		return fmt.Sprintf("hard link to %q, which leaves the root", target)
	}
	if _, ok := e.written[CleanEntryName(target)]; !ok {
		return fmt.Sprintf("hard link to %q, which is not an earlier entry", target)
	}
	return ""
}

// writeEntry appends one entry as upstream's Writer.AppendTar does; payload
// holds h0.Size bytes for regular files.
func (e *encoder) writeEntry(h0 *tar.Header, payload io.Reader) error {
	if h0.Typeflag == tar.TypeLink {
		if reason := e.hardlinkProblem(h0.Linkname); reason != "" {
			return &UnsupportedInputError{Code: CodeHardlinkMissing, Path: h0.Name, Reason: reason}
		}
	}
	e.written[CleanEntryName(h0.Name)] = struct{}{}
	h, hdr, err := e.reencode(h0)
	if err != nil {
		return err
	}
	var xattrs map[string][]byte
	for k, v := range h.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if xattrs == nil {
				xattrs = map[string][]byte{}
			}
			xattrs[x] = []byte(v)
		}
	}
	ent := &TOCEntry{
		Name:        h.Name,
		Mode:        h.Mode,
		UID:         h.Uid,
		GID:         h.Gid,
		Uname:       nameIfChanged(&e.lastUsername, h.Uid, h.Uname),
		Gname:       nameIfChanged(&e.lastGroup, h.Gid, h.Gname),
		ModTime3339: formatModtime(h.ModTime),
		Xattrs:      xattrs,
	}
	if err := e.appendBytes(hdr); err != nil {
		return err
	}
	switch h.Typeflag {
	case tarsplit.TypeLink:
		ent.Type, ent.LinkName = "hardlink", h.Linkname
	case tarsplit.TypeSymlink:
		ent.Type, ent.LinkName = "symlink", h.Linkname
	case tarsplit.TypeDir:
		ent.Type = "dir"
	case tarsplit.TypeReg:
		ent.Type, ent.Size = "reg", h.Size
	case tarsplit.TypeChar:
		ent.Type, ent.DevMajor, ent.DevMinor = "char", int(h.Devmajor), int(h.Devminor)
	case tarsplit.TypeBlock:
		ent.Type, ent.DevMajor, ent.DevMinor = "block", int(h.Devmajor), int(h.Devminor)
	case tarsplit.TypeFifo:
		ent.Type = "fifo"
	default:
		return &UnsupportedInputError{Code: CodeUnsupportedEntryType, Path: h.Name, Reason: fmt.Sprintf("entry type %q", h.Typeflag)}
	}
	if ent.Type != "reg" {
		e.toc.Entries = append(e.toc.Entries, ent)
		return nil
	}
	if ent.Size == 0 {
		ent.Digest = digest.SHA256.FromBytes(nil).String()
		e.toc.Entries = append(e.toc.Entries, ent)
		return nil
	}
	reg := ent
	total := ent.Size
	chunkSize := int64(e.opts.ChunkSize)
	if e.chunkH == nil {
		e.chunkH, e.fileH = sha256.New(), sha256.New()
	}
	multi := total > chunkSize
	e.fileH.Reset()
	landmark := h.Name == PrefetchLandmark || h.Name == NoPrefetchLandmark
	for written := int64(0); written < total; {
		cs := chunkSize
		if remain := total - written; remain < cs {
			cs = remain
		} else {
			ent.ChunkSize = cs
		}
		if e.cur == nil || e.opts.MinChunkSize == 0 || (landmark && written == 0) || e.memberLen >= int64(e.opts.MinChunkSize) {
			if err := e.closeMember(); err != nil {
				return err
			}
			e.openMember(int(cs) + 1024) // the payload, its padding, a few headers
		} else {
			ent.InnerOffset = e.memberLen
		}
		e.refs = append(e.refs, memberRef{ent, e.members - 1})
		ent.ChunkOffset = written
		var err error
		if l := len(e.cur.raw); l+int(cs) <= partCap {
			// The chunk lies in one part: the worker compressing the part hashes it
			// (off this goroutine, which is the pipeline's bottleneck on small files).
			e.cur.digests = append(e.cur.digests, digestJob{ent: ent, from: l, to: l + int(cs), file: !multi})
			if multi {
				err = e.appendFrom(payload, cs, e.fileH)
			} else {
				err = e.appendFrom(payload, cs)
			}
		} else {
			e.chunkH.Reset()
			if multi {
				err = e.appendFrom(payload, cs, e.chunkH, e.fileH)
			} else {
				err = e.appendFrom(payload, cs, e.chunkH)
			}
			ent.ChunkDigest = digest.NewDigest(digest.SHA256, e.chunkH).String()
			if !multi {
				ent.Digest = ent.ChunkDigest
			}
		}
		if err != nil {
			return fmt.Errorf("error copying %q: %w", h.Name, err)
		}
		e.toc.Entries = append(e.toc.Entries, ent)
		written += cs
		ent = &TOCEntry{Name: h.Name, Type: "chunk"}
	}
	if multi {
		reg.Digest = digest.NewDigest(digest.SHA256, e.fileH).String()
	}
	if pad := -total & 511; pad > 0 {
		return e.appendBytes(zeroBlock[:pad])
	}
	return nil
}

// streamed encodes in input order: the landmark, then every entry.
func (e *encoder) streamed(in io.Reader) error {
	if err := e.writeEntry(landmarkHeader(NoPrefetchLandmark), bytes.NewReader([]byte{LandmarkContents})); err != nil {
		return err
	}
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("failed to parse tar file: %w", err)
		}
		drop, err := e.checkEntry(h)
		if err != nil {
			return err
		}
		if drop {
			continue
		}
		if err := e.writeEntry(h, tr); err != nil {
			return err
		}
	}
	_, err := io.Copy(io.Discard, in)
	return err
}

// spooled reads the whole tar first (payloads into a temporary file), then
// encodes in upstream's prioritized order.
func (e *encoder) spooled(in io.Reader) error {
	f, err := os.CreateTemp(e.opts.TempDir, "estargz-spool-*")
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	var entries []*spoolEntry
	var off int64
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("failed to parse tar file: %w", err)
		}
		drop, err := e.checkEntry(h)
		if err != nil {
			return err
		}
		if drop {
			continue
		}
		se := &spoolEntry{h: h, off: off}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			n, err := io.Copy(bw, tr)
			if err != nil {
				return err
			}
			if n != h.Size {
				return fmt.Errorf("%q: %w", h.Name, io.ErrUnexpectedEOF)
			}
			off += n
		}
		entries = append(entries, se)
	}
	if _, err := io.Copy(io.Discard, in); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	sorted, err := sortEntries(entries, e.opts.PrioritizedFiles, e.opts.AllowPrioritizedNotFound)
	if err != nil {
		return err
	}
	for _, se := range sorted {
		var payload io.Reader
		switch {
		case se.landmark:
			payload = bytes.NewReader([]byte{LandmarkContents})
		case se.h.Typeflag == tar.TypeReg:
			payload = io.NewSectionReader(f, se.off, se.h.Size) // read in chunk-sized pieces
		}
		if err := e.writeEntry(se.h, payload); err != nil {
			return err
		}
	}
	return nil
}

// finish writes the TOC member and the footer once every member is written.
func (e *encoder) finish(bw *bufio.Writer) (*EncodeResult, error) {
	offs := e.pipe.memberOffsets
	for _, r := range e.refs {
		r.ent.Offset = offs[r.member]
	}
	// The TOC member's tar entry: a 512-byte header, the JSON, its padding
	// and the two end-of-archive blocks, built in place. Entries of real layers take about 330
	// bytes of JSON each (two digests, a path, ids, mode, times, offsets); growing the buffer
	// from a smaller guess cost more than the encoding.
	tocTar := appendTOCJSON(make([]byte, 512, 512+448*len(e.toc.Entries)+64<<10), e.toc)
	tocJSON := tocTar[512:]
	var hdr bytes.Buffer
	if err := tar.NewWriter(&hdr).WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: TOCTarName, Size: int64(len(tocJSON))}); err != nil {
		return nil, err
	}
	if hdr.Len() != 512 {
		return nil, fmt.Errorf("estargz: TOC tar header of %d bytes", hdr.Len())
	}
	copy(tocTar, hdr.Bytes())
	tocTar = append(tocTar, make([]byte, -len(tocJSON)&511+1024)...)
	e.total += int64(len(tocTar))
	tocOffset, err := e.pipe.compressMember(tocTar, e.opts.Level, e.workers)
	if err != nil {
		return nil, err
	}
	if err := e.pipe.write(Footer{TOCOffset: tocOffset}.Bytes()); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	tocDigest := digest.FromBytes(tocJSON)
	res := &EncodeResult{
		TOCDigest:        tocDigest,
		DiffID:           digest.NewDigest(digest.SHA256, e.pipe.diffID),
		UncompressedSize: e.total,
		TOCOffset:        tocOffset,
	}
	res.Annotations = map[string]string{
		AnnotationTOCDigest:        tocDigest.String(),
		AnnotationUncompressedSize: strconv.FormatInt(e.total, 10),
	}
	return res, nil
}

package nydus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/fmtconv/fmtconv/check"
)

// VerifyOptions tune Verify and VerifyLayer. The zero value is the default.
type VerifyOptions struct {
	Options
	// LayerDigests, when set, are the digests of the image's Nydus blob layers:
	// every blob id of the bootstrap must be one of them (nydusd fetches blobs by id).
	LayerDigests []digest.Digest
	// SkipData skips reading chunk data (and the blob-id hash of whole blobs).
	SkipData bool
	// MaxFindingsPerCheck caps the findings of one check id (default 50); a
	// last finding says how many were left out.
	MaxFindingsPerCheck int
}

type findings struct {
	list  []check.Finding
	count map[string]int
	max   int
}

func newFindings(max int) *findings {
	if max <= 0 {
		max = 50
	}
	return &findings{count: map[string]int{}, max: max}
}

func (fs *findings) add(f check.Finding) {
	fs.count[f.Check]++
	if n := fs.count[f.Check]; n <= fs.max {
		fs.list = append(fs.list, f)
	}
}

func (fs *findings) errorf(id, path, format string, a ...any) {
	fs.add(check.Errorf(id, format, a...).At(path))
}

func (fs *findings) warnf(id, path, format string, a ...any) {
	fs.add(check.Warnf(id, format, a...).At(path))
}

func (fs *findings) result() []check.Finding {
	for id, n := range fs.count {
		if n > fs.max {
			fs.list = append(fs.list, check.Errorf(id, "%d more %s findings not shown", n-fs.max, id))
		}
	}
	return fs.list
}

// Verify checks a RAFS v6 bootstrap and, through blobs, the blob data:
// superblocks and tables, every inode and directory (range, sorted names,
// loops, names, xattrs), every chunk index and chunk location, every chunk's
// decompressed size and digest, blob ids, blob.meta and TOC of each blob. It
// returns the findings (none for a valid image). blobs may be nil, then only
// the metadata is checked and a warning says so.
func Verify(bootstrap io.ReaderAt, size int64, blobs BlobResolver, opts *VerifyOptions) []check.Finding {
	if opts == nil {
		opts = &VerifyOptions{}
	}
	out := newFindings(opts.MaxFindingsPerCheck)
	f, err := OpenWithOptions(bootstrap, size, blobs, &opts.Options)
	if err != nil {
		out.add(findingOf(err, CheckBootstrap))
		return out.result()
	}
	f.verify(out, opts)
	return out.result()
}

// VerifyLayer checks a per-layer Nydus blob with an inlined bootstrap (what a
// registry holds for each blob layer): its sections and TOC (entry placement,
// digests), the inlined bootstrap as Verify does, and every chunk against this
// blob. Other blobs the bootstrap references are resolved with blobs (may be nil).
func VerifyLayer(r io.ReaderAt, size int64, blobs BlobResolver, opts *VerifyOptions) []check.Finding {
	if opts == nil {
		opts = &VerifyOptions{}
	}
	out := newFindings(opts.MaxFindingsPerCheck)
	lb, err := ParseLayerBlob(r, size)
	if err != nil {
		out.add(findingOf(err, CheckTOC))
		return out.result()
	}
	if lb.TOC == nil {
		out.warnf(CheckTOC, "", "blob has no rafs.blob.toc section (built without --features blob-toc)")
	}
	verifyTOC(lb, out, &opts.Options, !opts.SkipData)
	f, err := lb.FS(blobs, &opts.Options)
	if err != nil {
		out.add(findingOf(err, CheckBootstrap))
		return out.result()
	}
	if f.selfBlob < 0 && len(f.blobs) > 0 {
		if _, ok := lb.Section(SectionBlob); ok {
			out.errorf(CheckBlobID, "", "no blob table entry of the inlined bootstrap describes this blob")
		}
	}
	f.verify(out, opts)
	return out.result()
}

func (f *FS) verify(out *findings, opts *VerifyOptions) {
	for _, n := range f.notes {
		out.add(n)
	}
	layer := map[string]bool{}
	for _, d := range opts.LayerDigests {
		layer[d.Encoded()] = true
	}
	if unresolved := len(f.blobs) - btoi(f.selfBlob >= 0); f.resolver == nil && unresolved > 0 {
		out.warnf(CheckBlobMissing, "", "no blob resolver: chunk data, blob ids, blob.meta and TOCs of %d blob(s) not verified", unresolved)
	}
	for i := range f.blobs {
		f.verifyBlob(i, out, opts, layer)
	}
	f.verifyChunks(out, opts)
}

func (f *FS) verifyBlob(i int, out *findings, opts *VerifyOptions, layer map[string]bool) {
	e := &f.blobs[i]
	id := e.ID()
	where := fmt.Sprintf("blob %d (%s)", i, id)
	self := i == f.selfBlob
	if len(layer) > 0 && !self && !layer[id] {
		out.errorf(CheckBlobID, "", "%s: blob id is not the digest of any blob layer of the image", where)
	}
	if f.resolver == nil && !self {
		return
	}
	s := f.blob(i)
	if s.err != nil {
		out.errorf(CheckBlobMissing, "", "%s: %v", where, s.err)
		return
	}
	if s.layerErr != nil {
		out.add(findingOf(fmt.Errorf("%s: %w", where, s.layerErr), CheckTOC))
	}
	if !opts.SkipData {
		f.verifyBlobID(s, self, out)
	}
	if s.layer != nil && !self {
		verifyTOC(s.layer, out, &f.opts, !opts.SkipData)
	}
	var zero [32]byte
	if e.BlobTOCDigest != zero {
		switch {
		case s.layer == nil || s.layer.TOC == nil:
			out.errorf(CheckTOCDigest, "", "%s: blob table records a TOC digest but the blob has no TOC", where)
		case s.layer.TOCDigest != e.BlobTOCDigest:
			out.errorf(CheckTOCDigest, "", "%s: TOC digest %x differs from the blob table's %x", where, s.layer.TOCDigest, e.BlobTOCDigest)
		}
	}
	if e.BlobTOCSize != 0 && s.layer != nil && s.layer.TOC != nil && int64(e.BlobTOCSize) != s.layer.TOCSize {
		out.errorf(CheckTOC, "", "%s: TOC size %d differs from the blob table's %d", where, s.layer.TOCSize, e.BlobTOCSize)
	}
	if e.ChunkCount == 0 {
		return
	}
	if err := f.loadCI(s); err != nil {
		out.add(findingOf(err, CheckBlobMeta))
		return
	}
	dataEnd := uint64(s.size)
	if s.layer != nil {
		if d, ok := s.layer.Section(SectionBlob); ok {
			dataEnd = uint64(d.Offset + d.Size)
		}
		if d, ok := s.layer.Section(SectionBlobDigest); ok && d.Size != 32*int64(e.ChunkCount) {
			out.errorf(CheckTOC, "", "%s: blob.digest holds %d bytes for %d chunks", where, d.Size, e.ChunkCount)
		}
	}
	if BlobFeatures(e.Features)&BlobInlinedChunkDigest != 0 && s.digestOff < 0 && s.layer != nil {
		out.warnf(CheckBlobMeta, "", "%s: INLINED_CHUNK_DIGEST set but the blob has no blob.digest section", where)
	}
	ulimit := (e.UncompressedSize + BlockSize - 1) &^ (BlockSize - 1)
	for c := uint32(0); c < e.ChunkCount; c++ {
		ce, _ := s.ciEntry(c)
		switch {
		case ce.UncompressedSize == 0 || ce.CompressedSize == 0:
			out.errorf(CheckChunkInfo, "", "%s: ci %d: zero size", where, c)
		case ce.CompressedOffset+uint64(ce.CompressedSize) > dataEnd:
			out.errorf(CheckChunkInfo, "", "%s: ci %d: compressed range [%d, +%d) beyond the chunk data (%d bytes)", where, c, ce.CompressedOffset, ce.CompressedSize, dataEnd)
		case ce.UncompressedOffset%BlockSize != 0 || ce.UncompressedOffset+uint64(ce.UncompressedSize) > ulimit:
			out.errorf(CheckChunkInfo, "", "%s: ci %d: uncompressed range [%d, +%d) unaligned or beyond %d", where, c, ce.UncompressedOffset, ce.UncompressedSize, ulimit)
		case !ce.Compressed && ce.CompressedSize != ce.UncompressedSize:
			out.errorf(CheckChunkInfo, "", "%s: ci %d: stored raw but sizes %d ≠ %d", where, c, ce.CompressedSize, ce.UncompressedSize)
		}
	}
}

// verifyBlobID hashes the blob once and compares the blob id with its sha256,
// recognising the ids nydus-image computes when it builds outside the registry flow.
func (f *FS) verifyBlobID(s *blobState, self bool, out *findings) {
	id := s.entry.ID()
	where := fmt.Sprintf("blob %d (%s)", s.idx, id)
	full := sha256.New()
	type variant struct {
		h        hash.Hash
		skipFrom int64
		skipTo   int64
		end      int64
		why      string
	}
	var vs []*variant
	if s.layer != nil {
		if d, ok := s.layer.Section(SectionBlobDigest); ok {
			vs = append(vs, &variant{h: sha256.New(), skipFrom: d.Offset, skipTo: d.Offset + d.Size, end: s.size,
				why: "sha256 of the blob without its blob.digest array (nydus-image separate-blob build)"})
		}
		if b, ok := s.layer.Section(SectionBootstrap); ok {
			vs = append(vs, &variant{h: sha256.New(), skipFrom: b.Offset, skipTo: b.Offset, end: b.Offset,
				why: "sha256 of the blob up to its inlined bootstrap (nydus-image ≤ 2.2 inline build)"})
		}
	}
	buf := make([]byte, min(1<<20, max(s.size, 1)))
	for off := int64(0); off < s.size; {
		n, err := s.r.ReadAt(buf[:min(int64(len(buf)), s.size-off)], off)
		if n == 0 && err != nil {
			out.errorf(CheckBlobMissing, "", "%s: reading: %v", where, err)
			return
		}
		b := buf[:n]
		full.Write(b)
		for _, v := range vs {
			lo, hi := off, off+int64(n)
			for _, r := range [][2]int64{{0, v.skipFrom}, {v.skipTo, v.end}} {
				a, z := max(lo, r[0]), min(hi, r[1])
				if a < z {
					v.h.Write(b[a-off : z-off])
				}
			}
		}
		off += int64(n)
	}
	sum := hex.EncodeToString(full.Sum(nil))
	if sum == id {
		return
	}
	for _, v := range vs {
		if hex.EncodeToString(v.h.Sum(nil)) == id {
			if !self {
				out.warnf(CheckBlobID, "", "%s: blob id is the %s, not the blob's sha256 %s: a registry cannot serve this blob by its id", where, v.why, sum)
			}
			return
		}
	}
	if self {
		if id != PlaceholderBlobID {
			out.warnf(CheckBlobID, "", "%s: the inlined bootstrap's blob id matches neither the placeholder nor a hash of this blob (merge replaces it with the layer digest %s)", where, sum)
		}
		return
	}
	out.errorf(CheckBlobID, "", "%s: blob id differs from the blob's sha256 %s", where, sum)
}

// verifyTOC checks the TOC of a layer blob against its sections and contents.
func verifyTOC(lb *LayerBlob, out *findings, opts *Options, digests bool) {
	if lb.TOC == nil {
		return
	}
	if lb.TOCSize > MaxTOCSize {
		out.errorf(CheckTOC, "", "TOC of %d bytes does not fit in the last 4096 bytes nydusd reads", lb.TOCSize)
	}
	seen := map[string]bool{}
	for i := range lb.TOC {
		t := &lb.TOC[i]
		name := t.EntryName()
		if seen[name] {
			out.errorf(CheckTOC, "", "TOC entry %q appears twice", name)
		}
		seen[name] = true
		algo := t.Flags.Compressor()
		if algo == CompressUnknown {
			out.errorf(CheckTOC, "", "TOC entry %q: unknown flags %#x", name, uint32(t.Flags))
			continue
		}
		off, size := t.CompressedOffset, t.CompressedSize
		if name == SectionBlob && off == size {
			off = 0 // nydus-image ≤ 2.2 recorded the end of the chunk data as its offset
		}
		if off > uint64(lb.size) || size > uint64(lb.size)-off {
			out.errorf(CheckTOC, "", "TOC entry %q: [%d, +%d) beyond the blob", name, off, size)
			continue
		}
		var want Section
		var ok bool
		switch name {
		case SectionBlob:
			if want, ok = lb.Section(SectionBlob); ok {
				if size != uint64(want.Size) || off != 0 {
					out.errorf(CheckTOC, "", "TOC entry %q: [%d, +%d) does not match the section [0, +%d)", name, t.CompressedOffset, size, want.Size)
				}
			}
		case SectionBlobMeta:
			if want, ok = lb.Section(SectionBlobMeta); ok && (off != uint64(want.Offset) || size+BlobMetaHeaderSize != uint64(want.Size)) {
				out.errorf(CheckTOC, "", "TOC entry %q: [%d, +%d) does not match the section [%d, +%d-4096)", name, off, size, want.Offset, want.Size)
			}
		case SectionBlobMetaHeader:
			if m, has := lb.Section(SectionBlobMeta); has {
				ok = true
				if off != uint64(m.Offset+m.Size-BlobMetaHeaderSize) || size != BlobMetaHeaderSize {
					out.errorf(CheckTOC, "", "TOC entry %q: [%d, +%d) is not the last 4096 bytes of blob.meta", name, off, size)
				}
			}
		case SectionBlobDigest, SectionBootstrap:
			if want, ok = lb.Section(name); ok && (off != uint64(want.Offset) || size != uint64(want.Size)) {
				out.errorf(CheckTOC, "", "TOC entry %q: [%d, +%d) does not match the section [%d, +%d)", name, off, size, want.Offset, want.Size)
			}
		default:
			out.warnf(CheckTOC, "", "unknown TOC entry %q", name)
			continue
		}
		if !ok {
			out.errorf(CheckTOC, "", "TOC entry %q has no matching section", name)
			continue
		}
		if !digests {
			continue
		}
		got, err := tocEntryDigest(lb, t, name, off, algo, opts)
		if err != nil {
			out.errorf(CheckTOCDigest, "", "TOC entry %q: %v", name, err)
			continue
		}
		if !bytes.Equal(got[0][:], t.UncompressedDigest[:]) && (got[1] == nil || !bytes.Equal(got[1][:], t.UncompressedDigest[:])) {
			out.errorf(CheckTOCDigest, "", "TOC entry %q: content sha256 %x differs from the TOC's %x", name, got[0][:], t.UncompressedDigest)
		}
	}
}

// tocEntryDigest returns the sha256 of the uncompressed content of a TOC entry
// (and, for image.blob, also of content ‖ tar header: the digest nydus-image writes).
func tocEntryDigest(lb *LayerBlob, t *TOCEntry, name string, off uint64, algo Compressor, opts *Options) ([2]*[32]byte, error) {
	var res [2]*[32]byte
	if name == SectionBlob {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(lb.r, int64(off), int64(t.CompressedSize))); err != nil {
			return res, err
		}
		var a [32]byte
		copy(a[:], h.Sum(nil))
		var hdr [TarHeaderSize]byte
		if _, err := lb.r.ReadAt(hdr[:], int64(off+t.CompressedSize)); err != nil {
			return res, err
		}
		h.Write(hdr[:])
		var b [32]byte
		copy(b[:], h.Sum(nil))
		if t.UncompressedSize < t.CompressedSize {
			return res, fmt.Errorf("uncompressed size %d smaller than the data %d", t.UncompressedSize, t.CompressedSize)
		}
		return [2]*[32]byte{&a, &b}, nil
	}
	limit := opts.maxBootstrap()
	if name == SectionBlobMeta {
		limit = opts.maxCI()
	}
	if t.CompressedSize > uint64(limit) {
		return res, fmt.Errorf("%d bytes over the limit", t.CompressedSize)
	}
	raw := make([]byte, t.CompressedSize)
	if _, err := lb.r.ReadAt(raw, int64(off)); err != nil {
		return res, err
	}
	data, err := decompressLimited(algo, raw, int64(t.UncompressedSize), limit)
	if err != nil {
		return res, err
	}
	a := sha256.Sum256(data)
	res[0] = &a
	return res, nil
}

// verifyChunks checks every chunk index of every regular file and every chunk's data.
func (f *FS) verifyChunks(out *findings, opts *VerifyOptions) {
	done := map[uint64]bool{}
	type ck struct {
		blob int
		ci   uint32
	}
	checked := map[ck]bool{}
	tbl, infos, tblErr := f.chunkTable()
	if tblErr != nil {
		out.add(findingOf(tblErr, CheckBootstrap))
	}
	for i := range infos {
		c := &infos[i]
		if int(c.BlobIndex) >= len(f.blobs) || c.Index >= f.blobs[c.BlobIndex].ChunkCount {
			out.errorf(CheckChunkInfo, "", "chunk table entry %d: blob %d / ci %d out of range", i, c.BlobIndex, c.Index)
		}
	}
	blobWarned := map[int]bool{}
	data := newDataChecks(f, out)
	defer data.finish()
	f.walkNodes(func(n *node) {
		in := n.in
		if in.ftype != FileTypeReg || !in.chunkBased || done[in.nid] {
			return
		}
		done[in.nid] = true
		path := n.path()
		cs := uint64(f.ext.ChunkSize)
		var firstBlk uint32
		contiguous := true
		for k := uint64(0); k < in.nchunks; k++ {
			ref, s, err := f.resolveChunk(in, k)
			if errors.Is(err, errNoBlob) {
				if !blobWarned[ref.BlobIndex] && f.resolver != nil {
					out.errorf(CheckBlobMissing, path, "%v", err)
				}
				blobWarned[ref.BlobIndex] = true
				continue
			}
			if err != nil {
				f2 := findingOf(err, CheckChunkIndex)
				f2.Path = path
				out.add(f2)
				continue
			}
			if k == 0 {
				firstBlk = ref.BlkAddr
			} else if uint64(ref.BlkAddr) != uint64(firstBlk)+k*cs/BlockSize {
				contiguous = false
			}
			if ref.Source == "hole" {
				out.errorf(CheckChunkIndex, path, "chunk %d is a hole (EROFS null address): nydusd cannot read it", k)
				continue
			}
			if uint64(ref.BlkAddr)*BlockSize != ref.UncompressedOffset {
				out.errorf(CheckChunkIndex, path, "chunk %d: block address %d but the chunk's uncompressed offset is %d", k, ref.BlkAddr, ref.UncompressedOffset)
			}
			if ref.UncompressedSize != ref.Length {
				out.errorf(CheckChunkInfo, path, "chunk %d: uncompressed size %d, the file needs %d bytes here", k, ref.UncompressedSize, ref.Length)
			}
			if ref.Source == "ci" && tbl != nil {
				if j, ok := tbl[chunkKey{uint32(ref.BlobIndex), ref.CIIndex, ref.BlkAddr}]; ok {
					c := &infos[j]
					if c.CompressedOffset != ref.CompressedOffset || c.CompressedSize != ref.CompressedSize ||
						c.UncompressedSize != ref.UncompressedSize || (c.Flags&ChunkCompressed != 0) != ref.Compressed {
						out.errorf(CheckChunkInfo, path, "chunk %d: chunk table (%d+%d→%d) disagrees with the blob's ci (%d+%d→%d)", k,
							c.CompressedOffset, c.CompressedSize, c.UncompressedSize, ref.CompressedOffset, ref.CompressedSize, ref.UncompressedSize)
					}
				} else if f.ext.Flags&FlagInlinedChunkDigest == 0 {
					out.errorf(CheckChunkInfo, path, "chunk %d (blob %d, ci %d, block %d) has no chunk table entry and the image does not inline chunk digests", k, ref.BlobIndex, ref.CIIndex, ref.BlkAddr)
				}
			}
			key := ck{ref.BlobIndex, ref.CIIndex}
			if opts.SkipData || checked[key] || s == nil || s.err != nil {
				continue
			}
			checked[key] = true
			data.check(ref, s, path, k)
		}
		if in.chunkBits > uint(trailingZeros(f.ext.ChunkSize)) && !contiguous {
			out.errorf(CheckChunkIndex, path, "inode chunk size 2^%d needs contiguous blocks, but the chunks are not contiguous (EROFS would read wrong data)", in.chunkBits)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func trailingZeros(x uint32) int {
	n := 0
	for x != 0 && x&1 == 0 {
		x >>= 1
		n++
	}
	return n
}

// dataChecks decompresses and hashes chunks (most of a verify's work) on GOMAXPROCS workers
// while the walk goes on. Findings are added to out in the order the walk met the chunks: the
// walk takes in the oldest chunk's findings whenever maxPendingChunks are in flight, and the rest
// at the end, so memory stays bounded and the result does not depend on scheduling.
type dataChecks struct {
	out     *findings
	pending []*dataJob // in walk order
	work    chan *dataJob
	wg      sync.WaitGroup
}

// maxPendingChunks bounds the chunks queued or being checked. It must not depend on GOMAXPROCS:
// when findings are taken in decides their order among the walk's own.
const maxPendingChunks = 64

type dataJob struct {
	ref  ChunkRef
	s    *blobState
	path string
	k    uint64
	out  *findings
	done chan struct{}
}

func newDataChecks(f *FS, out *findings) *dataChecks {
	d := &dataChecks{out: out, work: make(chan *dataJob, maxPendingChunks)}
	for range runtime.GOMAXPROCS(0) {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for j := range d.work {
				f.verifyChunkData(&j.ref, j.s, j.path, j.k, j.out)
				close(j.done)
			}
		}()
	}
	return d
}

// check queues chunk k of path (ref, resolved in s by the walk) for its data checks.
func (d *dataChecks) check(ref ChunkRef, s *blobState, path string, k uint64) {
	if len(d.pending) == maxPendingChunks {
		d.takeOldest()
	}
	j := &dataJob{ref: ref, s: s, path: path, k: k, out: newFindings(d.out.max), done: make(chan struct{})}
	d.pending = append(d.pending, j)
	d.work <- j
}

// takeOldest waits for the oldest pending chunk and adds its findings.
func (d *dataChecks) takeOldest() {
	j := d.pending[0]
	d.pending = d.pending[1:]
	<-j.done
	for _, fd := range j.out.list {
		d.out.add(fd)
	}
}

// finish adds the findings of the chunks still pending and stops the workers.
func (d *dataChecks) finish() {
	for len(d.pending) > 0 {
		d.takeOldest()
	}
	close(d.work)
	d.wg.Wait()
}

func (f *FS) verifyChunkData(ref *ChunkRef, s *blobState, path string, k uint64, out *findings) {
	data, err := f.readChunkData(ref, s)
	if err != nil {
		fd := findingOf(err, CheckChunkDigest)
		fd.Path = path
		out.add(fd)
		return
	}
	algo := Digester(s.entry.DigestAlgo)
	sum, err := chunkDigest(algo, data)
	if err != nil {
		out.errorf(CheckChunkDigest, path, "chunk %d: %v", k, err)
		return
	}
	tbl, infos, _ := f.chunkTable()
	if j, ok := tbl[chunkKey{uint32(ref.BlobIndex), ref.CIIndex, ref.BlkAddr}]; ok && infos[j].Digest != sum {
		out.errorf(CheckChunkDigest, path, "chunk %d (blob %d, ci %d): %s %x differs from the chunk table's %x", k, ref.BlobIndex, ref.CIIndex, algo, sum, infos[j].Digest)
	}
	if s.digestOff >= 0 {
		var d [32]byte
		if _, err := s.r.ReadAt(d[:], s.digestOff+int64(ref.CIIndex)*32); err == nil && d != sum {
			out.errorf(CheckChunkDigest, path, "chunk %d (blob %d, ci %d): %s %x differs from blob.digest's %x", k, ref.BlobIndex, ref.CIIndex, algo, sum, d)
		}
	}
	if ref.HasCRC32 && crc32c(data) != ref.CRC32 {
		out.errorf(CheckChunkDigest, path, "chunk %d (blob %d, ci %d): CRC32C %08x differs from %08x", k, ref.BlobIndex, ref.CIIndex, crc32c(data), ref.CRC32)
	}
}

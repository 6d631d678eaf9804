package nydus

import (
	"errors"
	"fmt"
	"io"
)

// blobState is the lazily opened data side of one blob table entry.
type blobState struct {
	idx   int
	entry *BlobEntry
	r     io.ReaderAt
	size  int64
	err   error // resolution error

	layer    *LayerBlob // section view, nil if the blob has no tar headers
	layerErr error

	ciDone   bool
	ci       []byte // uncompressed ci array
	ciUnit   int
	ciHeader BlobMetaHeader
	ciErr    error

	digestOff int64 // offset of the blob.digest array, -1 if none
}

// blob returns the state of blob i, resolving it on first use.
func (f *FS) blob(i int) *blobState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blobStates == nil {
		f.blobStates = make([]*blobState, len(f.blobs))
	}
	if s := f.blobStates[i]; s != nil {
		return s
	}
	s := &blobState{idx: i, entry: &f.blobs[i], digestOff: -1}
	f.blobStates[i] = s
	switch {
	case i == f.selfBlob && f.self != nil:
		s.r, s.size, s.layer = f.self.r, f.self.size, f.self
	case f.resolver == nil:
		s.err = fmt.Errorf("no blob resolver given for blob %s", s.entry.ID())
	default:
		s.r, s.size, s.err = f.resolver(s.entry.ID())
		if s.err == nil && s.r == nil {
			s.err = fmt.Errorf("blob resolver returned no reader for %s", s.entry.ID())
		}
	}
	if s.err != nil {
		return s
	}
	if s.layer == nil {
		s.layer, s.layerErr = ParseLayerBlob(s.r, s.size)
		if s.layerErr != nil && BlobFeatures(s.entry.Features)&BlobHasTarHeader == 0 {
			s.layerErr = nil // no tar headers expected
		}
	}
	if s.layer != nil {
		if d, ok := s.layer.Section(SectionBlobDigest); ok {
			s.digestOff = d.Offset
		}
	}
	return s
}

// loadCI reads and checks the blob.meta header and the ci array of a blob.
func (f *FS) loadCI(s *blobState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.ciDone {
		return s.ciErr
	}
	s.ciDone = true
	s.ciErr = f.readCI(s)
	return s.ciErr
}

func (f *FS) readCI(s *blobState) error {
	e := s.entry
	where := fmt.Sprintf("blob %s", e.ID())
	if e.CIUncompressedSize == 0 {
		return formatErr(CheckBlobMeta, -1, "%s: blob table records no ci array", where)
	}
	s.ciUnit = ChunkInfoV1Size
	if BlobFeatures(e.Features)&BlobChunkInfoV2 != 0 {
		s.ciUnit = ChunkInfoV2Size
	}
	hoff := e.CIOffset + e.CICompressedSize
	if e.CIOffset > uint64(s.size) || e.CICompressedSize > uint64(s.size) || hoff > uint64(s.size) || uint64(s.size)-hoff < BlobMetaHeaderSize {
		return formatErr(CheckBlobMeta, int64(e.CIOffset), "%s: ci array + header [%d, +%d+4096) beyond the blob (%d bytes)", where, e.CIOffset, e.CICompressedSize, s.size)
	}
	hb := make([]byte, BlobMetaHeaderSize)
	if _, err := s.r.ReadAt(hb, int64(hoff)); err != nil {
		return fmt.Errorf("nydus: reading %s: %w", where, err)
	}
	h := &s.ciHeader
	_ = h.UnmarshalBinary(hb)
	switch {
	case h.Magic != BlobMetaMagic || h.Magic2 != BlobMetaMagic:
		return formatErr(CheckBlobMeta, int64(hoff), "%s: no blob.meta header magic at %d", where, hoff)
	case h.CIEntries != e.ChunkCount && BlobFeatures(e.Features)&BlobChunkDictGenerated == 0:
		return formatErr(CheckBlobMeta, int64(hoff), "%s: blob.meta header has %d entries, blob table %d", where, h.CIEntries, e.ChunkCount)
	case h.CICompressor != e.CICompressor || h.CIOffset != e.CIOffset || h.CICompressedSize != e.CICompressedSize || h.CIUncompressedSize != e.CIUncompressedSize:
		return formatErr(CheckBlobMeta, int64(hoff), "%s: blob.meta header (compressor %d, offset %d, sizes %d/%d) differs from the blob table (%d, %d, %d/%d)", where,
			h.CICompressor, h.CIOffset, h.CICompressedSize, h.CIUncompressedSize, e.CICompressor, e.CIOffset, e.CICompressedSize, e.CIUncompressedSize)
	}
	if int64(e.CIUncompressedSize) > f.opts.maxCI() {
		return formatErr(CheckBlobMeta, -1, "%s: ci array of %d bytes over the limit", where, e.CIUncompressedSize)
	}
	if e.CIUncompressedSize < uint64(s.ciUnit)*uint64(e.ChunkCount) {
		return formatErr(CheckBlobMeta, -1, "%s: ci array of %d bytes too small for %d chunks", where, e.CIUncompressedSize, e.ChunkCount)
	}
	raw := make([]byte, e.CICompressedSize)
	if _, err := s.r.ReadAt(raw, int64(e.CIOffset)); err != nil {
		return fmt.Errorf("nydus: reading %s ci: %w", where, err)
	}
	ci, err := decompressLimited(Compressor(e.CICompressor), raw, int64(e.CIUncompressedSize), f.opts.maxCI())
	if err != nil {
		return &FormatError{Check: CheckBlobMeta, Offset: int64(e.CIOffset), Msg: where + ": ci array", Err: err}
	}
	s.ci = ci
	return nil
}

// ciEntry returns entry i of the blob's ci array.
func (s *blobState) ciEntry(i uint32) (CIEntry, bool) {
	if uint64(i) >= uint64(s.entry.ChunkCount) || (uint64(i)+1)*uint64(s.ciUnit) > uint64(len(s.ci)) {
		return CIEntry{}, false
	}
	b := s.ci[int(i)*s.ciUnit:]
	if s.ciUnit == ChunkInfoV2Size {
		return DecodeCIV2(b), true
	}
	return DecodeCIV1(b), true
}

type chunkKey struct {
	blob uint32
	ci   uint32
	blk  uint32
}

// chunkTable loads the bootstrap's chunk info table (lazily).
func (f *FS) chunkTable() (map[chunkKey]int, []ChunkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.chunkOnce {
		return f.chunkTbl, f.chunkInfos, f.chunkErr
	}
	f.chunkOnce = true
	n := f.ext.ChunkTableSize / ChunkInfoSize
	if n == 0 {
		return nil, nil, nil
	}
	b, err := f.readAt(int64(f.ext.ChunkTableOffset), int64(n*ChunkInfoSize), CheckBootstrap, "chunk table")
	if err != nil {
		f.chunkErr = err
		return nil, nil, err
	}
	f.chunkInfos = make([]ChunkInfo, n)
	f.chunkTbl = make(map[chunkKey]int, n)
	for i := range f.chunkInfos {
		c := &f.chunkInfos[i]
		_ = c.UnmarshalBinary(b[i*ChunkInfoSize:])
		k := chunkKey{c.BlobIndex, c.Index, uint32(c.UncompressedOffset / BlockSize)}
		if _, dup := f.chunkTbl[k]; !dup {
			f.chunkTbl[k] = i
		}
	}
	return f.chunkTbl, f.chunkInfos, nil
}

// ChunkRef is one chunk of a regular file, as the bootstrap and blob describe it.
type ChunkRef struct {
	// Position in the file.
	FileOffset uint64
	Length     uint32 // bytes of the file in this chunk
	// From the chunk index.
	BlobIndex int    // −1 for a hole
	CIIndex   uint32 // index in the blob's ci array
	BlkAddr   uint32 // raw-device block
	// Location in the blob (ci array, else chunk table).
	CompressedOffset   uint64
	CompressedSize     uint32
	UncompressedOffset uint64
	UncompressedSize   uint32
	Compressed         bool
	// Digest of the uncompressed chunk (chunk table, else blob.digest); HasDigest false if unknown.
	Digest    [32]byte
	HasDigest bool
	CRC32     uint32
	HasCRC32  bool
	// Source names where the location came from: "ci", "chunk-table", "hole".
	Source string
}

var errNoBlob = errors.New("blob not available")

// readIndex reads chunk index k of a chunk-based inode.
func (f *FS) readIndex(in *inode, k uint64) (ChunkIndex, error) {
	var ci ChunkIndex
	b, err := f.readAt(in.indexOff+int64(k)*ChunkIndexSize, ChunkIndexSize, CheckInodeRange, "chunk index")
	if err != nil {
		return ci, err
	}
	_ = ci.UnmarshalBinary(b)
	return ci, nil
}

// resolveChunk maps chunk index k of in to a ChunkRef. Metadata problems are
// FormatErrors; a blob that cannot be read is errNoBlob-wrapped only when no
// location is known at all.
func (f *FS) resolveChunk(in *inode, k uint64) (ChunkRef, *blobState, error) {
	cs := uint64(f.ext.ChunkSize)
	ref := ChunkRef{FileOffset: k * cs, Length: uint32(min(cs, in.ino.Size-k*cs))}
	idx, err := f.readIndex(in, k)
	if err != nil {
		return ref, nil, err
	}
	ref.CIIndex, ref.BlkAddr = idx.CIIndex(), idx.BlkAddr
	if idx.BlkAddr == NullAddr {
		ref.BlobIndex, ref.Source = -1, "hole"
		return ref, nil, nil
	}
	dev := idx.DeviceID()
	if dev == 0 || int(dev) > len(f.blobs) {
		return ref, nil, formatErr(CheckChunkIndex, in.indexOff+int64(k)*ChunkIndexSize, "chunk %d names device %d (blobs: %d)", k, dev, len(f.blobs))
	}
	ref.BlobIndex = int(dev) - 1
	e := &f.blobs[ref.BlobIndex]
	if ref.CIIndex >= e.ChunkCount {
		return ref, nil, formatErr(CheckChunkIndex, in.indexOff+int64(k)*ChunkIndexSize, "chunk %d: ci index %d beyond the blob's %d chunks", k, ref.CIIndex, e.ChunkCount)
	}
	tbl, infos, err := f.chunkTable()
	if err != nil {
		return ref, nil, err
	}
	var ct *ChunkInfo
	if i, ok := tbl[chunkKey{uint32(ref.BlobIndex), ref.CIIndex, ref.BlkAddr}]; ok {
		ct = &infos[i]
		ref.Digest, ref.HasDigest = ct.Digest, true
		if ct.Flags&ChunkHasCRC32 != 0 {
			ref.CRC32, ref.HasCRC32 = ct.CRC32, true
		}
	}
	s := f.blob(ref.BlobIndex)
	if s.err == nil && e.CIUncompressedSize > 0 {
		if err := f.loadCI(s); err == nil {
			c, ok := s.ciEntry(ref.CIIndex)
			if !ok {
				return ref, s, formatErr(CheckChunkIndex, -1, "chunk %d: ci index %d not in the ci array", k, ref.CIIndex)
			}
			ref.CompressedOffset, ref.CompressedSize = c.CompressedOffset, c.CompressedSize
			ref.UncompressedOffset, ref.UncompressedSize = c.UncompressedOffset, c.UncompressedSize
			ref.Compressed, ref.Source = c.Compressed, "ci"
			if s.ciUnit == ChunkInfoV2Size {
				if c.Flags&(CIFlagZran|CIFlagBatch|CIFlagEncrypted) != 0 {
					return ref, s, &FormatError{Check: CheckChunkInfo, Offset: -1, Msg: fmt.Sprintf("chunk %d: zran/batch/encrypted chunk", k), Err: ErrUnsupported}
				}
				if c.Flags&CIFlagHasCRC32 != 0 && !ref.HasCRC32 {
					ref.CRC32, ref.HasCRC32 = uint32(c.Data), true
				}
			}
		} else if ct == nil {
			return ref, s, err
		}
	}
	if ref.Source == "" {
		if ct == nil {
			if s.err != nil {
				return ref, s, fmt.Errorf("%w: chunk %d of blob %s: %v (and no chunk table entry)", errNoBlob, k, e.ID(), s.err)
			}
			return ref, s, formatErr(CheckChunkIndex, -1, "chunk %d (blob %d, ci %d, block %d) has no ci entry and no chunk table entry", k, ref.BlobIndex, ref.CIIndex, ref.BlkAddr)
		}
		ref.CompressedOffset, ref.CompressedSize = ct.CompressedOffset, ct.CompressedSize
		ref.UncompressedOffset, ref.UncompressedSize = ct.UncompressedOffset, ct.UncompressedSize
		ref.Compressed, ref.Source = ct.Flags&ChunkCompressed != 0, "chunk-table"
		if ct.Flags&(ChunkEncrypted|ChunkBatch) != 0 {
			return ref, s, &FormatError{Check: CheckChunkInfo, Offset: -1, Msg: fmt.Sprintf("chunk %d: batch/encrypted chunk", k), Err: ErrUnsupported}
		}
	}
	if !ref.HasDigest && s.err == nil && s.digestOff >= 0 {
		var d [32]byte
		if _, err := s.r.ReadAt(d[:], s.digestOff+int64(ref.CIIndex)*32); err == nil {
			ref.Digest, ref.HasDigest = d, true
		}
	}
	return ref, s, nil
}

// readChunkData reads and decompresses a chunk (exactly UncompressedSize bytes).
func (f *FS) readChunkData(ref *ChunkRef, s *blobState) ([]byte, error) {
	if ref.Source == "hole" {
		return make([]byte, ref.Length), nil
	}
	if s == nil || s.err != nil {
		if s != nil {
			return nil, fmt.Errorf("%w: %v", errNoBlob, s.err)
		}
		return nil, errNoBlob
	}
	e := s.entry
	if ref.UncompressedSize == 0 || ref.UncompressedSize > MaxChunkSize || ref.CompressedSize == 0 || ref.CompressedSize > MaxChunkSize {
		return nil, formatErr(CheckChunkInfo, -1, "chunk (blob %d, ci %d): sizes %d/%d out of range", ref.BlobIndex, ref.CIIndex, ref.CompressedSize, ref.UncompressedSize)
	}
	if !ref.Compressed && ref.CompressedSize != ref.UncompressedSize {
		return nil, formatErr(CheckChunkInfo, -1, "chunk (blob %d, ci %d): stored raw but sizes %d ≠ %d", ref.BlobIndex, ref.CIIndex, ref.CompressedSize, ref.UncompressedSize)
	}
	limit := uint64(s.size)
	if s.layer != nil {
		if d, ok := s.layer.Section(SectionBlob); ok {
			limit = uint64(d.Offset + d.Size)
		}
	}
	if ref.CompressedOffset > limit || uint64(ref.CompressedSize) > limit-ref.CompressedOffset {
		return nil, formatErr(CheckChunkInfo, int64(ref.CompressedOffset), "chunk (blob %d, ci %d): [%d, +%d) beyond the chunk data (%d bytes)", ref.BlobIndex, ref.CIIndex, ref.CompressedOffset, ref.CompressedSize, limit)
	}
	src := make([]byte, ref.CompressedSize)
	if _, err := s.r.ReadAt(src, int64(ref.CompressedOffset)); err != nil {
		return nil, fmt.Errorf("nydus: reading chunk of blob %s: %w", e.ID(), err)
	}
	algo := CompressNone
	if ref.Compressed {
		algo = Compressor(e.CompressionAlgo)
	}
	dst, err := decompressChunk(algo, src, int(ref.UncompressedSize))
	if err != nil {
		return nil, &FormatError{Check: CheckChunkDigest, Offset: int64(ref.CompressedOffset), Msg: fmt.Sprintf("chunk (blob %d, ci %d) does not decompress with %s to %d bytes", ref.BlobIndex, ref.CIIndex, algo, ref.UncompressedSize), Err: err}
	}
	return dst, nil
}

// fileChunk returns the file bytes of chunk k (exactly ref.Length bytes).
func (f *FS) fileChunk(in *inode, k uint64) ([]byte, error) {
	ref, s, err := f.resolveChunk(in, k)
	if err != nil {
		return nil, err
	}
	if ref.Source != "hole" && ref.UncompressedSize != ref.Length {
		return nil, formatErr(CheckChunkInfo, -1, "chunk %d: %d bytes, the file needs %d here", k, ref.UncompressedSize, ref.Length)
	}
	data, err := f.readChunkData(&ref, s)
	if err != nil {
		return nil, err
	}
	if uint32(len(data)) != ref.Length {
		return nil, formatErr(CheckChunkInfo, -1, "chunk %d: %d bytes, the file needs %d here", k, len(data), ref.Length)
	}
	return data, nil
}

// WriteRawDevice writes blob blobIndex as an EROFS extra device ("raw device",
// nydusd's <blob id>.blob.data): every chunk decompressed at its uncompressed
// offset. With it, EROFS tools (fsck.erofs --device, the kernel) read file data
// of the bootstrap. It returns the device size (device blocks × 4096); w is not
// extended to that size (the caller may truncate a file to it).
func (f *FS) WriteRawDevice(blobIndex int, w io.WriterAt) (int64, error) {
	if blobIndex < 0 || blobIndex >= len(f.blobs) {
		return 0, fmt.Errorf("nydus: no blob %d", blobIndex)
	}
	s := f.blob(blobIndex)
	if s.err != nil {
		return 0, fmt.Errorf("%w: %v", errNoBlob, s.err)
	}
	e := s.entry
	size := int64(f.devices[blobIndex].Blocks) * BlockSize
	var refs []ChunkRef
	if e.CIUncompressedSize > 0 {
		if err := f.loadCI(s); err != nil {
			return 0, err
		}
		for c := uint32(0); c < e.ChunkCount; c++ {
			ce, _ := s.ciEntry(c)
			refs = append(refs, ChunkRef{BlobIndex: blobIndex, CIIndex: c, CompressedOffset: ce.CompressedOffset, CompressedSize: ce.CompressedSize,
				UncompressedOffset: ce.UncompressedOffset, UncompressedSize: ce.UncompressedSize, Compressed: ce.Compressed, Source: "ci"})
		}
	} else {
		_, infos, err := f.chunkTable()
		if err != nil {
			return 0, err
		}
		for _, c := range infos {
			if int(c.BlobIndex) == blobIndex {
				refs = append(refs, ChunkRef{BlobIndex: blobIndex, CIIndex: c.Index, CompressedOffset: c.CompressedOffset, CompressedSize: c.CompressedSize,
					UncompressedOffset: c.UncompressedOffset, UncompressedSize: c.UncompressedSize, Compressed: c.Flags&ChunkCompressed != 0, Source: "chunk-table"})
			}
		}
	}
	for i := range refs {
		data, err := f.readChunkData(&refs[i], s)
		if err != nil {
			return 0, err
		}
		if end := int64(refs[i].UncompressedOffset) + int64(len(data)); end > size {
			size = (end + BlockSize - 1) &^ (BlockSize - 1)
		}
		if _, err := w.WriteAt(data, int64(refs[i].UncompressedOffset)); err != nil {
			return 0, err
		}
	}
	return size, nil
}

package nydus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fmtconv/fmtconv/check"
)

// BlobResolver maps a blob id (64 hex characters, as stored in the bootstrap)
// to the blob's bytes: a per-layer Nydus blob as pulled from the registry
// (sha256:<id>), whose chunk data starts at offset 0. It returns an error
// wrapping fs.ErrNotExist if the blob is unknown.
type BlobResolver func(blobID string) (io.ReaderAt, int64, error)

// Options tune limits of the reader. The zero value means defaults.
type Options struct {
	// MaxBootstrapSize bounds a bootstrap decompressed into memory from a layer blob (default 1 GiB).
	MaxBootstrapSize int64
	// MaxCISize bounds a compressed ci array decompressed into memory (default 256 MiB,
	// the format's own maximum of 16 bytes × 2^24 chunks).
	MaxCISize int64
}

func (o *Options) maxBootstrap() int64 {
	if o == nil || o.MaxBootstrapSize <= 0 {
		return 1 << 30
	}
	return o.MaxBootstrapSize
}

func (o *Options) maxCI() int64 {
	if o == nil || o.MaxCISize <= 0 {
		return 256 << 20
	}
	return o.MaxCISize
}

// FS is a parsed RAFS v6 bootstrap: the whole tree is read and checked at Open,
// file contents are read from the blobs on demand. An FS is safe for concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	opts Options

	sb       SuperBlock
	ext      SuperBlockExt
	devices  []DeviceSlot
	blobs    []BlobEntry
	prefetch []uint32

	resolver BlobResolver
	// self is the blob the bootstrap was inlined in (OpenLayer), if any.
	self     *LayerBlob
	selfBlob int

	root   *node
	inodes map[uint64]*inode // by nid
	nnodes int
	notes  []check.Finding
	budget int64 // metadata bytes accounted to distinct inodes (≤ size in a sane image)

	mu         sync.Mutex
	blobStates []*blobState
	chunkTbl   map[chunkKey]int
	chunkInfos []ChunkInfo
	chunkErr   error
	chunkOnce  bool
}

// inode is one distinct on-disk inode (one nid), shared by all its names.
type inode struct {
	nid    uint64
	off    int64
	ino    Inode
	ftype  FileType
	xattrs []Xattr
	target string // symlink
	refs   int    // names referring to this nid

	// data placement
	chunkBased bool
	indexOff   int64  // chunk index array
	nchunks    uint64 // entries in the chunk index array (fs chunk size)
	chunkBits  uint   // the inode's own chunk bits (EROFS view)
	tailOff    int64  // inline tail, -1 if none
	tailLen    int64
	blocksOff  int64 // first full data block, -1 if none
	blocksLen  int64
}

// node is one name in the tree.
type node struct {
	name     string
	parent   *node
	in       *inode
	children []*node // directories, sorted by name
	link     *node   // first name of the same inode in walk order (hard link), nil if this is it
}

func (n *node) path() string {
	if n.parent == nil {
		return "."
	}
	var parts []string
	for p := n; p.parent != nil; p = p.parent {
		parts = append(parts, p.name)
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/")
}

// Open parses a RAFS v6 bootstrap of size bytes. blobs resolves blob ids to blob
// data for reading file contents; it may be nil (metadata only). A RAFS v5
// bootstrap gives an error matching ErrRAFSV5; malformed input gives a
// *FormatError (never a panic).
func Open(bootstrap io.ReaderAt, size int64, blobs BlobResolver) (*FS, error) {
	return OpenWithOptions(bootstrap, size, blobs, nil)
}

// OpenWithOptions is Open with limits.
func OpenWithOptions(bootstrap io.ReaderAt, size int64, blobs BlobResolver, opts *Options) (*FS, error) {
	f := &FS{r: bootstrap, size: size, resolver: blobs, selfBlob: -1}
	if opts != nil {
		f.opts = *opts
	}
	if err := f.parse(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FS) note(id string, sev check.Severity, path string, format string, a ...any) {
	fd := check.Finding{Check: id, Severity: sev, Message: fmt.Sprintf(format, a...), Path: path}
	f.notes = append(f.notes, fd)
}

// readAt reads n bytes at off, checking the range against the bootstrap size.
func (f *FS) readAt(off int64, n int64, id, what string) ([]byte, error) {
	if off < 0 || n < 0 || off > f.size || n > f.size-off {
		return nil, formatErr(id, off, "%s [%d, +%d) outside the bootstrap (%d bytes)", what, off, n, f.size)
	}
	b := make([]byte, n)
	if _, err := f.r.ReadAt(b, off); err != nil && !(err == io.EOF && n == 0) {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, formatErr(id, off, "%s: short read", what)
		}
		return nil, fmt.Errorf("nydus: reading bootstrap: %w", err)
	}
	return b, nil
}

func (f *FS) parse() error {
	if f.size < 8 {
		return formatErr(CheckBootstrap, -1, "bootstrap of %d bytes is too small", f.size)
	}
	head, err := f.readAt(0, min(f.size, BlockSize), CheckBootstrap, "superblock area")
	if err != nil {
		return err
	}
	if m := le.Uint32(head); m == RAFSV5Magic {
		return &VersionError{FSVersion: 5, Magic: m, Version: le.Uint32(head[4:])}
	}
	if len(head) < DeviceTableOffset {
		return formatErr(CheckBootstrap, -1, "bootstrap of %d bytes is too small for a RAFS v6 superblock", f.size)
	}
	if err := f.sb.UnmarshalBinary(head[SuperBlockOffset:]); err != nil {
		return err
	}
	if err := f.ext.UnmarshalBinary(head[SuperBlockExtOffset:]); err != nil {
		return err
	}
	if err := f.checkSuperBlock(); err != nil {
		return err
	}
	if err := f.readTables(); err != nil {
		return err
	}
	return f.buildTree()
}

func (f *FS) checkSuperBlock() error {
	sb, ext := &f.sb, &f.ext
	if sb.Magic != EROFSMagic {
		return formatErr(CheckBootstrap, SuperBlockOffset, "no EROFS magic (%#x): not a RAFS v6 bootstrap", sb.Magic)
	}
	if sb.FeatureCompat&FeatureCompatRAFSV6 == 0 {
		return formatErr(CheckBootstrap, SuperBlockOffset+8, "EROFS image without the RAFS v6 compat feature (%#x): a plain EROFS image, not a Nydus bootstrap", sb.FeatureCompat)
	}
	if sb.BlkSzBits == 9 || ext.Flags&FlagTarfsMode != 0 {
		return &FormatError{Check: CheckBootstrap, Offset: SuperBlockOffset + 12, Msg: "tarfs-mode bootstrap (512-byte blocks, the blob is a raw tar)", Err: ErrUnsupported}
	}
	if sb.BlkSzBits != BlockBits {
		return formatErr(CheckBootstrap, SuperBlockOffset+12, "block size bits %d (must be 12)", sb.BlkSzBits)
	}
	if sb.FeatureIncompat&^FeatureIncompatRAFSV6 != 0 {
		return formatErr(CheckBootstrap, SuperBlockOffset+80, "incompatible EROFS features %#x (RAFS v6 has exactly %#x)", sb.FeatureIncompat, FeatureIncompatRAFSV6)
	}
	if sb.FeatureIncompat != FeatureIncompatRAFSV6 {
		f.note(CheckBootstrap, check.Error, "", "s_feature_incompat is %#x, nydusd requires exactly %#x", sb.FeatureIncompat, FeatureIncompatRAFSV6)
	}
	if sb.XattrBlkAddr != 0 {
		return &FormatError{Check: CheckBootstrap, Offset: SuperBlockOffset + 44, Msg: fmt.Sprintf("shared xattr area at block %d", sb.XattrBlkAddr), Err: ErrUnsupported}
	}
	if sb.DevtSlotOff != DeviceSlotOffset {
		return formatErr(CheckBootstrap, SuperBlockOffset+88, "device table slot offset %d (must be %d)", sb.DevtSlotOff, DeviceSlotOffset)
	}
	if sb.Checksum != 0 {
		f.note(CheckBootstrap, check.Error, "", "superblock checksum %#x (must be 0 in RAFS v6)", sb.Checksum)
	}
	if sb.ExtSlots != 0 {
		f.note(CheckBootstrap, check.Error, "", "s_extslots %d (must be 0)", sb.ExtSlots)
	}
	if sb.Inos == 0 {
		f.note(CheckBootstrap, check.Error, "", "s_inos is 0")
	}
	if sb.U != 0 {
		f.note(CheckBootstrap, check.Error, "", "s_u is %d (must be 0)", sb.U)
	}
	if f.size%BlockSize != 0 {
		f.note(CheckBootstrap, check.Error, "", "bootstrap size %d is not a multiple of 4096 (nydusd refuses it)", f.size)
	}
	if int64(sb.MetaBlkAddr)*BlockSize > f.size {
		return formatErr(CheckBootstrap, SuperBlockOffset+40, "meta block address %d beyond the bootstrap", sb.MetaBlkAddr)
	}
	nc := bits.OnesCount64(uint64(ext.Flags & flagCompressionMask))
	nh := bits.OnesCount64(uint64(ext.Flags & flagHashMask))
	if nc != 1 {
		f.note(CheckBootstrap, check.Error, "", "superblock flags %#x name %d compressors (must be exactly one)", uint64(ext.Flags), nc)
	}
	if nh != 1 {
		f.note(CheckBootstrap, check.Error, "", "superblock flags %#x name %d digest algorithms (must be exactly one)", uint64(ext.Flags), nh)
	}
	cs := ext.ChunkSize
	if cs < MinChunkSize || cs > MaxChunkSize || cs&(cs-1) != 0 {
		return formatErr(CheckBootstrap, SuperBlockExtOffset+20, "chunk size %#x (must be a power of two in [4 KiB, 16 MiB])", cs)
	}
	return nil
}

// checkTable validates a table's placement; fatal if outside the file.
func (f *FS) checkTable(name string, off, size, unit uint64, devEnd uint64) error {
	if off > uint64(f.size) || size > uint64(f.size)-off {
		return formatErr(CheckBootstrap, -1, "%s [%d, +%d) outside the bootstrap (%d bytes)", name, off, size, f.size)
	}
	if size%unit != 0 {
		return formatErr(CheckBootstrap, -1, "%s size %d is not a multiple of %d", name, size, unit)
	}
	if off < BlockSize || off < devEnd {
		return formatErr(CheckBootstrap, -1, "%s at %d overlaps the superblock or device table", name, off)
	}
	return nil
}

func (f *FS) readTables() error {
	sb, ext := &f.sb, &f.ext
	ndev := int(sb.ExtraDevices)
	devEnd := uint64(DeviceTableOffset + DeviceSlotSize*ndev)
	if ndev > MaxBlobs {
		return formatErr(CheckBlobTable, SuperBlockOffset+86, "%d extra devices (at most %d blobs)", ndev, MaxBlobs)
	}
	// blob table
	if err := f.checkTable("blob table", ext.BlobTableOffset, uint64(ext.BlobTableSize), BlobEntrySize, devEnd); err != nil {
		return err
	}
	if ext.BlobTableOffset%BlockSize != 0 {
		f.note(CheckBootstrap, check.Error, "", "blob table offset %d is not 4 KiB aligned", ext.BlobTableOffset)
	}
	nblobs := int(ext.BlobTableSize / BlobEntrySize)
	if nblobs > MaxBlobs {
		return formatErr(CheckBlobTable, -1, "%d blobs (at most %d)", nblobs, MaxBlobs)
	}
	if nblobs != ndev {
		return formatErr(CheckBlobTable, -1, "blob table has %d entries but the device table %d", nblobs, ndev)
	}
	devs, err := f.readAt(DeviceTableOffset, int64(DeviceSlotSize*ndev), CheckBlobTable, "device table")
	if err != nil {
		return err
	}
	tbl, err := f.readAt(int64(ext.BlobTableOffset), int64(ext.BlobTableSize), CheckBlobTable, "blob table")
	if err != nil {
		return err
	}
	f.devices = make([]DeviceSlot, ndev)
	f.blobs = make([]BlobEntry, nblobs)
	var blocks uint64
	for i := range f.blobs {
		_ = f.devices[i].UnmarshalBinary(devs[i*DeviceSlotSize:])
		_ = f.blobs[i].UnmarshalBinary(tbl[i*BlobEntrySize:])
		blocks += uint64(f.devices[i].Blocks)
	}
	if sb.Blocks != 0 && uint64(sb.Blocks) != blocks && !(ndev == 0 && sb.Blocks == 4096) {
		f.note(CheckBootstrap, check.Warning, "", "s_blocks %d differs from the sum of device blocks %d", sb.Blocks, blocks)
	}
	f.checkBlobs()

	// chunk table
	if ext.ChunkTableSize > 0 {
		if err := f.checkTable("chunk table", ext.ChunkTableOffset, ext.ChunkTableSize, ChunkInfoSize, devEnd); err != nil {
			return err
		}
		if ext.ChunkTableOffset%BlockSize != 0 {
			f.note(CheckBootstrap, check.Error, "", "chunk table offset %d is not 4 KiB aligned", ext.ChunkTableOffset)
		}
		if overlap(ext.ChunkTableOffset, ext.ChunkTableSize, ext.BlobTableOffset, uint64(ext.BlobTableSize)) {
			f.note(CheckBootstrap, check.Error, "", "chunk table overlaps the blob table")
		}
	}
	// prefetch table (optional; a bad one is not fatal)
	if ext.PrefetchTableSize > 0 && ext.PrefetchTableOffset != 0 {
		po, ps := ext.PrefetchTableOffset, uint64(ext.PrefetchTableSize)
		if err := f.checkTable("prefetch table", po, ps, PrefetchEntrySize, devEnd); err != nil {
			var fe *FormatError
			errors.As(err, &fe)
			f.note(CheckPrefetch, check.Error, "", "%s", fe.Msg)
		} else {
			if overlap(po, ps, ext.BlobTableOffset, uint64(ext.BlobTableSize)) || overlap(po, ps, ext.ChunkTableOffset, ext.ChunkTableSize) {
				f.note(CheckPrefetch, check.Error, "", "prefetch table overlaps the blob or chunk table")
			}
			b, err := f.readAt(int64(po), int64(ps), CheckPrefetch, "prefetch table")
			if err != nil {
				return err
			}
			f.prefetch = make([]uint32, len(b)/4)
			for i := range f.prefetch {
				f.prefetch[i] = le.Uint32(b[4*i:])
			}
		}
	}
	return nil
}

func overlap(o1, s1, o2, s2 uint64) bool {
	if s1 == 0 || s2 == 0 {
		return false
	}
	return o1 < o2+s2 && o2 < o1+s1
}

// ValidBlobID reports whether id is 64 lowercase hex characters.
func ValidBlobID(id string) bool {
	if len(id) != BlobIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkBlobs validates blob and device table entries (non-fatal: reported by Verify).
func (f *FS) checkBlobs() {
	seen := map[string]int{}
	for i := range f.blobs {
		b, d := &f.blobs[i], &f.devices[i]
		id := b.ID()
		where := fmt.Sprintf("blob %d", i)
		switch {
		case !utf8.ValidString(id) || len(id) != BlobIDLen:
			f.note(CheckBlobID, check.Error, "", "%s: blob id %q is not 64 characters", where, id)
		case !ValidBlobID(id) && id != PlaceholderBlobID:
			f.note(CheckBlobID, check.Error, "", "%s: blob id %q is not lowercase sha256 hex", where, id)
		}
		if j, ok := seen[id]; ok {
			f.note(CheckBlobID, check.Error, "", "%s: blob id %q duplicates blob %d", where, id, j)
		}
		seen[id] = i
		if d.BlobID != b.BlobID {
			f.note(CheckBlobID, check.Error, "", "%s: device table id %q differs from blob table id %q", where, idString(d.BlobID), id)
		}
		if b.BlobIndex != uint32(i) {
			f.note(CheckBlobTable, check.Error, "", "%s: blob_index %d (must be its position)", where, b.BlobIndex)
		}
		if b.ChunkSize != f.ext.ChunkSize {
			f.note(CheckBlobTable, check.Error, "", "%s: chunk size %#x differs from the superblock's %#x", where, b.ChunkSize, f.ext.ChunkSize)
		}
		if b.ChunkCount > MaxChunksPerBlob {
			f.note(CheckBlobTable, check.Error, "", "%s: chunk count %d over 2^24", where, b.ChunkCount)
		}
		if b.CompressionAlgo > uint32(CompressZstd) || b.CICompressor > uint32(CompressZstd) {
			f.note(CheckBlobTable, check.Error, "", "%s: unknown compressor (chunks %d, ci %d)", where, b.CompressionAlgo, b.CICompressor)
		}
		if b.DigestAlgo > uint32(DigestSHA256) {
			f.note(CheckBlobTable, check.Error, "", "%s: unknown digest algorithm %d", where, b.DigestAlgo)
		}
		if c := f.ext.Flags.Compressor(); c != CompressUnknown && uint32(c) != b.CompressionAlgo {
			f.note(CheckBlobTable, check.Warning, "", "%s: compressor %s differs from the superblock's %s", where, Compressor(b.CompressionAlgo), c)
		}
		if dg := f.ext.Flags.Digester(); dg != DigestUnknown && uint32(dg) != b.DigestAlgo {
			f.note(CheckBlobTable, check.Error, "", "%s: digester %s differs from the superblock's %s", where, Digester(b.DigestAlgo), dg)
		}
		feat := BlobFeatures(b.Features)
		if feat&^blobKnownFeatures != 0 {
			f.note(CheckBlobTable, check.Error, "", "%s: unknown feature bits %#x", where, uint32(feat&^blobKnownFeatures))
		}
		if feat&BlobAligned == 0 {
			f.note(CheckBlobTable, check.Error, "", "%s: ALIGNED feature not set (nydusd requires it)", where)
		}
		if b.CICompressedSize > b.CIUncompressedSize {
			f.note(CheckBlobTable, check.Error, "", "%s: ci compressed size %d > uncompressed %d", where, b.CICompressedSize, b.CIUncompressedSize)
		}
		unit := uint64(ChunkInfoV1Size)
		if feat&BlobChunkInfoV2 != 0 {
			unit = ChunkInfoV2Size
		}
		extra := feat&(BlobZran|BlobBatch|BlobEncrypted) != 0
		switch {
		case extra && feat&BlobChunkInfoV2 == 0:
			f.note(CheckBlobTable, check.Error, "", "%s: zran/batch/encrypted without CHUNK_INFO_V2", where)
		case extra && b.CIUncompressedSize < unit*uint64(b.ChunkCount):
			f.note(CheckBlobTable, check.Error, "", "%s: ci size %d too small for %d chunks", where, b.CIUncompressedSize, b.ChunkCount)
		case !extra && feat&BlobChunkDictGenerated == 0 && b.CIUncompressedSize != unit*uint64(b.ChunkCount):
			f.note(CheckBlobTable, check.Error, "", "%s: ci size %d ≠ %d × %d chunks", where, b.CIUncompressedSize, unit, b.ChunkCount)
		}
		if d.Blocks == 0 {
			f.note(CheckBlobTable, check.Error, "", "%s: device slot has 0 blocks (nydusd refuses it)", where)
		} else if uint64(d.Blocks) != (b.UncompressedSize+BlockSize-1)/BlockSize {
			f.note(CheckBlobTable, check.Warning, "", "%s: device blocks %d ≠ uncompressed size %d / 4096", where, d.Blocks, b.UncompressedSize)
		}
		if b.CipherAlgo != 0 || feat&BlobEncrypted != 0 {
			f.note(CheckBlobTable, check.Warning, "", "%s: encrypted blob: chunk data cannot be read by this package", where)
		}
	}
}

// ---------------------------------------------------------------------------
// Inodes and directories
// ---------------------------------------------------------------------------

func (f *FS) inodeOffset(nid uint64) (int64, error) {
	meta := uint64(f.sb.MetaBlkAddr) * BlockSize
	if nid > uint64(f.size)/InodeSlotSize || meta+nid*InodeSlotSize > uint64(f.size)-InodeCompactSize {
		return 0, formatErr(CheckInodeRange, -1, "nid %d is outside the bootstrap", nid)
	}
	return int64(meta + nid*InodeSlotSize), nil
}

// account adds n bytes of distinct metadata; more than the bootstrap size means
// structures overlap (a hostile bootstrap trying to amplify work).
func (f *FS) account(n int64, nid uint64) error {
	f.budget += n
	if f.budget > f.size+BlockSize {
		return formatErr(CheckInodeRange, -1, "inode data of nid %d overlaps other inodes (metadata referenced exceeds the bootstrap size)", nid)
	}
	return nil
}

// loadInode reads and validates the inode at nid (cached).
func (f *FS) loadInode(nid uint64, path string) (*inode, error) {
	if in, ok := f.inodes[nid]; ok {
		return in, nil
	}
	off, err := f.inodeOffset(nid)
	if err != nil {
		return nil, withPath(err, path)
	}
	b, err := f.readAt(off, InodeCompactSize, CheckInodeRange, "inode")
	if err != nil {
		return nil, withPath(err, path)
	}
	in := &inode{nid: nid, off: off, tailOff: -1, blocksOff: -1}
	if le.Uint16(b)&FormatExtended != 0 {
		if b, err = f.readAt(off, InodeExtendedSize, CheckInodeRange, "extended inode"); err != nil {
			return nil, withPath(err, path)
		}
	}
	_ = in.ino.UnmarshalBinary(b)
	if err := f.checkInode(in, path); err != nil {
		return nil, withPath(err, path)
	}
	f.inodes[nid] = in
	return in, nil
}

func withPath(err error, path string) error {
	var fe *FormatError
	if errors.As(err, &fe) && fe.Path == "" {
		fe.Path = path
	}
	return err
}

func (f *FS) checkInode(in *inode, path string) error {
	ino := &in.ino
	if ino.Format&^formatKnownBits != 0 {
		return formatErr(CheckInode, in.off, "nid %d: unknown i_format bits %#x", in.nid, ino.Format)
	}
	in.ftype = FileTypeOfMode(uint32(ino.Mode))
	if in.ftype == FileTypeUnknown {
		return formatErr(CheckInode, in.off, "nid %d: mode %#o has no valid file type", in.nid, ino.Mode)
	}
	if ino.Nlink == 0 {
		f.note(CheckInode, check.Error, path, "nid %d: nlink is 0", in.nid)
	}
	isize, xsize := int64(ino.OnDiskSize()), int64(ino.XattrSize())
	if err := f.account(isize+xsize, in.nid); err != nil {
		return err
	}
	// xattrs
	if xsize > 0 {
		b, err := f.readAt(in.off+isize, xsize, CheckInodeRange, "inline xattrs")
		if err != nil {
			return err
		}
		if in.xattrs, err = parseXattrs(b); err != nil {
			return &FormatError{Check: CheckXattr, Offset: in.off + isize, Msg: fmt.Sprintf("nid %d", in.nid), Err: err}
		}
	}
	afterX := in.off + isize + xsize
	layout := ino.Layout()
	switch in.ftype {
	case FileTypeReg, FileTypeDir, FileTypeSymlink:
	default: // devices, fifos, sockets: U is rdev, no data
		if ino.Size != 0 {
			f.note(CheckInode, check.Warning, path, "nid %d: %s with size %d", in.nid, in.ftype, ino.Size)
		}
		return nil
	}
	if in.ftype == FileTypeReg && layout == LayoutChunkBased {
		if ino.U&ChunkFormatIndexes == 0 {
			return &FormatError{Check: CheckInode, Offset: in.off, Msg: fmt.Sprintf("nid %d: chunk-based inode without chunk indexes (block map format %#x)", in.nid, ino.U), Err: ErrUnsupported}
		}
		in.chunkBased = true
		in.chunkBits = uint(ino.U&ChunkFormatBitsMask) + BlockBits
		if ino.U&^uint32(ChunkFormatIndexes|ChunkFormatBitsMask) != 0 {
			f.note(CheckInode, check.Error, path, "nid %d: chunk format %#x has unknown bits", in.nid, ino.U)
		}
		cs := uint64(f.ext.ChunkSize)
		in.nchunks = ino.Size / cs
		if ino.Size%cs != 0 {
			in.nchunks++
		}
		in.indexOff = (afterX + ChunkIndexSize - 1) &^ (ChunkIndexSize - 1)
		if in.nchunks > uint64(f.size)/ChunkIndexSize || in.indexOff > f.size || int64(in.nchunks)*ChunkIndexSize > f.size-in.indexOff {
			return formatErr(CheckInodeRange, in.off, "nid %d: %d chunk indexes of a %d-byte file run past the bootstrap", in.nid, in.nchunks, ino.Size)
		}
		if err := f.account(int64(in.nchunks)*ChunkIndexSize, in.nid); err != nil {
			return err
		}
		switch {
		case in.chunkBits == uint(bits.TrailingZeros32(f.ext.ChunkSize)):
		case in.chunkBits > uint(bits.TrailingZeros32(f.ext.ChunkSize)) && in.chunkBits < 64 && ino.Size <= 1<<in.chunkBits:
			// nydus-image's page-cache trick: one EROFS chunk covering the whole,
			// contiguous file; checked against the block addresses by Verify.
		default:
			f.note(CheckInode, check.Error, path, "nid %d: inode chunk size 2^%d differs from the filesystem chunk size %d", in.nid, in.chunkBits, f.ext.ChunkSize)
		}
		return nil
	}
	switch layout {
	case LayoutFlatPlain, LayoutFlatInline:
	case LayoutChunkBased:
		return formatErr(CheckInode, in.off, "nid %d: %s with chunk-based layout", in.nid, in.ftype)
	default:
		return &FormatError{Check: CheckInode, Offset: in.off, Msg: fmt.Sprintf("nid %d: data layout %d (EROFS compression)", in.nid, layout), Err: ErrUnsupported}
	}
	size := ino.Size
	if in.ftype == FileTypeSymlink && (size == 0 || size > MaxSymlinkLen) {
		return formatErr(CheckInode, in.off, "nid %d: symlink target length %d (must be 1..%d)", in.nid, size, MaxSymlinkLen)
	}
	if size > uint64(f.size) {
		return formatErr(CheckInodeRange, in.off, "nid %d: %s size %d larger than the bootstrap", in.nid, in.ftype, size)
	}
	nblocks := (int64(size) + BlockSize - 1) / BlockSize
	full := nblocks
	if layout == LayoutFlatInline && nblocks > 0 {
		full = nblocks - 1
		in.tailOff = afterX
		in.tailLen = int64(size) - full*BlockSize
		if in.tailOff > f.size || in.tailLen > f.size-in.tailOff {
			return formatErr(CheckInodeRange, in.off, "nid %d: inline data runs past the bootstrap", in.nid)
		}
		if in.off%BlockSize+isize+xsize+in.tailLen > BlockSize {
			f.note(CheckInode, check.Error, path, "nid %d: inode with inline data crosses a block boundary", in.nid)
		}
	}
	if full > 0 {
		in.blocksOff = int64(ino.U) * BlockSize
		in.blocksLen = int64(size)
		if layout == LayoutFlatInline {
			in.blocksLen = full * BlockSize
		}
		if in.blocksOff > f.size || in.blocksLen > f.size-in.blocksOff {
			return formatErr(CheckInodeRange, in.off, "nid %d: data blocks [%d, +%d) outside the bootstrap", in.nid, in.blocksOff, in.blocksLen)
		}
		if ino.U == 0 {
			f.note(CheckInodeRange, check.Error, path, "nid %d: data in block 0 (the superblock block)", in.nid)
		}
	}
	if err := f.account(int64(size), in.nid); err != nil {
		return err
	}
	if in.ftype == FileTypeSymlink {
		b, err := f.readFlat(in, 0, int64(size))
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return formatErr(CheckInode, in.off, "nid %d: symlink target contains NUL", in.nid)
		}
		in.target = string(b)
	}
	return nil
}

// readFlat reads [off, off+n) of a FLAT_PLAIN / FLAT_INLINE inode's data.
func (f *FS) readFlat(in *inode, off, n int64) ([]byte, error) {
	out := make([]byte, 0, n)
	for n > 0 {
		var src, avail int64
		if in.blocksOff >= 0 && off < in.blocksLen {
			src, avail = in.blocksOff+off, in.blocksLen-off
		} else {
			toff := off
			if in.blocksOff >= 0 {
				toff -= in.blocksLen
			}
			if in.tailOff < 0 || toff >= in.tailLen {
				return nil, formatErr(CheckInodeRange, in.off, "nid %d: read beyond data", in.nid)
			}
			src, avail = in.tailOff+toff, in.tailLen-toff
		}
		m := min(avail, n)
		b, err := f.readAt(src, m, CheckInodeRange, "inode data")
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		off += m
		n -= m
	}
	return out, nil
}

func parseXattrs(b []byte) ([]Xattr, error) {
	var h XattrHeader
	if err := h.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	if h.SharedCount != 0 {
		return nil, fmt.Errorf("%d shared xattrs (RAFS v6 has none)", h.SharedCount)
	}
	var xs []Xattr
	p := XattrHeaderSize
	for p < len(b) {
		if len(b)-p < XattrEntrySize {
			return nil, errors.New("truncated xattr entry")
		}
		nl, idx, vs := int(b[p]), b[p+1], int(le.Uint16(b[p+2:]))
		if nl+vs > len(b)-p-XattrEntrySize {
			return nil, fmt.Errorf("xattr entry of %d+%d bytes overruns the xattr area", nl, vs)
		}
		prefix, ok := XattrPrefixes[idx]
		if !ok {
			return nil, fmt.Errorf("unknown xattr name index %d", idx)
		}
		name := prefix + string(b[p+4:p+4+nl])
		if (idx == XattrIndexPOSIXACLAcc || idx == XattrIndexPOSIXACLDflt) != (nl == 0) {
			if nl != 0 {
				return nil, fmt.Errorf("xattr %q: ACL index with a name suffix", name)
			}
			return nil, fmt.Errorf("xattr with index %d and an empty name", idx)
		}
		if bytes.IndexByte(b[p+4:p+4+nl], 0) >= 0 {
			return nil, fmt.Errorf("xattr name %q contains NUL", name)
		}
		xs = append(xs, Xattr{Name: name, Value: bytes.Clone(b[p+4+nl : p+4+nl+vs])})
		p += (XattrEntrySize + nl + vs + 3) &^ 3
	}
	slices.SortStableFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(xs); i++ {
		if xs[i].Name == xs[i-1].Name {
			return nil, fmt.Errorf("duplicate xattr %q", xs[i].Name)
		}
	}
	return xs, nil
}

type rawDirent struct {
	name  string
	nid   uint64
	ftype FileType
}

// readDir decodes all dirents of a directory inode in on-disk order.
func (f *FS) readDir(in *inode, path string) ([]rawDirent, error) {
	size := int64(in.ino.Size)
	var out []rawDirent
	for boff := int64(0); boff < size; boff += BlockSize {
		n := min(BlockSize, size-boff)
		blk, err := f.readFlat(in, boff, n)
		if err != nil {
			return nil, err
		}
		if len(blk) < DirentSize {
			return nil, formatErr(CheckDirent, in.off, "directory nid %d: block %d of %d bytes holds no dirent", in.nid, boff/BlockSize, len(blk))
		}
		first := int(le.Uint16(blk[8:]))
		if first < DirentSize || first%DirentSize != 0 || first >= len(blk) {
			return nil, formatErr(CheckDirent, in.off, "directory nid %d: block %d: first name offset %d (bogus dirent count)", in.nid, boff/BlockSize, first)
		}
		cnt := first / DirentSize
		for k := 0; k < cnt; k++ {
			var d Dirent
			_ = d.UnmarshalBinary(blk[k*DirentSize:])
			end := len(blk)
			if k+1 < cnt {
				end = int(le.Uint16(blk[(k+1)*DirentSize+8:]))
			}
			start := int(d.NameOff)
			if start < first || start >= end || end > len(blk) {
				return nil, formatErr(CheckDirent, in.off, "directory nid %d: dirent %d: bogus name offset %d (next %d, block %d bytes)", in.nid, k, start, end, len(blk))
			}
			name := blk[start:end]
			if k+1 == cnt {
				if i := bytes.IndexByte(name, 0); i >= 0 {
					name = name[:i]
				}
			}
			if len(name) == 0 || len(name) > MaxNameLen {
				return nil, formatErr(CheckDirent, in.off, "directory nid %d: dirent %d: name length %d", in.nid, k, len(name))
			}
			if bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0 {
				return nil, formatErr(CheckDirent, in.off, "directory nid %d: dirent %d: invalid name %q", in.nid, k, name)
			}
			out = append(out, rawDirent{name: string(name), nid: d.Nid, ftype: d.FileType})
		}
	}
	if err := f.account(int64(len(out))*16, in.nid); err != nil {
		return nil, err
	}
	return out, nil
}

// buildTree reads the whole tree from the root, depth first, iteratively.
func (f *FS) buildTree() error {
	f.inodes = map[uint64]*inode{}
	rootIn, err := f.loadInode(uint64(f.sb.RootNid), ".")
	if err != nil {
		return err
	}
	if rootIn.ftype != FileTypeDir {
		return formatErr(CheckInode, rootIn.off, "root nid %d is a %s, not a directory", f.sb.RootNid, rootIn.ftype)
	}
	f.root = &node{in: rootIn}
	rootIn.refs = 1
	visited := map[uint64]bool{rootIn.nid: true}
	stack := []*node{f.root}
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		path := dir.path()
		ents, err := f.readDir(dir.in, path)
		if err != nil {
			return withPath(err, path)
		}
		var dot, dotdot bool
		parentNid := dir.in.nid
		if dir.parent != nil {
			parentNid = dir.parent.in.nid
		}
		prev := ""
		for i, e := range ents {
			if i > 0 {
				switch c := strings.Compare(e.name, prev); {
				case c == 0:
					return formatErr(CheckDirent, dir.in.off, "directory %q: duplicate name %q", path, e.name)
				case c < 0:
					f.note(CheckDirentOrder, check.Error, path, "directory entries not sorted: %q after %q", e.name, prev)
				}
			}
			prev = e.name
			switch e.name {
			case ".":
				dot = true
				if e.nid != dir.in.nid {
					f.note(CheckDirent, check.Error, path, `"." points to nid %d, not the directory (%d)`, e.nid, dir.in.nid)
				}
				continue
			case "..":
				dotdot = true
				if e.nid != parentNid {
					f.note(CheckDirent, check.Error, path, `".." points to nid %d, not the parent (%d)`, e.nid, parentNid)
				}
				continue
			}
			cpath := joinPath(path, e.name)
			if len(cpath) > 4096 {
				return formatErr(CheckDirent, dir.in.off, "path longer than 4096 bytes under %q", path)
			}
			in, err := f.loadInode(e.nid, cpath)
			if err != nil {
				return err
			}
			if e.ftype != in.ftype {
				f.note(CheckDirent, check.Error, cpath, "dirent file type %s differs from the inode's %s", e.ftype, in.ftype)
			}
			child := &node{name: e.name, parent: dir, in: in}
			in.refs++
			f.nnodes++
			dir.children = append(dir.children, child)
			if in.ftype == FileTypeDir {
				if visited[in.nid] {
					return formatErr(CheckDirLoop, in.off, "directory nid %d reached twice (at %q): loop or directory hard link", in.nid, cpath)
				}
				visited[in.nid] = true
			}
		}
		if !dot || !dotdot {
			f.note(CheckDirent, check.Error, path, `directory lacks "." or ".."`)
		}
		slices.SortFunc(dir.children, func(a, b *node) int { return strings.Compare(a.name, b.name) })
		// push subdirectories in reverse so they pop in name order (order does not matter for correctness)
		for i := len(dir.children) - 1; i >= 0; i-- {
			if c := dir.children[i]; c.in.ftype == FileTypeDir {
				stack = append(stack, c)
			}
		}
	}
	// hard links in walk order, nlink checks
	firsts := map[uint64]*node{}
	f.walkNodes(func(n *node) {
		if n.parent == nil {
			return
		}
		if fn, ok := firsts[n.in.nid]; ok {
			n.link = fn
			return
		}
		firsts[n.in.nid] = n
		if n.in.ftype == FileTypeReg && n.in.ino.Nlink != uint32(n.in.refs) {
			f.note(CheckHardlink, check.Warning, n.path(), "nlink %d but %d names", n.in.ino.Nlink, n.in.refs)
		}
	})
	if f.sb.Inos != 0 && f.sb.Inos != uint64(len(f.inodes)) {
		f.note(CheckBootstrap, check.Warning, "", "s_inos is %d but the tree has %d inodes", f.sb.Inos, len(f.inodes))
	}
	for _, nid := range f.prefetch {
		if _, ok := f.inodes[uint64(nid)]; !ok {
			f.note(CheckPrefetch, check.Warning, "", "prefetch table lists nid %d, which is not an inode of the tree", nid)
		}
	}
	return nil
}

func joinPath(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// walkNodes visits the tree in pre-order, children by name.
func (f *FS) walkNodes(fn func(*node)) {
	stack := []*node{f.root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(n)
		for i := len(n.children) - 1; i >= 0; i-- {
			stack = append(stack, n.children[i])
		}
	}
}

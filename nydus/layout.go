package nydus

// This file holds every on-disk structure and constant of RAFS v6 and of the
// Nydus blob, each with its byte layout. All integers are little endian. Each
// fixed-size struct implements encoding.BinaryUnmarshaler (UnmarshalBinary,
// which only decodes; validation is done by the reader), and
// encoding.BinaryMarshaler / encoding.BinaryAppender (MarshalBinary,
// AppendBinary) so a writer can use the same definitions. Reserved fields are
// kept, so decoding and re-encoding gives the original bytes.
//
// Facts come from dragonflyoss/nydus (rafs/src/metadata/layout/v6.rs,
// storage/src/meta/{mod,toc,chunk_info_v1,chunk_info_v2}.rs,
// storage/src/device.rs, builder/src/core/{v6,blob,context}.rs) and the Linux
// EROFS on-disk format (fs/erofs/erofs_fs.h), and were checked on real
// nydus-image output by this package's tests.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

var le = binary.LittleEndian

// errShort is returned by UnmarshalBinary when the input is shorter than the structure.
var errShort = errors.New("nydus: buffer too short for on-disk structure")

// ---------------------------------------------------------------------------
// Geometry of a RAFS v6 bootstrap.
//
//	0      1024 zero bytes (EROFS leaves room for a boot sector)
//	1024   SuperBlock (128 B)
//	1152   SuperBlockExt (256 B), the RAFS extension
//	1408   device table: ExtraDevices × DeviceSlot (128 B), s_devt_slotoff = 11
//	≥4096  blob table: BlobEntry (256 B) per blob, 4 KiB aligned
//	       prefetch table (u32 nids) right after the blob table
//	meta   MetaBlkAddr×4096: inode area; nid N is at meta + 32·N
//	       (nydus-image leaves the first meta block unused: root nid is 128)
//	...    chunk info table (ChunkInfo, 80 B each), 4 KiB aligned
//
// The file size is a multiple of 4096.
// ---------------------------------------------------------------------------

// Sizes and fixed offsets.
const (
	BlockBits = 12
	// BlockSize is the EROFS block size of RAFS v6 (512 only in tarfs mode, which is not supported).
	BlockSize = 1 << BlockBits

	SuperBlockOffset    = 1024
	SuperBlockSize      = 128
	SuperBlockExtOffset = SuperBlockOffset + SuperBlockSize // 1152
	SuperBlockExtSize   = 256
	// DeviceTableOffset is s_devt_slotoff·128; nydus requires exactly 1408.
	DeviceTableOffset = DeviceSlotOffset * DeviceSlotSize
	DeviceSlotOffset  = 11
	DeviceSlotSize    = 128
	BlobEntrySize     = 256
	// InodeSlotSize is the unit of nids: inode offset = MetaBlkAddr·4096 + nid·32.
	InodeSlotSize     = 32
	InodeCompactSize  = 32
	InodeExtendedSize = 64
	DirentSize        = 12
	ChunkIndexSize    = 8
	ChunkInfoSize     = 80
	XattrHeaderSize   = 12
	XattrEntrySize    = 4
	PrefetchEntrySize = 4

	// MaxNameLen is the longest file name (EROFS_NAME_LEN, RAFS_MAX_NAME).
	MaxNameLen = 255
	// MaxSymlinkLen bounds a symlink target (PATH_MAX); longer targets are refused.
	MaxSymlinkLen = 4096
	// MinChunkSize and MaxChunkSize bound the chunk size (RAFS_MAX_CHUNK_SIZE).
	MinChunkSize = 4096
	MaxChunkSize = 16 << 20
	// MaxChunksPerBlob is RAFS_MAX_CHUNKS_PER_BLOB (ci index is 24 bits).
	MaxChunksPerBlob = 1 << 24
	// MaxBlobs is the most blobs one bootstrap can reference (blob index is 8 bits, 0 = bootstrap).
	MaxBlobs = 255
	// BlobIDLen is the length of a blob id: 64 lowercase hex characters (sha256).
	BlobIDLen = 64
)

// Magic numbers and feature bits of the superblocks.
const (
	// EROFSMagic is s_magic (bytes E2 E1 F5 E0).
	EROFSMagic uint32 = 0xE0F5E1E2
	// FeatureCompatRAFSV6 must be set in s_feature_compat of a RAFS v6 bootstrap.
	FeatureCompatRAFSV6 uint32 = 0x40000000
	// FeatureIncompatChunkedFile and FeatureIncompatDeviceTable: s_feature_incompat
	// must be exactly their union (0xC) in RAFS v6.
	FeatureIncompatChunkedFile uint32 = 0x4
	FeatureIncompatDeviceTable uint32 = 0x8
	FeatureIncompatRAFSV6             = FeatureIncompatChunkedFile | FeatureIncompatDeviceTable

	// RAFSV5Magic is the u32 at offset 0 of a RAFS v5 bootstrap (bytes "SFAR").
	RAFSV5Magic uint32 = 0x52414653
	// RAFSV5Version is the u32 at offset 4 of a RAFS v5 bootstrap.
	RAFSV5Version uint32 = 0x500

	// BlobMetaMagic is the first and last u32 of the 4096-byte blob.meta header.
	BlobMetaMagic uint32 = 0xB10BB10B
)

// ---------------------------------------------------------------------------
// EROFS superblock, 128 bytes at offset 1024.
// ---------------------------------------------------------------------------

// SuperBlock is the EROFS superblock (RafsV6SuperBlock). Offsets are from
// byte 1024 of the bootstrap.
type SuperBlock struct {
	Magic         uint32 // @0  = EROFSMagic
	Checksum      uint32 // @4  must be 0 (no CRC in RAFS v6)
	FeatureCompat uint32 // @8  must include FeatureCompatRAFSV6
	BlkSzBits     uint8  // @12 = 12 (9 only for tarfs)
	ExtSlots      uint8  // @13 = 0
	RootNid       uint16 // @14 nid of the root directory
	Inos          uint64 // @16 number of inodes, ≠ 0
	BuildTime     uint64 // @24 seconds; the mtime of compact inodes (EROFS epoch)
	BuildTimeNsec uint32 // @32
	// Blocks is Σ device blocks (nydus-image ≤ 2.2 wrote 4096 when there are no devices).
	Blocks uint32 // @36
	// MetaBlkAddr is the block of the inode area: inode offset = MetaBlkAddr·4096 + nid·32.
	MetaBlkAddr     uint32   // @40
	XattrBlkAddr    uint32   // @44 = 0 (no shared xattrs in RAFS v6)
	UUID            [16]byte // @48
	VolumeName      [16]byte // @64
	FeatureIncompat uint32   // @80 = FeatureIncompatRAFSV6 exactly
	U               uint16   // @84 = 0 (union, available compression algorithms in EROFS)
	ExtraDevices    uint16   // @86 number of blobs = entries in the device table
	DevtSlotOff     uint16   // @88 = 11, device table at 11·128 = 1408
	Reserved        [38]byte // @90
}

// UnmarshalBinary decodes the 128-byte superblock from b (not from the start of the bootstrap).
func (s *SuperBlock) UnmarshalBinary(b []byte) error {
	if len(b) < SuperBlockSize {
		return errShort
	}
	s.Magic = le.Uint32(b[0:])
	s.Checksum = le.Uint32(b[4:])
	s.FeatureCompat = le.Uint32(b[8:])
	s.BlkSzBits = b[12]
	s.ExtSlots = b[13]
	s.RootNid = le.Uint16(b[14:])
	s.Inos = le.Uint64(b[16:])
	s.BuildTime = le.Uint64(b[24:])
	s.BuildTimeNsec = le.Uint32(b[32:])
	s.Blocks = le.Uint32(b[36:])
	s.MetaBlkAddr = le.Uint32(b[40:])
	s.XattrBlkAddr = le.Uint32(b[44:])
	copy(s.UUID[:], b[48:64])
	copy(s.VolumeName[:], b[64:80])
	s.FeatureIncompat = le.Uint32(b[80:])
	s.U = le.Uint16(b[84:])
	s.ExtraDevices = le.Uint16(b[86:])
	s.DevtSlotOff = le.Uint16(b[88:])
	copy(s.Reserved[:], b[90:128])
	return nil
}

// AppendBinary appends the 128-byte encoding.
func (s *SuperBlock) AppendBinary(b []byte) ([]byte, error) {
	b = le.AppendUint32(b, s.Magic)
	b = le.AppendUint32(b, s.Checksum)
	b = le.AppendUint32(b, s.FeatureCompat)
	b = append(b, s.BlkSzBits, s.ExtSlots)
	b = le.AppendUint16(b, s.RootNid)
	b = le.AppendUint64(b, s.Inos)
	b = le.AppendUint64(b, s.BuildTime)
	b = le.AppendUint32(b, s.BuildTimeNsec)
	b = le.AppendUint32(b, s.Blocks)
	b = le.AppendUint32(b, s.MetaBlkAddr)
	b = le.AppendUint32(b, s.XattrBlkAddr)
	b = append(b, s.UUID[:]...)
	b = append(b, s.VolumeName[:]...)
	b = le.AppendUint32(b, s.FeatureIncompat)
	b = le.AppendUint16(b, s.U)
	b = le.AppendUint16(b, s.ExtraDevices)
	b = le.AppendUint16(b, s.DevtSlotOff)
	b = append(b, s.Reserved[:]...)
	return b, nil
}

// MarshalBinary returns the 128-byte encoding.
func (s *SuperBlock) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, SuperBlockSize))
}

// ---------------------------------------------------------------------------
// RAFS v6 extended superblock, 256 bytes at offset 1152.
// ---------------------------------------------------------------------------

// SuperFlags are the RAFS superblock flags (RafsSuperFlags), in SuperBlockExt.Flags.
type SuperFlags uint64

// Exactly one compression flag and exactly one hash flag must be set.
const (
	FlagCompressionNone SuperFlags = 0x1
	FlagCompressionLZ4  SuperFlags = 0x2
	FlagHashBlake3      SuperFlags = 0x4
	FlagHashSHA256      SuperFlags = 0x8
	// FlagExplicitUIDGID: inode uid/gid are meaningful (else nydusd substitutes its own).
	FlagExplicitUIDGID     SuperFlags = 0x10
	FlagHasXattr           SuperFlags = 0x20
	FlagCompressionGzip    SuperFlags = 0x40
	FlagCompressionZstd    SuperFlags = 0x80
	FlagInlinedChunkDigest SuperFlags = 0x100
	// FlagTarfsMode: the blob is the uncompressed tar itself, block size 512 (not supported here).
	FlagTarfsMode           SuperFlags = 0x200
	FlagEncryptionNone      SuperFlags = 0x0100_0000
	FlagEncryptionAES128XTS SuperFlags = 0x0200_0000

	flagCompressionMask = FlagCompressionNone | FlagCompressionLZ4 | FlagCompressionGzip | FlagCompressionZstd
	flagHashMask        = FlagHashBlake3 | FlagHashSHA256
)

// Compressor returns the compression algorithm named by the flags (CompressUnknown unless exactly one is set).
func (f SuperFlags) Compressor() Compressor {
	switch f & flagCompressionMask {
	case FlagCompressionNone:
		return CompressNone
	case FlagCompressionLZ4:
		return CompressLZ4Block
	case FlagCompressionGzip:
		return CompressGzip
	case FlagCompressionZstd:
		return CompressZstd
	}
	return CompressUnknown
}

// Digester returns the digest algorithm named by the flags (DigestUnknown unless exactly one is set).
func (f SuperFlags) Digester() Digester {
	switch f & flagHashMask {
	case FlagHashBlake3:
		return DigestBlake3
	case FlagHashSHA256:
		return DigestSHA256
	}
	return DigestUnknown
}

// SuperBlockExt is the RAFS extended superblock (RafsV6SuperBlockExt), at byte 1152.
type SuperBlockExt struct {
	Flags SuperFlags // @0
	// BlobTableOffset: 4 KiB aligned, ≥ 4096, after the device table.
	BlobTableOffset uint64 // @8
	BlobTableSize   uint32 // @16 = 256·nblobs
	// ChunkSize: power of two in [4 KiB, 16 MiB]; default 1 MiB.
	ChunkSize           uint32    // @20
	ChunkTableOffset    uint64    // @24 4 KiB aligned
	ChunkTableSize      uint64    // @32 = 80·nchunks
	PrefetchTableOffset uint64    // @40
	PrefetchTableSize   uint32    // @48 = 4·n
	Padding             uint32    // @52
	Reserved            [200]byte // @56
}

// UnmarshalBinary decodes the 256-byte extended superblock.
func (s *SuperBlockExt) UnmarshalBinary(b []byte) error {
	if len(b) < SuperBlockExtSize {
		return errShort
	}
	s.Flags = SuperFlags(le.Uint64(b[0:]))
	s.BlobTableOffset = le.Uint64(b[8:])
	s.BlobTableSize = le.Uint32(b[16:])
	s.ChunkSize = le.Uint32(b[20:])
	s.ChunkTableOffset = le.Uint64(b[24:])
	s.ChunkTableSize = le.Uint64(b[32:])
	s.PrefetchTableOffset = le.Uint64(b[40:])
	s.PrefetchTableSize = le.Uint32(b[48:])
	s.Padding = le.Uint32(b[52:])
	copy(s.Reserved[:], b[56:256])
	return nil
}

// AppendBinary appends the 256-byte encoding.
func (s *SuperBlockExt) AppendBinary(b []byte) ([]byte, error) {
	b = le.AppendUint64(b, uint64(s.Flags))
	b = le.AppendUint64(b, s.BlobTableOffset)
	b = le.AppendUint32(b, s.BlobTableSize)
	b = le.AppendUint32(b, s.ChunkSize)
	b = le.AppendUint64(b, s.ChunkTableOffset)
	b = le.AppendUint64(b, s.ChunkTableSize)
	b = le.AppendUint64(b, s.PrefetchTableOffset)
	b = le.AppendUint32(b, s.PrefetchTableSize)
	b = le.AppendUint32(b, s.Padding)
	b = append(b, s.Reserved[:]...)
	return b, nil
}

// MarshalBinary returns the 256-byte encoding.
func (s *SuperBlockExt) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, SuperBlockExtSize))
}

// ---------------------------------------------------------------------------
// Device table (EROFS erofs_deviceslot), 128 bytes per blob at 1408.
// ---------------------------------------------------------------------------

// DeviceSlot is one entry of the device table (RafsV6Device). Device k+1 of
// EROFS (device 0 is the bootstrap itself) is blob k of the blob table.
type DeviceSlot struct {
	BlobID [64]byte // @0 ASCII hex, same as the blob table entry
	// Blocks = uncompressed (raw device) size / 4096; must not be 0.
	Blocks uint32 // @64
	// MappedBlkAddr is the block address in a flat "all devices" view (block-device export only; may be 0).
	MappedBlkAddr uint32   // @68
	Reserved      [56]byte // @72
}

// UnmarshalBinary decodes a 128-byte device slot.
func (d *DeviceSlot) UnmarshalBinary(b []byte) error {
	if len(b) < DeviceSlotSize {
		return errShort
	}
	copy(d.BlobID[:], b[0:64])
	d.Blocks = le.Uint32(b[64:])
	d.MappedBlkAddr = le.Uint32(b[68:])
	copy(d.Reserved[:], b[72:128])
	return nil
}

// AppendBinary appends the 128-byte encoding.
func (d *DeviceSlot) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, d.BlobID[:]...)
	b = le.AppendUint32(b, d.Blocks)
	b = le.AppendUint32(b, d.MappedBlkAddr)
	b = append(b, d.Reserved[:]...)
	return b, nil
}

// MarshalBinary returns the 128-byte encoding.
func (d *DeviceSlot) MarshalBinary() ([]byte, error) {
	return d.AppendBinary(make([]byte, 0, DeviceSlotSize))
}

// ---------------------------------------------------------------------------
// Blob table, 256 bytes per blob at SuperBlockExt.BlobTableOffset.
// ---------------------------------------------------------------------------

// Compressor is a compression algorithm id (compress::Algorithm), as used in
// BlobEntry.CompressionAlgo, BlobEntry.CIACompressor and BlobMetaHeader.CICompressor.
type Compressor uint32

const (
	CompressNone     Compressor = 0
	CompressLZ4Block Compressor = 1 // raw LZ4 block (LZ4_compress_default), no frame
	CompressGzip     Compressor = 2 // only for zran/stargz blobs (not supported here)
	CompressZstd     Compressor = 3 // one standard zstd frame per chunk
	// CompressUnknown is returned for invalid flag combinations; it is never on disk.
	CompressUnknown Compressor = 0xffffffff
)

func (c Compressor) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressLZ4Block:
		return "lz4_block"
	case CompressGzip:
		return "gzip"
	case CompressZstd:
		return "zstd"
	}
	return fmt.Sprintf("unknown(%d)", uint32(c))
}

// Digester is a digest algorithm id (digest::Algorithm), as in BlobEntry.DigestAlgo.
type Digester uint32

const (
	DigestBlake3  Digester = 0 // BLAKE3-256 of the uncompressed chunk
	DigestSHA256  Digester = 1
	DigestUnknown Digester = 0xffffffff
)

func (d Digester) String() string {
	switch d {
	case DigestBlake3:
		return "blake3"
	case DigestSHA256:
		return "sha256"
	}
	return fmt.Sprintf("unknown(%d)", uint32(d))
}

// BlobFeatures are the blob feature bits (storage/src/device.rs BlobFeatures),
// in BlobEntry.Features and BlobMetaHeader.Features.
type BlobFeatures uint32

const (
	// BlobAligned: uncompressed chunk offsets are 4 KiB aligned; required unless tarfs.
	BlobAligned BlobFeatures = 0x1
	// BlobInlinedFSMeta: the bootstrap is inside the blob (image.boot section).
	BlobInlinedFSMeta BlobFeatures = 0x2
	// BlobChunkInfoV2: the ci array uses 24-byte ChunkInfoV2 entries.
	BlobChunkInfoV2 BlobFeatures = 0x4
	BlobZran        BlobFeatures = 0x8
	BlobSeparate    BlobFeatures = 0x10
	// BlobInlinedChunkDigest: the blob carries a blob.digest array.
	BlobInlinedChunkDigest BlobFeatures = 0x20
	BlobTarfs              BlobFeatures = 0x40
	BlobBatch              BlobFeatures = 0x80
	BlobEncrypted          BlobFeatures = 0x100
	BlobChunkDictGenerated BlobFeatures = 0x200
	BlobSeparatedPrefetch  BlobFeatures = 0x400
	BlobExternal           BlobFeatures = 0x800
	// BlobHasTarHeader: sections are followed by 512-byte GNU tar headers ("reverse tar").
	BlobHasTarHeader BlobFeatures = 0x1000_0000
	// BlobHasTOC: the blob ends with a rafs.blob.toc section.
	BlobHasTOC BlobFeatures = 0x2000_0000
	// BlobCapTarTOC is always set by nydus-image ≥ 2.2.
	BlobCapTarTOC BlobFeatures = 0x4000_0000
	// blobV5NoExtBlobTable is only meaningful in RAFS v5.
	blobV5NoExtBlobTable BlobFeatures = 0x8000_0000

	blobKnownFeatures = BlobAligned | BlobInlinedFSMeta | BlobChunkInfoV2 | BlobZran | BlobSeparate |
		BlobInlinedChunkDigest | BlobTarfs | BlobBatch | BlobEncrypted | BlobChunkDictGenerated |
		BlobSeparatedPrefetch | BlobExternal | BlobHasTarHeader | BlobHasTOC | BlobCapTarTOC | blobV5NoExtBlobTable
)

// BlobEntry is one entry of the blob table (RafsV6Blob), 256 bytes.
type BlobEntry struct {
	BlobID          [64]byte // @0 ASCII sha256 hex; the blob layer digest in a merged bootstrap
	BlobIndex       uint32   // @64 = position in the table
	ChunkSize       uint32   // @68 = SuperBlockExt.ChunkSize
	ChunkCount      uint32   // @72 entries of the ci array, ≤ 2^24
	CompressionAlgo uint32   // @76 Compressor of the chunks
	DigestAlgo      uint32   // @80 Digester of the chunk digests
	Features        uint32   // @84 BlobFeatures
	// CompressedSize is the size of the blob (nydus-image: whole blob file for a separate
	// blob, size of the chunk data for a blob with an inlined bootstrap).
	CompressedSize uint64 // @88
	// UncompressedSize is Σ 4 KiB-aligned chunk sizes = raw device size.
	UncompressedSize uint64 // @96
	// BlobTOCSize is the TOC entries plus its 512-byte tar header (0 if unknown).
	BlobTOCSize uint32 // @104
	// CICompressor compresses the ci array stored in the blob (0 = stored raw).
	CICompressor uint32 // @108
	// CIOffset is where the (compressed) ci array starts in the blob; the 4096-byte
	// BlobMetaHeader follows it at CIOffset + CICompressedSize.
	CIOffset           uint64   // @112
	CICompressedSize   uint64   // @120 ≤ CIUncompressedSize
	CIUncompressedSize uint64   // @128 = 16·ChunkCount (V1) or 24·ChunkCount (V2, + zran/batch data)
	BlobTOCDigest      [32]byte // @136 sha256 of TOC entries ‖ TOC tar header (zero if unknown)
	// BlobMetaDigest/BlobMetaSize describe a separate meta blob (zran); for encrypted blobs they hold the key/IV.
	BlobMetaDigest [32]byte // @168
	BlobMetaSize   uint64   // @200
	CipherIV       [8]byte  // @208
	CipherAlgo     uint32   // @216 0 none, 1 aes128-xts (not supported here)
	Reserved       [36]byte // @220
}

// UnmarshalBinary decodes a 256-byte blob table entry.
func (e *BlobEntry) UnmarshalBinary(b []byte) error {
	if len(b) < BlobEntrySize {
		return errShort
	}
	copy(e.BlobID[:], b[0:64])
	e.BlobIndex = le.Uint32(b[64:])
	e.ChunkSize = le.Uint32(b[68:])
	e.ChunkCount = le.Uint32(b[72:])
	e.CompressionAlgo = le.Uint32(b[76:])
	e.DigestAlgo = le.Uint32(b[80:])
	e.Features = le.Uint32(b[84:])
	e.CompressedSize = le.Uint64(b[88:])
	e.UncompressedSize = le.Uint64(b[96:])
	e.BlobTOCSize = le.Uint32(b[104:])
	e.CICompressor = le.Uint32(b[108:])
	e.CIOffset = le.Uint64(b[112:])
	e.CICompressedSize = le.Uint64(b[120:])
	e.CIUncompressedSize = le.Uint64(b[128:])
	copy(e.BlobTOCDigest[:], b[136:168])
	copy(e.BlobMetaDigest[:], b[168:200])
	e.BlobMetaSize = le.Uint64(b[200:])
	copy(e.CipherIV[:], b[208:216])
	e.CipherAlgo = le.Uint32(b[216:])
	copy(e.Reserved[:], b[220:256])
	return nil
}

// AppendBinary appends the 256-byte encoding.
func (e *BlobEntry) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, e.BlobID[:]...)
	b = le.AppendUint32(b, e.BlobIndex)
	b = le.AppendUint32(b, e.ChunkSize)
	b = le.AppendUint32(b, e.ChunkCount)
	b = le.AppendUint32(b, e.CompressionAlgo)
	b = le.AppendUint32(b, e.DigestAlgo)
	b = le.AppendUint32(b, e.Features)
	b = le.AppendUint64(b, e.CompressedSize)
	b = le.AppendUint64(b, e.UncompressedSize)
	b = le.AppendUint32(b, e.BlobTOCSize)
	b = le.AppendUint32(b, e.CICompressor)
	b = le.AppendUint64(b, e.CIOffset)
	b = le.AppendUint64(b, e.CICompressedSize)
	b = le.AppendUint64(b, e.CIUncompressedSize)
	b = append(b, e.BlobTOCDigest[:]...)
	b = append(b, e.BlobMetaDigest[:]...)
	b = le.AppendUint64(b, e.BlobMetaSize)
	b = append(b, e.CipherIV[:]...)
	b = le.AppendUint32(b, e.CipherAlgo)
	b = append(b, e.Reserved[:]...)
	return b, nil
}

// MarshalBinary returns the 256-byte encoding.
func (e *BlobEntry) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(make([]byte, 0, BlobEntrySize))
}

// ID returns the blob id as a string, NULs trimmed.
func (e *BlobEntry) ID() string { return idString(e.BlobID) }

func idString(b [64]byte) string { return strings.TrimRight(string(b[:]), "\x00") }

// SetBlobID stores id (at most 64 bytes) NUL padded into dst.
func SetBlobID(dst *[64]byte, id string) {
	*dst = [64]byte{}
	copy(dst[:], id)
}

// ---------------------------------------------------------------------------
// Inodes. nid N is at MetaBlkAddr·4096 + 32·N.
// ---------------------------------------------------------------------------

// Inode data layouts, in bits 1..3 of Inode.Format.
const (
	LayoutFlatPlain  = 0 // data in whole blocks starting at block Inode.U
	LayoutFlatInline = 2 // whole blocks at block Inode.U, last partial block right after inode+xattrs
	LayoutChunkBased = 4 // chunk indexes right after inode+xattrs (8-byte aligned)
	// 1 and 3 are EROFS compressed layouts, never used by RAFS.

	// FormatExtended is bit 0 of Inode.Format: 64-byte extended inode (else 32-byte compact).
	FormatExtended  = 0x1
	formatKnownBits = 0xf // version bit + 3 layout bits

	// ChunkFormatIndexes (0x20) in Inode.U of a chunk-based inode: 8-byte ChunkIndex
	// entries (the only form nydus writes). The low 5 bits are log2(chunk size) − 12.
	ChunkFormatIndexes  = 0x20
	ChunkFormatBitsMask = 0x1f

	// NullAddr as a ChunkIndex.BlkAddr marks a hole (EROFS_NULL_ADDR).
	NullAddr uint32 = 0xffffffff
)

// File mode type bits (S_IFMT) in Inode.Mode.
const (
	ModeTypeMask = 0o170000
	ModeSocket   = 0o140000
	ModeSymlink  = 0o120000
	ModeRegular  = 0o100000
	ModeBlock    = 0o060000
	ModeDir      = 0o040000
	ModeChar     = 0o020000
	ModeFIFO     = 0o010000
	ModePermMask = 0o7777
)

// Inode is a compact (32 B) or extended (64 B) EROFS inode; Format bit 0 selects.
//
// Compact (RafsV6InodeCompact): Format u16 @0, XattrICount u16 @2, Mode u16 @4,
// Nlink u16 @6, Size u32 @8, CompactMtime u32 @12 (EROFS ≥ 6.15: mtime − BuildTime;
// nydus writes 0), U u32 @16, Ino u32 @20, UID u16 @24, GID u16 @26, reserved [4] @28.
// A compact inode's mtime is SuperBlock.BuildTime + CompactMtime, BuildTimeNsec.
//
// Extended (RafsV6InodeExtended): Format u16 @0, XattrICount u16 @2, Mode u16 @4,
// reserved u16 @6, Size u64 @8, U u32 @16, Ino u32 @20, UID u32 @24, GID u32 @28,
// Mtime u64 @32, MtimeNsec u32 @40, Nlink u32 @44, reserved [16] @48.
//
// U is: the first data block (directories, symlinks, FLAT regular files), the chunk
// format (chunk-based regular files), or rdev (char/block devices, fifos, sockets;
// Linux new_encode_dev: minor&0xff | major<<8 | (minor&^0xff)<<12).
//
// Ino is a sequential inode number (root = 1); hard links share one inode (same nid).
type Inode struct {
	Format       uint16
	XattrICount  uint16
	Mode         uint16
	Nlink        uint32
	Size         uint64
	U            uint32
	Ino          uint32
	UID, GID     uint32
	Mtime        uint64
	MtimeNsec    uint32
	CompactMtime uint32   // compact only
	Reserved     [16]byte // extended: @48; compact: first 4 bytes = @28; extended @6 u16 kept in Reserved2
	Reserved2    uint16   // extended only, @6
}

// Extended reports whether the inode uses the 64-byte layout.
func (i *Inode) Extended() bool { return i.Format&FormatExtended != 0 }

// Layout returns the data layout (LayoutFlatPlain, LayoutFlatInline, LayoutChunkBased, ...).
func (i *Inode) Layout() int { return int(i.Format>>1) & 7 }

// OnDiskSize is 32 or 64.
func (i *Inode) OnDiskSize() int {
	if i.Extended() {
		return InodeExtendedSize
	}
	return InodeCompactSize
}

// XattrSize is the size in bytes of the inline xattr area following the inode
// (0, or 12 + 4·(XattrICount−1)).
func (i *Inode) XattrSize() int {
	if i.XattrICount == 0 {
		return 0
	}
	return XattrHeaderSize + (int(i.XattrICount)-1)*XattrEntrySize
}

// UnmarshalBinary decodes an inode; b must hold 32 bytes, or 64 for an extended inode.
func (i *Inode) UnmarshalBinary(b []byte) error {
	if len(b) < InodeCompactSize {
		return errShort
	}
	*i = Inode{}
	i.Format = le.Uint16(b[0:])
	i.XattrICount = le.Uint16(b[2:])
	i.Mode = le.Uint16(b[4:])
	if i.Format&FormatExtended == 0 {
		i.Nlink = uint32(le.Uint16(b[6:]))
		i.Size = uint64(le.Uint32(b[8:]))
		i.CompactMtime = le.Uint32(b[12:])
		i.U = le.Uint32(b[16:])
		i.Ino = le.Uint32(b[20:])
		i.UID = uint32(le.Uint16(b[24:]))
		i.GID = uint32(le.Uint16(b[26:]))
		copy(i.Reserved[:4], b[28:32])
		return nil
	}
	if len(b) < InodeExtendedSize {
		return errShort
	}
	i.Reserved2 = le.Uint16(b[6:])
	i.Size = le.Uint64(b[8:])
	i.U = le.Uint32(b[16:])
	i.Ino = le.Uint32(b[20:])
	i.UID = le.Uint32(b[24:])
	i.GID = le.Uint32(b[28:])
	i.Mtime = le.Uint64(b[32:])
	i.MtimeNsec = le.Uint32(b[40:])
	i.Nlink = le.Uint32(b[44:])
	copy(i.Reserved[:], b[48:64])
	return nil
}

// AppendBinary appends the 32- or 64-byte encoding. A compact inode whose
// values do not fit (nlink, uid, gid > 65535, size ≥ 4 GiB) is an error.
func (i *Inode) AppendBinary(b []byte) ([]byte, error) {
	b = le.AppendUint16(b, i.Format)
	b = le.AppendUint16(b, i.XattrICount)
	b = le.AppendUint16(b, i.Mode)
	if !i.Extended() {
		if i.Nlink > 0xffff || i.UID > 0xffff || i.GID > 0xffff || i.Size > 0xffffffff {
			return b, errors.New("nydus: inode values do not fit a compact inode")
		}
		b = le.AppendUint16(b, uint16(i.Nlink))
		b = le.AppendUint32(b, uint32(i.Size))
		b = le.AppendUint32(b, i.CompactMtime)
		b = le.AppendUint32(b, i.U)
		b = le.AppendUint32(b, i.Ino)
		b = le.AppendUint16(b, uint16(i.UID))
		b = le.AppendUint16(b, uint16(i.GID))
		b = append(b, i.Reserved[:4]...)
		return b, nil
	}
	b = le.AppendUint16(b, i.Reserved2)
	b = le.AppendUint64(b, i.Size)
	b = le.AppendUint32(b, i.U)
	b = le.AppendUint32(b, i.Ino)
	b = le.AppendUint32(b, i.UID)
	b = le.AppendUint32(b, i.GID)
	b = le.AppendUint64(b, i.Mtime)
	b = le.AppendUint32(b, i.MtimeNsec)
	b = le.AppendUint32(b, i.Nlink)
	b = append(b, i.Reserved[:]...)
	return b, nil
}

// MarshalBinary returns the 32- or 64-byte encoding.
func (i *Inode) MarshalBinary() ([]byte, error) { return i.AppendBinary(nil) }

// DecodeDev splits a Linux new_encode_dev value (Inode.U of a device inode) into major and minor.
func DecodeDev(rdev uint32) (major, minor uint32) {
	major = (rdev & 0xfff00) >> 8
	minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00)
	return
}

// EncodeDev is the inverse of DecodeDev (Linux new_encode_dev).
func EncodeDev(major, minor uint32) uint32 {
	return (minor & 0xff) | (major&0xfff)<<8 | (minor&^0xff)<<12
}

// ---------------------------------------------------------------------------
// Directories: blocks of Dirent arrays followed by names.
// ---------------------------------------------------------------------------

// FileType is the EROFS dirent file type (e_file_type).
type FileType uint8

const (
	FileTypeUnknown FileType = 0
	FileTypeReg     FileType = 1
	FileTypeDir     FileType = 2
	FileTypeChar    FileType = 3
	FileTypeBlock   FileType = 4
	FileTypeFIFO    FileType = 5
	FileTypeSocket  FileType = 6
	FileTypeSymlink FileType = 7
)

func (t FileType) String() string {
	switch t {
	case FileTypeReg:
		return "reg"
	case FileTypeDir:
		return "dir"
	case FileTypeChar:
		return "char"
	case FileTypeBlock:
		return "block"
	case FileTypeFIFO:
		return "fifo"
	case FileTypeSocket:
		return "socket"
	case FileTypeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// FileTypeOfMode maps S_IFMT bits of a mode to the dirent file type.
func FileTypeOfMode(mode uint32) FileType {
	switch mode & ModeTypeMask {
	case ModeRegular:
		return FileTypeReg
	case ModeDir:
		return FileTypeDir
	case ModeChar:
		return FileTypeChar
	case ModeBlock:
		return FileTypeBlock
	case ModeFIFO:
		return FileTypeFIFO
	case ModeSocket:
		return FileTypeSocket
	case ModeSymlink:
		return FileTypeSymlink
	}
	return FileTypeUnknown
}

// Dirent is a 12-byte directory entry (erofs_dirent). A directory's data is a
// sequence of 4 KiB blocks (the last one possibly partial, inline after the
// inode for LayoutFlatInline). Each block holds n dirents then their names,
// with no NULs between names: NameOff[0]/12 = n, name k spans
// [NameOff[k], NameOff[k+1]) and the last name runs to the end of the block's
// used bytes (trailing NULs trimmed). Names in a directory, including "." and
// "..", are sorted bytewise across all blocks; a dirent never spans blocks.
type Dirent struct {
	Nid      uint64   // @0
	NameOff  uint16   // @8 offset of the name inside the block
	FileType FileType // @10
	Reserved uint8    // @11
}

// UnmarshalBinary decodes a 12-byte dirent.
func (d *Dirent) UnmarshalBinary(b []byte) error {
	if len(b) < DirentSize {
		return errShort
	}
	d.Nid = le.Uint64(b[0:])
	d.NameOff = le.Uint16(b[8:])
	d.FileType = FileType(b[10])
	d.Reserved = b[11]
	return nil
}

// AppendBinary appends the 12-byte encoding.
func (d *Dirent) AppendBinary(b []byte) ([]byte, error) {
	b = le.AppendUint64(b, d.Nid)
	b = le.AppendUint16(b, d.NameOff)
	return append(b, byte(d.FileType), d.Reserved), nil
}

// MarshalBinary returns the 12-byte encoding.
func (d *Dirent) MarshalBinary() ([]byte, error) { return d.AppendBinary(nil) }

// ---------------------------------------------------------------------------
// Regular files: chunk indexes.
// ---------------------------------------------------------------------------

// ChunkIndex is one 8-byte chunk address of a chunk-based inode
// (RafsV6InodeChunkAddr). The array starts at round_up(inode offset + inode size +
// xattr size, 8) and has ceil(Size / SuperBlockExt.ChunkSize) entries: nydus always
// uses the filesystem chunk size for the array, while the inode's own chunk bits
// may be larger (log2(next_power_of_two(size)) when all chunks are contiguous, so
// that EROFS maps the file with the first entry alone).
//
//	@0 u16 BlobAddrLo: ci index bits 0–15
//	@2 u16 BlobAddrHi: bits 0–7 = blob index + 1 (EROFS device id), bits 8–15 = ci index bits 16–23
//	@4 u32 BlkAddr:    uncompressed offset of the chunk in the blob / 4096 (raw-device block)
type ChunkIndex struct {
	BlobAddrLo uint16
	BlobAddrHi uint16
	BlkAddr    uint32
}

// UnmarshalBinary decodes an 8-byte chunk index.
func (c *ChunkIndex) UnmarshalBinary(b []byte) error {
	if len(b) < ChunkIndexSize {
		return errShort
	}
	c.BlobAddrLo = le.Uint16(b[0:])
	c.BlobAddrHi = le.Uint16(b[2:])
	c.BlkAddr = le.Uint32(b[4:])
	return nil
}

// AppendBinary appends the 8-byte encoding.
func (c *ChunkIndex) AppendBinary(b []byte) ([]byte, error) {
	b = le.AppendUint16(b, c.BlobAddrLo)
	b = le.AppendUint16(b, c.BlobAddrHi)
	return le.AppendUint32(b, c.BlkAddr), nil
}

// MarshalBinary returns the 8-byte encoding.
func (c *ChunkIndex) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// DeviceID is blob index + 1 (0 would be the bootstrap itself, invalid).
func (c *ChunkIndex) DeviceID() uint32 { return uint32(c.BlobAddrHi & 0xff) }

// CIIndex is the 24-bit index into the blob's ci array and chunk table.
func (c *ChunkIndex) CIIndex() uint32 {
	return uint32(c.BlobAddrHi>>8)<<16 | uint32(c.BlobAddrLo)
}

// NewChunkIndex builds a chunk index for blob blobIndex (0-based), ci index ci and block blk.
func NewChunkIndex(blobIndex, ci, blk uint32) ChunkIndex {
	return ChunkIndex{
		BlobAddrLo: uint16(ci),
		BlobAddrHi: uint16(blobIndex+1)&0xff | uint16(ci>>16)<<8,
		BlkAddr:    blk,
	}
}

// ---------------------------------------------------------------------------
// Chunk info table (RafsV5ChunkInfo reused by v6), 80 bytes per unique chunk.
// ---------------------------------------------------------------------------

// ChunkFlags are BlobChunkFlags, in ChunkInfo.Flags.
type ChunkFlags uint32

const (
	ChunkCompressed ChunkFlags = 0x1
	ChunkHole       ChunkFlags = 0x2
	ChunkEncrypted  ChunkFlags = 0x4
	ChunkBatch      ChunkFlags = 0x8
	// ChunkHasCRC32: ChunkInfo.CRC32 is the CRC32C (Castagnoli) of the uncompressed chunk.
	ChunkHasCRC32 ChunkFlags = 0x10
)

// ChunkInfo is an entry of the bootstrap's chunk table, one per (digest, blob),
// sorted by that key. nydusd looks entries up by (blob index, ci index, block).
type ChunkInfo struct {
	Digest             [32]byte   // @0 blake3/sha256 of the uncompressed chunk
	BlobIndex          uint32     // @32
	Flags              ChunkFlags // @36
	CompressedSize     uint32     // @40
	UncompressedSize   uint32     // @44
	CompressedOffset   uint64     // @48 offset in the blob file
	UncompressedOffset uint64     // @56 offset in the raw device (4 KiB aligned)
	FileOffset         uint64     // @64 offset in the first file that used the chunk
	Index              uint32     // @72 ci index in the blob
	CRC32              uint32     // @76 CRC32C when ChunkHasCRC32
}

// UnmarshalBinary decodes an 80-byte chunk info.
func (c *ChunkInfo) UnmarshalBinary(b []byte) error {
	if len(b) < ChunkInfoSize {
		return errShort
	}
	copy(c.Digest[:], b[0:32])
	c.BlobIndex = le.Uint32(b[32:])
	c.Flags = ChunkFlags(le.Uint32(b[36:]))
	c.CompressedSize = le.Uint32(b[40:])
	c.UncompressedSize = le.Uint32(b[44:])
	c.CompressedOffset = le.Uint64(b[48:])
	c.UncompressedOffset = le.Uint64(b[56:])
	c.FileOffset = le.Uint64(b[64:])
	c.Index = le.Uint32(b[72:])
	c.CRC32 = le.Uint32(b[76:])
	return nil
}

// AppendBinary appends the 80-byte encoding.
func (c *ChunkInfo) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, c.Digest[:]...)
	b = le.AppendUint32(b, c.BlobIndex)
	b = le.AppendUint32(b, uint32(c.Flags))
	b = le.AppendUint32(b, c.CompressedSize)
	b = le.AppendUint32(b, c.UncompressedSize)
	b = le.AppendUint64(b, c.CompressedOffset)
	b = le.AppendUint64(b, c.UncompressedOffset)
	b = le.AppendUint64(b, c.FileOffset)
	b = le.AppendUint32(b, c.Index)
	return le.AppendUint32(b, c.CRC32), nil
}

// MarshalBinary returns the 80-byte encoding.
func (c *ChunkInfo) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// ---------------------------------------------------------------------------
// Inline xattrs: XattrHeader then entries, each padded to 4 bytes.
// ---------------------------------------------------------------------------

// Xattr name indexes (e_name_index). RAFS accepts only these namespaces.
const (
	XattrIndexUser         = 1 // "user."
	XattrIndexPOSIXACLAcc  = 2 // "system.posix_acl_access" (empty suffix)
	XattrIndexPOSIXACLDflt = 3 // "system.posix_acl_default" (empty suffix)
	XattrIndexTrusted      = 4 // "trusted."
	XattrIndexSecurity     = 6 // "security."
)

// XattrPrefixes maps a name index to its prefix.
var XattrPrefixes = map[uint8]string{
	XattrIndexUser:         "user.",
	XattrIndexPOSIXACLAcc:  "system.posix_acl_access",
	XattrIndexPOSIXACLDflt: "system.posix_acl_default",
	XattrIndexTrusted:      "trusted.",
	XattrIndexSecurity:     "security.",
}

// SplitXattrName returns the name index and suffix for a full xattr name, or ok=false
// if the namespace cannot be stored in RAFS.
func SplitXattrName(name string) (index uint8, suffix string, ok bool) {
	for _, idx := range []uint8{XattrIndexPOSIXACLAcc, XattrIndexPOSIXACLDflt, XattrIndexUser, XattrIndexTrusted, XattrIndexSecurity} {
		p := XattrPrefixes[idx]
		if strings.HasPrefix(name, p) {
			return idx, name[len(p):], true
		}
	}
	return 0, "", false
}

// XattrHeader is erofs_xattr_ibody_header (12 bytes): h_reserved u32 @0 (=0),
// h_shared_count u8 @4 (=0, RAFS has no shared xattrs), reserved [7] @5.
// It is followed by entries: e_name_len u8, e_name_index u8, e_value_size u16,
// name suffix, value; each entry padded to a multiple of 4. The area size is
// 12 + 4·(XattrICount − 1).
type XattrHeader struct {
	Reserved    uint32
	SharedCount uint8
	Reserved2   [7]byte
}

// UnmarshalBinary decodes a 12-byte xattr header.
func (h *XattrHeader) UnmarshalBinary(b []byte) error {
	if len(b) < XattrHeaderSize {
		return errShort
	}
	h.Reserved = le.Uint32(b)
	h.SharedCount = b[4]
	copy(h.Reserved2[:], b[5:12])
	return nil
}

// AppendBinary appends the 12-byte encoding.
func (h *XattrHeader) AppendBinary(b []byte) ([]byte, error) {
	b = le.AppendUint32(b, h.Reserved)
	b = append(b, h.SharedCount)
	return append(b, h.Reserved2[:]...), nil
}

// MarshalBinary returns the 12-byte encoding.
func (h *XattrHeader) MarshalBinary() ([]byte, error) { return h.AppendBinary(nil) }

// Xattr is one extended attribute with its full name.
type Xattr struct {
	Name  string
	Value []byte
}

// AppendXattrs appends the inline xattr area (header and 4-byte padded entries)
// for xs, in the given order, and returns it with the XattrICount to store.
func AppendXattrs(b []byte, xs []Xattr) ([]byte, uint16, error) {
	if len(xs) == 0 {
		return b, 0, nil
	}
	start := len(b)
	var h XattrHeader
	b, _ = h.AppendBinary(b)
	for _, x := range xs {
		idx, suffix, ok := SplitXattrName(x.Name)
		if !ok {
			return b, 0, fmt.Errorf("nydus: xattr %q: namespace not supported by RAFS", x.Name)
		}
		if len(suffix) > 255 || len(x.Value) > 0xffff {
			return b, 0, fmt.Errorf("nydus: xattr %q too long", x.Name)
		}
		b = append(b, uint8(len(suffix)), idx)
		b = le.AppendUint16(b, uint16(len(x.Value)))
		b = append(b, suffix...)
		b = append(b, x.Value...)
		for (len(b)-start)%4 != 0 {
			b = append(b, 0)
		}
	}
	size := len(b) - start
	count := (size-XattrHeaderSize)/XattrEntrySize + 1
	if count > 0xffff {
		return b, 0, errors.New("nydus: xattrs too large")
	}
	return b, uint16(count), nil
}

// ---------------------------------------------------------------------------
// Blob compression context ("blob.meta"): ci array, then a 4096-byte header.
// ---------------------------------------------------------------------------

// BlobMetaHeaderSize is the size of BlobMetaHeader.
const BlobMetaHeaderSize = 4096

// BlobMetaHeader is BlobCompressionContextHeader, stored in the blob right after
// the (compressed) ci array, i.e. at CIOffset + CICompressedSize.
type BlobMetaHeader struct {
	Magic              uint32 // @0 = BlobMetaMagic
	Features           uint32 // @4 BlobFeatures
	CICompressor       uint32 // @8
	CIEntries          uint32 // @12 = BlobEntry.ChunkCount
	CIOffset           uint64 // @16
	CICompressedSize   uint64 // @24
	CIUncompressedSize uint64 // @32
	CIZranOffset       uint64 // @40
	CIZranSize         uint64 // @48
	CIZranCount        uint32 // @56
	Reserved           [4032]byte
	Magic2             uint32 // @4092 = BlobMetaMagic
}

// UnmarshalBinary decodes the 4096-byte header.
func (h *BlobMetaHeader) UnmarshalBinary(b []byte) error {
	if len(b) < BlobMetaHeaderSize {
		return errShort
	}
	h.Magic = le.Uint32(b[0:])
	h.Features = le.Uint32(b[4:])
	h.CICompressor = le.Uint32(b[8:])
	h.CIEntries = le.Uint32(b[12:])
	h.CIOffset = le.Uint64(b[16:])
	h.CICompressedSize = le.Uint64(b[24:])
	h.CIUncompressedSize = le.Uint64(b[32:])
	h.CIZranOffset = le.Uint64(b[40:])
	h.CIZranSize = le.Uint64(b[48:])
	h.CIZranCount = le.Uint32(b[56:])
	copy(h.Reserved[:], b[60:4092])
	h.Magic2 = le.Uint32(b[4092:])
	return nil
}

// AppendBinary appends the 4096-byte encoding.
func (h *BlobMetaHeader) AppendBinary(b []byte) ([]byte, error) {
	b = le.AppendUint32(b, h.Magic)
	b = le.AppendUint32(b, h.Features)
	b = le.AppendUint32(b, h.CICompressor)
	b = le.AppendUint32(b, h.CIEntries)
	b = le.AppendUint64(b, h.CIOffset)
	b = le.AppendUint64(b, h.CICompressedSize)
	b = le.AppendUint64(b, h.CIUncompressedSize)
	b = le.AppendUint64(b, h.CIZranOffset)
	b = le.AppendUint64(b, h.CIZranSize)
	b = le.AppendUint32(b, h.CIZranCount)
	b = append(b, h.Reserved[:]...)
	return le.AppendUint32(b, h.Magic2), nil
}

// MarshalBinary returns the 4096-byte encoding.
func (h *BlobMetaHeader) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, BlobMetaHeaderSize))
}

// Chunk compression info entry sizes.
const (
	ChunkInfoV1Size = 16
	ChunkInfoV2Size = 24
	// ciSizeMask is BLOB_CCT_CHUNK_SIZE_MASK (sizes are 24 bits).
	ciSizeMask = 0xff_ffff
)

// CIEntry is a decoded entry of the ci array (V1 or V2).
type CIEntry struct {
	CompressedOffset   uint64
	CompressedSize     uint32
	UncompressedOffset uint64
	UncompressedSize   uint32
	// Compressed: V1 infers it from CompressedSize ≠ UncompressedSize; V2 has a flag.
	Compressed bool
	// V2 only.
	Flags uint8  // V2 flag byte (CIFlag*)
	Data  uint64 // crc32 (low 32 bits) or zran/batch index and offset
}

// V2 flag bits (bits 56–63 of uncomp_info).
const (
	CIFlagCompressed = 0x01
	CIFlagZran       = 0x02
	CIFlagBatch      = 0x04
	CIFlagEncrypted  = 0x08
	CIFlagHasCRC32   = 0x10
	ciFlagValid      = 0x1f
)

// DecodeCIV1 decodes a 16-byte V1 entry (BlobChunkInfoV1Ondisk):
//
//	uncomp_info u64 @0: bits 12–43 uncompressed offset (4 KiB aligned),
//	                    bits 44–63 (usize−1) bits 0–19, bits 8–11 (usize−1) bits 20–23
//	comp_info   u64 @8: bits 0–39 compressed offset,
//	                    bits 44–63 (csize−1) bits 0–19, bits 40–43 (csize−1) bits 20–23
//
// The chunk is compressed iff csize ≠ usize.
func DecodeCIV1(b []byte) CIEntry {
	u := le.Uint64(b[0:])
	c := le.Uint64(b[8:])
	e := CIEntry{
		UncompressedOffset: u & 0xfff_ffff_f000,
		UncompressedSize:   uint32((u&0xf00)<<12|u>>44) + 1,
		CompressedOffset:   c & 0xff_ffff_ffff,
		CompressedSize:     uint32((c&0xf00_0000_0000)>>20|c>>44) + 1,
	}
	e.Compressed = e.CompressedSize != e.UncompressedSize
	return e
}

// AppendCIV1 appends the 16-byte V1 encoding of e (sizes 1..16 MiB, offsets in range).
func AppendCIV1(b []byte, e CIEntry) []byte {
	us, cs := uint64(e.UncompressedSize-1), uint64(e.CompressedSize-1)
	u := e.UncompressedOffset&0xfff_ffff_f000 | (us&0xf_ffff)<<44 | (us&0xf0_0000)>>12
	c := e.CompressedOffset&0xff_ffff_ffff | (cs&0xf_ffff)<<44 | (cs&0xf0_0000)<<20
	b = le.AppendUint64(b, u)
	return le.AppendUint64(b, c)
}

// DecodeCIV2 decodes a 24-byte V2 entry (BlobChunkInfoV2Ondisk):
//
//	uncomp_info u64 @0:  bits 0–31 uncompressed offset >> 12, bits 32–55 usize−1, bits 56–63 flags
//	comp_info   u64 @8:  bits 0–39 compressed offset, bits 40–63 csize (not minus one)
//	data        u64 @16: crc32 (low 32 bits) or zran/batch index (high) and offset (low)
func DecodeCIV2(b []byte) CIEntry {
	u := le.Uint64(b[0:])
	c := le.Uint64(b[8:])
	e := CIEntry{
		UncompressedOffset: (u & 0xffff_ffff) << 12,
		UncompressedSize:   uint32((u>>32)&ciSizeMask) + 1,
		CompressedOffset:   c & 0xff_ffff_ffff,
		CompressedSize:     uint32((c >> 40) & ciSizeMask),
		Flags:              uint8(u >> 56),
		Data:               le.Uint64(b[16:]),
	}
	e.Compressed = e.Flags&CIFlagCompressed != 0
	return e
}

// AppendCIV2 appends the 24-byte V2 encoding of e.
func AppendCIV2(b []byte, e CIEntry) []byte {
	flags := uint64(e.Flags)
	if e.Compressed {
		flags |= CIFlagCompressed
	}
	u := (e.UncompressedOffset>>12)&0xffff_ffff | (uint64(e.UncompressedSize-1)&ciSizeMask)<<32 | flags<<56
	c := e.CompressedOffset&0xff_ffff_ffff | (uint64(e.CompressedSize)&ciSizeMask)<<40
	b = le.AppendUint64(b, u)
	b = le.AppendUint64(b, c)
	return le.AppendUint64(b, e.Data)
}

// ---------------------------------------------------------------------------
// The blob as a "reverse tar": every section is followed by a 512-byte GNU tar
// header naming it, no padding between sections.
// ---------------------------------------------------------------------------

// Section names (TOC entry names and tar header names).
const (
	SectionBlob           = "image.blob"       // chunk data, starts at offset 0
	SectionBlobMeta       = "blob.meta"        // ci array ‖ BlobMetaHeader
	SectionBlobMetaHeader = "blob.meta.header" // TOC entry only: the header inside blob.meta
	SectionBlobDigest     = "blob.digest"      // 32-byte chunk digests in ci order
	SectionBootstrap      = "image.boot"       // zstd-compressed (or raw) bootstrap
	SectionTOC            = "rafs.blob.toc"    // TOC entries, last section
)

// TarHeaderSize is the size of one tar header block.
const TarHeaderSize = 512

// TOCEntrySize is the size of one TOC entry.
const TOCEntrySize = 128

// MaxTOCSize bounds the TOC section including its tar header: nydusd reads the
// TOC from the last 4096 bytes of the blob.
const MaxTOCSize = 4096

// TOCFlags are TOC entry flags (TocEntryFlags): the compression of the section.
type TOCFlags uint32

const (
	TOCCompressionNone     TOCFlags = 0x1
	TOCCompressionZstd     TOCFlags = 0x2
	TOCCompressionLZ4Block TOCFlags = 0x4
	tocCompressionMask     TOCFlags = 0xf
)

// Compressor maps the flags to a compressor (CompressUnknown if invalid).
func (f TOCFlags) Compressor() Compressor {
	if f&^tocCompressionMask != 0 {
		return CompressUnknown
	}
	switch f & tocCompressionMask {
	case TOCCompressionNone:
		return CompressNone
	case TOCCompressionZstd:
		return CompressZstd
	case TOCCompressionLZ4Block:
		return CompressLZ4Block
	}
	return CompressUnknown
}

// TOCEntry is one 128-byte entry of rafs.blob.toc (TocEntry). The TOC digest
// recorded in the blob table is sha256(all entries ‖ the TOC's tar header).
//
// Entries written by nydus-image, in order: image.blob (none; digest =
// sha256(chunk data ‖ its tar header) — a nydus-image quirk; offset 0, or the end
// of the chunk data in v2.2-era blobs), blob.meta (ci compressor; digest of the
// uncompressed ci), blob.meta.header (none; 4096), blob.digest (none), image.boot
// (zstd; digest of the uncompressed bootstrap).
type TOCEntry struct {
	Flags              TOCFlags // @0
	Reserved1          uint32   // @4
	Name               [16]byte // @8 NUL padded
	UncompressedDigest [32]byte // @24 sha256 of the uncompressed content
	CompressedOffset   uint64   // @56
	CompressedSize     uint64   // @64
	UncompressedSize   uint64   // @72
	Reserved2          [48]byte // @80
}

// UnmarshalBinary decodes a 128-byte TOC entry.
func (t *TOCEntry) UnmarshalBinary(b []byte) error {
	if len(b) < TOCEntrySize {
		return errShort
	}
	t.Flags = TOCFlags(le.Uint32(b[0:]))
	t.Reserved1 = le.Uint32(b[4:])
	copy(t.Name[:], b[8:24])
	copy(t.UncompressedDigest[:], b[24:56])
	t.CompressedOffset = le.Uint64(b[56:])
	t.CompressedSize = le.Uint64(b[64:])
	t.UncompressedSize = le.Uint64(b[72:])
	copy(t.Reserved2[:], b[80:128])
	return nil
}

// AppendBinary appends the 128-byte encoding.
func (t *TOCEntry) AppendBinary(b []byte) ([]byte, error) {
	b = le.AppendUint32(b, uint32(t.Flags))
	b = le.AppendUint32(b, t.Reserved1)
	b = append(b, t.Name[:]...)
	b = append(b, t.UncompressedDigest[:]...)
	b = le.AppendUint64(b, t.CompressedOffset)
	b = le.AppendUint64(b, t.CompressedSize)
	b = le.AppendUint64(b, t.UncompressedSize)
	return append(b, t.Reserved2[:]...), nil
}

// MarshalBinary returns the 128-byte encoding.
func (t *TOCEntry) MarshalBinary() ([]byte, error) { return t.AppendBinary(nil) }

// EntryName returns the name, NULs trimmed.
func (t *TOCEntry) EntryName() string { return strings.TrimRight(string(t.Name[:]), "\x00") }

// SectionHeader returns the 512-byte GNU tar header nydus-image writes after a
// section: name, typeflag '0', size as 11 octal digits + NUL, mtime
// "00000000000\0", mode/uid/gid all NUL, magic "ustar " + version " \0", checksum
// as 7 octal digits + NUL.
func SectionHeader(name string, size int64) [TarHeaderSize]byte {
	var h [TarHeaderSize]byte
	copy(h[0:100], name)
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], "00000000000\x00")
	h[156] = '0'
	copy(h[257:265], "ustar  \x00")
	for i := 148; i < 156; i++ {
		h[i] = ' '
	}
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%07o\x00", sum))
	return h
}

// ParseSectionHeader decodes a section tar header: it must be a regular-file
// header (typeflag '0' or NUL) with a valid checksum, a name and a size.
func ParseSectionHeader(h []byte) (name string, size int64, err error) {
	if len(h) < TarHeaderSize {
		return "", 0, errShort
	}
	h = h[:TarHeaderSize]
	want, ok := parseOctal(h[148:156])
	if !ok {
		return "", 0, errors.New("bad tar header checksum field")
	}
	var unsigned, signed int64
	for i, c := range h {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	if want != unsigned && want != signed {
		return "", 0, errors.New("tar header checksum mismatch")
	}
	if h[156] != '0' && h[156] != 0 {
		return "", 0, fmt.Errorf("tar header type %q is not a regular file", h[156])
	}
	n := h[0:100]
	if i := indexByte(n, 0); i >= 0 {
		n = n[:i]
	}
	if len(n) == 0 {
		return "", 0, errors.New("tar header without a name")
	}
	size, ok = parseOctal(h[124:136])
	if !ok || size < 0 {
		return "", 0, errors.New("bad tar header size field")
	}
	return string(n), size, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// parseOctal parses a NUL/space terminated octal field (no base-256).
func parseOctal(b []byte) (int64, bool) {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	var v int64
	digits := 0
	for ; i < len(b); i++ {
		c := b[i]
		if c == 0 || c == ' ' {
			break
		}
		if c < '0' || c > '7' {
			return 0, false
		}
		if v > (1<<62)>>3 {
			return 0, false
		}
		v = v<<3 | int64(c-'0')
		digits++
	}
	for ; i < len(b); i++ {
		if b[i] != 0 && b[i] != ' ' {
			return 0, false
		}
	}
	return v, digits > 0
}

// ---------------------------------------------------------------------------
// RAFS v5 (recognised only).
// ---------------------------------------------------------------------------

// RAFS v5 superblock (8192 bytes at offset 0), for recognition: magic u32 @0 =
// RAFSV5Magic, fs_version u32 @4 = RAFSV5Version, sb_size u32 @8 = 8192,
// block_size u32 @12, flags u64 @16, inodes_count u64 @24, ... Not EROFS.
const RAFSV5SuperBlockSize = 8192

// PlaceholderBlobID is the blob id nydus-image ≥ 2.3 writes into the bootstrap
// inlined in a per-layer blob; the real id (the layer digest) is known only
// after the blob is complete, and merge replaces it.
var PlaceholderBlobID = strings.Repeat("x", BlobIDLen)

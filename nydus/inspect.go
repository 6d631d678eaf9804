package nydus

import (
	"encoding/hex"
	"io"
	"time"
)

// Info holds facts about a bootstrap (Inspect).
type Info struct {
	FSVersion   int       `json:"fsVersion"` // 6
	Flags       uint64    `json:"flags"`
	FlagNames   []string  `json:"flagNames"`
	Compressor  string    `json:"compressor"`
	Digester    string    `json:"digester"`
	ChunkSize   uint32    `json:"chunkSize"`
	RootNid     uint16    `json:"rootNid"`
	MetaBlkAddr uint32    `json:"metaBlkAddr"`
	BuildTime   time.Time `json:"buildTime"`
	// Inodes counts distinct inodes (nids) of the tree, Names counts names (root included).
	Inodes int `json:"inodes"`
	Names  int `json:"names"`
	// ByType counts names by type ("reg", "dir", "symlink", "char", "block", "fifo", "socket");
	// InodesByType counts distinct inodes (hard links counted once).
	ByType       map[string]int `json:"byType"`
	InodesByType map[string]int `json:"inodesByType"`
	// Hardlinks counts names that are second or later names of an inode.
	Hardlinks int `json:"hardlinks"`
	// TotalFileSize sums the sizes of distinct regular files.
	TotalFileSize uint64 `json:"totalFileSize"`
	// ChunkRefs is the number of chunk indexes of distinct regular files; ChunkTableEntries
	// the number of (unique) chunks in the chunk table.
	ChunkRefs         uint64     `json:"chunkRefs"`
	ChunkTableEntries int        `json:"chunkTableEntries"`
	PrefetchNids      int        `json:"prefetchNids"`
	Blobs             []BlobInfo `json:"blobs"`
}

// BlobInfo describes one blob of the blob table.
type BlobInfo struct {
	Index            int      `json:"index"`
	ID               string   `json:"id"`
	ChunkCount       uint32   `json:"chunkCount"`
	CompressedSize   uint64   `json:"compressedSize"`
	UncompressedSize uint64   `json:"uncompressedSize"`
	Compressor       string   `json:"compressor"`
	Digester         string   `json:"digester"`
	Features         uint32   `json:"features"`
	FeatureNames     []string `json:"featureNames"`
	CIOffset         uint64   `json:"ciOffset"`
	CICompressor     string   `json:"ciCompressor"`
	TOCDigest        string   `json:"tocDigest,omitempty"`
	TOCSize          uint32   `json:"tocSize,omitempty"`
}

var superFlagNames = []struct {
	f SuperFlags
	n string
}{
	{FlagCompressionNone, "COMPRESSION_NONE"}, {FlagCompressionLZ4, "COMPRESSION_LZ4"},
	{FlagHashBlake3, "HASH_BLAKE3"}, {FlagHashSHA256, "HASH_SHA256"},
	{FlagExplicitUIDGID, "EXPLICIT_UID_GID"}, {FlagHasXattr, "HAS_XATTR"},
	{FlagCompressionGzip, "COMPRESSION_GZIP"}, {FlagCompressionZstd, "COMPRESSION_ZSTD"},
	{FlagInlinedChunkDigest, "INLINED_CHUNK_DIGEST"}, {FlagTarfsMode, "TARFS_MODE"},
	{FlagEncryptionNone, "ENCRYPTION_NONE"}, {FlagEncryptionAES128XTS, "ENCRYPTION_AES_128_XTS"},
}

var blobFeatureNames = []struct {
	f BlobFeatures
	n string
}{
	{BlobAligned, "ALIGNED"}, {BlobInlinedFSMeta, "INLINED_FS_META"}, {BlobChunkInfoV2, "CHUNK_INFO_V2"},
	{BlobZran, "ZRAN"}, {BlobSeparate, "SEPARATE"}, {BlobInlinedChunkDigest, "INLINED_CHUNK_DIGEST"},
	{BlobTarfs, "TARFS"}, {BlobBatch, "BATCH"}, {BlobEncrypted, "ENCRYPTED"},
	{BlobChunkDictGenerated, "IS_CHUNKDICT_GENERATED"}, {BlobSeparatedPrefetch, "IS_SEPARATED_WITH_PREFETCH_FILES"},
	{BlobExternal, "EXTERNAL"}, {BlobHasTarHeader, "HAS_TAR_HEADER"}, {BlobHasTOC, "HAS_TOC"}, {BlobCapTarTOC, "CAP_TAR_TOC"},
}

// Names lists the set flag names.
func (f SuperFlags) Names() []string {
	var out []string
	for _, x := range superFlagNames {
		if f&x.f != 0 {
			out = append(out, x.n)
		}
	}
	return out
}

// Names lists the set feature names.
func (b BlobFeatures) Names() []string {
	var out []string
	for _, x := range blobFeatureNames {
		if b&x.f != 0 {
			out = append(out, x.n)
		}
	}
	return out
}

// Inspect parses a bootstrap (metadata only) and returns its facts.
func Inspect(bootstrap io.ReaderAt, size int64) (*Info, error) {
	f, err := Open(bootstrap, size, nil)
	if err != nil {
		return nil, err
	}
	return f.Info(), nil
}

// SuperBlock returns the EROFS superblock.
func (f *FS) SuperBlock() SuperBlock { return f.sb }

// SuperBlockExt returns the RAFS extended superblock.
func (f *FS) SuperBlockExt() SuperBlockExt { return f.ext }

// BlobTable returns the blob table entries.
func (f *FS) BlobTable() []BlobEntry { return append([]BlobEntry(nil), f.blobs...) }

// DeviceTable returns the device table entries.
func (f *FS) DeviceTable() []DeviceSlot { return append([]DeviceSlot(nil), f.devices...) }

// Info returns facts about the bootstrap.
func (f *FS) Info() *Info {
	i := &Info{
		FSVersion: 6, Flags: uint64(f.ext.Flags), FlagNames: f.ext.Flags.Names(),
		Compressor: f.ext.Flags.Compressor().String(), Digester: f.ext.Flags.Digester().String(),
		ChunkSize: f.ext.ChunkSize, RootNid: f.sb.RootNid, MetaBlkAddr: f.sb.MetaBlkAddr,
		BuildTime: time.Unix(int64(f.sb.BuildTime), int64(f.sb.BuildTimeNsec)).UTC(),
		Inodes:    len(f.inodes), ByType: map[string]int{}, InodesByType: map[string]int{},
		ChunkTableEntries: int(f.ext.ChunkTableSize / ChunkInfoSize),
		PrefetchNids:      len(f.prefetch),
	}
	seen := map[uint64]bool{}
	f.walkNodes(func(n *node) {
		i.Names++
		i.ByType[n.in.ftype.String()]++
		if n.link != nil {
			i.Hardlinks++
		} else {
			i.InodesByType[n.in.ftype.String()]++
		}
		if n.in.ftype == FileTypeReg && !seen[n.in.nid] {
			seen[n.in.nid] = true
			i.TotalFileSize += n.in.ino.Size
			i.ChunkRefs += n.in.nchunks
		}
	})
	for k, e := range f.blobs {
		b := BlobInfo{
			Index: k, ID: e.ID(), ChunkCount: e.ChunkCount,
			CompressedSize: e.CompressedSize, UncompressedSize: e.UncompressedSize,
			Compressor: Compressor(e.CompressionAlgo).String(), Digester: Digester(e.DigestAlgo).String(),
			Features: e.Features, FeatureNames: BlobFeatures(e.Features).Names(),
			CIOffset: e.CIOffset, CICompressor: Compressor(e.CICompressor).String(), TOCSize: e.BlobTOCSize,
		}
		if e.BlobTOCDigest != ([32]byte{}) {
			b.TOCDigest = hex.EncodeToString(e.BlobTOCDigest[:])
		}
		i.Blobs = append(i.Blobs, b)
	}
	return i
}

// LayerInfo holds facts about a per-layer Nydus blob (InspectLayer).
type LayerInfo struct {
	Size      int64          `json:"size"`
	Sections  []Section      `json:"sections"`
	TOC       []TOCEntryInfo `json:"toc,omitempty"`
	TOCDigest string         `json:"tocDigest,omitempty"`
	TOCSize   int64          `json:"tocSize,omitempty"`
	// Bootstrap describes the inlined bootstrap, nil if there is none.
	Bootstrap *Info `json:"bootstrap,omitempty"`
}

// TOCEntryInfo is a TOC entry in readable form.
type TOCEntryInfo struct {
	Name               string `json:"name"`
	Compressor         string `json:"compressor"`
	CompressedOffset   uint64 `json:"compressedOffset"`
	CompressedSize     uint64 `json:"compressedSize"`
	UncompressedSize   uint64 `json:"uncompressedSize"`
	UncompressedDigest string `json:"uncompressedDigest"`
}

// InspectLayer parses a per-layer Nydus blob: its sections, TOC and inlined bootstrap.
func InspectLayer(r io.ReaderAt, size int64) (*LayerInfo, error) {
	lb, err := ParseLayerBlob(r, size)
	if err != nil {
		return nil, err
	}
	li := &LayerInfo{Size: size, Sections: lb.Sections, TOCSize: lb.TOCSize}
	if lb.TOC != nil {
		li.TOCDigest = "sha256:" + hex.EncodeToString(lb.TOCDigest[:])
		for _, t := range lb.TOC {
			li.TOC = append(li.TOC, TOCEntryInfo{
				Name: t.EntryName(), Compressor: t.Flags.Compressor().String(),
				CompressedOffset: t.CompressedOffset, CompressedSize: t.CompressedSize, UncompressedSize: t.UncompressedSize,
				UncompressedDigest: "sha256:" + hex.EncodeToString(t.UncompressedDigest[:]),
			})
		}
	}
	if _, ok := lb.Section(SectionBootstrap); ok {
		f, err := lb.FS(nil, nil)
		if err != nil {
			return li, err
		}
		li.Bootstrap = f.Info()
	}
	return li, nil
}

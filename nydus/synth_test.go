package nydus

// A small RAFS v6 builder used only by tests, written from the layout in
// layout.go (it exercises the Marshal side of the on-disk structs). It covers
// what the fixtures do not: every file type, hard links, xattrs, whiteouts,
// multi-block and plain directories, compact inodes, lz4/none/zstd, sha256,
// small chunk sizes (multi-chunk files), chunk dedup, CRC32, ci V2, inlined
// bootstraps. The output is checked by our reader, by fsck.erofs and by the kernel.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

type synthEntry struct {
	path         string
	typ          FileType
	mode         uint32 // permission bits (07777)
	uid, gid     uint32
	mtime        int64
	nsec         uint32
	data         []byte
	target       string
	major, minor uint32
	xattrs       []Xattr
	link         string // hard link to this path
}

type synthOpts struct {
	chunkSize  uint32
	compressor Compressor
	digester   Digester
	compact    bool // compact inodes where the values fit
	inline     bool // bootstrap inlined in the blob (layer blob), placeholder blob id
	blobDigest bool // blob.digest section + INLINED_CHUNK_DIGEST
	crc        bool // CRC32 in the chunk table
	ciV2       bool
	ciZstd     bool // compress the ci array
	buildTime  uint64
	pow2Trick  bool // nydus-image's per-inode next_power_of_two chunk size for contiguous files
}

type synthInode struct {
	e        *synthEntry
	children []*synthName // dirs
	parent   *synthInode
	nid      uint64
	off      int64
	isize    int64
	xattr    []byte
	xcount   uint16
	layout   int
	size     uint64
	data     []byte // dirent blocks or symlink target (flat)
	tail     []byte
	plain    []byte // FLAT_PLAIN / full blocks
	blkaddr  uint32
	chunks   []ChunkIndex
	nlink    uint32
	ino      uint32
	compact  bool
	chunkFmt uint32
}

type synthName struct {
	name string
	in   *synthInode
}

type synthChunk struct {
	digest [32]byte
	ci     uint32
	coff   uint64
	csize  uint32
	uoff   uint64
	usize  uint32
	comp   bool
	crc    uint32
	foff   uint64
}

// lz4CompressBlock is a greedy LZ4 block compressor (last 5 bytes literals, last
// match starting ≥ 12 bytes before the end), for tests only.
func lz4CompressBlock(src []byte) []byte {
	var dst []byte
	emit := func(lit []byte, off, ml int) {
		t := byte(min(len(lit), 15)) << 4
		if ml > 0 {
			t |= byte(min(ml-4, 15))
		}
		dst = append(dst, t)
		if len(lit) >= 15 {
			n := len(lit) - 15
			for ; n >= 255; n -= 255 {
				dst = append(dst, 255)
			}
			dst = append(dst, byte(n))
		}
		dst = append(dst, lit...)
		if ml == 0 {
			return
		}
		dst = append(dst, byte(off), byte(off>>8))
		if ml-4 >= 15 {
			n := ml - 4 - 15
			for ; n >= 255; n -= 255 {
				dst = append(dst, 255)
			}
			dst = append(dst, byte(n))
		}
	}
	table := map[uint32]int{}
	anchor, i := 0, 0
	for i+12 < len(src) {
		seq := le.Uint32(src[i:])
		cand, ok := table[seq]
		table[seq] = i
		if ok && i-cand <= 65535 {
			ml := 4
			for i+ml < len(src)-5 && src[cand+ml] == src[i+ml] {
				ml++
			}
			emit(src[anchor:i], i-cand, ml)
			i += ml
			anchor = i
			continue
		}
		i++
	}
	emit(src[anchor:], 0, 0)
	return dst
}

func synthCompress(t testing.TB, algo Compressor, b []byte) []byte {
	switch algo {
	case CompressNone:
		return b
	case CompressLZ4Block:
		c := lz4CompressBlock(b)
		chk := make([]byte, len(b))
		if err := lz4DecompressBlock(c, chk); err != nil || !bytes.Equal(chk, b) {
			t.Fatalf("test lz4 compressor broken: %v", err)
		}
		return c
	case CompressZstd:
		enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		return enc.EncodeAll(b, nil)
	}
	t.Fatalf("compressor %v", algo)
	return nil
}

func alignUp(x, a int64) int64 { return (x + a - 1) / a * a }

// buildSynth builds a bootstrap and its blob. With o.inline the bootstrap is
// inlined in the blob (boot is then the raw bootstrap and blob the layer blob).
func buildSynth(t testing.TB, entries []synthEntry, o synthOpts) (boot, blob []byte) {
	t.Helper()
	if o.chunkSize == 0 {
		o.chunkSize = 4096
	}
	// ---- tree
	root := &synthInode{e: &synthEntry{path: ".", typ: FileTypeDir, mode: 0o755, mtime: 1700000000}}
	byPath := map[string]*synthInode{".": root}
	var getDir func(p string) *synthInode
	getDir = func(p string) *synthInode {
		if in, ok := byPath[p]; ok {
			return in
		}
		dir, base := splitPath(p)
		parent := getDir(dir)
		in := &synthInode{e: &synthEntry{path: p, typ: FileTypeDir, mode: 0o755, mtime: 1700000000}, parent: parent}
		parent.children = append(parent.children, &synthName{base, in})
		byPath[p] = in
		return in
	}
	for i := range entries {
		e := &entries[i]
		if e.path == "." {
			root.e = e
			continue
		}
		dir, base := splitPath(e.path)
		parent := getDir(dir)
		var in *synthInode
		if e.link != "" {
			in = byPath[e.link]
			if in == nil {
				t.Fatalf("link target %s not defined before %s", e.link, e.path)
			}
		} else if old, ok := byPath[e.path]; ok && e.typ == FileTypeDir {
			old.e = e
			continue
		} else {
			in = &synthInode{e: e, parent: parent}
		}
		byPath[e.path] = in
		parent.children = append(parent.children, &synthName{base, in})
	}
	// distinct inodes in DFS order (names sorted)
	var order []*synthInode
	seen := map[*synthInode]bool{}
	var visit func(in *synthInode)
	visit = func(in *synthInode) {
		if seen[in] {
			in.nlink++
			return
		}
		seen[in] = true
		in.nlink = 1
		order = append(order, in)
		slices.SortFunc(in.children, func(a, b *synthName) int { return strings.Compare(a.name, b.name) })
		for _, c := range in.children {
			visit(c.in)
		}
	}
	visit(root)
	for i, in := range order {
		in.ino = uint32(i + 1)
		if in.e.typ == FileTypeDir {
			in.nlink = 2
			for _, c := range in.children {
				if c.in.e.typ == FileTypeDir {
					in.nlink++
				}
			}
		}
	}

	// ---- chunks and blob data
	var chunks []*synthChunk
	byDigest := map[[32]byte]*synthChunk{}
	var data []byte
	var uoff uint64
	hasXattr := false
	for _, in := range order {
		if len(in.e.xattrs) > 0 {
			hasXattr = true
		}
		if in.e.typ != FileTypeReg {
			continue
		}
		cs := int(o.chunkSize)
		contiguous := true
		var first uint32
		for k := 0; k*cs < len(in.e.data); k++ {
			piece := in.e.data[k*cs : min(len(in.e.data), (k+1)*cs)]
			d, _ := chunkDigest(o.digester, piece)
			c, ok := byDigest[d]
			if !ok {
				c = &synthChunk{digest: d, ci: uint32(len(chunks)), uoff: uoff, usize: uint32(len(piece)), foff: uint64(k * cs), crc: crc32c(piece)}
				comp := synthCompress(t, o.compressor, piece)
				if o.compressor == CompressNone || len(comp) >= len(piece) {
					comp = piece
				} else {
					c.comp = true
				}
				c.coff, c.csize = uint64(len(data)), uint32(len(comp))
				data = append(data, comp...)
				uoff = uint64(alignUp(int64(uoff)+int64(len(piece)), BlockSize))
				chunks = append(chunks, c)
				byDigest[d] = c
			}
			blk := uint32(c.uoff / BlockSize)
			if k == 0 {
				first = blk
			} else if uint64(blk) != uint64(first)+uint64(k*cs/BlockSize) {
				contiguous = false
			}
			in.chunks = append(in.chunks, NewChunkIndex(0, c.ci, blk))
		}
		chunkSize := uint64(o.chunkSize)
		if o.pow2Trick && contiguous && uint64(len(in.e.data)) > chunkSize {
			chunkSize = 1 << bits.Len64(uint64(len(in.e.data))-1)
		}
		in.chunkFmt = ChunkFormatIndexes | uint32(bits.TrailingZeros64(chunkSize)-BlockBits)
	}

	// ---- the blob
	var ci []byte
	for _, c := range chunks {
		e := CIEntry{CompressedOffset: c.coff, CompressedSize: c.csize, UncompressedOffset: c.uoff, UncompressedSize: c.usize, Compressed: c.comp}
		if o.ciV2 {
			if o.crc {
				e.Flags, e.Data = CIFlagHasCRC32, uint64(c.crc)
			}
			ci = AppendCIV2(ci, e)
		} else {
			ci = AppendCIV1(ci, e)
		}
	}
	features := BlobAligned | BlobHasTarHeader | BlobHasTOC | BlobCapTarTOC
	if o.ciV2 {
		features |= BlobChunkInfoV2
	}
	if o.blobDigest {
		features |= BlobInlinedChunkDigest
	}
	if o.inline {
		features |= BlobInlinedFSMeta
	}
	ciStored, ciComp := ci, CompressNone
	if o.ciZstd && len(ci) > 0 {
		ciStored, ciComp = synthCompress(t, CompressZstd, ci), CompressZstd
	}
	var toc []TOCEntry
	addTOC := func(name string, flags TOCFlags, off, size int64, content []byte, usize int64) {
		var e TOCEntry
		e.Flags = flags
		copy(e.Name[:], name)
		e.UncompressedDigest = sha256.Sum256(content)
		e.CompressedOffset, e.CompressedSize, e.UncompressedSize = uint64(off), uint64(size), uint64(usize)
		toc = append(toc, e)
	}
	var out []byte
	appendSection := func(name string, b []byte) int64 {
		off := int64(len(out))
		out = append(out, b...)
		h := SectionHeader(name, int64(len(b)))
		out = append(out, h[:]...)
		return off
	}
	var ciOff int64
	var meta BlobMetaHeader
	if len(chunks) > 0 {
		appendSection(SectionBlob, data)
		addTOC(SectionBlob, TOCCompressionNone, 0, int64(len(data)), out[:len(data)+TarHeaderSize], int64(uoff))
		meta = BlobMetaHeader{Magic: BlobMetaMagic, Magic2: BlobMetaMagic, Features: uint32(features), CICompressor: uint32(ciComp),
			CIEntries: uint32(len(chunks)), CICompressedSize: uint64(len(ciStored)), CIUncompressedSize: uint64(len(ci))}
		ciOff = int64(len(out))
		meta.CIOffset = uint64(ciOff)
		hb, _ := meta.MarshalBinary()
		appendSection(SectionBlobMeta, append(bytes.Clone(ciStored), hb...))
		flag := TOCCompressionNone
		if ciComp == CompressZstd {
			flag = TOCCompressionZstd
		}
		addTOC(SectionBlobMeta, flag, ciOff, int64(len(ciStored)), ci, int64(len(ci)))
		addTOC(SectionBlobMetaHeader, TOCCompressionNone, ciOff+int64(len(ciStored)), BlobMetaHeaderSize, hb, BlobMetaHeaderSize)
		if o.blobDigest {
			var dg []byte
			for _, c := range chunks {
				dg = append(dg, c.digest[:]...)
			}
			off := appendSection(SectionBlobDigest, dg)
			addTOC(SectionBlobDigest, TOCCompressionNone, off, int64(len(dg)), dg, int64(len(dg)))
		}
	}
	blobPrefix := len(out)

	// ---- the bootstrap (needs blob id and TOC digest for a separate blob)
	makeBoot := func(blobID string, tocDigest [32]byte, tocSize uint32, compressedSize uint64) []byte {
		return synthBootstrap(t, o, root, order, chunks, blobID, tocDigest, tocSize, compressedSize, uoff, features, ciComp, uint64(ciOff), ci, ciStored, hasXattr)
	}
	finishTOC := func() {
		var tb []byte
		for i := range toc {
			tb, _ = toc[i].AppendBinary(tb)
		}
		appendSection(SectionTOC, tb)
	}
	if o.inline {
		boot = makeBoot(PlaceholderBlobID, [32]byte{}, 0, uint64(blobPrefix))
		comp := synthCompress(t, CompressZstd, boot)
		off := appendSection(SectionBootstrap, comp)
		addTOC(SectionBootstrap, TOCCompressionZstd, off, int64(len(comp)), boot, int64(len(boot)))
		finishTOC()
		return boot, out
	}
	finishTOC()
	tb := out[len(out)-TarHeaderSize-len(toc)*TOCEntrySize:]
	id := sha256.Sum256(out)
	boot = makeBoot(hex.EncodeToString(id[:]), sha256.Sum256(tb), uint32(len(tb)), uint64(len(out)))
	return boot, out
}

func synthBootstrap(t testing.TB, o synthOpts, root *synthInode, order []*synthInode, chunks []*synthChunk,
	blobID string, tocDigest [32]byte, tocSize uint32, compressedSize, usize uint64, features BlobFeatures,
	ciComp Compressor, ciOff uint64, ci, ciStored []byte, hasXattr bool) []byte {
	// pass 1: sizes and data of each inode (dirents need only names)
	for _, in := range order {
		e := in.e
		in.compact = o.compact && e.uid <= 0xffff && e.gid <= 0xffff && in.nlink <= 0xffff && int64(len(e.data)) < 1<<32 && e.mtime == int64(o.buildTime) && e.nsec == 0
		in.isize = InodeExtendedSize
		if in.compact {
			in.isize = InodeCompactSize
		}
		in.xattr, in.xcount, _ = AppendXattrs(nil, e.xattrs)
		switch e.typ {
		case FileTypeDir:
			in.data = nil // built in pass 3; size is known from names
			in.size = uint64(direntBytes(in))
		case FileTypeSymlink:
			in.data = []byte(e.target)
			in.size = uint64(len(e.target))
		case FileTypeReg:
			in.size = uint64(len(e.data))
			in.layout = LayoutChunkBased
		}
	}
	// pass 2: placement. meta area starts at block 2; nid 0..127 unused, root at nid 128.
	const metaBlk = 2
	meta := int64(metaBlk * BlockSize)
	off := meta + BlockSize
	for _, in := range order {
		fixed := in.isize + int64(len(in.xattr))
		var extra int64
		switch in.e.typ {
		case FileTypeReg:
			extra = alignUp(off+fixed, 8) - (off + fixed) + int64(len(in.chunks))*ChunkIndexSize
		case FileTypeDir, FileTypeSymlink:
			if in.size > 0 && int64(in.size) <= BlockSize-fixed {
				in.layout = LayoutFlatInline
				extra = int64(in.size)
				if off%BlockSize+fixed+extra > BlockSize { // inline data must not cross a block
					off = alignUp(off, BlockSize)
				}
			} else {
				in.layout = LayoutFlatPlain
			}
		}
		in.off = off
		in.nid = uint64((off - meta) / InodeSlotSize)
		off = alignUp(off+fixed+extra, InodeSlotSize)
	}
	// flat plain data blocks after the inodes
	blk := alignUp(off, BlockSize) / BlockSize
	for _, in := range order {
		if in.layout == LayoutFlatPlain && in.e.typ != FileTypeReg && in.size > 0 {
			in.blkaddr = uint32(blk)
			blk += alignUp(int64(in.size), BlockSize) / BlockSize
		}
	}
	chunkTbl := blk * BlockSize
	nct := int64(len(chunks))
	total := alignUp(chunkTbl+nct*ChunkInfoSize, BlockSize)
	if nct == 0 {
		total = chunkTbl
	}
	b := make([]byte, total)
	// pass 3: write inodes and data
	for _, in := range order {
		e := in.e
		if e.typ == FileTypeDir {
			in.data = direntBlocks(in)
			if uint64(len(in.data)) != in.size {
				t.Fatalf("dirent size %d ≠ %d", len(in.data), in.size)
			}
		}
		ino := Inode{Format: uint16(in.layout << 1), XattrICount: in.xcount, Mode: uint16(modeOf(e.typ) | e.mode),
			Nlink: in.nlink, Size: in.size, Ino: in.ino, UID: e.uid, GID: e.gid, Mtime: uint64(e.mtime), MtimeNsec: e.nsec}
		if !in.compact {
			ino.Format |= FormatExtended
		}
		switch e.typ {
		case FileTypeReg:
			ino.U = in.chunkFmt
		case FileTypeDir, FileTypeSymlink:
			ino.U = in.blkaddr
		default:
			ino.U = EncodeDev(e.major, e.minor)
		}
		ib, err := ino.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		p := in.off
		p += int64(copy(b[p:], ib))
		p += int64(copy(b[p:], in.xattr))
		switch {
		case e.typ == FileTypeReg:
			p = alignUp(p, 8)
			for _, c := range in.chunks {
				cb, _ := c.MarshalBinary()
				p += int64(copy(b[p:], cb))
			}
		case in.layout == LayoutFlatInline:
			copy(b[p:], in.data)
		case in.size > 0:
			copy(b[int64(in.blkaddr)*BlockSize:], in.data)
		}
	}
	// chunk table sorted by digest
	sorted := slices.Clone(chunks)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i].digest[:], sorted[j].digest[:]) < 0 })
	for i, c := range sorted {
		ct := ChunkInfo{Digest: c.digest, CompressedSize: c.csize, UncompressedSize: c.usize, CompressedOffset: c.coff,
			UncompressedOffset: c.uoff, FileOffset: c.foff, Index: c.ci}
		if c.comp {
			ct.Flags |= ChunkCompressed
		}
		if o.crc {
			ct.Flags |= ChunkHasCRC32
			ct.CRC32 = c.crc
		}
		cb, _ := ct.MarshalBinary()
		copy(b[chunkTbl+int64(i)*ChunkInfoSize:], cb)
	}
	// superblocks and tables
	nblobs := 0
	if len(chunks) > 0 {
		nblobs = 1
	}
	flags := FlagExplicitUIDGID
	flags |= map[Compressor]SuperFlags{CompressNone: FlagCompressionNone, CompressLZ4Block: FlagCompressionLZ4, CompressZstd: FlagCompressionZstd}[o.compressor]
	flags |= map[Digester]SuperFlags{DigestBlake3: FlagHashBlake3, DigestSHA256: FlagHashSHA256}[o.digester]
	if hasXattr {
		flags |= FlagHasXattr
	}
	if o.blobDigest {
		flags |= FlagInlinedChunkDigest
	}
	devBlocks := uint32(alignUp(int64(usize), BlockSize) / BlockSize)
	sb := SuperBlock{Magic: EROFSMagic, FeatureCompat: FeatureCompatRAFSV6, BlkSzBits: BlockBits, RootNid: uint16(root.nid),
		Inos: uint64(len(order)), BuildTime: o.buildTime, MetaBlkAddr: metaBlk, FeatureIncompat: FeatureIncompatRAFSV6,
		ExtraDevices: uint16(nblobs), DevtSlotOff: DeviceSlotOffset}
	if nblobs > 0 {
		sb.Blocks = devBlocks
	}
	ext := SuperBlockExt{Flags: flags, BlobTableOffset: BlockSize, BlobTableSize: uint32(nblobs * BlobEntrySize), ChunkSize: o.chunkSize,
		PrefetchTableOffset: uint64(BlockSize + nblobs*BlobEntrySize), PrefetchTableSize: 4}
	if nct > 0 {
		ext.ChunkTableOffset, ext.ChunkTableSize = uint64(chunkTbl), uint64(nct*ChunkInfoSize)
	}
	sbb, _ := sb.MarshalBinary()
	copy(b[SuperBlockOffset:], sbb)
	eb, _ := ext.MarshalBinary()
	copy(b[SuperBlockExtOffset:], eb)
	le.PutUint32(b[ext.PrefetchTableOffset:], uint32(root.nid))
	if nblobs > 0 {
		var d DeviceSlot
		SetBlobID(&d.BlobID, blobID)
		d.Blocks = devBlocks
		db, _ := d.MarshalBinary()
		copy(b[DeviceTableOffset:], db)
		be := BlobEntry{ChunkSize: o.chunkSize, ChunkCount: uint32(len(chunks)), CompressionAlgo: uint32(o.compressor),
			DigestAlgo: uint32(o.digester), Features: uint32(features), CompressedSize: compressedSize, UncompressedSize: usize,
			BlobTOCSize: tocSize, BlobTOCDigest: tocDigest, CICompressor: uint32(ciComp), CIOffset: ciOff,
			CICompressedSize: uint64(len(ciStored)), CIUncompressedSize: uint64(len(ci))}
		SetBlobID(&be.BlobID, blobID)
		bb, _ := be.MarshalBinary()
		copy(b[BlockSize:], bb)
	}
	return b
}

func modeOf(t FileType) uint32 {
	return map[FileType]uint32{FileTypeReg: ModeRegular, FileTypeDir: ModeDir, FileTypeSymlink: ModeSymlink,
		FileTypeChar: ModeChar, FileTypeBlock: ModeBlock, FileTypeFIFO: ModeFIFO, FileTypeSocket: ModeSocket}[t]
}

type synthDirent struct {
	name string
	nid  uint64
	typ  FileType
}

func synthDirents(in *synthInode) []synthDirent {
	parent := in
	if in.parent != nil {
		parent = in.parent
	}
	ds := []synthDirent{{".", in.nid, FileTypeDir}, {"..", parent.nid, FileTypeDir}}
	for _, c := range in.children {
		ds = append(ds, synthDirent{c.name, c.in.nid, c.in.e.typ})
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].name < ds[j].name })
	return ds
}

// direntBlocks packs dirents into 4 KiB blocks (the last one partial).
func direntBlocks(in *synthInode) []byte {
	ds := synthDirents(in)
	var out []byte
	for len(ds) > 0 {
		n, used := 0, 0
		for n < len(ds) && used+DirentSize+len(ds[n].name) <= BlockSize {
			used += DirentSize + len(ds[n].name)
			n++
		}
		blk := make([]byte, 0, BlockSize)
		nameOff := n * DirentSize
		for _, d := range ds[:n] {
			de := Dirent{Nid: d.nid, NameOff: uint16(nameOff), FileType: d.typ}
			blk, _ = de.AppendBinary(blk)
			nameOff += len(d.name)
		}
		for _, d := range ds[:n] {
			blk = append(blk, d.name...)
		}
		ds = ds[n:]
		if len(ds) > 0 {
			blk = append(blk, make([]byte, BlockSize-len(blk))...)
		}
		out = append(out, blk...)
	}
	return out
}

func direntBytes(in *synthInode) int { return len(direntBlocks(in)) }

// synthTree is the standard test tree: every type, hard links, xattrs, whiteouts, a big directory.
func synthTree(buildTime int64) []synthEntry {
	big := bytes.Repeat([]byte("0123456789abcdef nydus chunk data "), 1000) // 34000 bytes: 9 chunks of 4 KiB
	rnd := make([]byte, 10000)
	x := uint32(7)
	for i := range rnd {
		x = x*1103515245 + 12345
		rnd[i] = byte(x >> 16)
	}
	es := []synthEntry{
		{path: ".", typ: FileTypeDir, mode: 0o755, mtime: buildTime},
		{path: "bin", typ: FileTypeDir, mode: 0o755, uid: 0, gid: 0, mtime: 1600000000, nsec: 123456789},
		{path: "bin/sh", typ: FileTypeReg, mode: 0o4755, mtime: 1600000001, data: []byte("#!/bin/true\n")},
		{path: "bin/sh-link", link: "bin/sh"},
		{path: "bin/busybox", typ: FileTypeReg, mode: 0o755, mtime: 1600000002, data: big, xattrs: []Xattr{{"security.capability", capNetBindService}, {"user.comment", []byte("big file")}}},
		{path: "bin/busybox-dup", typ: FileTypeReg, mode: 0o644, mtime: 1600000002, data: big[:20000]}, // dedup'd chunks
		{path: "bin/random", typ: FileTypeReg, mode: 0o600, uid: 1000, gid: 1000, mtime: 1600000003, data: rnd},
		{path: "bin/empty", typ: FileTypeReg, mode: 0o644, mtime: buildTime},
		{path: "bin/ls", typ: FileTypeSymlink, mode: 0o777, mtime: 1600000004, target: "busybox"},
		{path: "bin/abs", typ: FileTypeSymlink, mode: 0o777, mtime: 1600000004, target: "/etc/passwd"},
		{path: "dev", typ: FileTypeDir, mode: 0o755, mtime: buildTime},
		{path: "dev/null", typ: FileTypeChar, mode: 0o666, mtime: 1600000005, major: 1, minor: 3},
		{path: "dev/sda", typ: FileTypeBlock, mode: 0o660, gid: 6, mtime: 1600000005, major: 8, minor: 0},
		{path: "dev/big", typ: FileTypeChar, mode: 0o600, mtime: 1600000005, major: 259, minor: 70000},
		{path: "dev/fifo", typ: FileTypeFIFO, mode: 0o644, mtime: 1600000005},
		{path: "dev/sock", typ: FileTypeSocket, mode: 0o755, mtime: 1600000005},
		{path: "etc", typ: FileTypeDir, mode: 0o755, mtime: 1600000006, xattrs: []Xattr{{"trusted.overlay.opaque", []byte("y")}}},
		{path: "etc/passwd", typ: FileTypeReg, mode: 0o644, mtime: 1600000007, data: []byte("root:x:0:0:root:/root:/bin/sh\n"), xattrs: []Xattr{{"user.a", nil}}},
		{path: "etc/passwd.hard", link: "etc/passwd"},
		{path: "etc/.wh.shadow", typ: FileTypeReg, mode: 0o644, mtime: buildTime},
		{path: "etc/gone", typ: FileTypeChar, mode: 0o600, mtime: buildTime}, // overlayfs whiteout (0/0)
		{path: "opt/.wh..wh..opq", typ: FileTypeReg, mode: 0o644, mtime: buildTime},
		{path: "sticky", typ: FileTypeDir, mode: 0o1777, mtime: 1600000008},
	}
	for i := 0; i < 300; i++ {
		es = append(es, synthEntry{path: fmt.Sprintf("many/file-with-a-rather-long-name-%04d", i), typ: FileTypeReg, mode: 0o644,
			mtime: buildTime, data: []byte(fmt.Sprintf("content %d\n", i%7))})
	}
	return es
}

// capNetBindService is a valid VFS_CAP_REVISION_2 value (cap_net_bind_service+ep);
// the kernel refuses to return malformed capability xattrs.
var capNetBindService = []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

var synthConfigs = []struct {
	name string
	o    synthOpts
}{
	{"zstd-blake3", synthOpts{compressor: CompressZstd, digester: DigestBlake3, blobDigest: true, crc: true}},
	{"lz4-sha256-compact", synthOpts{compressor: CompressLZ4Block, digester: DigestSHA256, compact: true, ciZstd: true}},
	{"none-v2-crc", synthOpts{compressor: CompressNone, digester: DigestBlake3, ciV2: true, crc: true, chunkSize: 8192}},
	{"zstd-1MiB-pow2", synthOpts{compressor: CompressZstd, digester: DigestBlake3, chunkSize: 1 << 20, pow2Trick: true, blobDigest: true}},
	{"inline-layer", synthOpts{compressor: CompressZstd, digester: DigestBlake3, inline: true, blobDigest: true}},
}

const synthBuildTime = 1690000000

func buildStd(t testing.TB, o synthOpts) (boot, blob []byte) {
	o.buildTime = synthBuildTime
	return buildSynth(t, synthTree(synthBuildTime), o)
}

func openSynth(t testing.TB, o synthOpts, boot, blob []byte) *FS {
	t.Helper()
	var f *FS
	var err error
	if o.inline {
		f, err = OpenLayer(bytes.NewReader(blob), int64(len(blob)), nil)
	} else {
		f, err = Open(bytes.NewReader(boot), int64(len(boot)), anyResolver(blob))
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}

package nydus

// The RAFS v6 bootstrap writer shared by Pack (one layer) and Merge (all
// layers). It takes an in-memory tree of wInodes whose regular files point at
// chunks of the blobs in a blob list, and lays it out as nydus-image does:
//
//	0      1024 zero bytes
//	1024   SuperBlock, SuperBlockExt
//	1408   DeviceSlot × nblobs
//	≥4096  BlobEntry × nblobs (4 KiB aligned), prefetch nids right after
//	meta   4 KiB aligned; the first meta block is left empty so the root is nid 128
//	       inodes in breadth-first order (names sorted bytewise), each a 64-byte
//	       extended inode + inline xattrs + chunk indexes (regular files) or
//	       inline data (directories and symlinks whose data fits after the inode
//	       in the same 4 KiB block)
//	...    4 KiB blocks of larger directories and symlinks (FLAT_PLAIN)
//	...    chunk info table (ChunkInfo × referenced chunks, sorted by digest,
//	       blob, ci index), 4 KiB aligned; the file is padded to 4 KiB
//
// Everything is derived from the tree and the blob list alone, in a fixed
// order, so equal inputs give equal bytes.

import (
	"bytes"
	"fmt"
	"math/bits"
	"path"
	"slices"
	"strings"
)

// wInode is one inode of a bootstrap being written. Hard links are several
// names (map entries) holding the same *wInode; directories have exactly one.
type wInode struct {
	mode     uint32 // S_IFMT type bits | permission bits (07777)
	uid, gid uint32
	mtime    int64
	nsec     uint32
	size     uint64   // regular files
	rdev     uint32   // devices, fifos, sockets (Linux new_encode_dev)
	target   string   // symlinks
	xattrs   []Xattr  // sorted by name, names unique
	chunks   []wChunk // regular files: ceil(size / chunk size) entries
	children map[string]*wInode

	// layout, filled by writeBootstrap
	seen    bool
	ino     uint32
	nlink   uint32
	nid     uint64
	off     int64
	xattr   []byte
	xcount  uint16
	layout  int
	dsize   uint64 // data size (dirents, symlink target)
	data    []byte // directory blocks or symlink target
	blkaddr uint32
	parent  *wInode // directories: the directory holding it (root: itself)
}

func (in *wInode) isDir() bool { return in.mode&ModeTypeMask == ModeDir }
func (in *wInode) isReg() bool { return in.mode&ModeTypeMask == ModeRegular }

// wChunk is one chunk of a regular file: an index into the blob list and a ci
// index into that blob's chunk list.
type wChunk struct {
	blob uint32
	ci   uint32
}

// wBlob is one blob of the bootstrap's blob table with the chunks files may
// reference, by ci index: all of them in chunks (Pack), or those a layer's
// chunk table lists in byCI (Merge). ChunkInfo.Index is the ci index;
// BlobIndex is set by the writer. Only referenced chunks go into the chunk table.
type wBlob struct {
	entry  BlobEntry
	chunks []ChunkInfo
	byCI   map[uint32]*ChunkInfo
}

// chunk returns the chunk with ci index ci, nil if unknown.
func (b *wBlob) chunk(ci uint32) *ChunkInfo {
	if b.byCI != nil {
		return b.byCI[ci]
	}
	if uint64(ci) < uint64(len(b.chunks)) {
		return &b.chunks[ci]
	}
	return nil
}

type bootParams struct {
	root      *wInode
	chunkSize uint32
	// flags holds the compressor, digester, EXPLICIT_UID_GID and encryption
	// flags; HAS_XATTR and INLINED_CHUNK_DIGEST are computed.
	flags SuperFlags
	blobs []wBlob
	// prefetch lists absolute paths whose inodes are prefetched (nydus-image
	// --prefetch-policy fs); nil means none.
	prefetch []string
}

// newDir returns a directory inode with default metadata (the metadata
// nydus-image gives directories a tar stream implies but does not contain).
func newDir() *wInode {
	return &wInode{mode: ModeDir | 0o755, children: map[string]*wInode{}}
}

func sortedNames(m map[string]*wInode) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// prefetchPatterns normalises prefetch patterns as nydus-image does: absolute
// paths only, cleaned, a pattern covered by an earlier one (itself or a
// parent) dropped, order kept.
func prefetchPatterns(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range in {
		p = strings.TrimSpace(p)
		if !strings.HasPrefix(p, "/") {
			continue
		}
		p = path.Clean(p)
		covered := false
		for q := p; ; q = path.Dir(q) {
			if seen[q] {
				covered = true
				break
			}
			if q == "/" {
				break
			}
		}
		if !covered {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// lookupPath resolves an absolute path in the tree (no symlinks followed).
func lookupPath(root *wInode, p string) *wInode {
	cur := root
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		if cur.children == nil {
			return nil
		}
		cur = cur.children[part]
		if cur == nil {
			return nil
		}
	}
	return cur
}

// writeBootstrap lays out and encodes the bootstrap.
func writeBootstrap(p *bootParams) ([]byte, error) {
	cs := p.chunkSize
	if cs < MinChunkSize || cs > MaxChunkSize || cs&(cs-1) != 0 {
		return nil, fmt.Errorf("nydus: chunk size %d is not a power of two in [4 KiB, 16 MiB]", cs)
	}
	if len(p.blobs) > MaxBlobs-1 {
		return nil, fmt.Errorf("nydus: %d blobs (at most %d)", len(p.blobs), MaxBlobs-1)
	}
	root := p.root
	root.parent = root

	// ---- inodes in breadth-first order, names sorted; nlink, ino
	order := []*wInode{root}
	root.seen = true
	hasXattr := len(root.xattrs) > 0
	for i := 0; i < len(order); i++ {
		in := order[i]
		if !in.isDir() {
			continue
		}
		in.nlink = 2
		for _, name := range sortedNames(in.children) {
			c := in.children[name]
			if c.isDir() {
				in.nlink++
				if c.seen {
					return nil, fmt.Errorf("nydus: directory %q reached twice", name)
				}
				c.parent = in
			}
			if !c.seen {
				c.seen = true
				c.nlink = 0
				order = append(order, c)
				if len(c.xattrs) > 0 {
					hasXattr = true
				}
			} else {
				c.nlink++
			}
		}
	}
	for i, in := range order {
		in.ino = uint32(i + 1)
		if !in.isDir() {
			in.nlink++ // the first name
		}
		in.seen = false // leave the tree reusable
	}
	if uint64(len(order)) > 1<<32-1 {
		return nil, fmt.Errorf("nydus: %d inodes", len(order))
	}

	// ---- per-inode sizes and data
	for _, in := range order {
		var err error
		in.xattr, in.xcount, err = AppendXattrs(nil, in.xattrs)
		if err != nil {
			return nil, err
		}
		in.layout = LayoutFlatPlain
		in.data, in.dsize = nil, 0
		switch in.mode & ModeTypeMask {
		case ModeDir:
			in.dsize = uint64(len(direntData(in))) // the length does not depend on the nids
		case ModeSymlink:
			if len(in.target) == 0 || len(in.target) > MaxSymlinkLen {
				return nil, fmt.Errorf("nydus: symlink target of %d bytes", len(in.target))
			}
			in.data = []byte(in.target)
			in.dsize = uint64(len(in.data))
		case ModeRegular:
			in.layout = LayoutChunkBased
			want := (in.size + uint64(cs) - 1) / uint64(cs)
			if uint64(len(in.chunks)) != want {
				return nil, fmt.Errorf("nydus: file of %d bytes has %d chunks, want %d", in.size, len(in.chunks), want)
			}
		}
	}

	// ---- table placement
	nblobs := len(p.blobs)
	blobTableOff := alignUp64(DeviceTableOffset+DeviceSlotSize*int64(nblobs), BlockSize)
	blobTableSize := int64(BlobEntrySize * nblobs)
	var prefetchIn []*wInode
	if nblobs > 0 {
		for _, pat := range prefetchPatterns(p.prefetch) {
			if in := lookupPath(root, pat); in != nil && !slices.Contains(prefetchIn, in) {
				prefetchIn = append(prefetchIn, in)
			}
		}
	}
	prefetchOff := blobTableOff + blobTableSize
	meta := alignUp64(prefetchOff+PrefetchEntrySize*int64(len(prefetchIn)), BlockSize)

	// ---- inode placement
	off := meta + BlockSize // root at nid 128, as nydus-image
	for _, in := range order {
		fixed := int64(InodeExtendedSize + len(in.xattr))
		var extra int64
		switch {
		case in.isReg():
			extra = int64(len(in.chunks)) * ChunkIndexSize
		case in.dsize > 0 && int64(in.dsize) <= BlockSize-fixed:
			in.layout = LayoutFlatInline
			extra = int64(in.dsize)
		}
		// keep the inode, its xattrs and inline data in one block when they fit
		// one (inline data must; the rest is for readers that map single blocks)
		need := fixed
		if in.layout == LayoutFlatInline {
			need += extra
		}
		if need <= BlockSize && off%BlockSize+need > BlockSize {
			off = alignUp64(off, BlockSize)
		}
		in.off = off
		in.nid = uint64(off-meta) / InodeSlotSize
		end := off + fixed
		if in.isReg() {
			end = alignUp64(end, ChunkIndexSize)
		}
		off = alignUp64(end+extra, InodeSlotSize)
	}
	if root.nid > 0xffff {
		return nil, fmt.Errorf("nydus: root nid %d does not fit 16 bits", root.nid)
	}
	blk := alignUp64(off, BlockSize) / BlockSize
	for _, in := range order {
		if in.layout == LayoutFlatPlain && in.dsize > 0 {
			if blk > 1<<32-1 {
				return nil, fmt.Errorf("nydus: bootstrap too large")
			}
			in.blkaddr = uint32(blk)
			blk += alignUp64(int64(in.dsize), BlockSize) / BlockSize
		}
	}

	// ---- referenced chunks
	type ref struct{ blob, ci uint32 }
	used := map[ref]bool{}
	var refs []ref
	for _, in := range order {
		for _, c := range in.chunks {
			if int(c.blob) >= nblobs {
				return nil, fmt.Errorf("nydus: chunk refers to blob %d of %d", c.blob, nblobs)
			}
			if p.blobs[c.blob].chunk(c.ci) == nil {
				return nil, fmt.Errorf("nydus: chunk refers to unknown ci %d of blob %d", c.ci, c.blob)
			}
			if k := (ref{c.blob, c.ci}); !used[k] {
				used[k] = true
				refs = append(refs, k)
			}
		}
	}
	slices.SortFunc(refs, func(a, b ref) int {
		if c := bytes.Compare(p.blobs[a.blob].chunk(a.ci).Digest[:], p.blobs[b.blob].chunk(b.ci).Digest[:]); c != 0 {
			return c
		}
		if a.blob != b.blob {
			return int(a.blob) - int(b.blob)
		}
		return int(a.ci) - int(b.ci)
	})
	chunkTableOff := blk * BlockSize
	total := chunkTableOff
	if len(refs) > 0 {
		total = alignUp64(chunkTableOff+int64(len(refs))*ChunkInfoSize, BlockSize)
	}

	// ---- encode
	b := make([]byte, total)
	for _, in := range order {
		if in.isDir() {
			in.data = direntData(in)
		}
		ino := Inode{
			Format: FormatExtended | uint16(in.layout<<1), XattrICount: in.xcount, Mode: uint16(in.mode),
			Nlink: in.nlink, Ino: in.ino, UID: in.uid, GID: in.gid, Mtime: uint64(in.mtime), MtimeNsec: in.nsec,
		}
		switch in.mode & ModeTypeMask {
		case ModeRegular:
			ino.Size = in.size
			ino.U = ChunkFormatIndexes | uint32(bits.TrailingZeros32(cs)-BlockBits)
		case ModeDir, ModeSymlink:
			ino.Size = in.dsize
			ino.U = in.blkaddr
		case ModeChar, ModeBlock, ModeFIFO, ModeSocket:
			ino.U = in.rdev
		}
		ib, err := ino.AppendBinary(b[in.off:in.off])
		if err != nil {
			return nil, err
		}
		pos := in.off + int64(len(ib))
		pos += int64(copy(b[pos:], in.xattr))
		switch {
		case in.isReg():
			pos = alignUp64(pos, ChunkIndexSize)
			for _, c := range in.chunks {
				ci := p.blobs[c.blob].chunk(c.ci)
				idx := NewChunkIndex(c.blob, c.ci, uint32(ci.UncompressedOffset/BlockSize))
				idx.AppendBinary(b[pos:pos])
				pos += ChunkIndexSize
			}
		case in.layout == LayoutFlatInline:
			copy(b[pos:], in.data)
		case in.dsize > 0:
			copy(b[int64(in.blkaddr)*BlockSize:], in.data)
		}
		in.data = nil
	}
	for i, r := range refs {
		c := *p.blobs[r.blob].chunk(r.ci)
		c.BlobIndex, c.Index = r.blob, r.ci
		o := chunkTableOff + int64(i)*ChunkInfoSize
		c.AppendBinary(b[o:o])
	}
	for i, in := range prefetchIn {
		if in.nid > 1<<32-1 {
			return nil, fmt.Errorf("nydus: prefetch nid %d does not fit 32 bits", in.nid)
		}
		le.PutUint32(b[prefetchOff+int64(i)*PrefetchEntrySize:], uint32(in.nid))
	}

	// ---- blob table and device table
	var devBlocks uint64
	inlinedDigest := true
	mapped := uint64(total)
	for i := range p.blobs {
		e := p.blobs[i].entry
		e.BlobIndex = uint32(i)
		e.ChunkSize = cs
		if BlobFeatures(e.Features)&BlobInlinedChunkDigest == 0 {
			inlinedDigest = false
		}
		id := e.ID()
		if len(id) != BlobIDLen {
			return nil, fmt.Errorf("nydus: blob %d: id %q is not 64 characters", i, id)
		}
		cnt := e.UncompressedSize / BlockSize
		if cnt == 0 || cnt > 1<<32-1 || e.UncompressedSize%BlockSize != 0 {
			return nil, fmt.Errorf("nydus: blob %s: uncompressed size %d", id, e.UncompressedSize)
		}
		const seg = 512 << 10 // nydus-image aligns the flat-device address to 512 KiB
		m := (mapped + seg - 1) &^ (seg - 1) / BlockSize
		if m > 1<<32-1 {
			return nil, fmt.Errorf("nydus: flat device address overflows")
		}
		mapped = (m + cnt) * BlockSize
		devBlocks += cnt
		d := DeviceSlot{BlobID: e.BlobID, Blocks: uint32(cnt), MappedBlkAddr: uint32(m)}
		d.AppendBinary(b[DeviceTableOffset+i*DeviceSlotSize : DeviceTableOffset+i*DeviceSlotSize])
		o := blobTableOff + int64(i)*BlobEntrySize
		e.AppendBinary(b[o:o])
	}
	if devBlocks > 1<<32-1 {
		return nil, fmt.Errorf("nydus: %d device blocks", devBlocks)
	}
	flags := p.flags &^ (FlagHasXattr | FlagInlinedChunkDigest)
	if hasXattr {
		flags |= FlagHasXattr
	}
	if inlinedDigest {
		flags |= FlagInlinedChunkDigest
	}
	sb := SuperBlock{
		Magic: EROFSMagic, FeatureCompat: FeatureCompatRAFSV6, BlkSzBits: BlockBits, RootNid: uint16(root.nid),
		Inos: uint64(len(order)), Blocks: uint32(devBlocks), MetaBlkAddr: uint32(meta / BlockSize),
		FeatureIncompat: FeatureIncompatRAFSV6, ExtraDevices: uint16(nblobs), DevtSlotOff: DeviceSlotOffset,
	}
	ext := SuperBlockExt{
		Flags: flags, BlobTableOffset: uint64(blobTableOff), BlobTableSize: uint32(blobTableSize), ChunkSize: cs,
	}
	if len(refs) > 0 {
		ext.ChunkTableOffset, ext.ChunkTableSize = uint64(chunkTableOff), uint64(len(refs))*ChunkInfoSize
	}
	if len(prefetchIn) > 0 {
		ext.PrefetchTableOffset, ext.PrefetchTableSize = uint64(prefetchOff), uint32(len(prefetchIn)*PrefetchEntrySize)
	}
	sb.AppendBinary(b[SuperBlockOffset:SuperBlockOffset])
	ext.AppendBinary(b[SuperBlockExtOffset:SuperBlockExtOffset])
	return b, nil
}

func alignUp64(x, a int64) int64 { return (x + a - 1) / a * a }

// direntData encodes a directory's dirent blocks: ".", ".." and the children,
// sorted bytewise, packed into 4 KiB blocks (a dirent never spans blocks); the
// last block is partial.
func direntData(in *wInode) []byte {
	type ent struct {
		name string
		c    *wInode
	}
	ents := make([]ent, 0, len(in.children)+2)
	ents = append(ents, ent{".", in}, ent{"..", in.parent})
	for name, c := range in.children {
		ents = append(ents, ent{name, c})
	}
	slices.SortFunc(ents, func(a, b ent) int { return strings.Compare(a.name, b.name) })
	var out []byte
	for len(ents) > 0 {
		n, used := 0, 0
		for n < len(ents) && used+DirentSize+len(ents[n].name) <= BlockSize {
			used += DirentSize + len(ents[n].name)
			n++
		}
		start := len(out)
		nameOff := n * DirentSize
		for _, e := range ents[:n] {
			d := Dirent{Nid: e.c.nid, NameOff: uint16(nameOff), FileType: FileTypeOfMode(e.c.mode)}
			out, _ = d.AppendBinary(out)
			nameOff += len(e.name)
		}
		for _, e := range ents[:n] {
			out = append(out, e.name...)
		}
		ents = ents[n:]
		if len(ents) > 0 {
			out = append(out, make([]byte, BlockSize-(len(out)-start))...)
		}
	}
	return out
}

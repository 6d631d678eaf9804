package nydus

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// LayerBootstrap is one layer given to Merge, bottom layer first.
type LayerBootstrap struct {
	// BlobID is the layer's blob id: the hex sha256 of its Nydus blob layer
	// (the layer digest without "sha256:"). It replaces the placeholder id of
	// the layer's own blob in the bootstrap. It may be empty for a layer
	// without file data (a bootstrap with no blob).
	BlobID string
	// Bootstrap is the layer's RAFS v6 bootstrap, uncompressed: PackResult.Bootstrap
	// or LayerBlob.Bootstrap of a pulled blob layer.
	Bootstrap []byte
	// BlobSize, TOCDigest and TOCSize describe the blob when it is at hand
	// (nydus-image merge fills them when it can read the blob); zero values
	// keep what the layer's bootstrap records (compressed size = where the
	// inlined bootstrap starts, no TOC digest), as nydus-snapshotter's merge
	// of bootstraps alone does.
	BlobSize  int64
	TOCDigest [32]byte
	TOCSize   uint32
	// ImplicitDirs are directories the layer's tar did not name (PackResult.ImplicitDirs):
	// they do not change the metadata of the same directory in a lower layer.
	// Unknown for a pulled blob: then every directory of the layer counts as
	// named, as in nydus-image merge.
	ImplicitDirs []string
}

// LayerBootstrapFromBlob reads the Merge input out of a Nydus blob layer (as
// pulled from a registry). An empty blobID is computed as the sha256 of the blob.
func LayerBootstrapFromBlob(r io.ReaderAt, size int64, blobID string) (LayerBootstrap, error) {
	lb, err := ParseLayerBlob(r, size)
	if err != nil {
		return LayerBootstrap{}, err
	}
	boot, err := lb.Bootstrap(0)
	if err != nil {
		return LayerBootstrap{}, err
	}
	if blobID == "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
			return LayerBootstrap{}, fmt.Errorf("nydus: hashing blob: %w", err)
		}
		blobID = hex.EncodeToString(h.Sum(nil))
	}
	l := LayerBootstrap{BlobID: blobID, Bootstrap: boot, BlobSize: size}
	if lb.TOC != nil {
		l.TOCDigest, l.TOCSize = lb.TOCDigest, uint32(lb.TOCSize)
	}
	return l, nil
}

// MergeOptions tune Merge.
type MergeOptions struct {
	// PrefetchPatterns as in PackOptions: nil means {"/"}, an empty non-nil
	// slice no prefetch table (nydus-image merge keeps a prefetch table only
	// when patterns are given to it; nydus-snapshotter gives "/" by default).
	PrefetchPatterns []string
	// KeepAllBlobs lists the blob of every layer with file data in the blob
	// table, in layer order, even when upper layers deleted all its files
	// (nydus-image merge drops such blobs; both are valid images).
	KeepAllBlobs bool
}

// MergeResult is a merged bootstrap.
type MergeResult struct {
	// Bootstrap is the merged RAFS v6 bootstrap (the image/image.boot of the
	// bootstrap layer, see BootstrapLayerTar).
	Bootstrap []byte
	// BlobIDs lists the blob table: the blobs of the layers, bottom first, that
	// files of the merged tree still use (a layer without file data, or whose
	// files are all deleted by upper layers, has none, as with nydus-image merge,
	// unless MergeOptions.KeepAllBlobs; its blob layer may stay in the manifest).
	BlobIDs []string
	// Inodes is the number of inodes of the merged tree.
	Inodes int
}

// Merge builds the bootstrap of a whole image from its layers' bootstraps,
// bottom layer first, as nydus-image merge does: the trees are overlaid in
// order, an upper entry replacing the lower one (directories merge: upper
// metadata, union of contents); OCI whiteouts of each layer apply to the
// layers below it before the layer's own entries are added — ".wh.<name>"
// removes <name>, ".wh..wh..opq" empties the directory — and are not kept;
// other ".wh..wh." names are dropped. Files keep pointing at the chunks of
// their own layer's blob, under the layer's blob id. All layers must share
// chunk size and digester; the superblock's compressor flag is the top
// layer's (each blob records its own). Overlayfs-style whiteouts (character
// devices 0/0, trusted.overlay.opaque) are kept as ordinary entries.
func Merge(layers []LayerBootstrap, opts MergeOptions) (*MergeResult, error) {
	if len(layers) == 0 {
		return nil, packErr(CodeMergeInput, "", "no layers")
	}
	m := &merger{root: newDir(), byID: map[string]int{}}
	for i := range layers {
		if err := m.addLayer(i, &layers[i]); err != nil {
			return nil, err
		}
	}
	// keep the blobs files still use, in layer order, and renumber
	used := make([]bool, len(m.blobs))
	for i := range used {
		used[i] = opts.KeepAllBlobs
	}
	forEachInode(m.root, func(in *wInode) {
		for _, c := range in.chunks {
			used[c.blob] = true
		}
	})
	remap := make([]uint32, len(m.blobs))
	res := &MergeResult{}
	var blobs []wBlob
	for i, b := range m.blobs {
		if used[i] {
			remap[i] = uint32(len(blobs))
			blobs = append(blobs, b)
			res.BlobIDs = append(res.BlobIDs, b.entry.ID())
		}
	}
	forEachInode(m.root, func(in *wInode) {
		for k := range in.chunks {
			in.chunks[k].blob = remap[in.chunks[k].blob]
		}
	})
	prefetch := []string{"/"}
	if opts.PrefetchPatterns != nil {
		prefetch = opts.PrefetchPatterns
	}
	boot, err := writeBootstrap(&bootParams{root: m.root, chunkSize: m.chunkSize, flags: m.flags, blobs: blobs, prefetch: prefetch})
	if err != nil {
		return nil, &PackError{Code: CodeMergeInput, Msg: "writing the merged bootstrap", Err: err}
	}
	res.Bootstrap = boot
	res.Inodes = int(le.Uint64(boot[SuperBlockOffset+16:]))
	return res, nil
}

type merger struct {
	root      *wInode
	blobs     []wBlob
	byID      map[string]int
	chunkSize uint32
	digester  Digester
	flags     SuperFlags
}

func mergeErr(layer int, format string, a ...any) *PackError {
	return packErr(CodeMergeInput, "", "layer %d: %s", layer, fmt.Sprintf(format, a...))
}

func (m *merger) addLayer(li int, l *LayerBootstrap) error {
	f, err := Open(bytes.NewReader(l.Bootstrap), int64(len(l.Bootstrap)), nil)
	if err != nil {
		return &PackError{Code: CodeMergeInput, Msg: fmt.Sprintf("layer %d: reading the bootstrap", li), Err: err}
	}
	dg := f.ext.Flags.Digester()
	switch {
	case dg == DigestUnknown:
		return mergeErr(li, "superblock flags %#x name no single digester", uint64(f.ext.Flags))
	case li == 0:
		m.chunkSize, m.digester = f.ext.ChunkSize, dg
	case f.ext.ChunkSize != m.chunkSize:
		return mergeErr(li, "chunk size %d differs from the lower layers' %d", f.ext.ChunkSize, m.chunkSize)
	case dg != m.digester:
		return mergeErr(li, "digester %s differs from the lower layers' %s", dg, m.digester)
	}
	if f.ext.Flags.Compressor() == CompressUnknown {
		return mergeErr(li, "superblock flags %#x name no single compressor", uint64(f.ext.Flags))
	}
	m.flags = f.ext.Flags & (flagCompressionMask | flagHashMask | FlagExplicitUIDGID)

	// this layer's blobs in the merged blob list
	local := make([]int, len(f.blobs))
	for i := range f.blobs {
		e := f.blobs[i]
		id := e.ID()
		feat := BlobFeatures(e.Features)
		if feat&(BlobZran|BlobBatch|BlobEncrypted|BlobTarfs|BlobExternal) != 0 {
			return &PackError{Code: CodeMergeInput, Msg: fmt.Sprintf("layer %d: blob %d has features %#x", li, i, uint32(feat)), Err: ErrUnsupported}
		}
		self := id == PlaceholderBlobID || (feat&BlobInlinedFSMeta != 0 && feat&BlobSeparate == 0)
		if self {
			if !ValidBlobID(l.BlobID) {
				return mergeErr(li, "blob id %q is not 64 lowercase hex characters", l.BlobID)
			}
			id = l.BlobID
		} else if !ValidBlobID(id) {
			return mergeErr(li, "blob %d has id %q", i, id)
		}
		if e.ChunkSize != m.chunkSize {
			return mergeErr(li, "blob %s has chunk size %d, the image %d", id, e.ChunkSize, m.chunkSize)
		}
		if j, ok := m.byID[id]; ok {
			local[i] = j
			continue
		}
		SetBlobID(&e.BlobID, id)
		e.Features = uint32(feat &^ BlobInlinedFSMeta)
		if self {
			if l.BlobSize > 0 {
				e.CompressedSize = uint64(l.BlobSize)
			}
			if l.TOCSize > 0 {
				e.BlobTOCDigest, e.BlobTOCSize = l.TOCDigest, l.TOCSize
			}
		}
		local[i] = len(m.blobs)
		m.byID[id] = len(m.blobs)
		m.blobs = append(m.blobs, wBlob{entry: e, byCI: map[uint32]*ChunkInfo{}})
	}
	// chunk details come from the layer's chunk table
	_, infos, err := f.chunkTable()
	if err != nil {
		return &PackError{Code: CodeMergeInput, Msg: fmt.Sprintf("layer %d: chunk table", li), Err: err}
	}
	for i := range infos {
		c := &infos[i]
		if int(c.BlobIndex) >= len(local) {
			return mergeErr(li, "chunk table entry names blob %d of %d", c.BlobIndex, len(local))
		}
		b := &m.blobs[local[c.BlobIndex]]
		if c.Index >= b.entry.ChunkCount {
			return mergeErr(li, "chunk table entry names ci %d of %d", c.Index, b.entry.ChunkCount)
		}
		if _, dup := b.byCI[c.Index]; !dup {
			b.byCI[c.Index] = c
		}
	}
	upper, err := m.layerTree(li, f, local)
	if err != nil {
		return err
	}
	implicit := map[*wInode]bool{}
	for _, d := range l.ImplicitDirs {
		p := d
		if d == "." {
			p = ""
		}
		if in := lookupPath(upper, p); in != nil && in.isDir() {
			implicit[in] = true
		}
	}
	if li == 0 || !implicit[upper] {
		m.root.setAttrs(upper)
	}
	mergeDir(m.root, upper, implicit)
	return nil
}

// layerTree converts a layer's tree; hard links share one wInode.
func (m *merger) layerTree(li int, f *FS, local []int) (*wInode, error) {
	byNid := map[uint64]*wInode{}
	var conv func(n *node, p string) (*wInode, error)
	conv = func(n *node, p string) (*wInode, error) {
		in := n.in
		if w, ok := byNid[in.nid]; ok {
			return w, nil
		}
		ino := &in.ino
		w := &wInode{mode: uint32(ino.Mode), uid: ino.UID, gid: ino.GID, xattrs: in.xattrs}
		if ino.Extended() {
			w.mtime, w.nsec = int64(ino.Mtime), ino.MtimeNsec
		} else {
			w.mtime, w.nsec = int64(f.sb.BuildTime)+int64(ino.CompactMtime), f.sb.BuildTimeNsec
		}
		byNid[in.nid] = w
		switch in.ftype {
		case FileTypeDir:
			w.children = make(map[string]*wInode, len(n.children))
			for _, c := range n.children {
				cw, err := conv(c, joinPath(p, c.name))
				if err != nil {
					return nil, err
				}
				w.children[c.name] = cw
			}
		case FileTypeReg:
			if !in.chunkBased {
				return nil, &PackError{Code: CodeMergeInput, Path: p, Msg: fmt.Sprintf("layer %d: regular file without chunk indexes", li), Err: ErrUnsupported}
			}
			w.size = ino.Size
			w.chunks = make([]wChunk, in.nchunks)
			for k := uint64(0); k < in.nchunks; k++ {
				idx, err := f.readIndex(in, k)
				if err != nil {
					return nil, &PackError{Code: CodeMergeInput, Path: p, Msg: fmt.Sprintf("layer %d: chunk index %d", li, k), Err: err}
				}
				if idx.BlkAddr == NullAddr {
					return nil, &PackError{Code: CodeMergeInput, Path: p, Msg: fmt.Sprintf("layer %d: chunk %d is a hole", li, k), Err: ErrUnsupported}
				}
				dev := int(idx.DeviceID())
				if dev == 0 || dev > len(local) {
					return nil, &PackError{Code: CodeMergeInput, Path: p, Msg: fmt.Sprintf("layer %d: chunk %d names device %d of %d", li, k, dev, len(local))}
				}
				bi := local[dev-1]
				ci := idx.CIIndex()
				c := m.blobs[bi].chunk(ci)
				if c == nil {
					return nil, &PackError{Code: CodeMergeInput, Path: p, Msg: fmt.Sprintf("layer %d: chunk %d (blob %d, ci %d) has no chunk table entry", li, k, dev-1, ci)}
				}
				if c.UncompressedOffset != uint64(idx.BlkAddr)*BlockSize {
					return nil, &PackError{Code: CodeMergeInput, Path: p, Msg: fmt.Sprintf("layer %d: chunk %d: block %d but the chunk table's uncompressed offset is %d", li, k, idx.BlkAddr, c.UncompressedOffset)}
				}
				w.chunks[k] = wChunk{blob: uint32(bi), ci: ci}
			}
		case FileTypeSymlink:
			w.target = in.target
		default:
			w.rdev = ino.U
		}
		return w, nil
	}
	return conv(f.root, ".")
}

// mergeDir overlays the upper directory's contents on lower (nydus-image's
// Tree::merge_children): whiteouts first, then entries. A directory of the
// upper layer replaces the metadata of the lower one unless it is implicit.
func mergeDir(lower, upper *wInode, implicit map[*wInode]bool) {
	names := sortedNames(upper.children)
	for _, name := range names {
		switch {
		case name == WhiteoutOpaqueDir:
			clear(lower.children)
		case strings.HasPrefix(name, WhiteoutPrefix+WhiteoutPrefix):
			// other AUFS metadata names: neither applied nor kept
		case strings.HasPrefix(name, WhiteoutPrefix):
			delete(lower.children, name[len(WhiteoutPrefix):])
		}
	}
	for _, name := range names {
		if strings.HasPrefix(name, WhiteoutPrefix) {
			continue
		}
		u := upper.children[name]
		l := lower.children[name]
		if !u.isDir() {
			lower.children[name] = u
			continue
		}
		if l == nil || !l.isDir() {
			l = &wInode{mode: u.mode, children: map[string]*wInode{}}
			lower.children[name] = l
			l.setAttrs(u)
		} else if !implicit[u] {
			l.setAttrs(u)
		}
		mergeDir(l, u, implicit)
	}
}

// forEachInode visits every distinct inode of the tree once.
func forEachInode(root *wInode, fn func(*wInode)) {
	seen := map[*wInode]bool{root: true}
	stack := []*wInode{root}
	for len(stack) > 0 {
		in := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(in)
		for _, c := range in.children {
			if !seen[c] {
				seen[c] = true
				stack = append(stack, c)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// The bootstrap layer.
// ---------------------------------------------------------------------------

// BootstrapLayerFile is an extra file of the bootstrap layer, stored as image/<Name>.
type BootstrapLayerFile struct {
	Name string
	Data []byte
}

// BootstrapLayerInfo describes a bootstrap layer written by BootstrapLayerTar.
type BootstrapLayerInfo struct {
	Digest digest.Digest // sha256 of the gzip stream: the layer digest
	DiffID digest.Digest // sha256 of the tar: the config's last diff_id
	Size   int64         // bytes written
}

// BootstrapLayerTar writes the bootstrap layer of a Nydus image as
// nydus-snapshotter's MergeLayers does (pkg/converter packToTar, then
// compress/gzip): a tar in Go archive/tar's default format with
//
//	"image"             directory, mode 0755
//	"image/image.boot"  the bootstrap, mode 0444
//	"image/<Name>"      each extra file in order, mode 0444 (nydus-snapshotter
//	                    adds <blob id>.blob.meta per layer with chunks, see
//	                    PackResult.BlobMetaFile and BlobMetaFileOf)
//
// uid/gid 0, no user/group names, mtime 0 (all header fields but name, mode,
// size and type zero); then gzip.NewWriter (default level, no name, no mtime,
// no extra header fields). The layer's media type is
// application/vnd.oci.image.layer.v1.tar+gzip (Docker:
// application/vnd.docker.image.rootfs.diff.tar.gzip), with annotations
// containerd.io/snapshot/nydus-bootstrap: "true" and
// containerd.io/snapshot/nydus-fs-version: "6".
func BootstrapLayerTar(w io.Writer, bootstrap []byte, extra ...BootstrapLayerFile) (BootstrapLayerInfo, error) {
	var info BootstrapLayerInfo
	cw := &countWriter{w: w, h: sha256.New()}
	gw := gzip.NewWriter(cw)
	th := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gw, th))
	if err := tw.WriteHeader(&tar.Header{Name: "image", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		return info, err
	}
	files := append([]BootstrapLayerFile{{Name: SectionBootstrap, Data: bootstrap}}, extra...)
	for _, f := range files {
		if f.Name == "" || strings.Contains(f.Name, "/") {
			return info, fmt.Errorf("nydus: bootstrap layer file name %q", f.Name)
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.Join("image", f.Name), Mode: 0o444, Size: int64(len(f.Data))}); err != nil {
			return info, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return info, err
		}
	}
	if err := tw.Close(); err != nil {
		return info, err
	}
	if err := gw.Close(); err != nil {
		return info, err
	}
	if cw.err != nil {
		return info, cw.err
	}
	info.Digest = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(cw.h.Sum(nil)))
	info.DiffID = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(th.Sum(nil)))
	info.Size = cw.n
	return info, nil
}

type countWriter struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	c.err = err
	return n, err
}

// BlobMetaFileOf returns image/<blobID>.blob.meta for the bootstrap layer from
// a Nydus blob layer: its ci array uncompressed, zero padding to 4 KiB, its
// blob.meta header. false if the blob has no chunks.
func BlobMetaFileOf(blobID string, r io.ReaderAt, size int64) (BootstrapLayerFile, bool, error) {
	lb, err := ParseLayerBlob(r, size)
	if err != nil {
		return BootstrapLayerFile{}, false, err
	}
	s, ok := lb.Section(SectionBlobMeta)
	if !ok {
		return BootstrapLayerFile{}, false, nil
	}
	if s.Size < BlobMetaHeaderSize {
		return BootstrapLayerFile{}, false, formatErr(CheckBlobMeta, s.Offset, "blob.meta section of %d bytes", s.Size)
	}
	hb := make([]byte, BlobMetaHeaderSize)
	if _, err := r.ReadAt(hb, s.Offset+s.Size-BlobMetaHeaderSize); err != nil {
		return BootstrapLayerFile{}, false, err
	}
	var h BlobMetaHeader
	_ = h.UnmarshalBinary(hb)
	if h.Magic != BlobMetaMagic || h.Magic2 != BlobMetaMagic || h.CIOffset != uint64(s.Offset) || h.CICompressedSize+BlobMetaHeaderSize != uint64(s.Size) {
		return BootstrapLayerFile{}, false, formatErr(CheckBlobMeta, s.Offset, "blob.meta header does not describe its section")
	}
	raw := make([]byte, h.CICompressedSize)
	if _, err := r.ReadAt(raw, s.Offset); err != nil {
		return BootstrapLayerFile{}, false, err
	}
	ci, err := decompressLimited(Compressor(h.CICompressor), raw, int64(h.CIUncompressedSize), (*Options)(nil).maxCI())
	if err != nil {
		return BootstrapLayerFile{}, false, &FormatError{Check: CheckBlobMeta, Offset: s.Offset, Msg: "ci array", Err: err}
	}
	return BootstrapLayerFile{Name: blobID + ".blob.meta", Data: blobMetaCacheFile(ci, hb)}, true, nil
}

package nydus

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
)

// PackOptions tune Pack. The zero value gives what nydus-snapshotter's
// converter asks nydus-image for by default: zstd, blake3, 1 MiB chunks,
// prefetch pattern "/".
type PackOptions struct {
	// Compressor of the chunks: "zstd" (default), "lz4_block" or "none". The ci
	// array and the bootstrap are compressed with zstd (the ci array stays raw
	// with "none"). A chunk (or ci array, or bootstrap) that does not shrink is
	// stored raw.
	Compressor string
	// ChunkSize is a power of two in [4 KiB, 16 MiB]; default 1 MiB.
	ChunkSize uint32
	// Level is the zstd level (1..22; 0 = 3, nydus-image's level), mapped to the
	// nearest level of github.com/klauspost/compress/zstd. Ignored by lz4_block and none.
	Level int
	// Digester of the chunks: "blake3" (default, nydus' default) or "sha256".
	Digester string
	// PrefetchPatterns are absolute paths whose inodes go into the prefetch
	// table, as the lines nydus-image reads with --prefetch-policy fs. nil means
	// {"/"} (what nydus-snapshotter passes by default: prefetch everything); an
	// empty non-nil slice means no prefetch table. Patterns naming no path are
	// ignored, as are patterns under an earlier pattern.
	PrefetchPatterns []string
	// RejectDuplicates refuses a path that appears twice in the tar with a
	// *PackError of code DUPLICATE_PATH. By default the last entry wins, as
	// extraction does.
	RejectDuplicates bool
	// KeepStargzMetadata keeps eStargz's metadata files (/stargz.index.json,
	// /.prefetch.landmark, /.no.prefetch.landmark), which nydus-image drops from
	// every tar it converts (they are not part of the filesystem eStargz describes).
	KeepStargzMetadata bool
	// Concurrency is the number of goroutines digesting and compressing chunks
	// (default GOMAXPROCS). The output does not depend on it.
	Concurrency int
	// TempDir is accepted for callers that expect to give one; Pack does not
	// spool: chunk data is written to w as the tar is read, because it comes
	// first in the blob, and only metadata is kept in memory.
	TempDir string
}

// PackResult describes a blob written by Pack.
type PackResult struct {
	// BlobID is the hex sha256 of the whole blob: the layer digest and the id
	// the merged bootstrap gives this blob.
	BlobID string
	// Digest is "sha256:" + BlobID; as the blob is not compressed at the layer
	// level, it is also the layer's diff_id.
	Digest digest.Digest
	// Size is the number of bytes written.
	Size int64
	// Bootstrap is the layer's own RAFS v6 bootstrap, uncompressed, as inlined in
	// the image.boot section (blob id "x"×64, OCI whiteouts kept as files).
	Bootstrap []byte
	// Sections of the blob in file order, and its TOC.
	Sections  []Section
	TOC       []TOCEntry
	TOCDigest [32]byte // sha256(TOC entries ‖ TOC tar header)
	TOCSize   int64
	// Chunks is the number of chunks stored (after dedup); ChunkRefs the number
	// of chunk references of files (before dedup); RawChunks the stored chunks
	// kept uncompressed because compression did not shrink them.
	Chunks, ChunkRefs, RawChunks int
	// DataSize is the size of the chunk data (image.blob), UncompressedSize the
	// raw-device size (sum of 4 KiB-aligned chunk sizes), FileBytes the sum of
	// the sizes of the files read from the tar (hard links counted once).
	DataSize, UncompressedSize, FileBytes int64
	// Entries is the number of tar entries read, Inodes the inodes of the bootstrap.
	Entries, Inodes int
	// ImplicitDirs lists the directories the tar never names ("." for the root,
	// else paths relative to it), sorted: the bootstrap holds them with mode
	// 0755, uid/gid 0 and mtime 0, as nydus-image writes them. Merge leaves the
	// metadata of a lower layer's directory alone for them, as applying the OCI
	// layer would (nydus-image merge cannot tell them apart and overrides it).
	ImplicitDirs []string

	ci         []byte // uncompressed ci array
	metaHeader []byte // 4096-byte blob.meta header
}

// LayerBootstrap returns the Merge input describing this layer.
func (r *PackResult) LayerBootstrap() LayerBootstrap {
	return LayerBootstrap{BlobID: r.BlobID, Bootstrap: r.Bootstrap, BlobSize: r.Size, TOCDigest: r.TOCDigest, TOCSize: uint32(r.TOCSize),
		ImplicitDirs: r.ImplicitDirs}
}

// BlobMetaFile returns image/<blob id>.blob.meta for the bootstrap layer
// (uncompressed ci array, zero padding to 4 KiB, blob.meta header: the nydusd
// cache file form nydus-snapshotter adds since 2025-09); false if the layer
// has no chunks.
func (r *PackResult) BlobMetaFile() (BootstrapLayerFile, bool) {
	if len(r.ci) == 0 {
		return BootstrapLayerFile{}, false
	}
	return BootstrapLayerFile{Name: r.BlobID + ".blob.meta", Data: blobMetaCacheFile(r.ci, r.metaHeader)}, true
}

func blobMetaCacheFile(ci, header []byte) []byte {
	out := make([]byte, alignUp64(int64(len(ci)), BlockSize), alignUp64(int64(len(ci)), BlockSize)+int64(len(header)))
	copy(out, ci)
	return append(out, header...)
}

// packConfig is PackOptions resolved.
type packConfig struct {
	compressor  Compressor
	digester    Digester
	chunkSize   uint32
	zstdLevel   zstd.EncoderLevel
	workers     int
	prefetch    []string
	rejectDupes bool
	keepStargz  bool
}

func (o *PackOptions) resolve() (*packConfig, error) {
	c := &packConfig{chunkSize: 1 << 20, zstdLevel: zstd.SpeedDefault, workers: runtime.GOMAXPROCS(0), prefetch: []string{"/"}, rejectDupes: o.RejectDuplicates, keepStargz: o.KeepStargzMetadata}
	switch strings.ToLower(o.Compressor) {
	case "", "zstd":
		c.compressor = CompressZstd
	case "lz4_block", "lz4":
		c.compressor = CompressLZ4Block
	case "none":
		c.compressor = CompressNone
	default:
		return nil, packErr(CodeOptions, "", "compressor %q (want zstd, lz4_block or none)", o.Compressor)
	}
	switch strings.ToLower(o.Digester) {
	case "", "blake3":
		c.digester = DigestBlake3
	case "sha256":
		c.digester = DigestSHA256
	default:
		return nil, packErr(CodeOptions, "", "digester %q (want blake3 or sha256)", o.Digester)
	}
	if o.ChunkSize != 0 {
		cs := o.ChunkSize
		if cs < MinChunkSize || cs > MaxChunkSize || cs&(cs-1) != 0 {
			return nil, packErr(CodeOptions, "", "chunk size %d is not a power of two in [4 KiB, 16 MiB]", cs)
		}
		c.chunkSize = cs
	}
	if o.Level < 0 || o.Level > 22 {
		return nil, packErr(CodeOptions, "", "zstd level %d (want 1..22, 0 for the default 3)", o.Level)
	}
	if o.Level > 0 {
		c.zstdLevel = zstd.EncoderLevelFromZstd(o.Level)
	}
	if o.Concurrency > 0 {
		c.workers = o.Concurrency
	}
	if o.PrefetchPatterns != nil {
		c.prefetch = o.PrefetchPatterns
	}
	return c, nil
}

// superFlags returns the compressor, digester and uid/gid flags.
func superFlags(c Compressor, d Digester) SuperFlags {
	f := FlagExplicitUIDGID
	switch c {
	case CompressNone:
		f |= FlagCompressionNone
	case CompressLZ4Block:
		f |= FlagCompressionLZ4
	case CompressZstd:
		f |= FlagCompressionZstd
	case CompressGzip:
		f |= FlagCompressionGzip
	}
	switch d {
	case DigestBlake3:
		f |= FlagHashBlake3
	case DigestSHA256:
		f |= FlagHashSHA256
	}
	return f
}

func tocFlags(c Compressor) TOCFlags {
	switch c {
	case CompressZstd:
		return TOCCompressionZstd
	case CompressLZ4Block:
		return TOCCompressionLZ4Block
	}
	return TOCCompressionNone
}

// Layer blob features as nydus-image ≥ 2.3 writes them for
// tar-rafs --blob-inline-meta --features blob-toc (0x70000023).
const packBlobFeatures = BlobAligned | BlobInlinedFSMeta | BlobInlinedChunkDigest | BlobHasTarHeader | BlobHasTOC | BlobCapTarTOC

// Pack converts one OCI layer, given as its uncompressed tar stream, into a
// Nydus blob layer written to w, in the shape nydus-snapshotter's converter
// emits (nydus-image create --type tar-rafs --fs-version 6 --blob-inline-meta
// --features blob-toc --whiteout-spec none): chunk data, blob.meta (ci array
// and its 4096-byte header), blob.digest, the layer's own bootstrap
// (image.boot, zstd) and the TOC, each followed by its GNU tar header. OCI
// whiteouts stay in the layer's bootstrap as plain files; Merge applies them.
//
// The result's BlobID is the sha256 of everything written, so it is the
// layer digest a registry serves the blob under; the inlined bootstrap names
// the blob with the placeholder "x"×64, as nydus-image ≥ 2.3 does, which
// breaks the cycle between the id and the bytes it is computed over. Merge
// replaces the placeholder with the id.
//
// Pack reads r to its end (trailing zeros after the end-of-archive marker
// included), writes chunk data as it reads, keeps the file tree in memory and
// returns a *PackError for input RAFS cannot represent. Equal input and
// options give equal bytes, whatever Concurrency.
func Pack(ctx context.Context, w io.Writer, r io.Reader, opts PackOptions) (*PackResult, error) {
	cfg, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	bw := &blobWriter{w: bufio.NewWriterSize(w, 1<<20), h: sha256.New()}
	p := &packer{ctx: ctx, cfg: cfg, root: newDir(), bw: bw, implicit: map[string]bool{".": true}}
	if cfg.rejectDupes {
		p.seen = map[string]bool{}
	}
	p.start()
	readErr := p.readTar(bufio.NewReaderSize(r, 1<<20))
	p.stop()
	if readErr != nil {
		return nil, readErr
	}
	if p.store.err != nil {
		return nil, p.store.err
	}
	if bw.err != nil {
		return nil, bw.err
	}
	return p.finish()
}

// blobWriter counts and hashes what goes to the output.
type blobWriter struct {
	w   *bufio.Writer
	h   hash.Hash
	n   int64
	err error
}

func (b *blobWriter) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	b.h.Write(p)
	n, err := b.w.Write(p)
	b.n += int64(n)
	if err != nil {
		b.err = fmt.Errorf("nydus: writing blob: %w", err)
	}
	return n, b.err
}

// section writes data and its tar header and returns the section.
func (b *blobWriter) section(name string, data []byte) Section {
	s := Section{Name: name, Offset: b.n, Size: int64(len(data))}
	b.Write(data)
	h := SectionHeader(name, int64(len(data)))
	b.Write(h[:])
	return s
}

// sum returns the sha256 of everything written so far (the hash goes on).
func (b *blobWriter) sum() [32]byte {
	var out [32]byte
	state, err := b.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err == nil {
		h := sha256.New()
		if err = h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err == nil {
			copy(out[:], h.Sum(nil))
			return out
		}
	}
	panic("nydus: sha256 state cannot be cloned: " + err.Error())
}

type packer struct {
	ctx      context.Context
	cfg      *packConfig
	root     *wInode
	seen     map[string]bool
	implicit map[string]bool // directories created for paths below them
	bw       *blobWriter
	entries  int
	refs     int
	files    int64

	// chunk pipeline (pack_parallel.go)
	pipe  chunkPipeline
	store chunkStore
}

// ---------------------------------------------------------------------------
// Reading the tar stream into the tree.
// ---------------------------------------------------------------------------

// maxWriteSymlinkLen is the longest symlink target a Linux filesystem holds
// (PATH_MAX with its NUL): the kernel cuts longer EROFS targets to 4095 bytes.
const maxWriteSymlinkLen = MaxSymlinkLen - 1

// stargzMetadata are the eStargz files nydus-image leaves out (builder
// TarBuilder::is_stargz_special_files).
var stargzMetadata = map[string]bool{"stargz.index.json": true, ".prefetch.landmark": true, ".no.prefetch.landmark": true}

// benignGlobalPAX are PAX global records that do not change how entries read.
var benignGlobalPAX = map[string]bool{"comment": true, "charset": true, "hdrcharset": true}

func (p *packer) readTar(r *bufio.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		if p.pipe.failed.Load() {
			return nil // the writer's error is reported by Pack
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &PackError{Code: CodeInvalidTar, Msg: fmt.Sprintf("reading tar entry %d", p.entries+1), Err: err}
		}
		p.entries++
		if err := p.entry(tr, hdr); err != nil {
			return err
		}
	}
	// consume what follows the end-of-archive marker, so a caller hashing the
	// stream (diff_id) sees all of it
	if _, err := io.Copy(io.Discard, r); err != nil {
		return &PackError{Code: CodeInvalidTar, Msg: "reading after the end of the archive", Err: err}
	}
	return nil
}

// cleanTarPath maps a tar name to a path relative to the root ("" = root), as
// extraction resolves it: leading "/" and "./" dropped, ".." never above the root.
func cleanTarPath(name string) (string, error) {
	p := path.Clean("/" + name)[1:]
	if p == "" {
		return "", nil
	}
	for _, part := range strings.Split(p, "/") {
		if len(part) > MaxNameLen {
			return "", packErr(CodeNameTooLong, name, "path component of %d bytes (at most %d)", len(part), MaxNameLen)
		}
	}
	return p, nil
}

// parentDir returns the directory holding p (creating missing directories
// with default metadata, as nydus-image does) and p's last component.
func (p *packer) parentDir(rel string) (*wInode, string, error) {
	dir := p.root
	parts := strings.Split(rel, "/")
	for i, part := range parts[:len(parts)-1] {
		c := dir.children[part]
		if c == nil {
			c = newDir()
			dir.children[part] = c
			p.implicit[strings.Join(parts[:i+1], "/")] = true
		} else if !c.isDir() {
			return nil, "", packErr(CodeNotADirectory, rel, "%q is not a directory", strings.Join(parts[:i+1], "/"))
		}
		dir = c
	}
	return dir, parts[len(parts)-1], nil
}

func (p *packer) lookup(rel string) *wInode {
	if rel == "" {
		return p.root
	}
	return lookupPath(p.root, rel)
}

func (p *packer) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		for k := range hdr.PAXRecords {
			if !benignGlobalPAX[k] {
				return packErr(CodePAXGlobalHeader, hdr.Name, "PAX global header with record %q: extractors disagree on applying it to later entries", k)
			}
		}
		return nil
	}
	rel, err := cleanTarPath(hdr.Name)
	if err != nil {
		return err
	}
	if !p.cfg.keepStargz && stargzMetadata[rel] {
		return nil
	}
	if p.seen != nil {
		if p.seen[rel] {
			return packErr(CodeDuplicatePath, hdr.Name, "path appears twice in the layer")
		}
		p.seen[rel] = true
	}
	var typ uint32
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		typ = ModeRegular
	case tar.TypeDir:
		typ = ModeDir
	case tar.TypeSymlink:
		typ = ModeSymlink
	case tar.TypeChar:
		typ = ModeChar
	case tar.TypeBlock:
		typ = ModeBlock
	case tar.TypeFifo:
		typ = ModeFIFO
	case tar.TypeLink:
		return p.hardlink(hdr, rel)
	default:
		return packErr(CodeUnsupportedEntry, hdr.Name, "tar entry type %q", hdr.Typeflag)
	}
	in, err := inodeOf(hdr, typ)
	if err != nil {
		return err
	}
	if rel == "" {
		if typ != ModeDir {
			return packErr(CodeUnsupportedEntry, hdr.Name, "the root is not a directory")
		}
		p.root.setAttrs(in)
		delete(p.implicit, ".")
		return nil
	}
	switch typ {
	case ModeRegular:
		if err := p.readFile(tr, hdr, in); err != nil {
			return err
		}
	case ModeSymlink:
		if len(hdr.Linkname) == 0 || len(hdr.Linkname) > maxWriteSymlinkLen || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return packErr(CodeSymlinkTarget, hdr.Name, "symlink target of %d bytes (want 1..%d, no NUL)", len(hdr.Linkname), maxWriteSymlinkLen)
		}
		in.target = hdr.Linkname
	case ModeChar, ModeBlock:
		if hdr.Devmajor < 0 || hdr.Devmajor > 0xfff || hdr.Devminor < 0 || hdr.Devminor > 0xfffff {
			return packErr(CodeDeviceNumber, hdr.Name, "device %d:%d does not fit Linux' 12:20-bit encoding", hdr.Devmajor, hdr.Devminor)
		}
		in.rdev = EncodeDev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	}
	dir, base, err := p.parentDir(rel)
	if err != nil {
		return err
	}
	delete(p.implicit, rel)
	if old := dir.children[base]; typ == ModeDir && old != nil && old.isDir() {
		old.setAttrs(in) // a directory again (or one created for its contents): new metadata, contents kept
		return nil
	}
	if typ == ModeDir {
		in.children = map[string]*wInode{}
	}
	dir.children[base] = in
	return nil
}

// setAttrs copies the metadata (not the contents) of src.
func (in *wInode) setAttrs(src *wInode) {
	in.mode = in.mode&ModeTypeMask | src.mode&ModePermMask
	in.uid, in.gid, in.mtime, in.nsec, in.xattrs = src.uid, src.gid, src.mtime, src.nsec, src.xattrs
}

func (p *packer) hardlink(hdr *tar.Header, rel string) error {
	target, err := cleanTarPath(hdr.Linkname)
	if err != nil {
		return err
	}
	in := p.lookup(target)
	if in == nil || target == "" {
		return packErr(CodeHardlinkTarget, hdr.Name, "hard link to %q, which is not in the layer", hdr.Linkname)
	}
	if in.isDir() {
		return packErr(CodeHardlinkTarget, hdr.Name, "hard link to directory %q", hdr.Linkname)
	}
	if rel == "" {
		return packErr(CodeUnsupportedEntry, hdr.Name, "hard link as the root")
	}
	dir, base, err := p.parentDir(rel)
	if err != nil {
		return err
	}
	dir.children[base] = in // the link's own header metadata is ignored, as link(2) does
	return nil
}

// inodeOf converts the metadata of a tar header.
func inodeOf(hdr *tar.Header, typ uint32) (*wInode, error) {
	if hdr.Mode < 0 || hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) > 1<<32-1 || int64(hdr.Gid) > 1<<32-1 {
		return nil, packErr(CodeIDRange, hdr.Name, "mode %o, uid %d, gid %d out of range", hdr.Mode, hdr.Uid, hdr.Gid)
	}
	in := &wInode{
		mode: typ | uint32(hdr.Mode)&ModePermMask, uid: uint32(hdr.Uid), gid: uint32(hdr.Gid),
		mtime: hdr.ModTime.Unix(), nsec: uint32(hdr.ModTime.Nanosecond()),
	}
	xs, err := tarXattrs(hdr)
	if err != nil {
		return nil, err
	}
	in.xattrs = xs
	return in, nil
}

// tarXattrs collects SCHILY.xattr.* records (and libarchive's
// LIBARCHIVE.xattr.*, base64 values, when SCHILY has no record of that name),
// sorted by name, and checks that RAFS can store them.
func tarXattrs(hdr *tar.Header) ([]Xattr, error) {
	var xs []Xattr
	have := map[string]bool{}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			xs = append(xs, Xattr{Name: name, Value: []byte(v)})
			have[name] = true
		}
	}
	for k, v := range hdr.PAXRecords {
		if enc, ok := strings.CutPrefix(k, "LIBARCHIVE.xattr."); ok {
			name, err := url.QueryUnescape(enc)
			if err != nil {
				return nil, &PackError{Code: CodeXattr, Path: hdr.Name, Msg: fmt.Sprintf("libarchive xattr name %q", enc), Err: err}
			}
			if have[name] {
				continue
			}
			val, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				if val, err = base64.RawStdEncoding.DecodeString(v); err != nil {
					return nil, &PackError{Code: CodeXattr, Path: hdr.Name, Msg: fmt.Sprintf("libarchive xattr %q value", name), Err: err}
				}
			}
			xs = append(xs, Xattr{Name: name, Value: val})
			have[name] = true
		}
	}
	if len(xs) == 0 {
		return nil, nil
	}
	slices.SortFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	for _, x := range xs {
		idx, suffix, ok := SplitXattrName(x.Name)
		acl := idx == XattrIndexPOSIXACLAcc || idx == XattrIndexPOSIXACLDflt
		switch {
		case !ok:
			return nil, packErr(CodeXattr, hdr.Name, "xattr %q: RAFS stores only user., trusted., security. and POSIX ACL xattrs", x.Name)
		case acl != (suffix == ""), strings.IndexByte(suffix, 0) >= 0:
			return nil, packErr(CodeXattr, hdr.Name, "xattr name %q", x.Name)
		case len(suffix) > 255 || len(x.Value) > 0xffff:
			return nil, packErr(CodeXattr, hdr.Name, "xattr %q: name or value too long", x.Name)
		}
	}
	if _, _, err := AppendXattrs(nil, xs); err != nil {
		return nil, &PackError{Code: CodeXattr, Path: hdr.Name, Msg: "xattrs", Err: err}
	}
	return xs, nil
}

// readFile reads a regular file's data into the chunk pipeline.
func (p *packer) readFile(tr *tar.Reader, hdr *tar.Header, in *wInode) error {
	if hdr.Size < 0 {
		return packErr(CodeIDRange, hdr.Name, "size %d", hdr.Size)
	}
	size := uint64(hdr.Size)
	cs := uint64(p.cfg.chunkSize)
	n := (size + cs - 1) / cs
	if n > MaxChunksPerBlob {
		return packErr(CodeTooLarge, hdr.Name, "file of %d bytes needs more than %d chunks", size, MaxChunksPerBlob)
	}
	in.size = size
	in.chunks = make([]wChunk, n)
	for k := uint64(0); k < n; k++ {
		if k%64 == 0 {
			if err := p.ctx.Err(); err != nil {
				return err
			}
			if p.pipe.failed.Load() {
				return nil
			}
		}
		l := int(min(cs, size-k*cs))
		if err := p.readChunk(tr, l, &in.chunks[k], k*cs); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return &PackError{Code: CodeInvalidTar, Path: hdr.Name, Msg: "reading file data", Err: err}
		}
	}
	p.refs += int(n)
	p.files += int64(size)
	return nil
}

// ---------------------------------------------------------------------------
// The rest of the blob.
// ---------------------------------------------------------------------------

func (p *packer) finish() (*PackResult, error) {
	bw, s, cfg := p.bw, &p.store, p.cfg
	res := &PackResult{Entries: p.entries, ChunkRefs: p.refs, Chunks: len(s.chunks), RawChunks: s.raw,
		DataSize: int64(s.coff), UncompressedSize: int64(s.uoff), FileBytes: p.files}
	for d := range p.implicit {
		rel := d
		if d == "." {
			rel = ""
		}
		if in := p.lookup(rel); in != nil && in.isDir() {
			res.ImplicitDirs = append(res.ImplicitDirs, d)
		}
	}
	slices.Sort(res.ImplicitDirs)
	var toc []TOCEntry
	addTOC := func(name string, c Compressor, content []byte, off, csize, usize int64) {
		e := TOCEntry{Flags: tocFlags(c), CompressedOffset: uint64(off), CompressedSize: uint64(csize), UncompressedSize: uint64(usize)}
		copy(e.Name[:], name)
		if content != nil {
			e.UncompressedDigest = sha256.Sum256(content)
		}
		toc = append(toc, e)
	}
	params := &bootParams{root: p.root, chunkSize: cfg.chunkSize, flags: superFlags(cfg.compressor, cfg.digester), prefetch: prefetchPatterns(cfg.prefetch)}
	if len(s.chunks) > 0 {
		// image.blob: chunk data at offset 0; its TOC digest covers the data and
		// its tar header (nydus-image hashes what it wrote up to there)
		res.Sections = append(res.Sections, Section{Name: SectionBlob, Offset: 0, Size: int64(s.coff)})
		h := SectionHeader(SectionBlob, int64(s.coff))
		bw.Write(h[:])
		addTOC(SectionBlob, CompressNone, nil, 0, int64(s.coff), int64(s.uoff))
		toc[len(toc)-1].UncompressedDigest = bw.sum()

		// blob.meta: ci array (compressed like the chunks if that shrinks it) + header
		ci := make([]byte, 0, len(s.chunks)*ChunkInfoV1Size)
		for i := range s.chunks {
			c := &s.chunks[i]
			ci = AppendCIV1(ci, CIEntry{CompressedOffset: c.CompressedOffset, CompressedSize: c.CompressedSize,
				UncompressedOffset: c.UncompressedOffset, UncompressedSize: c.UncompressedSize})
		}
		// nydus-image compresses the ci array with the chunk compressor; for
		// lz4_block we use zstd, which nydusd reads as well (the blob records
		// the ci compressor) and which nydus-snapshotter's TOC reader
		// (UnpackEntry: zstd or none only) can extract for the bootstrap layer
		ciAlgo := CompressZstd
		if cfg.compressor == CompressNone {
			ciAlgo = CompressNone
		}
		ciStored, ciComp := compressSection(ciAlgo, cfg.zstdLevel, ci, p.sectionEncoder(cfg.zstdLevel))
		ciOff := bw.n
		mh := BlobMetaHeader{Magic: BlobMetaMagic, Magic2: BlobMetaMagic, Features: uint32(packBlobFeatures), CICompressor: uint32(ciComp),
			CIEntries: uint32(len(s.chunks)), CIOffset: uint64(ciOff), CICompressedSize: uint64(len(ciStored)), CIUncompressedSize: uint64(len(ci))}
		hb, _ := mh.MarshalBinary()
		meta := make([]byte, 0, len(ciStored)+len(hb))
		meta = append(append(meta, ciStored...), hb...)
		res.Sections = append(res.Sections, bw.section(SectionBlobMeta, meta))
		addTOC(SectionBlobMeta, ciComp, ci, ciOff, int64(len(ciStored)), int64(len(ci)))
		addTOC(SectionBlobMetaHeader, CompressNone, hb, ciOff+int64(len(ciStored)), BlobMetaHeaderSize, BlobMetaHeaderSize)
		res.ci, res.metaHeader = ci, hb

		// blob.digest: chunk digests in ci order
		dg := make([]byte, 0, 32*len(s.chunks))
		for i := range s.chunks {
			dg = append(dg, s.chunks[i].Digest[:]...)
		}
		sec := bw.section(SectionBlobDigest, dg)
		res.Sections = append(res.Sections, sec)
		addTOC(SectionBlobDigest, CompressNone, dg, sec.Offset, sec.Size, sec.Size)

		e := BlobEntry{ChunkSize: cfg.chunkSize, ChunkCount: uint32(len(s.chunks)), CompressionAlgo: uint32(cfg.compressor),
			DigestAlgo: uint32(cfg.digester), Features: uint32(packBlobFeatures), CompressedSize: uint64(bw.n),
			UncompressedSize: s.uoff, CICompressor: uint32(ciComp), CIOffset: uint64(ciOff),
			CICompressedSize: uint64(len(ciStored)), CIUncompressedSize: uint64(len(ci))}
		SetBlobID(&e.BlobID, PlaceholderBlobID)
		params.blobs = []wBlob{{entry: e, chunks: s.chunks}}
	}
	boot, err := writeBootstrap(params)
	if err != nil {
		return nil, &PackError{Code: CodeTooLarge, Msg: "writing the bootstrap", Err: err}
	}
	res.Bootstrap = boot
	res.Inodes = int(le.Uint64(boot[SuperBlockOffset+16:]))
	stored, comp := compressSection(CompressZstd, zstd.SpeedDefault, boot, p.sectionEncoder(zstd.SpeedDefault))
	sec := bw.section(SectionBootstrap, stored)
	res.Sections = append(res.Sections, sec)
	addTOC(SectionBootstrap, comp, boot, sec.Offset, sec.Size, int64(len(boot)))

	tb := make([]byte, 0, len(toc)*TOCEntrySize)
	for i := range toc {
		tb, _ = toc[i].AppendBinary(tb)
	}
	tocSec := bw.section(SectionTOC, tb)
	res.Sections = append(res.Sections, tocSec)
	res.TOC = toc
	h := SectionHeader(SectionTOC, int64(len(tb)))
	res.TOCDigest = sha256.Sum256(append(tb, h[:]...))
	res.TOCSize = int64(len(tb)) + TarHeaderSize
	if bw.err == nil {
		if err := bw.w.Flush(); err != nil {
			bw.err = fmt.Errorf("nydus: writing blob: %w", err)
		}
	}
	if bw.err != nil {
		return nil, bw.err
	}
	sum := bw.h.Sum(nil)
	res.BlobID = hex.EncodeToString(sum)
	res.Digest = digest.NewDigestFromEncoded(digest.SHA256, res.BlobID)
	res.Size = bw.n
	return res, nil
}

// compressSection compresses a whole section (ci array, bootstrap) with c and
// returns it with the compressor used: CompressNone when it does not shrink.
// enc, if not nil, is a zstd encoder of newZstd(level) to use.
func compressSection(c Compressor, level zstd.EncoderLevel, b []byte, enc *zstd.Encoder) ([]byte, Compressor) {
	var out []byte
	switch c {
	case CompressZstd:
		if enc == nil {
			if enc = newZstd(level); enc == nil {
				return b, CompressNone
			}
		}
		out = enc.EncodeAll(b, nil)
	case CompressLZ4Block:
		var e lz4Encoder
		out = e.compressBlock(nil, b)
	default:
		return b, CompressNone
	}
	if out == nil || len(out) >= len(b) {
		return b, CompressNone
	}
	return out, c
}

package nydus

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Section is one part of a Nydus layer blob ("reverse tar"): Size bytes of data
// at Offset, followed by a 512-byte GNU tar header naming it at Offset+Size.
type Section struct {
	Name   string
	Offset int64
	Size   int64
}

// HeaderOffset is where the section's tar header starts.
func (s Section) HeaderOffset() int64 { return s.Offset + s.Size }

// LayerBlob is the section view of a per-layer Nydus blob, as pushed to a
// registry by nydusify / nydus-snapshotter (nydus-image create --blob-inline-meta
// --features blob-toc). In file order:
//
//	chunk data              ─ section image.blob (only if the layer has file data)
//	ci array ‖ 4 KiB header ─ section blob.meta
//	chunk digests (32 B ×N) ─ section blob.digest (blob-toc feature, nydus-image ≥ 2.3)
//	bootstrap (zstd or raw) ─ section image.boot (inline meta)
//	TOC entries (128 B ×k)  ─ section rafs.blob.toc (last, within the final 4 KiB)
//
// Sections are found by walking the tar headers backwards from the end of the
// blob. A blob produced without tar headers (old "separate" blobs) has no
// sections; its chunk data and ci array are still readable through the
// bootstrap's blob table.
type LayerBlob struct {
	r    io.ReaderAt
	size int64
	// Sections in file order.
	Sections []Section
	// TOC holds the entries of rafs.blob.toc, nil if the blob has none.
	TOC []TOCEntry
	// TOCDigest is sha256(TOC entries ‖ TOC tar header), the value stored in the
	// blob table of a merged bootstrap (BlobEntry.BlobTOCDigest).
	TOCDigest [32]byte
	// TOCSize is the size of the TOC entries plus its tar header (BlobEntry.BlobTOCSize).
	TOCSize int64
}

// Size returns the size of the blob.
func (b *LayerBlob) Size() int64 { return b.size }

// ReaderAt returns the blob's reader.
func (b *LayerBlob) ReaderAt() io.ReaderAt { return b.r }

// Section returns the named section.
func (b *LayerBlob) Section(name string) (Section, bool) {
	for _, s := range b.Sections {
		if s.Name == name {
			return s, true
		}
	}
	return Section{}, false
}

// TOCEntry returns the named TOC entry.
func (b *LayerBlob) TOCEntry(name string) (TOCEntry, bool) {
	for _, e := range b.TOC {
		if e.EntryName() == name {
			return e, true
		}
	}
	return TOCEntry{}, false
}

// SectionReader returns a reader of the section's data.
func (b *LayerBlob) SectionReader(s Section) *io.SectionReader {
	return io.NewSectionReader(b.r, s.Offset, s.Size)
}

// maxSections bounds the tar walk; nydus-image writes at most 5 sections.
const maxSections = 64

// ParseLayerBlob locates the sections of a Nydus layer blob by walking the GNU
// tar headers backwards from the end, and parses the TOC if there is one.
func ParseLayerBlob(r io.ReaderAt, size int64) (*LayerBlob, error) {
	b := &LayerBlob{r: r, size: size}
	var hdr [TarHeaderSize]byte
	end := size
	seen := map[string]bool{}
	for end > 0 {
		if len(b.Sections) == maxSections {
			return nil, formatErr(CheckTOC, end, "more than %d sections", maxSections)
		}
		if end < TarHeaderSize {
			return nil, formatErr(CheckTOC, end, "%d bytes before the first section are not a tar header", end)
		}
		if _, err := r.ReadAt(hdr[:], end-TarHeaderSize); err != nil {
			return nil, fmt.Errorf("nydus: reading blob: %w", err)
		}
		name, ssize, err := ParseSectionHeader(hdr[:])
		if err != nil {
			where := "at the end of the blob"
			if len(b.Sections) > 0 {
				where = fmt.Sprintf("before section %q", b.Sections[0].Name)
			}
			return nil, &FormatError{Check: CheckTOC, Offset: end - TarHeaderSize, Msg: "no valid section tar header " + where, Err: err}
		}
		if ssize > end-TarHeaderSize {
			return nil, formatErr(CheckTOC, end-TarHeaderSize, "section %q of %d bytes starts before the blob", name, ssize)
		}
		if seen[name] {
			return nil, formatErr(CheckTOC, end-TarHeaderSize, "section %q appears twice", name)
		}
		seen[name] = true
		s := Section{Name: name, Offset: end - TarHeaderSize - ssize, Size: ssize}
		b.Sections = append([]Section{s}, b.Sections...)
		end = s.Offset
	}
	if len(b.Sections) == 0 {
		return nil, formatErr(CheckTOC, 0, "empty blob")
	}
	last := b.Sections[len(b.Sections)-1]
	if last.Name == SectionTOC {
		if last.Size > 1<<20 {
			return nil, formatErr(CheckTOC, last.Offset, "TOC of %d bytes (nydus writes at most %d)", last.Size, MaxTOCSize-TarHeaderSize)
		}
		if last.Size%TOCEntrySize != 0 {
			return nil, formatErr(CheckTOC, last.Offset, "TOC of %d bytes is not a multiple of %d", last.Size, TOCEntrySize)
		}
		raw := make([]byte, last.Size+TarHeaderSize)
		if _, err := r.ReadAt(raw, last.Offset); err != nil {
			return nil, fmt.Errorf("nydus: reading TOC: %w", err)
		}
		b.TOCDigest = sha256.Sum256(raw)
		b.TOCSize = int64(len(raw))
		b.TOC = make([]TOCEntry, last.Size/TOCEntrySize)
		for i := range b.TOC {
			_ = b.TOC[i].UnmarshalBinary(raw[i*TOCEntrySize:])
		}
	} else if seen[SectionTOC] {
		return nil, formatErr(CheckTOC, -1, "rafs.blob.toc is not the last section")
	}
	return b, nil
}

// Bootstrap returns the inlined bootstrap, decompressed (at most limit bytes;
// limit ≤ 0 means 1 GiB). Its compression comes from the TOC entry, or from the
// zstd magic when there is no TOC.
func (b *LayerBlob) Bootstrap(limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	s, ok := b.Section(SectionBootstrap)
	if !ok {
		return nil, formatErr(CheckTOC, -1, "blob has no %s section (no inlined bootstrap)", SectionBootstrap)
	}
	if s.Size > limit {
		return nil, formatErr(CheckTOC, s.Offset, "bootstrap section of %d bytes over the limit %d", s.Size, limit)
	}
	raw := make([]byte, s.Size)
	if _, err := b.r.ReadAt(raw, s.Offset); err != nil {
		return nil, fmt.Errorf("nydus: reading bootstrap section: %w", err)
	}
	algo := CompressNone
	want := int64(-1)
	if e, ok := b.TOCEntry(SectionBootstrap); ok {
		algo = e.Flags.Compressor()
		if algo == CompressUnknown {
			return nil, formatErr(CheckTOC, -1, "TOC entry %s has unknown flags %#x", SectionBootstrap, uint32(e.Flags))
		}
		if e.UncompressedSize > uint64(limit) {
			return nil, formatErr(CheckTOC, -1, "bootstrap of %d bytes over the limit %d", e.UncompressedSize, limit)
		}
		want = int64(e.UncompressedSize)
	} else if bytes.HasPrefix(raw, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		algo = CompressZstd
	}
	out, err := decompressSection(algo, raw, want, limit)
	if err != nil {
		return nil, &FormatError{Check: CheckTOC, Offset: s.Offset, Msg: "decompressing the inlined bootstrap", Err: err}
	}
	return out, nil
}

// decompressSection decompresses a whole section; want < 0 means unknown size.
func decompressSection(algo Compressor, src []byte, want, limit int64) ([]byte, error) {
	if want >= 0 {
		return decompressLimited(algo, src, want, limit)
	}
	switch algo {
	case CompressNone:
		return bytes.Clone(src), nil
	case CompressZstd:
		d := zstdDecoders.Get().(*zstd.Decoder)
		defer func() {
			_ = d.Reset(nil)
			zstdDecoders.Put(d)
		}()
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		n, err := io.Copy(&buf, io.LimitReader(d, limit+1))
		if err != nil {
			return nil, err
		}
		if n > limit {
			return nil, fmt.Errorf("more than %d bytes", limit)
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("%w: section compressor %s without a known size", ErrUnsupported, algo)
}

// OpenLayer opens the bootstrap inlined in a per-layer Nydus blob. Chunks of
// that blob are read from the blob itself; other blobs (chunk dictionaries) are
// resolved with blobs, which may be nil.
func OpenLayer(r io.ReaderAt, size int64, blobs BlobResolver) (*FS, error) {
	return OpenLayerWithOptions(r, size, blobs, nil)
}

// OpenLayerWithOptions is OpenLayer with limits.
func OpenLayerWithOptions(r io.ReaderAt, size int64, blobs BlobResolver, opts *Options) (*FS, error) {
	lb, err := ParseLayerBlob(r, size)
	if err != nil {
		return nil, err
	}
	return lb.FS(blobs, opts)
}

// FS opens the inlined bootstrap (see OpenLayer).
func (b *LayerBlob) FS(blobs BlobResolver, opts *Options) (*FS, error) {
	boot, err := b.Bootstrap(opts.maxBootstrap())
	if err != nil {
		return nil, err
	}
	f := &FS{r: bytes.NewReader(boot), size: int64(len(boot)), resolver: blobs, self: b, selfBlob: -1}
	if opts != nil {
		f.opts = *opts
	}
	if err := f.parse(); err != nil {
		return nil, err
	}
	f.selfBlob = b.selfIndex(f.blobs)
	return f, nil
}

// selfIndex finds the blob table entry describing this blob: the placeholder id,
// the INLINED_FS_META feature, or a ci location equal to this blob's blob.meta.
func (b *LayerBlob) selfIndex(blobs []BlobEntry) int {
	meta, hasMeta := b.Section(SectionBlobMeta)
	for i := range blobs {
		e := &blobs[i]
		if e.ID() == PlaceholderBlobID || BlobFeatures(e.Features)&BlobInlinedFSMeta != 0 {
			return i
		}
		if hasMeta && int64(e.CIOffset) == meta.Offset && int64(e.CICompressedSize)+BlobMetaHeaderSize == meta.Size {
			return i
		}
	}
	if len(blobs) == 1 {
		if _, ok := b.Section(SectionBlob); ok {
			return 0
		}
	}
	return -1
}

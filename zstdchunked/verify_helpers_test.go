package zstdchunked

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	esgzzstd "github.com/containerd/stargz-snapshotter/estargz/zstdchunked"
	"github.com/fmtconv/fmtconv/check"
	jsoniter "github.com/json-iterator/go"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/storage"
)

func verifyBlob(t testing.TB, blob []byte, ann map[string]string, opts VerifyOptions) (*LayerInfo, []check.Finding) {
	t.Helper()
	info, fs, err := Verify(context.Background(), bytes.NewReader(blob), int64(len(blob)), ann, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return info, fs
}

// idSet is the sorted set of "id" (errors) and "id(w)" (warnings).
func idSet(fs []check.Finding) []string {
	m := map[string]bool{}
	for _, f := range fs {
		id := f.Check
		if f.Severity == check.Warning {
			id += "(w)"
		}
		m[id] = true
	}
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func dumpFindings(fs []check.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %s [%s] %s", f.Check, f.Severity, f.Message)
	}
	return b.String()
}

// wantIDs asserts the exact set of check ids (warnings as "id(w)").
func wantIDs(t testing.TB, fs []check.Finding, want ...string) {
	t.Helper()
	sort.Strings(want)
	want = slices.Compact(want)
	if got := idSet(fs); !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v:%s", got, want, dumpFindings(fs))
	}
}

func copyAnn(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// cblob is a containers-dialect blob taken apart: the data frames, the
// parsed TOC and the uncompressed tar-split.
type cblob struct {
	data     []byte
	toc      *TOC
	tarSplit []byte
}

func splitContainers(t testing.TB, blob []byte, ann map[string]string) *cblob {
	t.Helper()
	toc, ts := readBack(t, blob, ann)
	mp := parsePosU(t, ann[AnnotationManifestPosition])
	cp := *toc
	cp.Entries = slices.Clone(toc.Entries)
	return &cblob{data: slices.Clone(blob[:mp[0]-SkippableFrameHeaderSize]), toc: &cp, tarSplit: ts}
}

func parsePosU(t testing.TB, v string) []uint64 {
	t.Helper()
	var out []uint64
	for _, p := range strings.Split(v, ":") {
		var x uint64
		if _, err := fmt.Sscan(p, &x); err != nil {
			t.Fatalf("position %q: %v", v, err)
		}
		out = append(out, x)
	}
	return out
}

func zstdCompress(t testing.TB, level int, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	e := newTestEncoder(t, &b, level)
	if _, err := e.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type assembleOpts struct {
	tsDigest   digest.Digest // overrides TOC.TarSplitDigest ("" = computed)
	tsLevel    int           // tar-split zstd level (0 = 3)
	footerSize int           // 0 = 64
}

// assemble writes a containers-dialect blob the way Encode does from its
// parts, with every digest, position and the footer recomputed.
func (c *cblob) assemble(t testing.TB, o assembleOpts) ([]byte, map[string]string) {
	t.Helper()
	lvl := o.tsLevel
	if lvl == 0 {
		lvl = 3
	}
	tsComp := zstdCompress(t, lvl, c.tarSplit)
	toc := *c.toc
	if o.tsDigest != "" {
		toc.TarSplitDigest = o.tsDigest
	} else if toc.TarSplitDigest != "" || c.tarSplit != nil {
		toc.TarSplitDigest = digest.FromBytes(tsComp)
	}
	if o.footerSize == IntermediateFooterSize || o.footerSize == LegacyFooterSize {
		toc.TarSplitDigest = ""
	}
	tocJSON, err := jsoniter.ConfigCompatibleWithStandardLibrary.Marshal(toc)
	if err != nil {
		t.Fatal(err)
	}
	tocComp := zstdCompress(t, 3, tocJSON)
	var out bytes.Buffer
	out.Write(c.data)
	tocOff := uint64(out.Len()) + 8
	writeSkippableFrame(&out, tocComp)
	ann := map[string]string{
		AnnotationManifestChecksum: digest.FromBytes(tocComp).String(),
		AnnotationManifestPosition: fmt.Sprintf("%d:%d:%d:1", tocOff, len(tocComp), len(tocJSON)),
	}
	f := Footer{Magic: FooterMagic, Size: FooterSize, TOCOffset: tocOff, TOCLength: uint64(len(tocComp)),
		TOCUncompressedLength: uint64(len(tocJSON)), ManifestType: 1}
	switch o.footerSize {
	case 0, FooterSize:
		tsOff := uint64(out.Len()) + 8
		writeSkippableFrame(&out, tsComp)
		ann[AnnotationTarSplitPosition] = fmt.Sprintf("%d:%d:%d", tsOff, len(tsComp), len(c.tarSplit))
		f.TarSplitOffset, f.TarSplitLength, f.TarSplitUncompressedLength = tsOff, uint64(len(tsComp)), uint64(len(c.tarSplit))
	case IntermediateFooterSize:
		// c/storage 1.47-1.49: tar-split located and authenticated by annotations.
		tsOff := uint64(out.Len()) + 8
		writeSkippableFrame(&out, tsComp)
		ann[AnnotationTarSplitPosition] = fmt.Sprintf("%d:%d:%d", tsOff, len(tsComp), len(c.tarSplit))
		ann[AnnotationTarSplitChecksum] = digest.FromBytes(tsComp).String()
		f.Magic, f.Size = LegacyFooterMagic, IntermediateFooterSize
	case LegacyFooterSize:
		f.Magic, f.Size = LegacyFooterMagic, LegacyFooterSize
	}
	writeSkippableFrame(&out, f.Bytes())
	return out.Bytes(), ann
}

// index returns the TOC index of the non-chunk entry name.
func (c *cblob) index(t testing.TB, name string) int {
	t.Helper()
	for i, e := range c.toc.Entries {
		if e.Name == name && e.Type != TypeChunk {
			return i
		}
	}
	t.Fatalf("no TOC entry %q", name)
	return -1
}

// chunksOf returns the indices of the entry and its chunk entries.
func (c *cblob) chunksOf(t testing.TB, name string) []int {
	i := c.index(t, name)
	out := []int{i}
	for j := i + 1; j < len(c.toc.Entries) && c.toc.Entries[j].Type == TypeChunk; j++ {
		out = append(out, j)
	}
	return out
}

// replaceFrames replaces data[off:end] with repl and shifts every offset at
// or after end.
func (c *cblob) replaceFrames(off, end int64, repl []byte) {
	delta := int64(len(repl)) - (end - off)
	c.data = slices.Concat(c.data[:off], repl, c.data[end:])
	for i := range c.toc.Entries {
		e := &c.toc.Entries[i]
		if e.Offset >= end {
			e.Offset += delta
		}
		if e.EndOffset >= end {
			e.EndOffset += delta
		}
	}
}

// tarSplitEntries decodes the tar-split.
func tarSplitEntries(t testing.TB, ts []byte) []storage.Entry {
	t.Helper()
	up := storage.NewJSONUnpacker(bytes.NewReader(ts))
	var out []storage.Entry
	for {
		e, err := up.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *e)
	}
}

func packTarSplit(t testing.TB, es []storage.Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	p := storage.NewJSONPacker(&b)
	for _, e := range es {
		if _, err := p.AddEntry(e); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// fixChecksum recomputes a ustar header block's checksum.
func fixChecksum(h []byte) {
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h[:512] {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// ---- the other dialects ----

// stargzBlob builds a stargz-dialect blob with stargz-snapshotter's writer.
func stargzBlob(t testing.TB, in []byte, extra ...estargz.Option) ([]byte, map[string]string, digest.Digest) {
	t.Helper()
	md := map[string]string{}
	opts := append([]estargz.Option{
		estargz.WithCompression(stargzZstd{&esgzzstd.Compressor{CompressionLevel: zstd.SpeedDefault, Metadata: md}, &esgzzstd.Decompressor{}}),
		estargz.WithParallelism(1), estargz.WithChunkSize(64 << 10)}, extra...)
	blob, err := estargz.Build(io.NewSectionReader(bytes.NewReader(in), 0, int64(len(in))), opts...)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, blob); err != nil {
		t.Fatal(err)
	}
	blob.Close()
	ann := map[string]string{AnnotationStargzTOCDigest: blob.TOCDigest().String()}
	for k, v := range md {
		ann[k] = v
	}
	usize, err := blob.UncompressedSize()
	if err != nil {
		t.Fatal(err)
	}
	ann[AnnotationStargzUncompressedSize] = fmt.Sprint(usize)
	return out.Bytes(), ann, blob.DiffID()
}

// reassembleStargz rewrites a stargz-dialect blob's TOC (JSON as
// estargz's zstdchunked writer does it) with every digest recomputed.
func reassembleStargz(t testing.TB, blob []byte, ann map[string]string, edit func(*TOC)) ([]byte, map[string]string) {
	t.Helper()
	toc, _, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), ann, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	mp := parsePosU(t, ann[AnnotationLegacyManifestPosition])
	data := blob[:mp[0]-8]
	edit(toc)
	tocJSON, err := json.MarshalIndent(toc, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	comp := zstdCompress(t, 3, tocJSON)
	var out bytes.Buffer
	out.Write(data)
	off := uint64(out.Len()) + 8
	writeSkippableFrame(&out, comp)
	f := Footer{Magic: LegacyFooterMagic, Size: LegacyFooterSize, TOCOffset: off, TOCLength: uint64(len(comp)), TOCUncompressedLength: uint64(len(tocJSON)), ManifestType: 1}
	writeSkippableFrame(&out, f.Bytes())
	return out.Bytes(), copyAnn(ann,
		AnnotationStargzTOCDigest, digest.FromBytes(tocJSON).String(),
		AnnotationLegacyManifestChecksum, digest.FromBytes(comp).String(),
		AnnotationLegacyManifestPosition, fmt.Sprintf("%d:%d:%d:1", off, len(comp), len(tocJSON)))
}

// reassembleLegacy rewrites a legacy blob's TOC.
func reassembleLegacy(t testing.TB, blob []byte, ann map[string]string, edit func(*TOC)) ([]byte, map[string]string) {
	t.Helper()
	toc, _, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), ann, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	mp := parsePosU(t, ann[AnnotationLegacyManifestPosition])
	data := blob[:mp[0]-8]
	edit(toc)
	tocJSON, err := json.Marshal(toc)
	if err != nil {
		t.Fatal(err)
	}
	comp := zstdCompress(t, 3, tocJSON)
	var out bytes.Buffer
	out.Write(data)
	off := uint64(out.Len()) + 8
	writeSkippableFrame(&out, comp)
	footer := make([]byte, 40)
	binary.LittleEndian.PutUint64(footer[0:], off)
	binary.LittleEndian.PutUint64(footer[8:], uint64(len(comp)))
	binary.LittleEndian.PutUint64(footer[16:], uint64(len(tocJSON)))
	binary.LittleEndian.PutUint64(footer[24:], 1)
	copy(footer[32:], LegacyFooterMagic)
	writeSkippableFrame(&out, footer)
	return out.Bytes(), map[string]string{
		AnnotationLegacyManifestChecksum: digest.FromBytes(comp).String(),
		AnnotationLegacyManifestPosition: fmt.Sprintf("%d:%d:%d:1", off, len(comp), len(tocJSON)),
	}
}

func tarOf(t testing.TB, es []tarEntry) []byte { return buildTar(t, es, tar.FormatUnknown) }

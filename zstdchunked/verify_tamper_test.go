package zstdchunked

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/storage"
)

var (
	baseOnce sync.Once
	baseBlob []byte
	baseAnn  map[string]string
)

// base is Encode's blob of the rich tar.
func base(t *testing.T) ([]byte, map[string]string) {
	baseOnce.Do(func() {
		in, _ := rich(t)
		b, res := ourEncode(t, in, 3)
		baseBlob, baseAnn = b, res.Annotations
	})
	return baseBlob, baseAnn
}

// TestVerifyTampered: one defect per case, each caught by the check meant
// for it and by no other.
func TestVerifyTampered(t *testing.T) {
	in, data := rich(t)
	diffID := digest.FromBytes(in)
	blob, ann := base(t)
	split := func(t *testing.T) *cblob { return splitContainers(t, blob, ann) }

	cases := []struct {
		name string
		make func(t *testing.T) ([]byte, map[string]string, VerifyOptions)
		want []string
	}{
		{"wrong-manifest-checksum", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, copyAnn(ann, AnnotationManifestChecksum, digest.FromString("x").String()), VerifyOptions{}
		}, []string{CheckTOCChecksum}},

		// The TOC describes a file differently from the tar; every digest,
		// position annotation and the footer are recomputed.
		{"toc-renames-a-file", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			for _, i := range c.chunksOf(t, "usr/text") {
				c.toc.Entries[i].Name = "usr/texz"
			}
			if n := len(c.chunksOf(t, "usr/texz")); n < 3 {
				t.Fatalf("usr/text has %d chunks, want several", n)
			}
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckViewMismatch}},
		{"toc-shortens-a-file", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			// Drop the last chunk of a multi-chunk file: the TOC is
			// consistent in itself (size, digest, endOffset), the tar is not.
			c := split(t)
			idx := c.chunksOf(t, "usr/big-random")
			last := c.toc.Entries[idx[len(idx)-1]]
			reg := &c.toc.Entries[idx[0]]
			reg.Size = last.ChunkOffset
			reg.EndOffset = last.Offset
			reg.Digest = digest.FromBytes(data["usr/big-random"][:reg.Size]).String()
			c.toc.Entries = slices.Delete(c.toc.Entries, idx[len(idx)-1], idx[len(idx)-1]+1)
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckViewMismatch}},
		{"toc-swaps-two-files", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			i, j := c.index(t, "usr/rand-1"), c.index(t, "usr/rand-5")
			if j != i+1 {
				t.Fatalf("entries %d, %d not adjacent", i, j)
			}
			c.toc.Entries[i], c.toc.Entries[j] = c.toc.Entries[j], c.toc.Entries[i]
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckViewMismatch}},
		{"toc-changes-a-mode", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			c.toc.Entries[c.index(t, "usr/owned")].Mode = 0o755
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckViewMismatch}},

		{"wrong-file-digest", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			c.toc.Entries[c.index(t, "usr/rand-4096")].Digest = digest.FromString("x").String()
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckFileDigest}},
		{"wrong-chunk-digest", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			idx := c.chunksOf(t, "usr/big-random")
			c.toc.Entries[idx[2]].ChunkDigest = digest.FromString("x").String()
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckChunkDigest}},
		{"payload-frame-replaced", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			// A valid frame with one byte changed; every offset after it,
			// the TOC checksum and the footer fixed, the tar-split kept.
			c := split(t)
			e := c.toc.Entries[c.index(t, "usr/rand-4096")]
			content := slices.Clone(data["usr/rand-4096"])
			content[100] ^= 0xff
			c.replaceFrames(e.Offset, e.EndOffset, zstdCompress(t, 1, content))
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{}
		}, []string{CheckFileDigest}},
		{"payload-frame-replaced-with-diff-id", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			e := c.toc.Entries[c.index(t, "usr/rand-4096")]
			content := slices.Clone(data["usr/rand-4096"])
			content[100] ^= 0xff
			c.replaceFrames(e.Offset, e.EndOffset, zstdCompress(t, 1, content))
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckFileDigest, CheckDiffID}},
		{"payload-byte-flipped", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			// A corrupt frame (its content checksum fails): both views fail.
			c := split(t)
			e := c.toc.Entries[c.index(t, "usr/rand-4096")]
			c.data[e.Offset+(e.EndOffset-e.Offset)/2] ^= 0x55
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckFileDigest, CheckStream}},
		{"zeros-chunk-not-zeros", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			idx := c.chunksOf(t, "usr/holes")
			k := slices.IndexFunc(idx, func(i int) bool { return c.toc.Entries[i].ChunkType == ChunkTypeZeros })
			if k < 0 || k+1 >= len(idx) {
				t.Fatal("no zeros chunk in the middle of usr/holes")
			}
			z := c.toc.Entries[idx[k]]
			c.replaceFrames(z.Offset, c.toc.Entries[idx[k+1]].Offset, zstdCompress(t, 3, bytes.Repeat([]byte{1}, int(z.ChunkSize))))
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{}
		}, []string{CheckChunkDigest}},
		{"offset-past-data-area", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			e := &c.toc.Entries[c.index(t, "usr/rand-4096")]
			e.Offset, e.EndOffset = int64(len(c.data))+3, int64(len(c.data))+40
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckOffsets}},
		{"offset-inside-a-frame", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			e := &c.toc.Entries[c.index(t, "usr/rand-4096")]
			e.Offset++
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckOffsets}},
		{"chunk-sizes-do-not-cover", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			idx := c.chunksOf(t, "usr/big-random")
			c.toc.Entries[idx[1]].ChunkSize += 10
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckTOC}},
		{"tarsplit-digest-mismatch", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			// The same tar-split recompressed: same content, other bytes.
			c := split(t)
			b, a := c.assemble(t, assembleOpts{tsLevel: 1, tsDigest: c.toc.TarSplitDigest})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckTarSplitDigest}},
		{"tarsplit-other-content", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			// A header the TOC does not describe (the owner's user name)
			// changed in the tar-split, its digest recomputed: c/storage's
			// TOC check passes, the rebuilt tar is not the layer.
			c := split(t)
			es := tarSplitEntries(t, c.tarSplit)
			done := false
			for i := range es {
				p := es[i].Payload
				if es[i].Type != storage.SegmentType || !bytes.Contains(p, []byte("usr/owned\x00")) {
					continue
				}
				h := p[len(p)-512:]
				if string(h[265:270]) != "user\x00" {
					t.Fatalf("uname field %q", h[265:297])
				}
				h[268] = 'x'
				fixChecksum(h)
				done = true
			}
			if !done {
				t.Fatal("header of usr/owned not found")
			}
			c.tarSplit = packTarSplit(t, es)
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckRebuild}},
		{"tarsplit-other-content-no-diffid", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			es := tarSplitEntries(t, c.tarSplit)
			last := &es[len(es)-1]
			last.Payload = append(slices.Clone(last.Payload), make([]byte, 512)...)
			c.tarSplit = packTarSplit(t, es)
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{}
		}, []string{CheckRebuild}},
		{"tarsplit-names-differ", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			c := split(t)
			es := tarSplitEntries(t, c.tarSplit)
			for i := range es {
				if es[i].Type == storage.FileType && es[i].GetName() == "fifo" {
					es[i].SetName("fifo2") // the file entry only: headers still say "fifo"
				}
			}
			c.tarSplit = packTarSplit(t, es)
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, nil}, // size 0: asm never asks for it; nothing differs
		{"dual-toc", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, copyAnn(ann, AnnotationStargzTOCDigest, digest.FromString("x").String()), VerifyOptions{DiffID: diffID}
		}, []string{CheckDualTOC}},
		{"half-written-no-manifest-position", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, copyAnn(ann, AnnotationManifestPosition, "-"), VerifyOptions{DiffID: diffID}
		}, []string{CheckAnnotations}},
		{"half-written-no-tarsplit-position", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, copyAnn(ann, AnnotationTarSplitPosition, "-"), VerifyOptions{DiffID: diffID}
		}, []string{CheckAnnotations}},
		{"bad-position-syntax", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, copyAnn(ann, AnnotationManifestPosition, "1:2:3"), VerifyOptions{DiffID: diffID}
		}, []string{CheckAnnotations}},
		{"manifest-type-2", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			p := parsePosU(t, ann[AnnotationManifestPosition])
			return blob, copyAnn(ann, AnnotationManifestPosition, fmt.Sprintf("%d:%d:%d:2", p[0], p[1], p[2])), VerifyOptions{DiffID: diffID}
		}, []string{CheckAnnotations}},
		{"wrong-diff-id", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, ann, VerifyOptions{DiffID: digest.FromString("another layer")}
		}, []string{CheckDiffID}},
		{"footer-disagrees", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			b := slices.Clone(blob)
			b[len(b)-64+16]++ // TOC uncompressed length
			return b, ann, VerifyOptions{DiffID: diffID}
		}, []string{CheckFooter}},
		{"no-footer", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob[:len(blob)-72], ann, VerifyOptions{DiffID: diffID}
		}, []string{CheckFooter + "(w)"}},
		{"frame-after-footer", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return slices.Concat(blob, zstdCompress(t, 3, nil)), ann, VerifyOptions{DiffID: diffID}
		}, []string{CheckFooter + "(w)", CheckTrailingData}},
		{"garbage-after-footer", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return slices.Concat(blob, []byte("garbage!")), ann, VerifyOptions{DiffID: diffID}
		}, []string{CheckFooter + "(w)", CheckTrailingData}},
		{"skippable-after-footer", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			var b bytes.Buffer
			b.Write(blob)
			writeSkippableFrame(&b, []byte("note"))
			return b.Bytes(), ann, VerifyOptions{DiffID: diffID}
		}, []string{CheckFooter + "(w)", CheckTrailingData + "(w)"}},
		{"limit-toc-size", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, ann, VerifyOptions{Limits: Limits{MaxTOCSize: 1000}, DiffID: diffID}
		}, []string{CheckLimitTOCSize}},
		{"limit-entries", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, ann, VerifyOptions{Limits: Limits{MaxEntries: 10}, DiffID: diffID}
		}, []string{CheckLimitEntries}},
		{"limit-name-length", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, ann, VerifyOptions{Limits: Limits{MaxNameLength: 20}, DiffID: diffID}
		}, []string{CheckLimitNameLength}},
		{"limit-tarsplit-size", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, ann, VerifyOptions{Limits: Limits{MaxTarSplitSize: 1000}, DiffID: diffID}
		}, []string{CheckLimitTarSplitSize}},
		{"limit-uncompressed-size", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			return blob, ann, VerifyOptions{Limits: Limits{MaxUncompressedSize: 1 << 20}, DiffID: diffID}
		}, []string{CheckLimitDecompressedSize}},
		{"chunk-decompresses-to-more", func(t *testing.T) ([]byte, map[string]string, VerifyOptions) {
			// The TOC claims one byte less than the frame holds, with the
			// digest of that prefix: a partial pull cuts it.
			c := split(t)
			e := &c.toc.Entries[c.index(t, "usr/rand-4096")]
			e.Size--
			e.Digest = digest.FromBytes(data["usr/rand-4096"][:e.Size]).String()
			b, a := c.assemble(t, assembleOpts{})
			return b, a, VerifyOptions{DiffID: diffID}
		}, []string{CheckLimitDecompressedSize, CheckViewMismatch}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, a, o := c.make(t)
			_, fs := verifyBlob(t, b, a, o)
			wantIDs(t, fs, c.want...)
			if testing.Verbose() {
				t.Log(dumpFindings(fs))
			}
		})
	}
}

// TestVerifyOtherDialectsTampered covers the legacy and stargz dialects.
func TestVerifyOtherDialectsTampered(t *testing.T) {
	in, data := rich(t)
	lb, lann, _ := legacyBlob(t, in)
	sb, sann, sdiff := stargzBlob(t, in)
	rename := func(from, to string) func(*TOC) {
		return func(toc *TOC) {
			for i := range toc.Entries {
				if toc.Entries[i].Name == from {
					toc.Entries[i].Name = to
				}
			}
		}
	}
	cases := []struct {
		name string
		blob []byte
		ann  map[string]string
		opts VerifyOptions
		want []string
	}{
		{"legacy-rename", nil, nil, VerifyOptions{}, []string{CheckViewMismatch}},
		{"legacy-wrong-digest", nil, nil, VerifyOptions{}, []string{CheckFileDigest}},
		{"legacy-position-without-checksum", lb, copyAnn(lann, AnnotationLegacyManifestChecksum, "-"), VerifyOptions{}, []string{CheckAnnotations}},
		{"legacy-checksum-without-position", lb, copyAnn(lann, AnnotationLegacyManifestPosition, "-"), VerifyOptions{}, nil},
		{"stargz-rename", nil, nil, VerifyOptions{DiffID: sdiff}, []string{CheckViewMismatch}},
		{"stargz-wrong-chunk-digest", nil, nil, VerifyOptions{DiffID: sdiff}, []string{CheckChunkDigest}},
		{"stargz-wrong-toc-digest", sb, copyAnn(sann, AnnotationStargzTOCDigest, digest.FromString("x").String()), VerifyOptions{DiffID: sdiff}, []string{CheckTOCChecksum}},
		{"stargz-without-estargz-key", sb, copyAnn(sann, AnnotationStargzTOCDigest, "-"), VerifyOptions{DiffID: sdiff}, []string{CheckDialect}},
		{"stargz-wrong-uncompressed-size", sb, copyAnn(sann, AnnotationStargzUncompressedSize, "12"), VerifyOptions{DiffID: sdiff}, []string{CheckAnnotations + "(w)"}},
		{"stargz-no-footer", sb[:len(sb)-48], sann, VerifyOptions{DiffID: sdiff}, []string{CheckFooter}},
		{"stargz-wrong-diff-id", sb, sann, VerifyOptions{DiffID: digest.FromBytes(in)}, []string{CheckDiffID}},
		{"containers-keys-on-legacy-blob", lb, map[string]string{
			AnnotationManifestChecksum: lann[AnnotationLegacyManifestChecksum],
			AnnotationManifestPosition: lann[AnnotationLegacyManifestPosition],
		}, VerifyOptions{}, nil}, // c/storage 1.44-1.46 wrote exactly this
	}
	cases[0].blob, cases[0].ann = reassembleLegacy(t, lb, lann, rename("usr/text", "usr/texz"))
	cases[1].blob, cases[1].ann = reassembleLegacy(t, lb, lann, func(toc *TOC) {
		for i := range toc.Entries {
			if toc.Entries[i].Name == "usr/rand-513" {
				toc.Entries[i].Digest = digest.FromString("x").String()
			}
		}
	})
	cases[4].blob, cases[4].ann = reassembleStargz(t, sb, sann, rename("usr/rand-513", "usr/rand-514"))
	cases[5].blob, cases[5].ann = reassembleStargz(t, sb, sann, func(toc *TOC) {
		n := 0
		for i := range toc.Entries {
			if toc.Entries[i].Name == "usr/big-random" && toc.Entries[i].Type == TypeChunk {
				if n++; n == 3 {
					toc.Entries[i].ChunkDigest = digest.FromBytes(data["usr/rand-5"]).String()
				}
			}
		}
		if n < 3 {
			t.Fatalf("usr/big-random has %d chunk entries", n)
		}
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, fs := verifyBlob(t, c.blob, c.ann, c.opts)
			wantIDs(t, fs, c.want...)
			if testing.Verbose() {
				t.Log(dumpFindings(fs))
			}
		})
	}
}

// TestVerifyOlderContainersForms: the footers and annotations c/storage
// 1.44-1.49 wrote are valid.
func TestVerifyOlderContainersForms(t *testing.T) {
	blob, ann := base(t)
	c := splitContainers(t, blob, ann)
	for _, fs := range []struct {
		size int
		want []string
		pp   string
	}{
		{IntermediateFooterSize, []string{CheckAnnotations + "(w)"}, "1.47-1.53"},
		{LegacyFooterSize, nil, "1.44-1.56"},
	} {
		t.Run(fmt.Sprint(fs.size), func(t *testing.T) {
			b, a := c.assemble(t, assembleOpts{footerSize: fs.size})
			f, err := ReadFooter(bytes.NewReader(b), int64(len(b)))
			if err != nil || f.Size != fs.size {
				t.Fatalf("ReadFooter: %+v %v", f, err)
			}
			info, findings := verifyBlob(t, b, a, VerifyOptions{})
			wantIDs(t, findings, fs.want...)
			if !strings.Contains(info.PartialPull, fs.pp) {
				t.Fatalf("PartialPull %q", info.PartialPull)
			}
		})
	}
}

package nydus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/fmtconv/fmtconv/check"
)

func TestReadmeAbbreviations(t *testing.T) {
	readme := string(readFixture(t, "README.md"))
	n := 0
	for _, m := range []map[string]string{want22, want2fa} {
		for _, full := range m {
			tail, ok := readmeAbbrev[full[:8]]
			if !ok || !strings.HasSuffix(full, tail) {
				t.Errorf("%s does not match the README abbreviation", full)
			}
			if !strings.Contains(readme, full[:8]+"…"+tail) {
				t.Errorf("README does not list %s…%s", full[:8], tail)
			}
			n++
		}
	}
	t.Logf("%d expected file digests agree with the fixture README", n)
}

func open22(t *testing.T) (*FS, []byte, []byte) {
	t.Helper()
	boot := readFixture(t, fxBoot22)
	blob := readFixture(t, fxBlobBe7d)
	f, err := Open(bytes.NewReader(boot), int64(len(boot)), mapResolver(map[string][]byte{fxBlobBe7d: blob}))
	if err != nil {
		t.Fatal(err)
	}
	return f, boot, blob
}

func TestFixture22Files(t *testing.T) {
	f, _, blob := open22(t)
	got := map[string]string{}
	for _, e := range f.Entries() {
		if e.Type == FileTypeReg {
			b, err := f.ReadFile(e.Path)
			if err != nil {
				t.Fatal(err)
			}
			got[e.Path] = sha(b)
			// every chunk's digest is the blake3 of its data (one chunk per file here)
			refs, err := f.Chunks(e.Path)
			if err != nil || len(refs) != 1 {
				t.Fatalf("%s: chunks %v %v", e.Path, refs, err)
			}
			if d := blake3Sum256(b); d != refs[0].Digest || !refs[0].HasDigest {
				t.Errorf("%s: blake3 %x, chunk digest %x", e.Path, d, refs[0].Digest)
			}
		}
	}
	if len(got) != len(want22) {
		t.Fatalf("files %v, want %v", got, want22)
	}
	for p, w := range want22 {
		if got[p] != w {
			t.Errorf("%s: sha256 %s, want %s", p, got[p], w)
		}
	}
	// the chunk digests are also the blob's blob.digest array, in ci order
	lb, err := ParseLayerBlob(bytes.NewReader(blob), int64(len(blob)))
	if err != nil {
		t.Fatal(err)
	}
	sec, ok := lb.Section(SectionBlobDigest)
	if !ok || sec.Offset != 12954 || sec.Size != 64 {
		t.Fatalf("blob.digest section %+v", sec)
	}
	for _, p := range []string{"lib.rs", "sync_io.rs"} {
		refs, _ := f.Chunks(p)
		d := blob[sec.Offset+32*int64(refs[0].CIIndex):][:32]
		if !bytes.Equal(d, refs[0].Digest[:]) {
			t.Errorf("%s: blob.digest[%d] %x ≠ chunk digest %x", p, refs[0].CIIndex, d, refs[0].Digest)
		}
	}
	info := f.Info()
	if info.Compressor != "zstd" || info.Digester != "blake3" || info.ChunkSize != 1<<20 || len(info.Blobs) != 1 ||
		info.Blobs[0].ChunkCount != 2 || info.ByType["reg"] != 2 || info.ByType["dir"] != 1 || info.Blobs[0].Features != 0x70000021 || info.Flags != 0x194 {
		t.Errorf("info %+v", info)
	}
	t.Logf("rafs-v6-2.2.boot: %d files match the README sha256; flags %v; blob features %v", len(got), info.FlagNames, info.Blobs[0].FeatureNames)
}

func TestFixtureLayerBlob(t *testing.T) {
	layer := readFixture(t, fxLayer2fa)
	lb, err := ParseLayerBlob(bytes.NewReader(layer), int64(len(layer)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range lb.Sections {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "image.blob,blob.meta,image.boot,rafs.blob.toc" {
		t.Fatalf("sections %v", names)
	}
	if !strings.HasPrefix(hex.EncodeToString(lb.TOCDigest[:]), fxTOCDig2fa) {
		t.Fatalf("TOC digest %x", lb.TOCDigest)
	}
	boot, err := lb.Bootstrap(0)
	if err != nil {
		t.Fatal(err)
	}
	if want := readFixture(t, fxBoot2fa); !bytes.Equal(boot, want) {
		t.Fatalf("inlined bootstrap (%d bytes) differs from derived/2fa78cad.image.boot", len(boot))
	}
	f, err := OpenLayer(bytes.NewReader(layer), int64(len(layer)), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range f.Entries() {
		if e.Type == FileTypeReg {
			b, err := f.ReadFile(e.Path)
			if err != nil {
				t.Fatal(err)
			}
			got[e.Path] = sha(b)
			refs, _ := f.Chunks(e.Path)
			for _, r := range refs {
				if !r.HasDigest || blake3Sum256(b[r.FileOffset:r.FileOffset+uint64(r.Length)]) != r.Digest {
					t.Errorf("%s: chunk digest mismatch", e.Path)
				}
			}
		}
	}
	for p, w := range want2fa {
		if got[p] != w {
			t.Errorf("%s: sha256 %s, want %s", p, got[p], w)
		}
	}
	if len(got) != 3 {
		t.Errorf("files %v", got)
	}
	li, err := InspectLayer(bytes.NewReader(layer), int64(len(layer)))
	if err != nil || li.Bootstrap == nil || len(li.TOC) != 4 || li.Bootstrap.Blobs[0].ChunkCount != 3 {
		t.Fatalf("InspectLayer %+v %v", li, err)
	}
	t.Logf("2fa78cad layer blob: %d files match the README sha256, TOC digest sha256:%x", len(got), lb.TOCDigest)
}

// Our raw-device export is byte-identical to the derived raw devices of the README.
func TestFixtureRawDevices(t *testing.T) {
	f22, _, _ := open22(t)
	layer := readFixture(t, fxLayer2fa)
	f2fa, err := OpenLayer(bytes.NewReader(layer), int64(len(layer)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    *FS
		want string
	}{{f22, fxRawBe7d}, {f2fa, fxRaw2fa}} {
		var buf writerAtBuf
		n, err := c.f.WriteRawDevice(0, &buf)
		if err != nil {
			t.Fatal(err)
		}
		buf.grow(n)
		if want := readFixture(t, c.want); !bytes.Equal(buf.b, want) {
			t.Errorf("raw device differs from %s (%d vs %d bytes)", c.want, len(buf.b), len(want))
		}
	}
}

type writerAtBuf struct{ b []byte }

func (w *writerAtBuf) WriteAt(p []byte, off int64) (int, error) {
	w.grow(off + int64(len(p)))
	return copy(w.b[off:], p), nil
}

func (w *writerAtBuf) grow(n int64) {
	if int64(len(w.b)) < n {
		w.b = append(w.b, make([]byte, n-int64(len(w.b)))...)
	}
}

func TestRAFSV5Refused(t *testing.T) {
	b := readFixture(t, fxV5)
	_, err := Open(bytes.NewReader(b), int64(len(b)), nil)
	if !errors.Is(err, ErrRAFSV5) {
		t.Fatalf("Open(v5) = %v, want ErrRAFSV5", err)
	}
	var ve *VersionError
	if !errors.As(err, &ve) || ve.FSVersion != 5 || ve.Version != RAFSV5Version {
		t.Fatalf("error %#v", err)
	}
	if !strings.Contains(err.Error(), "RAFS v5") || !strings.Contains(err.Error(), "only RAFS v6") {
		t.Fatalf("unclear message: %v", err)
	}
	if _, err := Inspect(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrRAFSV5) {
		t.Fatalf("Inspect(v5) = %v", err)
	}
	fs := Verify(bytes.NewReader(b), int64(len(b)), nil, nil)
	if len(fs) != 1 || fs[0].Check != CheckBootstrap || fs[0].Severity != check.Error || !strings.Contains(fs[0].Message, "RAFS v5") {
		t.Fatalf("Verify(v5) = %v", fs)
	}
	t.Logf("RAFS v5 refused: %v", err)
}

func TestVerifyFixturesClean(t *testing.T) {
	_, boot, blob := open22(t)
	fs := Verify(bytes.NewReader(boot), int64(len(boot)), mapResolver(map[string][]byte{fxBlobBe7d: blob}), nil)
	if len(errorFindings(fs)) != 0 {
		t.Fatalf("rafs-v6-2.2: %s", dumpFindings(fs))
	}
	// The README: the id of be7d77ee is not the sha256 of the file, so the blob-id
	// rule does not apply; Verify recognises nydus-image's hash and only warns.
	if len(fs) != 1 || fs[0].Check != CheckBlobID || fs[0].Severity != check.Warning || !strings.Contains(fs[0].Message, fxBe7dSHA) {
		t.Fatalf("expected exactly the blob-id warning: %s", dumpFindings(fs))
	}
	layer := readFixture(t, fxLayer2fa)
	if fs := VerifyLayer(bytes.NewReader(layer), int64(len(layer)), nil, nil); len(fs) != 0 {
		t.Fatalf("2fa78cad: %s", dumpFindings(fs))
	}
	// the derived (decompressed) inlined bootstrap, with the layer blob as its blob
	b2 := readFixture(t, fxBoot2fa)
	fs = Verify(bytes.NewReader(b2), int64(len(b2)), anyResolver(layer), nil)
	if len(errorFindings(fs)) != 0 {
		t.Fatalf("2fa78cad.image.boot: %s", dumpFindings(fs))
	}
	// metadata only: a warning that data was not checked
	fs = Verify(bytes.NewReader(boot), int64(len(boot)), nil, nil)
	if len(errorFindings(fs)) != 0 || len(fs) != 1 || fs[0].Check != CheckBlobMissing {
		t.Fatalf("metadata only: %s", dumpFindings(fs))
	}
	// the image's layer digests: be7d77ee's id is not a layer digest of this fake image
	fs = Verify(bytes.NewReader(boot), int64(len(boot)), nil, &VerifyOptions{LayerDigests: []digest.Digest{"sha256:" + fxBe7dSHA}})
	if !hasError(fs, CheckBlobID) {
		t.Fatalf("layer digests not checked: %s", dumpFindings(fs))
	}
}

// corrupt returns a copy of b with fn applied.
func corrupt(b []byte, fn func(c []byte)) []byte {
	c := bytes.Clone(b)
	fn(c)
	return c
}

// rebuildLayer replaces the inlined bootstrap of a layer blob (image.boot must
// be the section before the TOC) and fixes its TOC entry, as nydus-image would write it.
func rebuildLayer(t *testing.T, layer, boot []byte) []byte {
	t.Helper()
	lb, err := ParseLayerBlob(bytes.NewReader(layer), int64(len(layer)))
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := lb.Section(SectionBootstrap)
	enc, _ := zstd.NewWriter(nil)
	comp := enc.EncodeAll(boot, nil)
	out := bytes.Clone(layer[:bs.Offset])
	out = append(out, comp...)
	h := SectionHeader(SectionBootstrap, int64(len(comp)))
	out = append(out, h[:]...)
	var toc []byte
	for _, e := range lb.TOC {
		if e.EntryName() == SectionBootstrap {
			e.CompressedOffset, e.CompressedSize, e.UncompressedSize = uint64(bs.Offset), uint64(len(comp)), uint64(len(boot))
			e.UncompressedDigest = sha256.Sum256(boot)
		}
		toc, _ = e.AppendBinary(toc)
	}
	out = append(out, toc...)
	h = SectionHeader(SectionTOC, int64(len(toc)))
	return append(out, h[:]...)
}

// Offsets in the fixtures (see the fixture README and dump.erofs): the root
// directory (nid 128, extended inode at 12288) has its dirents inline at 12352.
const (
	rootDirents    = 12352
	boot22BlobTbl  = 4096
	boot22ChunkTbl = 0x4000
	be7dTOC        = 13530
	be7dDigests    = 12954
	be7dCI         = 8314
	be7dMetaHeader = 8346
	l2faTOC        = 9010
)

func TestVerifyCorruptions(t *testing.T) {
	_, boot, blob := open22(t)
	layer := readFixture(t, fxLayer2fa)
	boot2fa := readFixture(t, fxBoot2fa)
	res := func(b []byte) BlobResolver { return mapResolver(map[string][]byte{fxBlobBe7d: b}) }
	setNameOff := func(k int, v uint16) func([]byte) {
		return func(c []byte) { le.PutUint16(c[rootDirents+12*k+8:], v) }
	}
	type tc struct {
		name  string
		want  string
		boot  []byte
		blob  []byte
		layer []byte // VerifyLayer instead
		any   bool   // resolve every id to blob
	}
	cases := []tc{
		{name: "chunk byte (blob)", want: CheckChunkDigest, boot: boot, blob: corrupt(blob, func(c []byte) { c[100] ^= 0x55 })},
		{name: "chunk byte (layer)", want: CheckChunkDigest, layer: corrupt(layer, func(c []byte) { c[1500] ^= 0x55 })},
		{name: "name offset beyond the next name", want: CheckDirent, boot: corrupt(boot, setNameOff(2, 0x7ff)), blob: blob},
		{name: "name offset inside the dirents", want: CheckDirent, boot: corrupt(boot, setNameOff(3, 20)), blob: blob},
		{name: "name offset (inlined bootstrap)", want: CheckDirent, layer: rebuildLayer(t, layer, corrupt(boot2fa, setNameOff(4, 0x7ff)))},
		{name: "names unsorted", want: CheckDirentOrder, boot: corrupt(boot, func(c []byte) {
			o := int(le.Uint16(c[rootDirents+12*2+8:]))
			c[rootDirents+o] = 'z' // lib.rs -> zib.rs, after sync_io.rs
		}), blob: blob},
		{name: "blob id in the blob table", want: CheckBlobID, boot: corrupt(boot, func(c []byte) { c[boot22BlobTbl+5] = '0' }), blob: blob},
		{name: "blob id not hex", want: CheckBlobID, boot: corrupt(boot, func(c []byte) { c[boot22BlobTbl+5] = 'X'; c[DeviceTableOffset+5] = 'X' }), blob: blob, any: true},
		{name: "blob id in both tables (sha256 differs)", want: CheckBlobID, boot: corrupt(boot, func(c []byte) { c[boot22BlobTbl+5] = '0'; c[DeviceTableOffset+5] = '0' }), blob: blob, any: true},
		{name: "blob id (inlined bootstrap)", want: CheckBlobID, layer: rebuildLayer(t, layer, corrupt(boot2fa, func(c []byte) { c[boot22BlobTbl] = 'f' }))},
		{name: "TOC digest in the blob table", want: CheckTOCDigest, boot: corrupt(boot, func(c []byte) { c[boot22BlobTbl+136] ^= 1 }), blob: blob},
		{name: "TOC entry digest (blob)", want: CheckTOCDigest, boot: boot, blob: corrupt(blob, func(c []byte) { c[be7dTOC+128*3+24] ^= 1 })},
		{name: "TOC entry digest (layer)", want: CheckTOCDigest, layer: corrupt(layer, func(c []byte) { c[l2faTOC+128*1+30] ^= 1 })},
		{name: "TOC entry offset (layer)", want: CheckTOC, layer: corrupt(layer, func(c []byte) { c[l2faTOC+128*1+56] ^= 8 })},
		{name: "section tar header", want: CheckTOC, layer: corrupt(layer, func(c []byte) { c[len(c)-512+3] ^= 1 })},
		{name: "chunk table digest", want: CheckChunkDigest, boot: corrupt(boot, func(c []byte) { c[boot22ChunkTbl+3] ^= 1 }), blob: blob},
		{name: "blob.digest array", want: CheckChunkDigest, boot: boot, blob: corrupt(blob, func(c []byte) { c[be7dDigests+40] ^= 1 })},
		{name: "blob.meta header magic", want: CheckBlobMeta, boot: boot, blob: corrupt(blob, func(c []byte) { c[be7dMetaHeader] ^= 1 })},
		{name: "ci compressed offset", want: CheckChunkInfo, boot: boot, blob: corrupt(blob, func(c []byte) { c[be7dCI+16+8+4] = 0x40 })},
		{name: "dirent nid out of range", want: CheckInodeRange, boot: corrupt(boot, func(c []byte) { le.PutUint64(c[rootDirents+12*2:], 1<<40) }), blob: blob},
		{name: "directory loop", want: CheckDirLoop, boot: corrupt(boot, func(c []byte) {
			le.PutUint64(c[rootDirents+12*3:], 128)
			c[rootDirents+12*3+10] = byte(FileTypeDir)
		}), blob: blob},
		{name: "chunk index device", want: CheckChunkIndex, boot: corrupt(boot, func(c []byte) { c[12448+64+2] = 7 }), blob: blob},
		{name: "superblock magic", want: CheckBootstrap, boot: corrupt(boot, func(c []byte) { c[SuperBlockOffset] ^= 1 }), blob: blob},
		{name: "chunk size", want: CheckBootstrap, boot: corrupt(boot, func(c []byte) { c[SuperBlockExtOffset+20] = 1 }), blob: blob},
		{name: "blob table index", want: CheckBlobTable, boot: corrupt(boot, func(c []byte) { c[boot22BlobTbl+64] = 1 }), blob: blob},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fs []check.Finding
			if c.layer != nil {
				fs = VerifyLayer(bytes.NewReader(c.layer), int64(len(c.layer)), nil, nil)
			} else {
				r := res(c.blob)
				if c.any {
					r = anyResolver(c.blob)
				}
				fs = Verify(bytes.NewReader(c.boot), int64(len(c.boot)), r, nil)
			}
			if !hasError(fs, c.want) {
				t.Fatalf("want an error %s, got:%s", c.want, dumpFindings(fs))
			}
			t.Logf("%s -> %s", c.name, dumpFindings(errorFindings(fs)))
		})
	}
}

// Flipping any single byte of the fixtures never panics; count what Verify notices.
func TestSingleByteFlips(t *testing.T) {
	_, boot, blob := open22(t)
	layer := readFixture(t, fxLayer2fa)
	detected, total := 0, 0
	// Flips inside all-zero 64-byte windows (padding, unused blocks) are checked
	// for metadata only; the data paths run for every other byte.
	zeroWindow := func(i int) bool {
		if testing.Short() && i%16 != 0 {
			return true
		}
		w := boot[i&^63 : min(len(boot), i&^63+64)]
		return bytes.Count(w, []byte{0}) == len(w)
	}
	for i := range boot {
		c := corrupt(boot, func(c []byte) { c[i] ^= 0xff })
		opts := &VerifyOptions{SkipData: zeroWindow(i)}
		fs := Verify(bytes.NewReader(c), int64(len(c)), mapResolver(map[string][]byte{fxBlobBe7d: blob}), opts)
		if !opts.SkipData {
			if f, err := Open(bytes.NewReader(c), int64(len(c)), mapResolver(map[string][]byte{fxBlobBe7d: blob})); err == nil {
				_, _ = f.TarBytes(nil)
			}
		}
		total++
		if len(errorFindings(fs)) > 0 {
			detected++
		}
	}
	t.Logf("rafs-v6-2.2.boot: %d of %d single-byte flips reported by Verify (the rest hit unused, reserved or free-form bytes such as times, uuid, padding)", detected, total)
	ld := 0
	for i := range layer {
		if testing.Short() && i%16 != 0 {
			ld++
			continue
		}
		c := corrupt(layer, func(c []byte) { c[i] ^= 0xff })
		if len(errorFindings(VerifyLayer(bytes.NewReader(c), int64(len(c)), nil, nil))) > 0 {
			ld++
		}
		if f, err := OpenLayer(bytes.NewReader(c), int64(len(c)), nil); err == nil {
			_, _ = f.TarBytes(nil)
		}
	}
	t.Logf("2fa78cad layer blob: %d of %d single-byte flips reported by VerifyLayer (the rest hit reserved bytes of TOC entries, which nothing checks)", ld, len(layer))
}

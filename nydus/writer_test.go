package nydus

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/internal/tree"
)

// packConfigs are the option sets every layer is packed with.
var packConfigs = []struct {
	name string
	o    PackOptions
}{
	{"default", PackOptions{}},
	{"lz4-4k", PackOptions{Compressor: "lz4_block", ChunkSize: 4096}},
	{"none-sha256-64k", PackOptions{Compressor: "none", Digester: "sha256", ChunkSize: 64 << 10}},
	{"zstd19-16m", PackOptions{Level: 19, ChunkSize: 16 << 20, PrefetchPatterns: []string{}}},
}

// Every catalogue layer packs into a blob that VerifyLayer finds nothing
// wrong with, and that reads back (OpenLayer, ToTar) as the same files as the
// layer itself. duplicate-paths and pax-global are handled as extraction does:
// the last entry wins, a global header of comments is ignored.
func TestPackCatalogueRoundTrip(t *testing.T) {
	for _, l := range testimages.Layers() {
		want := tarTree(t, l.Tar)
		for _, c := range packConfigs {
			t.Run(l.Name+"/"+c.name, func(t *testing.T) {
				res, blob := pack(t, l.Tar, c.o)
				if fs := VerifyLayer(bytes.NewReader(blob), int64(len(blob)), nil, nil); len(fs) != 0 {
					t.Fatalf("VerifyLayer: %s", dumpFindings(fs))
				}
				f := openPacked(t, blob)
				n := tree.Expect(t, "ToTar of the packed layer", want, fsTree(t, f), tree.Options{})
				// the result's bootstrap is the inlined one
				lb, err := ParseLayerBlob(bytes.NewReader(blob), int64(len(blob)))
				if err != nil {
					t.Fatal(err)
				}
				boot, err := lb.Bootstrap(0)
				if err != nil || !bytes.Equal(boot, res.Bootstrap) {
					t.Fatalf("inlined bootstrap differs from PackResult.Bootstrap (%v)", err)
				}
				t.Logf("%d entries identical; %d B tar → %d B blob (data %d, bootstrap %d B), %d chunk refs → %d chunks (%d raw), %d inodes",
					n, len(l.Tar), res.Size, res.DataSize, len(res.Bootstrap), res.ChunkRefs, res.Chunks, res.RawChunks, res.Inodes)
			})
		}
	}
}

// The comparison used above does fail on a difference (a guard against a
// comparator that sees nothing).
func TestTreeComparisonCatchesDifferences(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	_, blob := pack(t, l.Tar, PackOptions{})
	got := fsTree(t, openPacked(t, blob))
	want := tarTree(t, l.Tar)
	for _, mutate := range []func(tree.Tree){
		func(tr tree.Tree) { n := tr["usr/bin/su"]; n.Mode = 0o755; tr["usr/bin/su"] = n },
		func(tr tree.Tree) {
			n := tr["data/nanotime"]
			n.ModTime = n.ModTime.Truncate(time.Second)
			tr["data/nanotime"] = n
		},
		func(tr tree.Tree) { n := tr["usr/bin/ping"]; n.Xattrs = nil; tr["usr/bin/ping"] = n },
		func(tr tree.Tree) { delete(tr, "dev/initctl") },
		func(tr tree.Tree) {
			n := tr["links/hardlink-to-file"]
			n.Linkname = "data/size-512"
			tr["links/hardlink-to-file"] = n
		},
	} {
		w := tree.Tree{}
		for k, v := range want {
			w[k] = v
		}
		mutate(w)
		ft := &fakeT{}
		tree.Expect(ft, "x", w, got, tree.Options{})
		if !ft.failed {
			t.Error("a mutated tree compared equal")
		}
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true }

// edgeEntries is a layer with what the catalogue lacks: files of exactly one
// chunk, one chunk + 1 byte, incompressible data, long zero runs (one stored
// chunk for many references), a directory of several dirent blocks, symlink
// targets too long to inline, names sorting before ".", many xattrs, a
// hardlinked fifo and device, uids/gids up to 2^32−1, negative and far-future
// mtimes, entries whose parents the tar never lists, a directory given twice.
// wideID is the id v for a tar header. archive/tar's Uid and Gid are ints, so where int has 32
// bits ids past 2^31 cannot be written at all; there the entry gets a large id that fits.
func wideID(v int64) int {
	if strconv.IntSize < 64 {
		return int(v & (1<<30 - 1))
	}
	return int(v)
}

func edgeEntries() []testimages.Entry {
	var es []testimages.Entry
	file := func(name string, mode int64, c testimages.Content) testimages.Entry {
		return testimages.Entry{Type: tar.TypeReg, Name: name, Mode: mode, Content: c}
	}
	es = append(es,
		testimages.Entry{Type: tar.TypeDir, Name: "edge/", Mode: 0o2750, UID: wideID(1 << 31), GID: wideID(1<<32 - 2)}, // (2^32−1 is no valid id on Linux)
		file("edge/chunk-1m", 0o644, testimages.Text(1, 1<<20)),
		file("edge/chunk-1m+1", 0o644, testimages.Text(2, 1<<20+1)),
		file("edge/random-3m", 0o600, testimages.Random(3, 3<<20+17)),
		file("edge/zeros-9m", 0o644, testimages.Zeros(9<<20)),
		file("edge/zeros-9m-again", 0o644, testimages.Zeros(9<<20)),
		file("edge/sparse-looking", 0o644, testimages.Concat(testimages.String("head"), testimages.Zeros(5<<20), testimages.String("tail"))),
		file("edge/-sorts-before-dot", 0o644, testimages.String("-")),
		file("edge/!bang", 0o644, testimages.String("!")),
		testimages.Entry{Type: tar.TypeSymlink, Name: "edge/long-symlink", Linkname: strings.Repeat("x/", 2018) + "end", Mode: 0o777},
		testimages.Entry{Type: tar.TypeSymlink, Name: "edge/max-symlink", Linkname: strings.Repeat("y", 4095), Mode: 0o777},
		testimages.Entry{Type: tar.TypeFifo, Name: "edge/fifo", Mode: 0o640, UID: 70000, GID: 80000},
		testimages.Entry{Type: tar.TypeLink, Name: "edge/fifo-link", Linkname: "edge/fifo"},
		testimages.Entry{Type: tar.TypeChar, Name: "edge/tty9", Mode: 0o620, Devmajor: 4095, Devminor: 1<<20 - 1},
		testimages.Entry{Type: tar.TypeLink, Name: "edge/tty9-link", Linkname: "edge/tty9"},
		testimages.Entry{Type: tar.TypeReg, Name: "edge/old", Mode: 0o644, ModTime: time.Unix(-86400*365, 5), Content: testimages.String("1969")},
		testimages.Entry{Type: tar.TypeReg, Name: "edge/future", Mode: 0o644, ModTime: time.Unix(1<<33, 999999999), Content: testimages.String("2242")},
		testimages.Entry{Type: tar.TypeReg, Name: "edge/xattrs", Mode: 0o644, Content: testimages.String("x"), Xattrs: map[string]string{
			"trusted.overlay.x": "t", "security.selinux": "system_u:object_r:bin_t:s0\x00", "user.empty": "",
			"user." + strings.Repeat("k", 200): strings.Repeat("v", 3000), "system.posix_acl_access": "\x02\x00\x00\x00\x01\x00\x06\x00\xff\xff\xff\xff\x04\x00\x04\x00\xff\xff\xff\xff\x20\x00\x04\x00\xff\xff\xff\xff",
		}},
		file("implicit/parents/of/this", 0o644, testimages.String("no parent entries")),
		testimages.Entry{Type: tar.TypeDir, Name: "edge/", Mode: 0o2755, UID: wideID(1 << 31), GID: wideID(1<<32 - 2)}, // again, other mode
	)
	for i := 0; i < 600; i++ { // 600 × (12 + 24) bytes: 6 dirent blocks
		es = append(es, file(fmt.Sprintf("big-dir/entry-with-a-name-%05d", i), 0o644, testimages.String(fmt.Sprint(i%3))))
	}
	return es
}

var implicitDirs = []string{"big-dir", "implicit", "implicit/parents", "implicit/parents/of"}

func TestPackEdgeCases(t *testing.T) {
	tarb := testimages.MustBuildTar(edgeEntries(), testimages.Ending{})
	want := tarTree(t, tarb)
	for _, c := range packConfigs {
		t.Run(c.name, func(t *testing.T) {
			res, blob := pack(t, tarb, c.o)
			if fs := VerifyLayer(bytes.NewReader(blob), int64(len(blob)), nil, nil); len(fs) != 0 {
				t.Fatalf("VerifyLayer: %s", dumpFindings(fs))
			}
			f := openPacked(t, blob)
			got := fsTree(t, f)
			n := tree.Expect(t, "edge layer", want, got, tree.Options{Ignore: implicitDirs})
			if strings.Join(res.ImplicitDirs, ",") != ".,"+strings.Join(implicitDirs, ",") {
				t.Errorf("implicit dirs %v", res.ImplicitDirs)
			}
			for _, d := range implicitDirs {
				if e, err := f.Lookup(d); err != nil || e.Type != FileTypeDir || e.Mode != 0o755 || e.UID != 0 || e.ModTime.Unix() != 0 {
					t.Errorf("implicit directory %s: %+v %v", d, e, err)
				}
			}
			// layouts: the big directory and the long symlinks do not fit after their inode
			for p, layout := range map[string]int{"big-dir": LayoutFlatPlain, "edge/long-symlink": LayoutFlatPlain, "edge/max-symlink": LayoutFlatPlain, "edge": LayoutFlatInline, "edge/fifo": LayoutFlatPlain} {
				nd, _, err := f.lookup(p, false)
				if err != nil || nd.in.ino.Layout() != layout {
					t.Errorf("%s: layout %d, want %d (%v)", p, nd.in.ino.Layout(), layout, err)
				}
			}
			// dedup: 18 MiB of zeros plus the 5 MiB zero run are one stored chunk per distinct size
			cs := int64(1 << 20)
			if c.o.ChunkSize != 0 {
				cs = int64(c.o.ChunkSize)
			}
			if res.Chunks >= res.ChunkRefs || (c.o.Compressor == "" && res.RawChunks < int((3<<20)/cs)) {
				t.Errorf("chunks %d of %d refs, %d raw", res.Chunks, res.ChunkRefs, res.RawChunks)
			}
			t.Logf("%d entries identical; %d chunk refs → %d chunks (%d stored raw); blob %d B, bootstrap %d B",
				n, res.ChunkRefs, res.Chunks, res.RawChunks, res.Size, len(res.Bootstrap))
		})
	}
}

// Sparse files (GNU and PAX sparse formats, as GNU tar --sparse writes them)
// are read with their holes as zeros; full zero chunks are digested and
// compressed once and stored once, so a large sparse file costs little.
func TestPackSparseFiles(t *testing.T) {
	gnutar := needTool(t, "tar")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	const size, at = 768 << 20, 300<<20 + 12345
	if err := fh.Truncate(size); err == nil {
		_, err = fh.WriteAt([]byte("data in the middle of a hole"), at)
	}
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"gnu", "posix"} {
		out, err := exec.Command(gnutar, "--sparse", "--format="+format, "--numeric-owner", "-cf", "-", "-C", src, "sparse").Output()
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		start := time.Now()
		res, blob := pack(t, out, PackOptions{})
		d := time.Since(start)
		if res.FileBytes != size || res.ChunkRefs != size>>20 || res.Chunks != 2 {
			t.Errorf("%s: file bytes %d, %d refs, %d chunks", format, res.FileBytes, res.ChunkRefs, res.Chunks)
		}
		f := openPacked(t, blob)
		fl, err := f.Open("sparse")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 40)
		if _, err := fl.(interface {
			ReadAt([]byte, int64) (int, error)
		}).ReadAt(buf, at-6); err != nil || string(buf) != "\x00\x00\x00\x00\x00\x00data in the middle of a hole\x00\x00\x00\x00\x00\x00" {
			t.Errorf("%s: read %q %v", format, buf, err)
		}
		if fs := VerifyLayer(bytes.NewReader(blob), int64(len(blob)), nil, &VerifyOptions{SkipData: true}); len(fs) != 0 {
			t.Errorf("VerifyLayer: %s", dumpFindings(fs))
		}
		t.Logf("%s sparse tar of %d B for a %d MiB file: packed in %.2fs into %d B (%d chunk refs, %d chunks)", format, len(out), size>>20, d.Seconds(), len(blob), res.ChunkRefs, res.Chunks)
	}
}

// Chunks that compression does not shrink are stored raw, and the ci array
// says so (V1: compressed size = uncompressed size).
func TestPackRawChunks(t *testing.T) {
	tarb := testimages.MustBuildTar([]testimages.Entry{
		{Type: tar.TypeReg, Name: "random", Mode: 0o644, Content: testimages.Random(9, 2<<20)},
		{Type: tar.TypeReg, Name: "text", Mode: 0o644, Content: testimages.Text(9, 2<<20)},
	}, testimages.Ending{})
	for _, comp := range []string{"zstd", "lz4_block", "none"} {
		res, blob := pack(t, tarb, PackOptions{Compressor: comp})
		f := openPacked(t, blob)
		var raw, compressed int
		for _, p := range []string{"random", "text"} {
			refs, err := f.Chunks(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range refs {
				if r.Compressed {
					compressed++
					if r.CompressedSize >= r.UncompressedSize {
						t.Errorf("%s %s: compressed chunk of %d bytes for %d", comp, p, r.CompressedSize, r.UncompressedSize)
					}
				} else {
					raw++
					if r.CompressedSize != r.UncompressedSize {
						t.Errorf("%s %s: raw chunk sizes %d/%d", comp, p, r.CompressedSize, r.UncompressedSize)
					}
				}
				if p == "random" && r.Compressed {
					t.Errorf("%s: random data stored compressed", comp)
				}
				if p == "text" && r.Compressed == (comp == "none") {
					t.Errorf("%s: text chunk compressed=%v", comp, r.Compressed)
				}
			}
		}
		if raw != res.RawChunks {
			t.Errorf("%s: %d raw chunks read, result says %d", comp, raw, res.RawChunks)
		}
		t.Logf("%s: %d raw, %d compressed chunks; blob %d B for 4 MiB", comp, raw, compressed, len(blob))
	}
}

// The blob has the layout nydus-image writes for tar-rafs --blob-inline-meta
// --features blob-toc, checked by one function that the real nydus-image
// fixture passes too (where it has the parts).
func TestPackBlobShape(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	res, blob := pack(t, l.Tar, PackOptions{})
	facts := checkBlobShape(t, "packed", blob)
	if len(facts.sections) != 5 || facts.features != uint32(packBlobFeatures) || facts.flags != 0x1b4 {
		t.Errorf("sections %v, features %#x, flags %#x", facts.sections, facts.features, facts.flags)
	}
	if facts.tocDigest != res.TOCDigest || facts.tocSize != res.TOCSize {
		t.Errorf("TOC digest/size %x/%d, result %x/%d", facts.tocDigest, facts.tocSize, res.TOCDigest, res.TOCSize)
	}
	// every TOC entry is zstd or raw, the only ones nydus-snapshotter's
	// UnpackEntry extracts, whatever the chunk compressor
	for _, comp := range []string{"zstd", "lz4_block", "none"} {
		r, _ := pack(t, l.Tar, PackOptions{Compressor: comp})
		for _, e := range r.TOC {
			if e.Flags != TOCCompressionNone && e.Flags != TOCCompressionZstd {
				t.Errorf("%s: TOC entry %s has flags %#x", comp, e.EntryName(), e.Flags)
			}
		}
	}
	// the fixture: a 2.2-era nydus-image layer blob (no blob.digest, old features)
	fx := readFixture(t, fxLayer2fa)
	ff := checkBlobShape(t, "fixture 2fa78cad", fx)
	t.Logf("packed: sections %v features %#x flags %#x; fixture: sections %v features %#x flags %#x", facts.sections, facts.features, facts.flags, ff.sections, ff.features, ff.flags)

	// an empty layer: bootstrap and TOC only
	empty := testimages.MustBuildTar([]testimages.Entry{{Type: tar.TypeDir, Name: "d/", Mode: 0o755}, {Type: tar.TypeReg, Name: "d/empty", Mode: 0o644}}, testimages.Ending{})
	_, eb := pack(t, empty, PackOptions{})
	ef := checkBlobShape(t, "metadata-only", eb)
	if strings.Join(ef.sections, ",") != SectionBootstrap+","+SectionTOC || ef.blobs != 0 {
		t.Errorf("metadata-only layer: sections %v, %d blobs", ef.sections, ef.blobs)
	}
	if fs := VerifyLayer(bytes.NewReader(eb), int64(len(eb)), nil, nil); len(fs) != 0 {
		t.Errorf("VerifyLayer: %s", dumpFindings(fs))
	}
}

type shapeFacts struct {
	sections  []string
	features  uint32
	flags     uint64
	blobs     int
	tocDigest [32]byte
	tocSize   int64
}

// checkBlobShape checks the reverse-tar layout, TOC and inlined bootstrap of
// a layer blob against what nydus-image writes.
func checkBlobShape(t *testing.T, what string, blob []byte) shapeFacts {
	t.Helper()
	var sf shapeFacts
	lb, err := ParseLayerBlob(bytes.NewReader(blob), int64(len(blob)))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	order := map[string]int{SectionBlob: 0, SectionBlobMeta: 1, SectionBlobDigest: 2, SectionBootstrap: 3, SectionTOC: 4}
	prev := -1
	for _, s := range lb.Sections {
		sf.sections = append(sf.sections, s.Name)
		o, ok := order[s.Name]
		if !ok || o <= prev {
			t.Errorf("%s: section %s out of place (%v)", what, s.Name, sf.sections)
		}
		prev = o
		// each header is GNU: magic "ustar " version " \0", mode/uid/gid NUL
		h := blob[s.Offset+s.Size : s.Offset+s.Size+TarHeaderSize]
		if string(h[257:265]) != "ustar  \x00" || !bytes.Equal(h[100:124], make([]byte, 24)) || h[156] != '0' {
			t.Errorf("%s: %s tar header is not nydus-image's GNU header", what, s.Name)
		}
		if _, err := tar.NewReader(bytes.NewReader(h)).Next(); err != nil {
			t.Errorf("%s: %s tar header: Go archive/tar says %v", what, s.Name, err)
		}
	}
	if d, ok := lb.Section(SectionBlob); ok && d.Offset != 0 {
		t.Errorf("%s: chunk data at %d", what, d.Offset)
	}
	if lb.TOC == nil {
		t.Fatalf("%s: no TOC", what)
	}
	sf.tocDigest, sf.tocSize = lb.TOCDigest, lb.TOCSize
	if lb.TOCSize > MaxTOCSize {
		t.Errorf("%s: TOC of %d bytes", what, lb.TOCSize)
	}
	wantTOC := map[string]TOCFlags{SectionBlob: TOCCompressionNone, SectionBlobMetaHeader: TOCCompressionNone, SectionBlobDigest: TOCCompressionNone}
	for _, e := range lb.TOC {
		if want, ok := wantTOC[e.EntryName()]; ok && e.Flags != want {
			t.Errorf("%s: TOC %s flags %#x", what, e.EntryName(), e.Flags)
		}
		if e.EntryName() == SectionBlob {
			// digest of the chunk data and its tar header
			if sum := sha256.Sum256(blob[:e.CompressedSize+TarHeaderSize]); sum != e.UncompressedDigest {
				t.Errorf("%s: image.blob TOC digest is not sha256(data ‖ header)", what)
			}
		}
	}
	f, err := lb.FS(nil, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	sf.flags, sf.blobs = uint64(f.ext.Flags), len(f.blobs)
	if f.sb.RootNid != 128 || f.sb.FeatureIncompat != FeatureIncompatRAFSV6 || f.sb.DevtSlotOff != DeviceSlotOffset || f.sb.Checksum != 0 {
		t.Errorf("%s: superblock %+v", what, f.sb)
	}
	if len(f.blobs) == 1 {
		e := f.blobs[0]
		sf.features = e.Features
		boot, _ := lb.Section(SectionBootstrap)
		meta, _ := lb.Section(SectionBlobMeta)
		if BlobFeatures(e.Features)&BlobInlinedFSMeta != 0 && (e.ID() != PlaceholderBlobID || e.CompressedSize != uint64(boot.Offset) || e.BlobTOCSize != 0) {
			t.Errorf("%s: inlined bootstrap's blob entry: id %s, compressed size %d (bootstrap at %d), toc size %d", what, e.ID(), e.CompressedSize, boot.Offset, e.BlobTOCSize)
		}
		if int64(e.CIOffset) != meta.Offset || int64(e.CICompressedSize)+BlobMetaHeaderSize != meta.Size {
			t.Errorf("%s: ci at %d+%d, blob.meta section %+v", what, e.CIOffset, e.CICompressedSize, meta)
		}
		var h BlobMetaHeader
		_ = h.UnmarshalBinary(blob[meta.Offset+meta.Size-BlobMetaHeaderSize:])
		if h.Features != e.Features || h.CIEntries != e.ChunkCount || h.CIOffset != e.CIOffset || h.CICompressor != e.CICompressor {
			t.Errorf("%s: blob.meta header %+v vs blob entry %+v", what, h, e)
		}
		if f.devices[0].Blocks != uint32(e.UncompressedSize/BlockSize) || e.UncompressedSize%BlockSize != 0 {
			t.Errorf("%s: device blocks %d, uncompressed size %d", what, f.devices[0].Blocks, e.UncompressedSize)
		}
	}
	return sf
}

// Same input and options give the same bytes, whatever the concurrency and GOMAXPROCS.
func TestPackDeterministic(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	edge := testimages.MustBuildTar(edgeEntries(), testimages.Ending{})
	for _, in := range []struct {
		name string
		tar  []byte
		o    PackOptions
	}{{"basic", l.Tar, PackOptions{}}, {"edge-lz4-4k", edge, PackOptions{Compressor: "lz4_block", ChunkSize: 4096}}} {
		var first string
		for _, procs := range []int{1, 2} {
			for _, workers := range []int{0, 1, 3, 8} {
				old := runtime.GOMAXPROCS(procs)
				o := in.o
				o.Concurrency = workers
				res, _ := pack(t, in.tar, o)
				runtime.GOMAXPROCS(old)
				if first == "" {
					first = res.BlobID
				} else if res.BlobID != first {
					t.Errorf("%s: GOMAXPROCS=%d concurrency %d: blob %s, first %s", in.name, procs, workers, res.BlobID, first)
				}
			}
		}
		t.Logf("%s: 8 runs (GOMAXPROCS 1 and 2, concurrency default/1/3/8) gave blob %s", in.name, first)
	}
}

// Refusals carry their code.
func TestPackErrors(t *testing.T) {
	dup, _ := testimages.LayerByName(testimages.LayerDuplicatePaths)
	mk := func(es ...testimages.Entry) []byte { return testimages.MustBuildTar(es, testimages.Ending{}) }
	reg := func(name string) testimages.Entry {
		return testimages.Entry{Type: tar.TypeReg, Name: name, Mode: 0o644, Content: testimages.String("x")}
	}
	cases := []struct {
		name string
		tar  []byte
		o    PackOptions
		code string
	}{
		{"duplicate", dup.Tar, PackOptions{RejectDuplicates: true}, CodeDuplicatePath},
		{"global-mtime", mk(testimages.Entry{Type: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"mtime": "1"}}, reg("a")), PackOptions{}, CodePAXGlobalHeader},
		{"link-missing", mk(testimages.Entry{Type: tar.TypeLink, Name: "l", Linkname: "nope"}), PackOptions{}, CodeHardlinkTarget},
		{"link-dir", mk(testimages.Entry{Type: tar.TypeDir, Name: "d/", Mode: 0o755}, testimages.Entry{Type: tar.TypeLink, Name: "l", Linkname: "d"}), PackOptions{}, CodeHardlinkTarget},
		{"xattr-ns", mk(testimages.Entry{Type: tar.TypeReg, Name: "a", Mode: 0o644, Xattrs: map[string]string{"os2.x": "y"}}), PackOptions{}, CodeXattr},
		{"device", mk(testimages.Entry{Type: tar.TypeChar, Name: "c", Mode: 0o644, Devmajor: 4096}), PackOptions{}, CodeDeviceNumber},
		{"symlink-long", mk(testimages.Entry{Type: tar.TypeSymlink, Name: "s", Linkname: strings.Repeat("z", 4096)}), PackOptions{}, CodeSymlinkTarget},
		{"name", mk(reg(strings.Repeat("n", 256))), PackOptions{}, CodeNameTooLong},
		{"not-dir", mk(reg("f"), reg("f/g")), PackOptions{}, CodeNotADirectory},
		{"uid", mk(testimages.Entry{Type: tar.TypeReg, Name: "u", Mode: 0o644, UID: wideID(1 << 32)}), PackOptions{}, CodeIDRange},
		{"truncated", mk(testimages.Entry{Type: tar.TypeReg, Name: "big", Mode: 0o644, Content: testimages.Text(1, 100000)})[:20000], PackOptions{}, CodeInvalidTar},
		{"chunk-size", mk(reg("a")), PackOptions{ChunkSize: 3000}, CodeOptions},
		{"compressor", mk(reg("a")), PackOptions{Compressor: "gzip"}, CodeOptions},
		{"level", mk(reg("a")), PackOptions{Level: 23}, CodeOptions},
	}
	for _, c := range cases {
		if c.name == "uid" && strconv.IntSize < 64 {
			continue // a tar header cannot hold the id here (wideID)
		}
		_, err := Pack(context.Background(), &bytes.Buffer{}, bytes.NewReader(c.tar), c.o)
		var pe *PackError
		if !errors.As(err, &pe) || pe.Code != c.code {
			t.Errorf("%s: error %v, want code %s", c.name, err, c.code)
		}
	}
	// a comment-only global header is ignored, a canceled context stops Pack
	if _, err := Pack(context.Background(), &bytes.Buffer{}, bytes.NewReader(mk(testimages.Entry{Type: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "c"}}, reg("a"))), PackOptions{}); err != nil {
		t.Errorf("comment global header: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Pack(ctx, &bytes.Buffer{}, bytes.NewReader(dup.Tar), PackOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	// a failing writer is reported
	if _, err := Pack(context.Background(), failWriter{}, bytes.NewReader(dup.Tar), PackOptions{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failing writer: %v", err)
	}
	t.Logf("%d refusals with their codes", len(cases))
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// eStargz metadata files are left out, as nydus-image does, unless asked for.
func TestPackStargzMetadata(t *testing.T) {
	tarb := testimages.MustBuildTar([]testimages.Entry{
		{Type: tar.TypeReg, Name: "stargz.index.json", Mode: 0o644, Content: testimages.String("{}")},
		{Type: tar.TypeReg, Name: ".prefetch.landmark", Mode: 0o644, Content: testimages.String("landmark")},
		{Type: tar.TypeReg, Name: "a/stargz.index.json", Mode: 0o644, Content: testimages.String("kept")},
	}, testimages.Ending{})
	for _, keep := range []bool{false, true} {
		_, blob := pack(t, tarb, PackOptions{KeepStargzMetadata: keep})
		f := openPacked(t, blob)
		_, err1 := f.Lookup("stargz.index.json")
		_, err2 := f.Lookup(".prefetch.landmark")
		_, err3 := f.Lookup("a/stargz.index.json")
		if (err1 == nil) != keep || (err2 == nil) != keep || err3 != nil {
			t.Errorf("keep=%v: %v %v %v", keep, err1, err2, err3)
		}
	}
}

// Prefetch patterns become prefetch table nids as nydus-image resolves them.
func TestPackPrefetch(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	for _, c := range []struct {
		patterns []string
		want     []string
	}{
		{nil, []string{"."}},
		{[]string{}, nil},
		{[]string{"/usr/bin", "/usr/bin/su", "relative", "/nope", "/etc/", "/usr"}, []string{"usr/bin", "etc", "usr"}},
	} {
		_, blob := pack(t, l.Tar, PackOptions{PrefetchPatterns: c.patterns})
		f := openPacked(t, blob)
		var got []string
		for _, nid := range f.prefetch {
			for _, e := range f.Entries() {
				if e.Nid == uint64(nid) {
					got = append(got, e.Path)
					break
				}
			}
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("patterns %q: prefetch %v, want %v", c.patterns, got, c.want)
		}
	}
}

// The LZ4 block compressor's output decodes with our decoder and with the lz4
// CLI (through an LZ4 frame around each block), and is never larger than its input.
func TestLZ4Encoder(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	var inputs [][]byte
	for _, n := range []int{0, 1, 12, 13, 14, 20, 100, 4096, 65536, 70000, 1 << 20} {
		r := make([]byte, n)
		rng.Read(r)
		z := make([]byte, n)
		txt := []byte(testimages.Text(uint64(n), int64(n)).Bytes())
		mixed := bytes.Clone(txt)
		for i := 0; i+8 < len(mixed); i += 97 {
			copy(mixed[i:], r[i:i+8])
		}
		inputs = append(inputs, r, z, txt, mixed)
	}
	inputs = append(inputs, bytes.Repeat([]byte("abc"), 30000), bytes.Repeat([]byte("0123456789abcdef"), 5000))
	var enc lz4Encoder
	var frames []byte
	var sizes []int
	compressed := 0
	for i, in := range inputs {
		out := enc.compressBlock(nil, in)
		if out == nil {
			continue
		}
		compressed++
		if len(out) >= len(in) {
			t.Fatalf("input %d: %d bytes for %d", i, len(out), len(in))
		}
		dst := make([]byte, len(in))
		if err := lz4DecompressBlock(out, dst); err != nil || !bytes.Equal(dst, in) {
			t.Fatalf("input %d (%d bytes): round trip failed: %v", i, len(in), err)
		}
		if len(in) <= 4<<20 {
			frames = append(frames, lz4Frame(out, len(in))...)
			sizes = append(sizes, i)
		}
	}
	if compressed < 15 {
		t.Fatalf("only %d inputs compressed", compressed)
	}
	lz4 := needTool(t, "lz4") // without it, blocks are only checked with our decoder
	dir := t.TempDir()
	in := filepath.Join(dir, "frames.lz4")
	if err := os.WriteFile(in, frames, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lz4, "-d", "-c", in).Output()
	if err != nil {
		t.Fatalf("lz4 -d: %v", err)
	}
	var want []byte
	for _, i := range sizes {
		want = append(want, inputs[i]...)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("lz4 CLI decoded %d bytes, want %d", len(out), len(want))
	}
	t.Logf("%d blocks decoded identically by the lz4 CLI (%d bytes)", len(sizes), len(out))
}

// lz4Frame wraps one block in an LZ4 frame (4 MiB max block, independent
// blocks, no checksums, content size given).
func lz4Frame(block []byte, n int) []byte {
	f := []byte{0x04, 0x22, 0x4d, 0x18}
	flg := byte(0x40 | 0x20 | 0x08) // version 01, block independence, content size
	bd := byte(7 << 4)              // 4 MiB blocks
	desc := []byte{flg, bd}
	desc = le.AppendUint64(desc, uint64(n))
	f = append(f, desc...)
	f = append(f, xxh32hc(desc))
	f = le.AppendUint32(f, uint32(len(block)))
	f = append(f, block...)
	return le.AppendUint32(f, 0)
}

// xxh32hc is the LZ4 frame descriptor checksum: (xxh32(desc, 0) >> 8) & 0xff.
func xxh32hc(b []byte) byte {
	const p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
	h := uint32(p5) + uint32(len(b))
	for len(b) >= 4 {
		h += le.Uint32(b) * p3
		h = (h<<17 | h>>15) * p4
		b = b[4:]
	}
	for _, c := range b {
		h += uint32(c) * p5
		h = (h<<11 | h>>21) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return byte(h >> 8)
}

// The unrolled BLAKE3 compression function equals the reference one.
func TestBlake3CompressUnrolled(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 2000; i++ {
		var cv [8]uint32
		var m [16]uint32
		for j := range cv {
			cv[j] = rng.Uint32()
		}
		for j := range m {
			m[j] = rng.Uint32()
		}
		c, bl, fl := rng.Uint64(), rng.Uint32()&127, rng.Uint32()&15
		if b3Compress(&cv, &m, c, bl, fl) != b3CompressRef(&cv, &m, c, bl, fl) {
			t.Fatalf("case %d differs", i)
		}
	}
}

// TestVerifyDataFindingsDeterministic: chunk data is checked on GOMAXPROCS
// workers, yet a blob with many damaged chunks gives the same findings in the
// same order whatever GOMAXPROCS is, one per damaged chunk.
func TestVerifyDataFindingsDeterministic(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	_, blob := pack(t, l.Tar, PackOptions{ChunkSize: 4096})
	lb, err := ParseLayerBlob(bytes.NewReader(blob), int64(len(blob)))
	if err != nil {
		t.Fatal(err)
	}
	data, ok := lb.Section(SectionBlob)
	if !ok || data.Size < 1<<16 {
		t.Fatalf("chunk data section %+v", data)
	}
	damaged := bytes.Clone(blob)
	for i := int64(1); i <= 12; i++ {
		damaged[data.Offset+data.Size*i/13] ^= 0x5a
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var first []check.Finding
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		fs := VerifyLayer(bytes.NewReader(damaged), int64(len(damaged)), nil, &VerifyOptions{MaxFindingsPerCheck: 100})
		n := 0
		for _, f := range fs {
			if f.Check == CheckChunkDigest {
				n++
			}
		}
		if n < 8 {
			t.Fatalf("GOMAXPROCS=%d: %d chunk digest findings for 12 damaged bytes: %v", procs, n, fs)
		}
		if first == nil {
			first = fs
		} else if !reflect.DeepEqual(fs, first) {
			t.Fatalf("GOMAXPROCS=%d: findings differ from GOMAXPROCS=1:\n%v\n%v", procs, fs, first)
		}
	}
}

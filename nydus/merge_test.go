package nydus

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/internal/tree"
)

// packedImage is a set of packed layers and their merged bootstrap.
type packedImage struct {
	tars   [][]byte
	res    []*PackResult
	blobs  map[string][]byte
	merged *MergeResult
}

func packAndMerge(t testing.TB, o PackOptions, tars ...[]byte) *packedImage {
	t.Helper()
	im := &packedImage{tars: tars, blobs: map[string][]byte{}}
	var layers []LayerBootstrap
	for _, tb := range tars {
		res, blob := pack(t, tb, o)
		im.res = append(im.res, res)
		im.blobs[res.BlobID] = blob
		layers = append(layers, res.LayerBootstrap())
	}
	m, err := Merge(layers, MergeOptions{})
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	im.merged = m
	return im
}

func (im *packedImage) open(t testing.TB) *FS {
	t.Helper()
	f, err := Open(bytes.NewReader(im.merged.Bootstrap), int64(len(im.merged.Bootstrap)), mapResolver(im.blobs))
	if err != nil {
		t.Fatalf("Open merged: %v", err)
	}
	return f
}

func (im *packedImage) verify(t testing.TB) {
	t.Helper()
	var ds []digest.Digest
	for _, r := range im.res {
		ds = append(ds, r.Digest)
	}
	fs := Verify(bytes.NewReader(im.merged.Bootstrap), int64(len(im.merged.Bootstrap)), mapResolver(im.blobs), &VerifyOptions{LayerDigests: ds})
	if len(fs) != 0 {
		t.Fatalf("Verify of the merged bootstrap: %s", dumpFindings(fs))
	}
}

// tree is the merged bootstrap's tree as ToTar writes it.
func (im *packedImage) tree(t testing.TB) tree.Tree {
	return fsTree(t, im.open(t))
}

func catalogueTar(name string) []byte {
	l, _ := testimages.LayerByName(name)
	return l.Tar
}

// Merge of [basic, whiteouts] is the OCI merged filesystem of the two layers.
func TestMergeBasicWhiteouts(t *testing.T) {
	for _, c := range packConfigs[:3] {
		t.Run(c.name, func(t *testing.T) {
			im := packAndMerge(t, c.o, catalogueTar(testimages.LayerBasic), catalogueTar(testimages.LayerWhiteouts))
			im.verify(t)
			n := tree.Expect(t, "merged bootstrap vs OCI applier", ociApply(t, im.tars...), im.tree(t), tree.Options{})
			if strings.Join(im.merged.BlobIDs, ",") != im.res[0].BlobID+","+im.res[1].BlobID {
				t.Errorf("blob ids %v", im.merged.BlobIDs)
			}
			f := im.open(t)
			for i, b := range f.blobs {
				r := im.res[i]
				if BlobFeatures(b.Features) != packBlobFeatures&^BlobInlinedFSMeta || b.CompressedSize != uint64(r.Size) ||
					b.BlobTOCDigest != r.TOCDigest || int64(b.BlobTOCSize) != r.TOCSize || b.UncompressedSize != uint64(r.UncompressedSize) {
					t.Errorf("blob %d entry %+v", i, b)
				}
			}
			if len(f.prefetch) != 1 || f.prefetch[0] != uint32(f.sb.RootNid) {
				t.Errorf("prefetch table %v", f.prefetch)
			}
			for _, p := range []string{"etc/hostname", "long", "links/relative", "data/size-511", "unicode/日本語.txt", "new-dir/.wh..wh..opq", ".wh.long"} {
				if _, err := f.Lookup(p); err == nil {
					t.Errorf("%s survived the merge", p)
				}
			}
			t.Logf("%d entries identical to the OCI applier's; %d inodes, blobs %v, bootstrap %d B", n, im.merged.Inodes, im.merged.BlobIDs, len(im.merged.Bootstrap))
		})
	}
}

// Whiteout and overlay rules on small layers, against the reference applier:
// opaque directories with same-layer entries, a directory replaced by a file
// and back, a whited-out hard link name, a re-added path, AUFS metadata names,
// whiteouts in a new directory, implicit parents, a layer without file data,
// a layer whose every file is deleted later.
func TestMergeSemantics(t *testing.T) {
	d := func(name string, mode int64) testimages.Entry {
		return testimages.Entry{Type: tar.TypeDir, Name: name, Mode: mode}
	}
	f := func(name, content string) testimages.Entry {
		return testimages.Entry{Type: tar.TypeReg, Name: name, Mode: 0o644, Content: testimages.String(content)}
	}
	wh := func(name string) testimages.Entry {
		return testimages.Entry{Type: tar.TypeReg, Name: name, Mode: 0o600}
	}
	mk := func(es ...testimages.Entry) []byte { return testimages.MustBuildTar(es, testimages.Ending{}) }
	l1 := mk(d("a/", 0o755), f("a/f", "af"), f("a/g", "ag"), d("b/", 0o755), f("b/x", "bx"), f("c", "c"),
		f("h1", "h"), testimages.Entry{Type: tar.TypeLink, Name: "h2", Linkname: "h1"}, testimages.Entry{Type: tar.TypeLink, Name: "h3", Linkname: "h1"},
		d("keep/", 0o755), f("keep/k", "k"), d("p/", 0o755), f("p/1", "p1"), f("p/2", "p2"),
		testimages.Entry{Type: tar.TypeSymlink, Name: "s", Linkname: "c", Mode: 0o777}, d("gone/", 0o755), f("gone/file", "gone"))
	l2 := mk(d("a/", 0o711), wh("a/.wh..wh..opq"), f("a/new", "anew"), wh(".wh.b"), f("b", "b is a file now"),
		d("c/", 0o700), f("c/inner", "ci"), wh(".wh.h1"), wh("p/.wh.1"), d("keep/", 0o700), wh(".wh..wh.plnk"),
		d("new/", 0o755), wh("new/.wh..wh..opq"), f("new/z", "z"), wh(".wh.s"), f("s", "s replaced"), f("deep/implicit/file", "i"))
	l3 := mk(d("only-dirs/", 0o755), d("only-dirs/sub/", 0o750)) // no file data: no blob
	l4 := mk(f("a", "a is a file"), f("p/1", "p1 again"), wh(".wh.gone"), d("b2/", 0o755), f("b2/q", ""))
	im := packAndMerge(t, PackOptions{ChunkSize: 4096}, l1, l2, l3, l4)
	im.verify(t)
	got := im.tree(t)
	n := tree.Expect(t, "merged vs OCI applier", ociApply(t, im.tars...), got, tree.Options{})
	if g := got.Resolved()["h2"].Group; g != "h2\x00h3" {
		t.Errorf("hard-link group %q", g)
	}
	if len(im.merged.BlobIDs) != 3 || im.res[2].Chunks != 0 {
		t.Errorf("blob ids %v (layer 3 has %d chunks)", im.merged.BlobIDs, im.res[2].Chunks)
	}
	t.Logf("%d entries identical to the OCI applier's over 4 layers (blob table %d of 4 layers)", n, len(im.merged.BlobIDs))

	// without the implicit directory list (blobs pulled from a registry), an
	// implicit directory overrides the lower one's metadata, as with nydus-image merge
	var bare []LayerBootstrap
	for _, r := range im.res {
		l := r.LayerBootstrap()
		l.ImplicitDirs = nil
		bare = append(bare, l)
	}
	mb, err := Merge(bare, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := Open(bytes.NewReader(mb.Bootstrap), int64(len(mb.Bootstrap)), nil)
	if e, err := fb.Lookup("p"); err != nil || e.ModTime.Unix() != 0 {
		t.Errorf("p without ImplicitDirs: %+v %v", e, err)
	}
	if strings.Join(im.res[3].ImplicitDirs, ",") != ".,p" || strings.Join(im.res[1].ImplicitDirs, ",") != ".,deep,deep/implicit,p" {
		t.Errorf("implicit dirs %v %v", im.res[3].ImplicitDirs, im.res[1].ImplicitDirs)
	}

	// every prefix of the stack
	for k := 1; k <= len(im.tars); k++ {
		var ls []LayerBootstrap
		for _, r := range im.res[:k] {
			ls = append(ls, r.LayerBootstrap())
		}
		m, err := Merge(ls, MergeOptions{PrefetchPatterns: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		sub := &packedImage{tars: im.tars[:k], res: im.res[:k], blobs: im.blobs, merged: m}
		sub.verify(t)
		tree.Expect(t, "prefix", ociApply(t, sub.tars...), sub.tree(t), tree.Options{})
	}

	// a layer whose files are all deleted above drops out of the blob table
	top := mk(wh(".wh.a"), wh(".wh.b"), wh(".wh.c"), wh(".wh.h2"), wh(".wh.h3"), wh(".wh.keep"), wh(".wh.p"), wh(".wh.new"), wh(".wh.s"), wh(".wh.deep"), wh(".wh.b2"), f("last", "last"))
	im2 := packAndMerge(t, PackOptions{ChunkSize: 4096}, l1, l2, l3, l4, top)
	im2.verify(t)
	if len(im2.merged.BlobIDs) != 1 || im2.merged.BlobIDs[0] != im2.res[4].BlobID {
		t.Errorf("blob ids %v", im2.merged.BlobIDs)
	}
	var ls []LayerBootstrap
	for _, r := range im2.res {
		ls = append(ls, r.LayerBootstrap())
	}
	all, err := Merge(ls, MergeOptions{KeepAllBlobs: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{im2.res[0].BlobID, im2.res[1].BlobID, im2.res[3].BlobID, im2.res[4].BlobID}; strings.Join(all.BlobIDs, ",") != strings.Join(want, ",") {
		t.Errorf("KeepAllBlobs: blob ids %v", all.BlobIDs)
	}
	(&packedImage{tars: im2.tars, res: im2.res, blobs: im2.blobs, merged: all}).verify(t)
	tree.Expect(t, "all deleted", ociApply(t, im2.tars...), im2.tree(t), tree.Options{})
}

// A real nydus-image layer (the 2fa78cad fixture) merges under our layer, read
// through the same LayerBootstrapFromBlob / Merge / Verify paths.
func TestMergeWithFixtureLayer(t *testing.T) {
	fx := readFixture(t, fxLayer2fa)
	lfx, err := LayerBootstrapFromBlob(bytes.NewReader(fx), int64(len(fx)), "")
	if err != nil {
		t.Fatal(err)
	}
	if lfx.BlobID != fxLayer2fa {
		t.Fatalf("blob id %s", lfx.BlobID)
	}
	res, blob := pack(t, catalogueTar(testimages.LayerBasic), PackOptions{})
	lours, err := LayerBootstrapFromBlob(bytes.NewReader(blob), int64(len(blob)), "")
	if err != nil || lours.BlobID != res.BlobID || lours.TOCDigest != res.TOCDigest || !bytes.Equal(lours.Bootstrap, res.Bootstrap) {
		t.Fatalf("LayerBootstrapFromBlob of our blob: %v", err)
	}
	m, err := Merge([]LayerBootstrap{lfx, lours}, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// the 2.2-era fixture records its own id (sha256 up to its bootstrap, no
	// INLINED_FS_META feature), which merge keeps, as nydus-image merge does
	fxID := "d788a0eac4ff9779bc2eae3842117a918d847d90fddbea1503f7c5296a4a7de3"
	if strings.Join(m.BlobIDs, ",") != fxID+","+res.BlobID {
		t.Fatalf("blob ids %v", m.BlobIDs)
	}
	blobs := map[string][]byte{fxID: fx, res.BlobID: blob}
	fs := Verify(bytes.NewReader(m.Bootstrap), int64(len(m.Bootstrap)), mapResolver(blobs), nil)
	if errs := errorFindings(fs); len(errs) != 0 {
		t.Fatalf("Verify: %s", dumpFindings(errs))
	}
	f, err := Open(bytes.NewReader(m.Bootstrap), int64(len(m.Bootstrap)), mapResolver(blobs))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range want2fa {
		b, err := f.ReadFile(p)
		if err != nil || sha(b) != want {
			t.Errorf("%s: %v", p, err)
		}
	}
	got := fsTree(t, f)
	base := tarTree(t, catalogueTar(testimages.LayerBasic))
	for p := range want2fa {
		base[p] = got[p]
	}
	tree.Expect(t, "fixture + basic", base, got, tree.Options{})
	t.Logf("merged with the nydus-image fixture: %d findings (warnings: %s)", len(fs), dumpFindings(fs))
}

func TestMergeErrors(t *testing.T) {
	basic, _ := pack(t, catalogueTar(testimages.LayerBasic), PackOptions{})
	small, _ := pack(t, catalogueTar(testimages.LayerWhiteouts), PackOptions{ChunkSize: 4096})
	sha, _ := pack(t, catalogueTar(testimages.LayerWhiteouts), PackOptions{Digester: "sha256"})
	noID := basic.LayerBootstrap()
	noID.BlobID = ""
	for _, c := range []struct {
		name   string
		layers []LayerBootstrap
	}{
		{"none", nil},
		{"chunk size", []LayerBootstrap{basic.LayerBootstrap(), small.LayerBootstrap()}},
		{"digester", []LayerBootstrap{basic.LayerBootstrap(), sha.LayerBootstrap()}},
		{"no blob id", []LayerBootstrap{noID}},
		{"garbage", []LayerBootstrap{{BlobID: basic.BlobID, Bootstrap: make([]byte, 8192)}}},
	} {
		_, err := Merge(c.layers, MergeOptions{})
		var pe *PackError
		if !errors.As(err, &pe) || pe.Code != CodeMergeInput {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// Merge and the bootstrap layer are deterministic; the bootstrap layer tar is
// what nydus-snapshotter packs.
func TestBootstrapLayerTar(t *testing.T) {
	im := packAndMerge(t, PackOptions{}, catalogueTar(testimages.LayerBasic), catalogueTar(testimages.LayerWhiteouts))
	var extra []BootstrapLayerFile
	for _, r := range im.res {
		bm, ok := r.BlobMetaFile()
		if !ok {
			t.Fatal("no blob.meta file")
		}
		bm2, ok2, err := BlobMetaFileOf(r.BlobID, bytes.NewReader(im.blobs[r.BlobID]), int64(len(im.blobs[r.BlobID])))
		if err != nil || !ok2 || bm2.Name != bm.Name || !bytes.Equal(bm2.Data, bm.Data) {
			t.Fatalf("BlobMetaFileOf differs from PackResult.BlobMetaFile: %v", err)
		}
		// uncompressed ci ‖ zero pad to 4 KiB ‖ header describing the ci
		var h BlobMetaHeader
		if len(bm.Data)%BlockSize != 0 || h.UnmarshalBinary(bm.Data[len(bm.Data)-BlobMetaHeaderSize:]) != nil ||
			h.Magic != BlobMetaMagic || int(h.CIUncompressedSize) != 16*r.Chunks || int(h.CIEntries) != r.Chunks {
			t.Errorf("blob.meta file of %d bytes, header %+v", len(bm.Data), h)
		}
		extra = append(extra, bm)
	}
	var a, b bytes.Buffer
	info, err := BootstrapLayerTar(&a, im.merged.Bootstrap, extra...)
	if err != nil {
		t.Fatal(err)
	}
	im2 := packAndMerge(t, PackOptions{}, im.tars...)
	info2, _ := BootstrapLayerTar(&b, im2.merged.Bootstrap, extra...)
	if info != info2 || !bytes.Equal(a.Bytes(), b.Bytes()) || !bytes.Equal(im.merged.Bootstrap, im2.merged.Bootstrap) {
		t.Fatal("merge or bootstrap layer not deterministic")
	}
	if info.Digest != digest.FromBytes(a.Bytes()) || info.Size != int64(a.Len()) {
		t.Errorf("info %+v", info)
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() || zr.Comment != "" || len(zr.Extra) != 0 {
		t.Errorf("gzip header %+v", zr.Header)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if info.DiffID != digest.FromBytes(raw) {
		t.Errorf("diff_id %s, tar sha256 %s", info.DiffID, digest.FromBytes(raw))
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		data, _ := io.ReadAll(tr)
		wantMode, wantType := int64(0o444), byte(tar.TypeReg)
		if h.Name == "image" {
			wantMode, wantType = 0o755, tar.TypeDir
		}
		if h.Mode != wantMode || h.Typeflag != wantType || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: header %+v", h.Name, h)
		}
		if h.Name == "image/image.boot" && !bytes.Equal(data, im.merged.Bootstrap) {
			t.Error("image/image.boot differs from the bootstrap")
		}
	}
	want := []string{"image", "image/image.boot", "image/" + im.res[0].BlobID + ".blob.meta", "image/" + im.res[1].BlobID + ".blob.meta"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries %v, want %v", names, want)
	}
	sum := sha256.Sum256(raw)
	t.Logf("bootstrap layer: %d B gzip (%s), tar %d B (diff_id sha256:%x), entries %v", info.Size, info.Digest, len(raw), sum, names)
}

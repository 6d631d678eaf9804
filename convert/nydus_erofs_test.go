package convert_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/internal/tree"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/nydus"
	"github.com/fmtconv/fmtconv/nydus/nydustest"
	"github.com/fmtconv/fmtconv/verify"
)

// The Nydus images convert.Convert writes, read back by readers that share no code with it
// (nydus/nydustest: fsck.erofs, the kernel's EROFS, go-erofs), show the source image's
// merged filesystem: the OCI layers applied with their whiteouts and opaque directories
// (tree.ApplyOCI).

// layoutImage is an image in an OCI layout: its manifest and its blobs on disk.
type layoutImage struct {
	dir      string
	manifest ocispec.Manifest
}

// readLayout reads the manifest tagged tag from an OCI layout.
func readLayout(t *testing.T, dir, tag string) layoutImage {
	t.Helper()
	var idx ocispec.Index
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err == nil {
		err = jsonUnmarshal(b, &idx)
	}
	if err != nil {
		t.Fatalf("%s: index.json: %v", dir, err)
	}
	for _, d := range idx.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] != tag {
			continue
		}
		li := layoutImage{dir: dir}
		if err := jsonUnmarshal(li.blob(t, d.Digest), &li.manifest); err != nil {
			t.Fatal(err)
		}
		return li
	}
	t.Fatalf("%s: no manifest tagged %s", dir, tag)
	return layoutImage{}
}

func (li layoutImage) blobPath(d digest.Digest) string {
	return filepath.Join(li.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func (li layoutImage) blob(t *testing.T, d digest.Digest) []byte {
	t.Helper()
	b, err := os.ReadFile(li.blobPath(d))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layerTars returns the uncompressed tars of the layers of an OCI image (gzip or none).
func (li layoutImage) layerTars(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, l := range li.manifest.Layers {
		b := li.blob(t, l.Digest)
		switch l.MediaType {
		case ocispec.MediaTypeImageLayerGzip:
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err == nil {
				b, err = io.ReadAll(zr)
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
		case ocispec.MediaTypeImageLayer:
		default:
			t.Fatalf("layer %s: media type %s", l.Digest, l.MediaType)
		}
		out = append(out, b)
	}
	return out
}

// mergedTree is the OCI merged filesystem of layer tars.
func mergedTree(t *testing.T, tars [][]byte) tree.Tree {
	t.Helper()
	m, err := tree.ApplyOCI(tars...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// nydusParts takes a Nydus image apart: the merged bootstrap (image/image.boot of the last
// layer, a gzip tar) and the blob layers, which it resolves by blob id from blobs/sha256.
func (li layoutImage) nydusParts(t *testing.T) (boot []byte, blobs nydus.BlobResolver, blobLayers []ocispec.Descriptor) {
	t.Helper()
	ls := li.manifest.Layers
	last := ls[len(ls)-1]
	if last.Annotations[layerformat.AnnotationNydusBootstrap] != "true" {
		t.Fatalf("last layer %+v is not a Nydus bootstrap layer", last)
	}
	zr, err := gzip.NewReader(bytes.NewReader(li.blob(t, last.Digest)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for h, err := tr.Next(); err != io.EOF; h, err = tr.Next() {
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "image/image.boot" {
			if boot, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	if boot == nil {
		t.Fatal("no image/image.boot in the bootstrap layer")
	}
	byID := map[string]string{}
	for _, l := range ls[:len(ls)-1] {
		if l.MediaType != layerformat.MediaTypeNydusBlob || l.Annotations[layerformat.AnnotationNydusBlob] != "true" {
			t.Fatalf("layer %+v is not a Nydus blob layer", l)
		}
		byID[l.Digest.Encoded()] = li.blobPath(l.Digest)
		blobLayers = append(blobLayers, l)
	}
	blobs = func(id string) (io.ReaderAt, int64, error) {
		p, ok := byID[id]
		if !ok {
			return nil, 0, fmt.Errorf("blob %s is no layer of the image", id)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, 0, err
		}
		t.Cleanup(func() { f.Close() })
		fi, err := f.Stat()
		if err != nil {
			return nil, 0, err
		}
		return f, fi.Size(), nil
	}
	return boot, blobs, blobLayers
}

// checkNydusWithEROFS checks a Nydus image against the tree it must show (want: the merged
// filesystem, whiteouts applied) and its blob layers against their layers' tars:
//   - merged bootstrap: fsck.erofs passes; fsck.erofs --extract gives want but for what
//     erofs-utils 1.5 does not restore (nydustest.FsckView: setuid/setgid of files, xattrs,
//     hard links); the kernel's EROFS mount shows want exactly (setgid, xattrs, hard links,
//     devices, nanosecond mtimes included); go-erofs shows want exactly;
//   - the bootstrap's blobs are the image's blob layers;
//   - each blob layer's own bootstrap (whiteouts kept as files) passes fsck.erofs and go-erofs
//     shows its layer's tree.
func checkNydusWithEROFS(t *testing.T, li layoutImage, want tree.Tree, layers [][]byte) {
	boot, blobs, blobLayers := li.nydusParts(t)
	f, im := nydustest.OpenImage(t, boot, blobs)
	for _, b := range f.BlobTable() {
		found := false
		for _, l := range blobLayers {
			found = found || l.Digest.Encoded() == b.ID()
		}
		if !found {
			t.Errorf("blob %s of the bootstrap is no blob layer of the image", b.ID())
		}
	}
	if len(blobLayers) != len(layers) {
		t.Fatalf("%d blob layers for %d source layers", len(blobLayers), len(layers))
	}
	timed := func(what string, fn func()) {
		start := time.Now()
		fn()
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	timed("fsck.erofs, fsck.erofs --extract", func() {
		im.Fsck(t)
		got := nydustest.DirTree(t, im.Extract(t), false)
		tree.Expect(t, "fsck.erofs --extract", nydustest.FsckView(want), nydustest.FsckView(got), tree.Options{})
	})
	timed("kernel mount", func() {
		got := nydustest.DirTree(t, im.Mount(t), true)
		tree.Expect(t, "kernel mount", want, got, tree.Options{})
	})
	timed("go-erofs", func() {
		got := nydustest.GoErofsTree(t, im.GoErofs(t))
		tree.Expect(t, "go-erofs", want, got, tree.Options{})
	})
	timed("per-layer bootstraps (fsck.erofs, go-erofs)", func() {
		for i, l := range blobLayers {
			p := li.blobPath(l.Digest)
			fh, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			lb, err := nydus.ParseLayerBlob(fh, l.Size)
			if err != nil {
				t.Fatal(err)
			}
			lboot, err := lb.Bootstrap(0)
			if err != nil {
				t.Fatal(err)
			}
			lf, err := lb.FS(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			lim := nydustest.WriteImage(t, lboot, lf)
			lim.Fsck(t)
			lwant, err := tree.Read(bytes.NewReader(layers[i]))
			if err != nil {
				t.Fatal(err)
			}
			tree.Expect(t, fmt.Sprintf("go-erofs, layer %d", i), lwant.Resolved(), nydustest.GoErofsTree(t, lim.GoErofs(t)), tree.Options{})
		}
	})
	t.Logf("%d entries, %d blobs, bootstrap %d B", len(want), len(f.BlobTable()), len(boot))
}

// TestNydusErofsGenerated: the generated test images (multi-layer ones with whiteouts and
// opaque directories, odd tar endings) converted to Nydus pass checkNydusWithEROFS.
func TestNydusErofsGenerated(t *testing.T) {
	imgs := generated(t)
	for _, name := range []string{testimages.ImageGzipSingle, testimages.ImageMultiFormat, testimages.ImageSchema2} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mustConvert(t, imgs[name].Ref, "oci:"+dir+"/start:x", opts(layerformat.Gzip))
			layers := readLayout(t, dir+"/start", "x").layerTars(t)
			mustConvert(t, "oci:"+dir+"/start:x", "oci:"+dir+"/nydus:x", opts(layerformat.Nydus))
			checkNydusWithEROFS(t, readLayout(t, dir+"/nydus", "x"), mergedTree(t, layers), layers)
		})
	}
}

var (
	rootfsOnce sync.Once
	rootfsImg  *testimages.RootFS
	rootfsErr  error
)

// realisticRootFS builds testimages' realistic root filesystem once per test binary; on a
// machine with too little it skips (fails under CI).
func realisticRootFS(t *testing.T) *testimages.RootFS {
	t.Helper()
	rootfsOnce.Do(func() { rootfsImg, rootfsErr = testimages.BuildRootFS(testimages.RootFSOptions{}) })
	if rootfsErr != nil {
		nydustest.SkipOrFail(t, "realistic root filesystem: %v", rootfsErr)
	}
	if m := rootfsImg.Stats.Missing(); len(m) > 0 {
		t.Logf("NOTE: this machine's files have no %v; only the synthetic upper layers have them", m)
	}
	return rootfsImg
}

// TestNydusErofsRootfs: the realistic root filesystem (this machine's files: setuid and
// setgid binaries, hard links, symlinks, a security.capability xattr, real owners and
// mtimes; then an update layer that modifies and deletes files, makes a directory opaque and
// deletes one, and a small application layer) goes OCI → Nydus → OCI through convert.Convert
// with every layer's files unchanged; the Nydus image is valid for verify.Verify and passes
// checkNydusWithEROFS.
func TestNydusErofsRootfs(t *testing.T) {
	testenv.RequireTool(t, "fsck.erofs")
	r := realisticRootFS(t)
	t.Logf("base: %s", r.Stats)
	dir := t.TempDir()
	start := time.Now()
	src, err := r.WriteOCILayout(dir+"/src", "x", testimages.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("source image written: %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	ny := "oci:" + dir + "/nydus:x"
	rep := mustConvert(t, src, ny, opts(layerformat.Nydus))
	if n := len(rep.Layers); n != len(r.Layers)+1 || rep.Layers[n-1].Action != "added" {
		t.Fatalf("layers %+v", rep.Layers)
	}
	t.Logf("OCI → Nydus: %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	res, err := verify.Verify(context.Background(), ny, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid || len(res.Nydus) != 1 {
		t.Fatalf("verify of the Nydus image: valid %v, nydus %+v, findings %v", res.Valid, res.Nydus, res.Findings)
	}
	t.Logf("verify.Verify: %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	back := "oci:" + dir + "/back:x"
	mustConvert(t, ny, back, opts(layerformat.Gzip))
	want, got := layerTrees(t, src), layerTrees(t, back)
	if len(got) != len(want) {
		t.Fatalf("%d layers back, want %d", len(got), len(want))
	}
	for i := range want {
		tree.Expect(t, fmt.Sprintf("layer %d after OCI → Nydus → OCI", i), want[i], got[i], tree.Options{})
	}
	t.Logf("Nydus → OCI and layer trees compared: %v", time.Since(start).Round(time.Millisecond))
	var tars [][]byte
	for _, l := range r.Layers {
		tars = append(tars, l.Tar)
	}
	checkNydusWithEROFS(t, readLayout(t, dir+"/nydus", "x"), mergedTree(t, tars), tars)
}

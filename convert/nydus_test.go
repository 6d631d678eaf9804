package convert_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/internal/tree"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/verify"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// nydusFixtureImage writes a one-layer Nydus image around the real nydus-image per-layer blob
// 2fa78cad… from ../shared/fixtures/nydus: the blob layer, then the bootstrap layer (a gzip tar
// holding image/image.boot), with the annotations and config nydus-snapshotter writes.
func nydusFixtureImage(t *testing.T, dir string) string {
	t.Helper()
	fix := filepath.Join(testenv.SharedDir(t), "fixtures", "nydus")
	blobPath := filepath.Join(fix, "2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca")
	testenv.RequireFile(t, blobPath)
	blob, err := os.ReadFile(blobPath)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := os.ReadFile(filepath.Join(fix, "derived", "2fa78cad.image.boot"))
	if err != nil {
		t.Fatal(err)
	}
	var bootTar bytes.Buffer
	tw := tar.NewWriter(&bootTar)
	tw.WriteHeader(&tar.Header{Name: "image/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatGNU})
	tw.WriteHeader(&tar.Header{Name: "image/image.boot", Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(boot)), Format: tar.FormatGNU})
	tw.Write(boot)
	tw.Close()
	if _, err := testimages.WriteOCILayout(dir, "nydus", testimages.ImageSpec{Layers: []testimages.LayerBlob{
		{Blob: blob, MediaType: layerformat.MediaTypeNydusBlob, DiffID: digest.FromBytes(blob),
			Annotations: map[string]string{layerformat.AnnotationNydusBlob: "true"}},
		{Tar: bootTar.Bytes(), Compression: testimages.Gzip,
			Annotations: map[string]string{layerformat.AnnotationNydusBootstrap: "true", layerformat.AnnotationNydusFSVersion: "6"}},
	}}); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":nydus"
}

// TestNydusToOCI: a Nydus image becomes an ordinary image: one layer per Nydus blob layer, rebuilt
// from that blob's own bootstrap, the bootstrap layer dropped with its diff_id and history entry,
// and the files exactly those fsck.erofs extracts (the fixture README's sha256 values).
func TestNydusToOCI(t *testing.T) {
	dir := t.TempDir()
	src := nydusFixtureImage(t, filepath.Join(dir, "src"))
	for _, k := range []layerformat.Kind{layerformat.Gzip, layerformat.ZstdChunked, layerformat.Estargz} {
		out := filepath.Join(dir, tagOf(k))
		rep := mustConvert(t, src, "oci:"+out+":x", opts(k))
		if len(rep.Layers) != 2 || rep.Layers[1].Action != "dropped" || rep.Layers[0].Action != "converted" {
			t.Fatalf("%s: layers %+v", k, rep.Layers)
		}
		got := mustVerify(t, "oci:"+out+":x")
		if len(got.diffIDs[0]) != 1 {
			t.Fatalf("%s: %d diff_ids, want 1", k, len(got.diffIDs[0]))
		}
		trees := layerTrees(t, "oci:"+out+":x")
		want := map[string]string{"error.rs": "b2374128", "lib.rs": "7628231c", "logger.rs": "085f726e"}
		for name, prefix := range want {
			n, ok := trees[0][name]
			if !ok || !strings.HasPrefix(n.SHA256, prefix) {
				t.Fatalf("%s: %s = %+v, want sha256 %s…", k, name, n, prefix)
			}
		}
		// The config lost the bootstrap's history entry and kept the other.
		cfg := readConfig(t, out, rep.Manifests[0].Config)
		if len(cfg.History) != 1 || len(cfg.RootFS.DiffIDs) != 1 {
			t.Fatalf("%s: config history %d entries, diff_ids %d", k, len(cfg.History), len(cfg.RootFS.DiffIDs))
		}
	}
}

func readConfig(t *testing.T, layout string, d digest.Digest) ocispec.Image {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	var img ocispec.Image
	if err := jsonUnmarshal(b, &img); err != nil {
		t.Fatal(err)
	}
	return img
}

var _ = sha256.New
var _ = hex.EncodeToString

// TestVerifyNydusImage: fmtconv verify checks a Nydus image (every blob's chunks, the merged
// bootstrap's structure and blob ids), and catches a corrupted chunk byte.
func TestVerifyNydusImage(t *testing.T) {
	dir := t.TempDir()
	src := nydusFixtureImage(t, filepath.Join(dir, "src"))
	res, err := verify.Verify(context.Background(), src, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The test image uses the fixture blob's own inline bootstrap as the merged bootstrap, and
	// nydus-image 2.2 gave that blob an id that is not its file's digest (the sha256 of its first
	// 7997 bytes); nydus-snapshotter's Merge would have written the layer digest. So exactly one
	// error is right here: nydus.blob-id.
	var errs []string
	for _, f := range res.Findings {
		if f.Severity == "error" {
			errs = append(errs, f.Check)
		}
	}
	if strings.Join(errs, ",") != "nydus.blob-id" || len(res.Nydus) != 1 || res.Nydus[0].Info == nil {
		t.Fatalf("errors %v (want only nydus.blob-id), nydus %+v, findings %v", errs, res.Nydus, res.Findings)
	}
	// Flip a byte of the first chunk and re-digest the blob so only the chunk digest can catch it.
	fix := filepath.Join(testenv.SharedDir(t), "fixtures", "nydus", "2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca")
	blob, _ := os.ReadFile(fix)
	blob[100] ^= 0xff
	bad := filepath.Join(dir, "bad")
	if _, err := testimages.WriteOCILayout(bad, "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{
		{Blob: blob, MediaType: layerformat.MediaTypeNydusBlob, DiffID: digest.FromBytes(blob), Annotations: map[string]string{layerformat.AnnotationNydusBlob: "true"}},
	}}); err != nil {
		t.Fatal(err)
	}
	res, err = verify.Verify(context.Background(), "oci:"+bad+":x", verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range res.Findings {
		if strings.HasPrefix(f.Check, "nydus.") && f.Severity == "error" {
			found = true
		}
	}
	if res.Valid || !found {
		t.Fatalf("a corrupted chunk was not caught: %v", res.Findings)
	}
}

// TestOCIToNydusAndBack: the test images become Nydus images (one blob layer per layer plus the
// merged bootstrap layer, the config's diff_ids and history rewritten) that fmtconv verify accepts,
// and converting them back gives the same file trees.
func TestOCIToNydusAndBack(t *testing.T) {
	imgs := generated(t)
	for _, name := range []string{"gzip-single", "multi-format", "schema2"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			start := "oci:" + dir + "/start:x"
			mustConvert(t, imgs[name].Ref, start, opts(layerformat.Gzip))
			want := layerTrees(t, start)
			ny := "oci:" + dir + "/nydus:x"
			rep := mustConvert(t, start, ny, opts(layerformat.Nydus))
			last := rep.Layers[len(rep.Layers)-1]
			if last.Action != "added" || len(rep.Layers) != len(want)+1 {
				t.Fatalf("layers %+v", rep.Layers)
			}
			res, err := verify.Verify(context.Background(), ny, verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Valid || len(res.Nydus) != 1 {
				t.Fatalf("nydus image: valid %v, %v", res.Valid, res.Findings)
			}
			cfg := readConfig(t, dir+"/nydus", rep.Manifests[0].Config)
			if h := cfg.History[len(cfg.History)-1]; h.CreatedBy != "Nydus Converter" || len(cfg.RootFS.DiffIDs) != len(want)+1 {
				t.Fatalf("config: history %+v, %d diff_ids", h, len(cfg.RootFS.DiffIDs))
			}
			back := "oci:" + dir + "/back:x"
			mustConvert(t, ny, back, opts(layerformat.Gzip))
			got := layerTrees(t, back)
			if len(got) != len(want) {
				t.Fatalf("%d layers back, want %d", len(got), len(want))
			}
			for i := range want {
				if d := tree.Diff(want[i], got[i], tree.Options{}); len(d) > 0 {
					t.Fatalf("layer %d after the round trip: %v", i, d[:min(len(d), 5)])
				}
			}
		})
	}
}

package verify_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/transport"
	"github.com/fmtconv/fmtconv/verify"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

func formats(res *verify.Result) []string {
	var out []string
	for _, m := range res.Manifests {
		for _, l := range m.Layers {
			out = append(out, l.Format)
		}
	}
	return out
}

func expectValid(t *testing.T, res *verify.Result, format string) {
	t.Helper()
	if !res.Valid {
		t.Fatalf("%s: invalid: %v", res.Image, res.Findings)
	}
	for _, f := range formats(res) {
		if f != format {
			t.Fatalf("%s: a layer is %s, want %s", res.Image, f, format)
		}
	}
	for _, l := range res.Manifests[0].Layers {
		if l.Chunked == nil || l.Chunked.TOCDigest == "" {
			t.Fatalf("%s: layer %d has no TOC facts: %+v", res.Image, l.Index, l.Chunked)
		}
	}
}

// TestZstdChunkedFromContainersImage: zstd:chunked written by go.podman.io/image's own copy (the
// current containers dialect) verifies clean.
func TestZstdChunkedFromContainersImage(t *testing.T) {
	imgs, err := testimages.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	policy, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		t.Fatal(err)
	}
	defer policy.Destroy()
	// And an image of the one layer containers/image gets wrong: a tar ending inside its padding.
	l, _ := testimages.LayerByName(testimages.LayerEndingInsidePadding)
	padDir := filepath.Join(t.TempDir(), "padding")
	if _, err := testimages.WriteOCILayout(padDir, "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: l.Tar, Compression: testimages.Gzip}}}); err != nil {
		t.Fatal(err)
	}
	imgs = append(imgs, testimages.Image{Name: "padding", Ref: "oci:" + padDir + ":x"})
	for _, img := range imgs {
		if img.Name == "special" || img.Name == "schema2" { // zstd:chunked cannot hold those; schema2 stays gzip in copy
			continue
		}
		src, err := alltransports.ParseImageName(img.Ref)
		if err != nil {
			t.Fatal(err)
		}
		out := "oci:" + filepath.Join(t.TempDir(), "out") + ":x"
		dst, _ := alltransports.ParseImageName(out)
		level := 3
		if _, err := copy.Image(ctx, policy, dst, src, &copy.Options{
			ImageListSelection: copy.CopyAllImages,
			DestinationCtx:     &types.SystemContext{CompressionFormat: &compression.ZstdChunked, CompressionLevel: &level, BlobInfoCacheDir: t.TempDir()},
		}); err != nil {
			t.Fatalf("containers/image copy of %s: %v", img.Name, err)
		}
		res, err := verify.Verify(ctx, out, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if img.Name == "padding" {
			// containers/image's compressor drops the bytes of a tar that ends inside its last
			// file's padding (containers/container-libs#391) and keeps the old diff_id: the one
			// layer must be caught, and nothing else.
			var errs []string
			for _, f := range res.Findings {
				if f.Severity == check.Error {
					errs = append(errs, f.Check)
				}
			}
			if !slices.Equal(errs, []string{verify.CheckLayerDiffID}) {
				t.Fatalf("containers/image's zstd:chunked of a tar ending inside its padding: errors %v, want exactly one layer.diffid (%v)", errs, res.Findings)
			}
		} else if !res.Valid {
			t.Fatalf("%s: %v", img.Name, res.Findings)
		}
		if !slices.Contains(formats(res), "zstd:chunked(containers)") {
			t.Fatalf("%s: no zstd:chunked layer in %v", img.Name, formats(res))
		}
	}
}

// TestZstdChunkedFromSkopeo: Debian's skopeo 1.9 writes the older containers dialect.
func TestZstdChunkedFromSkopeo(t *testing.T) {
	testenv.RequireTool(t, "skopeo")
	imgs, err := testimages.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if img.Name != "gzip-single" && img.Name != "index" {
			continue
		}
		out := "oci:" + filepath.Join(t.TempDir(), "out") + ":x"
		testenv.Skopeo(t, "copy", "--all", "--dest-compress-format", "zstd:chunked", "--dest-compress-level", "3", img.Ref, out)
		res, err := verify.Verify(context.Background(), out, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		expectValid(t, res, "zstd:chunked(containers-legacy)")
	}
}

// TestChunkedFromCtrRemote: stargz-snapshotter's ctr-remote writes eStargz and its own
// zstd:chunked dialect; both verify clean.
func TestChunkedFromCtrRemote(t *testing.T) {
	testenv.RequireTool(t, "containerd", "ctr", "ctr-remote", "skopeo")
	reg := testenv.StartRegistry(t)
	ctrd := testenv.StartContainerd(t)
	imgs, err := testimages.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var src string
	for _, img := range imgs {
		if img.Name == "gzip-single" {
			src = img.Ref
		}
	}
	testenv.Skopeo(t, "copy", "--dest-tls-verify=false", src, reg.Ref("peer/src", "1"))
	if err := ctrd.PullAndUnpack(t, reg.ImageName("peer/src", "1")); err != nil {
		t.Fatal(err)
	}
	f := false
	for _, tc := range []struct{ flag, tag, format string }{
		{"--estargz", "esgz", "estargz"},
		{"--zstdchunked", "zc", "zstd:chunked(stargz)"},
	} {
		ctrd.CtrRemote(t, "image", "convert", tc.flag, "--oci", reg.ImageName("peer/src", "1"), reg.ImageName("peer/out", tc.tag))
		ctrd.Ctr(t, "image", "push", "--plain-http", reg.ImageName("peer/out", tc.tag))
		res, err := verify.Verify(context.Background(), reg.Ref("peer/out", tc.tag), verify.Options{Src: transport.Options{TLSVerify: &f}})
		if err != nil {
			t.Fatal(err)
		}
		expectValid(t, res, tc.format)
	}
}

// TestZstdChunkedDefectInImage: a zstd:chunked layer whose checksum annotation lies is invalid at
// the image level too (the blob-level defects are in package zstdchunked's tests).
func TestZstdChunkedDefectInImage(t *testing.T) {
	basic, _ := testimages.LayerByName(testimages.LayerWhiteouts)
	dir := t.TempDir()
	in := "oci:" + filepath.Join(dir, "in") + ":x"
	if _, err := testimages.WriteOCILayout(filepath.Join(dir, "in"), "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: basic.Tar, Compression: testimages.Gzip}}}); err != nil {
		t.Fatal(err)
	}
	var blob strings.Builder
	res, err := layerformat.Encode(context.Background(), layerformat.ZstdChunked, &blob, strings.NewReader(string(basic.Tar)), layerformat.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ann := res.Annotations
	ann[layerformat.AnnotationZstdChunkedManifestChecksum] = "sha256:" + strings.Repeat("4", 64)
	if _, err := testimages.WriteOCILayout(filepath.Join(dir, "bad"), "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{{
		Blob: []byte(blob.String()), MediaType: layerformat.MediaTypeOCIZstd, DiffID: testimages.DiffID(basic.Tar), Annotations: ann}}}); err != nil {
		t.Fatal(err)
	}
	_ = in
	got, err := verify.Verify(context.Background(), "oci:"+filepath.Join(dir, "bad")+":x", verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Valid || !slices.ContainsFunc(got.Findings, func(f check.Finding) bool { return f.Check == "zstdchunked.toc-checksum" }) {
		t.Fatalf("want zstdchunked.toc-checksum, got %v", got.Findings)
	}
}

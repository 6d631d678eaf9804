package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tinyImage is a one-layer OCI image built by hand for these tests.
type tinyImage struct {
	layer, config, manifest []byte
	layerDigest             string
	configDigest            string
	manifestDigest          string
	diffID                  string // what the config claims
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// buildTinyImage makes a gzip layer holding files, a config and a manifest.
// A non-empty wrongDiffID replaces the correct diff_id in the config.
func buildTinyImage(t *testing.T, files map[string]string, wrongDiffID string) tinyImage {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gzBuf bytes.Buffer
	gw := gzip.NewWriter(&gzBuf)
	if _, err := gw.Write(tarBuf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}

	img := tinyImage{layer: gzBuf.Bytes(), diffID: sha256Digest(tarBuf.Bytes())}
	if wrongDiffID != "" {
		img.diffID = wrongDiffID
	}
	img.layerDigest = sha256Digest(img.layer)
	cfg := ocispec.Image{
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/true"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.Digest(img.diffID)}},
	}
	var err error
	if img.config, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	img.configDigest = sha256Digest(img.config)
	man := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.Digest(img.configDigest), Size: int64(len(img.config))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.Digest(img.layerDigest), Size: int64(len(img.layer))}},
	}
	if img.manifest, err = json.Marshal(man); err != nil {
		t.Fatal(err)
	}
	img.manifestDigest = sha256Digest(img.manifest)
	return img
}

// writeOCILayout stores img as an OCI image layout in dir, tagged tag.
func writeOCILayout(t *testing.T, dir, tag string, img tinyImage) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{img.layer, img.config, img.manifest} {
		sum := sha256.Sum256(b)
		if err := os.WriteFile(filepath.Join(blobs, hex.EncodeToString(sum[:])), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{
			MediaType:   ocispec.MediaTypeImageManifest,
			Digest:      digest.Digest(img.manifestDigest),
			Size:        int64(len(img.manifest)),
			Annotations: map[string]string{ocispec.AnnotationRefName: tag},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), indexJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pushTinyImage pushes img to reg as repo:tag with plain HTTP.
func pushTinyImage(t *testing.T, reg *Registry, repo, tag string, img tinyImage) {
	t.Helper()
	if d := reg.PushBlob(t, repo, img.layer); d != img.layerDigest {
		t.Fatalf("layer digest %s, want %s", d, img.layerDigest)
	}
	if d := reg.PushBlob(t, repo, img.config); d != img.configDigest {
		t.Fatalf("config digest %s, want %s", d, img.configDigest)
	}
	if d := reg.PushManifest(t, repo, tag, ocispec.MediaTypeImageManifest, img.manifest); d != img.manifestDigest {
		t.Fatalf("manifest digest %s, want %s", d, img.manifestDigest)
	}
}

package testimages

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

type fileInfo struct {
	mode fs.FileMode
	data []byte
}

// listFiles returns every regular file under root by relative path, and
// fails on anything that is neither a file nor a directory.
func listFiles(t *testing.T, root string) map[string]fileInfo {
	t.Helper()
	out := map[string]fileInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			t.Errorf("%s: not a regular file", p)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = fileInfo{info.Mode().Perm(), data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// generated runs Generate once per test binary (it is shared by the tests
// that only read the result).
var generated = struct {
	sync.Once
	dir    string
	images []Image
	err    error
}{}

func generateOnce(t *testing.T) (string, []Image) {
	t.Helper()
	generated.Do(func() {
		generated.dir, generated.err = os.MkdirTemp("", "testimages-")
		if generated.err == nil {
			generated.images, generated.err = Generate(generated.dir)
		}
	})
	if generated.err != nil {
		t.Fatal(generated.err)
	}
	return generated.dir, generated.images
}

func TestMain(m *testing.M) {
	code := m.Run()
	if generated.dir != "" {
		os.RemoveAll(generated.dir)
	}
	os.Exit(code)
}

func TestGenerateDeterministic(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	imgsA, err := Generate(dirA)
	if err != nil {
		t.Fatal(err)
	}
	imgsB, err := Generate(dirB)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgsA) != len(imgsB) {
		t.Fatalf("%d vs %d images", len(imgsA), len(imgsB))
	}
	for i := range imgsA {
		a, b := imgsA[i], imgsB[i]
		if a.Name != b.Name || a.Description != b.Description || strings.ReplaceAll(a.Ref, dirA, dirB) != b.Ref {
			t.Errorf("image %d: %+v vs %+v", i, a, b)
		}
	}
	filesA, filesB := listFiles(t, dirA), listFiles(t, dirB)
	if !slices.Equal(slices.Sorted(maps.Keys(filesA)), slices.Sorted(maps.Keys(filesB))) {
		t.Fatalf("file sets differ:\n%q\n%q", slices.Sorted(maps.Keys(filesA)), slices.Sorted(maps.Keys(filesB)))
	}
	for _, name := range slices.Sorted(maps.Keys(filesA)) {
		a, b := filesA[name], filesB[name]
		if !bytes.Equal(a.data, b.data) {
			t.Errorf("%s differs between runs", name)
		}
		if a.mode != FileMode || b.mode != FileMode {
			t.Errorf("%s: modes %v, %v; want %v", name, a.mode, b.mode, FileMode)
		}
	}

	// Generating again into the same directory rewrites exactly the same
	// files (nothing stale is left behind).
	if err := os.WriteFile(filepath.Join(dirA, ImageGzipSingle, "blobs", "sha256", "stale"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(dirA); err != nil {
		t.Fatal(err)
	}
	again := listFiles(t, dirA)
	if !maps.EqualFunc(again, filesA, func(x, y fileInfo) bool { return x.mode == y.mode && bytes.Equal(x.data, y.data) }) {
		t.Error("regenerating into the same directory changed the file set or content")
	}
}

// blobStore reads blobs of one layout and records which ones were used.
type blobStore struct {
	t    *testing.T
	path func(digest.Digest) string
	used map[string]bool
	// foreign marks blobs written by someone else (e.g. skopeo): only
	// digests, sizes and diff IDs are checked, not our encoding choices.
	foreign bool
}

// get returns the blob desc points to, checking its size and digest.
func (s *blobStore) get(desc v1.Descriptor) []byte {
	s.t.Helper()
	if err := desc.Digest.Validate(); err != nil {
		s.t.Fatalf("descriptor %+v: %v", desc, err)
	}
	p := s.path(desc.Digest)
	data, err := os.ReadFile(p)
	if err != nil {
		s.t.Fatalf("blob %s: %v", desc.Digest, err)
	}
	s.used[p] = true
	if int64(len(data)) != desc.Size {
		s.t.Errorf("blob %s: %d bytes, descriptor says %d", desc.Digest, len(data), desc.Size)
	}
	if got := digest.FromBytes(data); got != desc.Digest {
		s.t.Errorf("blob %s has digest %s", desc.Digest, got)
	}
	return data
}

func mustUnmarshal(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%v in %s", err, data)
	}
}

// checkedImage is one image manifest validated by checkManifest.
type checkedImage struct {
	manifest v1.Manifest // also used for Docker schema2 (same JSON shape)
	config   v1.Image
	layers   [][]byte // uncompressed
}

// checkManifest validates a manifest and everything it references: blob
// sizes and digests, media types, and config diff_ids against the
// decompressed layers.
func checkManifest(t *testing.T, s *blobStore, desc v1.Descriptor) checkedImage {
	t.Helper()
	var ci checkedImage
	mustUnmarshal(t, s.get(desc), &ci.manifest)
	m := ci.manifest
	if m.SchemaVersion != 2 || m.MediaType != desc.MediaType {
		t.Errorf("manifest %s: schemaVersion %d, mediaType %q (descriptor: %q)", desc.Digest, m.SchemaVersion, m.MediaType, desc.MediaType)
	}
	wantConfig := map[string]string{v1.MediaTypeImageManifest: v1.MediaTypeImageConfig, MediaTypeDockerManifest: MediaTypeDockerConfig}[m.MediaType]
	if m.Config.MediaType != wantConfig {
		t.Errorf("manifest %s: config media type %q, want %q", desc.Digest, m.Config.MediaType, wantConfig)
	}
	mustUnmarshal(t, s.get(m.Config), &ci.config)
	cfg := ci.config
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("config: rootfs %+v for %d layers", cfg.RootFS, len(m.Layers))
	}
	if cfg.Created == nil || !cfg.Created.Equal(DefaultCreated) || cfg.OS == "" || cfg.Architecture == "" {
		t.Errorf("config: created %v, os %q, architecture %q", cfg.Created, cfg.OS, cfg.Architecture)
	}
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(m.Layers) {
		t.Errorf("config: %d non-empty history entries for %d layers", nonEmpty, len(m.Layers))
	}
	for i, l := range m.Layers {
		raw := s.get(l)
		tar := decompress(t, l.MediaType, raw)
		if got := DiffID(tar); got != cfg.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: uncompressed digest %s, diff_id %s", i, got, cfg.RootFS.DiffIDs[i])
		}
		if !s.foreign && strings.HasSuffix(l.MediaType, "gzip") && (raw[3] != 0 || !isZero(raw[4:8])) {
			t.Errorf("layer %d: gzip header has flags %#x / mtime %x, want no name and no mtime", i, raw[3], raw[4:8])
		}
		ci.layers = append(ci.layers, tar)
	}
	return ci
}

// openOCILayout checks oci-layout and index.json and returns the blob
// store and the descriptor tagged Tag.
func openOCILayout(t *testing.T, dir string) (*blobStore, v1.Descriptor) {
	t.Helper()
	layout, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil || string(layout) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout: %q, %v", layout, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index v1.Index
	mustUnmarshal(t, data, &index)
	if index.SchemaVersion != 2 || index.MediaType != v1.MediaTypeImageIndex || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %s", data)
	}
	desc := index.Manifests[0]
	if desc.Annotations[v1.AnnotationRefName] != Tag {
		t.Fatalf("index.json entry not tagged %q: %+v", Tag, desc)
	}
	s := &blobStore{t: t, used: map[string]bool{}, path: func(d digest.Digest) string {
		return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
	}}
	return s, desc
}

// checkAllBlobsUsed fails if the layout holds files nothing references.
func checkAllBlobsUsed(t *testing.T, s *blobStore, dir string, meta ...string) {
	t.Helper()
	for rel := range listFiles(t, dir) {
		p := filepath.Join(dir, rel)
		if !s.used[p] && !slices.Contains(meta, rel) {
			t.Errorf("unreferenced file %s", p)
		}
	}
}

func catalogueDiffIDs(names ...string) []digest.Digest {
	var out []digest.Digest
	for _, n := range names {
		out = append(out, DiffID(mustLayer(n)))
	}
	return out
}

func TestGeneratedImages(t *testing.T) {
	dir, images := generateOnce(t)
	var names []string
	for _, img := range images {
		names = append(names, img.Name)
		if img.Description == "" {
			t.Errorf("%s: no description", img.Name)
		}
	}
	if want := []string{ImageGzipSingle, ImageMultiFormat, ImageSchema2, ImageIndex, ImageSpecial}; !slices.Equal(names, want) {
		t.Fatalf("images %q, want %q", names, want)
	}
	ref := func(name string) string {
		for _, img := range images {
			if img.Name == name {
				return img.Ref
			}
		}
		return ""
	}
	gz, zst, tarMT := v1.MediaTypeImageLayerGzip, v1.MediaTypeImageLayerZstd, v1.MediaTypeImageLayer

	simple := []struct {
		name   string
		layers []string
		types  []string
	}{
		{ImageGzipSingle, []string{LayerBasic}, []string{gz}},
		{ImageMultiFormat, []string{LayerBasic, LayerWhiteouts, LayerEndingGNURecord, LayerEndingNoEOF, LayerEndingExtraZeros}, []string{tarMT, zst, gz, gz, gz}},
		{ImageSpecial, []string{LayerPAXGlobal, LayerDuplicatePaths, LayerEndingInsidePadding}, []string{gz, gz, gz}},
	}
	for _, c := range simple {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if want := "oci:" + p + ":" + Tag; ref(c.name) != want {
				t.Errorf("ref %q, want %q", ref(c.name), want)
			}
			s, desc := openOCILayout(t, p)
			if desc.MediaType != v1.MediaTypeImageManifest {
				t.Fatalf("tag points at %q", desc.MediaType)
			}
			img := checkManifest(t, s, desc)
			checkAllBlobsUsed(t, s, p, "oci-layout", "index.json")
			if !slices.Equal(img.config.RootFS.DiffIDs, catalogueDiffIDs(c.layers...)) {
				t.Errorf("diff_ids are not the catalogue layers %q", c.layers)
			}
			var types []string
			for _, l := range img.manifest.Layers {
				types = append(types, l.MediaType)
			}
			if !slices.Equal(types, c.types) {
				t.Errorf("layer media types %q, want %q", types, c.types)
			}
			if img.config.OS != "linux" || img.config.Architecture != "amd64" {
				t.Errorf("platform %s/%s", img.config.OS, img.config.Architecture)
			}
			switch c.name {
			case ImageGzipSingle:
				if h := img.config.History; len(h) != 2 || !h[1].EmptyLayer {
					t.Errorf("history %+v, want a layer entry and an empty_layer entry", h)
				}
			case ImageMultiFormat:
				if img.manifest.Layers[1].Annotations[AnnotationKeep] != "yes" {
					t.Errorf("zstd layer annotations %v", img.manifest.Layers[1].Annotations)
				}
				if img.manifest.Annotations[AnnotationImage] != ImageMultiFormat {
					t.Errorf("manifest annotations %v", img.manifest.Annotations)
				}
			}
		})
	}

	t.Run(ImageSchema2, func(t *testing.T) {
		p := filepath.Join(dir, ImageSchema2)
		if ref(ImageSchema2) != "dir:"+p {
			t.Errorf("ref %q", ref(ImageSchema2))
		}
		version, err := os.ReadFile(filepath.Join(p, "version"))
		if err != nil || string(version) != "Directory Transport Version: 1.1\n" {
			t.Errorf("version file %q, %v", version, err)
		}
		manifest, err := os.ReadFile(filepath.Join(p, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		// dir: stores blobs as <hex digest>, without "sha256:" and without a
		// subdirectory; the manifest is manifest.json.
		desc := v1.Descriptor{MediaType: MediaTypeDockerManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
		s := &blobStore{t: t, used: map[string]bool{}, path: func(d digest.Digest) string {
			if d == desc.Digest {
				return filepath.Join(p, "manifest.json")
			}
			return filepath.Join(p, d.Encoded())
		}}
		img := checkManifest(t, s, desc)
		checkAllBlobsUsed(t, s, p, "version")
		if !slices.Equal(img.config.RootFS.DiffIDs, catalogueDiffIDs(LayerBasic, LayerWhiteouts)) {
			t.Error("diff_ids are not basic, whiteouts")
		}
		for i, l := range img.manifest.Layers {
			if l.MediaType != MediaTypeDockerLayerGzip {
				t.Errorf("layer %d media type %q", i, l.MediaType)
			}
		}
		if bytes.Contains(manifest, []byte("annotations")) {
			t.Error("schema2 manifest has annotations")
		}
	})

	t.Run(ImageIndex, func(t *testing.T) {
		p := filepath.Join(dir, ImageIndex)
		s, desc := openOCILayout(t, p)
		if desc.MediaType != v1.MediaTypeImageIndex {
			t.Fatalf("tag points at %q", desc.MediaType)
		}
		var index v1.Index
		mustUnmarshal(t, s.get(desc), &index)
		if index.MediaType != v1.MediaTypeImageIndex || index.Annotations[AnnotationImage] != ImageIndex || len(index.Manifests) != 2 {
			t.Fatalf("index %+v", index)
		}
		want := []struct {
			platform v1.Platform
			layers   []string
		}{
			{v1.Platform{OS: "linux", Architecture: "amd64"}, []string{LayerBasic, LayerPlatformAMD64}},
			{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, []string{LayerPlatformARM64}},
		}
		for i, d := range index.Manifests {
			w := want[i]
			if d.Platform == nil || d.Platform.OS != w.platform.OS || d.Platform.Architecture != w.platform.Architecture || d.Platform.Variant != w.platform.Variant {
				t.Errorf("manifest %d: platform %+v, want %+v", i, d.Platform, w.platform)
			}
			if d.Annotations["org.example.platform"] != w.platform.Architecture {
				t.Errorf("manifest %d: descriptor annotations %v", i, d.Annotations)
			}
			img := checkManifest(t, s, d)
			if img.config.Architecture != w.platform.Architecture || img.config.Variant != w.platform.Variant || img.config.OS != "linux" {
				t.Errorf("manifest %d: config platform %+v", i, img.config.Platform)
			}
			if !slices.Equal(img.config.RootFS.DiffIDs, catalogueDiffIDs(w.layers...)) {
				t.Errorf("manifest %d: diff_ids are not %q", i, w.layers)
			}
			for _, l := range img.manifest.Layers {
				if l.MediaType != v1.MediaTypeImageLayerGzip {
					t.Errorf("manifest %d: layer media type %q", i, l.MediaType)
				}
			}
		}
		checkAllBlobsUsed(t, s, p, "oci-layout", "index.json")
	})
}

func TestWriteOCILayoutCustom(t *testing.T) {
	dir := t.TempDir()
	hello := MustBuildTar([]Entry{File("hello", 0o644, String("hello\n"))}, Ending{})
	zst, err := Compress(hello, Zstd)
	if err != nil {
		t.Fatal(err)
	}
	custom := ImageSpec{Layers: []LayerBlob{{
		Tar: hello, Blob: zst, MediaType: "application/vnd.example.layer+zstd",
		Annotations: map[string]string{"org.example.layer": "1"},
	}}, Annotations: map[string]string{"org.example.m": "x"}}
	first, err := WriteOCILayout(dir, "a", custom)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteOCILayout(dir, "b", ImageSpec{Layers: []LayerBlob{{Tar: hello, Compression: Gzip}}}); err != nil {
		t.Fatal(err)
	}
	retag, err := WriteOCILayout(dir, "a", ImageSpec{Layers: []LayerBlob{{Tar: hello}}, DescriptorAnnotations: map[string]string{"org.example.d": "y"}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Layers[0].MediaType != "application/vnd.example.layer+zstd" || !bytes.Equal(first.Layers[0].Data, zst) || first.DiffIDs[0] != DiffID(hello) {
		t.Errorf("custom layer built as %+v", first.Layers[0].Descriptor())
	}
	var index v1.Index
	data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	mustUnmarshal(t, data, &index)
	tags := map[string]v1.Descriptor{}
	for _, d := range index.Manifests {
		tags[d.Annotations[v1.AnnotationRefName]] = d
	}
	if len(index.Manifests) != 2 || tags["a"].Digest != retag.Manifest.Digest || tags["a"].Annotations["org.example.d"] != "y" || tags["b"].Digest == "" {
		t.Errorf("index.json after retagging: %s", data)
	}
	// The replaced image's blobs stay (like any OCI layout, nothing is
	// garbage-collected), and all blobs are valid.
	s := &blobStore{t: t, used: map[string]bool{}, path: func(d digest.Digest) string {
		return filepath.Join(dir, "blobs", "sha256", d.Encoded())
	}}
	for _, d := range index.Manifests {
		checkManifest(t, s, d)
	}
	s.get(first.Manifest.Descriptor())

	// Docker schema2 restrictions.
	if _, err := BuildImage(ImageSpec{Format: DockerSchema2, Annotations: map[string]string{"a": "b"}}); err == nil {
		t.Error("schema2 with manifest annotations accepted")
	}
	if _, err := BuildImage(ImageSpec{Format: DockerSchema2, Layers: []LayerBlob{{Tar: hello, Compression: Zstd}}}); err == nil {
		t.Error("schema2 zstd layer without explicit media type accepted")
	}
	if _, err := BuildImage(ImageSpec{Layers: []LayerBlob{{Blob: zst}}}); err == nil {
		t.Error("layer without Tar or DiffID accepted")
	}
	list, err := BuildIndex(IndexSpec{Format: DockerSchema2, Images: []ImageSpec{{Format: DockerSchema2, Layers: []LayerBlob{{Tar: hello, Compression: Gzip}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if list.Index.MediaType != MediaTypeDockerManifestList || list.Images[0].Descriptor.Platform.Architecture != "amd64" {
		t.Errorf("docker list %s", list.Index.Data)
	}

	// dir: layout with an OCI manifest.
	d2 := t.TempDir()
	b, err := WriteDirImage(d2, ImageSpec{Layers: []LayerBlob{{Tar: hello, Compression: Gzip}}})
	if err != nil {
		t.Fatal(err)
	}
	files := listFiles(t, d2)
	for _, blob := range b.Blobs() {
		if _, ok := files[blob.Digest.Encoded()]; !ok {
			t.Errorf("dir: blob %s missing", blob.Digest)
		}
	}
	if m := files["manifest.json"]; !bytes.Equal(m.data, b.Manifest.Data) {
		t.Error("dir: manifest.json differs from the built manifest")
	}
	if len(files) != 4 {
		t.Errorf("dir: files %q", slices.Sorted(maps.Keys(files)))
	}
	if _, err := os.Stat(filepath.Join(d2, "blobs")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("dir: layout has a blobs directory")
	}
}

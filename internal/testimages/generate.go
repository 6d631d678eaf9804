package testimages

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is one image written by Generate.
type Image struct {
	Name string
	// Ref is a containers/image transport reference to the image, e.g.
	// "oci:/abs/dir/gzip-single:latest" or "dir:/abs/dir/schema2".
	Ref         string
	Description string
}

// Names of the images written by Generate (each is a subdirectory of the
// output directory).
const (
	ImageGzipSingle  = "gzip-single"
	ImageMultiFormat = "multi-format"
	ImageSchema2     = "schema2"
	ImageIndex       = "index"
	ImageSpecial     = "special"
)

// Tag is the tag every OCI layout written by Generate uses.
const Tag = "latest"

// Annotations used by the generated images.
const (
	AnnotationKeep  = "org.example.keep"  // on the zstd layer of multi-format: "yes"
	AnnotationImage = "org.example.image" // manifest/index annotation: the image name
)

var defaultConfig = v1.ImageConfig{
	Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	Cmd:    []string{"/bin/sh"},
	Labels: map[string]string{"org.example.generator": "fmtconv testimages"},
}

// layerSet compresses each catalogue layer at most once per Generate call.
type layerSet struct {
	blobs map[string][]byte
}

func (s *layerSet) layer(name string, c Compression) (LayerBlob, error) {
	tar := mustLayer(name)
	key := name + "\x00" + c.String()
	blob, ok := s.blobs[key]
	if !ok {
		var err error
		if blob, err = Compress(tar, c); err != nil {
			return LayerBlob{}, err
		}
		s.blobs[key] = blob
	}
	return LayerBlob{Tar: tar, Compression: c, Blob: blob, CreatedBy: fmt.Sprintf("testimages: %s layer (%v)", name, c)}, nil
}

func (s *layerSet) layers(c Compression, names ...string) ([]LayerBlob, error) {
	var out []LayerBlob
	for _, n := range names {
		l, err := s.layer(n, c)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// Generate writes the standard test images into subdirectories of dir
// (created if needed; each image's subdirectory is removed and rewritten)
// and returns them in a fixed order. Every run writes identical bytes.
//
//   - gzip-single: OCI layout, OCI manifest, the basic layer as tar+gzip;
//     the history has an extra empty_layer entry.
//   - multi-format: OCI layout, one image with basic uncompressed,
//     whiteouts as zstd (annotated org.example.keep=yes) and the four
//     ending-* layers as gzip; the manifest is annotated.
//   - schema2: containers/image "dir:" layout, Docker schema2 manifest,
//     basic and whiteouts as gzip.
//   - index: OCI layout whose tag points at an OCI image index with
//     linux/amd64 (basic + platform-amd64) and linux/arm64/v8
//     (platform-arm64), all gzip, with index and per-descriptor annotations.
//   - special: OCI layout, pax-global and duplicate-paths as gzip (layers
//     formats such as zstd:chunked cannot represent).
func Generate(dir string) ([]Image, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	set := &layerSet{blobs: map[string][]byte{}}
	var out []Image
	ociRef := func(name string) string { return "oci:" + filepath.Join(abs, name) + ":" + Tag }
	prepare := func(name string) (string, error) {
		p := filepath.Join(abs, name)
		if err := os.RemoveAll(p); err != nil {
			return "", err
		}
		return p, os.MkdirAll(p, DirMode)
	}

	// gzip-single
	{
		p, err := prepare(ImageGzipSingle)
		if err != nil {
			return nil, err
		}
		layers, err := set.layers(Gzip, LayerBasic)
		if err != nil {
			return nil, err
		}
		created := DefaultCreated
		img := ImageSpec{
			Layers: layers,
			Config: defaultConfig,
			History: []v1.History{
				{Created: &created, CreatedBy: layers[0].CreatedBy},
				{Created: &created, CreatedBy: `CMD ["/bin/sh"]`, EmptyLayer: true},
			},
		}
		if _, err := WriteOCILayout(p, Tag, img); err != nil {
			return nil, fmt.Errorf("%s: %w", ImageGzipSingle, err)
		}
		out = append(out, Image{ImageGzipSingle, ociRef(ImageGzipSingle),
			"OCI layout, OCI manifest, one tar+gzip layer (basic)"})
	}

	// multi-format
	{
		p, err := prepare(ImageMultiFormat)
		if err != nil {
			return nil, err
		}
		basic, err := set.layer(LayerBasic, Uncompressed)
		if err != nil {
			return nil, err
		}
		wh, err := set.layer(LayerWhiteouts, Zstd)
		if err != nil {
			return nil, err
		}
		wh.Annotations = map[string]string{AnnotationKeep: "yes"}
		// The ending inside a file's padding is in "special": zstd:chunked cannot represent it.
		var representable []string
		for _, e := range EndingLayers {
			if e != LayerEndingInsidePadding {
				representable = append(representable, e)
			}
		}
		endings, err := set.layers(Gzip, representable...)
		if err != nil {
			return nil, err
		}
		img := ImageSpec{
			Layers:      append([]LayerBlob{basic, wh}, endings...),
			Config:      defaultConfig,
			Annotations: map[string]string{AnnotationImage: ImageMultiFormat, v1.AnnotationDescription: "layers in three encodings"},
		}
		if _, err := WriteOCILayout(p, Tag, img); err != nil {
			return nil, fmt.Errorf("%s: %w", ImageMultiFormat, err)
		}
		out = append(out, Image{ImageMultiFormat, ociRef(ImageMultiFormat),
			"OCI layout; basic uncompressed, whiteouts zstd (annotated org.example.keep=yes), ending-* layers gzip (but ending-inside-padding); manifest annotations"})
	}

	// schema2
	{
		p, err := prepare(ImageSchema2)
		if err != nil {
			return nil, err
		}
		layers, err := set.layers(Gzip, LayerBasic, LayerWhiteouts)
		if err != nil {
			return nil, err
		}
		if _, err := WriteDirImage(p, ImageSpec{Format: DockerSchema2, Layers: layers, Config: defaultConfig}); err != nil {
			return nil, fmt.Errorf("%s: %w", ImageSchema2, err)
		}
		out = append(out, Image{ImageSchema2, "dir:" + p,
			"dir: layout, Docker schema2 manifest, basic + whiteouts as tar.gzip"})
	}

	// index
	{
		p, err := prepare(ImageIndex)
		if err != nil {
			return nil, err
		}
		amd64, err := set.layers(Gzip, LayerBasic, LayerPlatformAMD64)
		if err != nil {
			return nil, err
		}
		arm64, err := set.layers(Gzip, LayerPlatformARM64)
		if err != nil {
			return nil, err
		}
		idx := IndexSpec{
			Images: []ImageSpec{
				{
					Layers: amd64, Config: defaultConfig,
					Platform:              v1.Platform{OS: "linux", Architecture: "amd64"},
					Annotations:           map[string]string{AnnotationImage: ImageIndex + "/amd64"},
					DescriptorAnnotations: map[string]string{"org.example.platform": "amd64"},
				},
				{
					Layers: arm64, Config: defaultConfig,
					Platform:              v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
					Annotations:           map[string]string{AnnotationImage: ImageIndex + "/arm64"},
					DescriptorAnnotations: map[string]string{"org.example.platform": "arm64"},
				},
			},
			Annotations: map[string]string{AnnotationImage: ImageIndex, v1.AnnotationDescription: "two platforms"},
		}
		if _, err := WriteOCIIndex(p, Tag, idx); err != nil {
			return nil, fmt.Errorf("%s: %w", ImageIndex, err)
		}
		out = append(out, Image{ImageIndex, ociRef(ImageIndex),
			"OCI layout; tag points at an OCI image index: linux/amd64 (basic, platform-amd64) and linux/arm64/v8 (platform-arm64), gzip"})
	}

	// special
	{
		p, err := prepare(ImageSpecial)
		if err != nil {
			return nil, err
		}
		layers, err := set.layers(Gzip, LayerPAXGlobal, LayerDuplicatePaths, LayerEndingInsidePadding)
		if err != nil {
			return nil, err
		}
		if _, err := WriteOCILayout(p, Tag, ImageSpec{Layers: layers, Config: defaultConfig}); err != nil {
			return nil, fmt.Errorf("%s: %w", ImageSpecial, err)
		}
		out = append(out, Image{ImageSpecial, ociRef(ImageSpecial),
			"OCI layout; pax-global, duplicate-paths and ending-inside-padding layers (gzip) that zstd:chunked cannot represent"})
	}
	return out, nil
}

package testimages

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// skopeoPath returns the skopeo binary. Without it the test is skipped
// loudly, except under CI=true where it fails.
func skopeoPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("skopeo is required when CI=true: %v", err)
		}
		t.Skip("SKIPPING: skopeo NOT INSTALLED, so nothing proves containers/image can read the generated images (install skopeo; this test fails when CI=true)")
	}
	return p
}

func runSkopeo(t *testing.T, skopeo string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	args = append([]string{"--insecure-policy"}, args...)
	cmd := exec.CommandContext(ctx, skopeo, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// TestSkopeoReadsGeneratedImages proves containers/image (through skopeo)
// reads every generated image: the raw manifest it returns is ours, and a
// full copy (all platforms, verifying every blob digest) succeeds.
func TestSkopeoReadsGeneratedImages(t *testing.T) {
	skopeo := skopeoPath(t)
	dir, images := generateOnce(t)
	for _, img := range images {
		t.Run(img.Name, func(t *testing.T) {
			raw := runSkopeo(t, skopeo, "inspect", "--raw", img.Ref)
			var want []byte
			if strings.HasPrefix(img.Ref, "dir:") {
				want, _ = os.ReadFile(filepath.Join(dir, img.Name, "manifest.json"))
			} else {
				s, desc := openOCILayout(t, filepath.Join(dir, img.Name))
				want = s.get(desc)
			}
			if !bytes.Equal(raw, want) {
				t.Errorf("skopeo inspect --raw returned\n%s\nwant\n%s", raw, want)
			}
			runSkopeo(t, skopeo, "inspect", img.Ref) // parses the config too

			// containers/image may re-encode layers on the way (skopeo
			// compresses uncompressed layers by default) and converts the
			// schema2 manifest to OCI, so compare what the copy must keep:
			// the images' diff_ids, and valid blobs.
			dest := filepath.Join(t.TempDir(), "copy")
			runSkopeo(t, skopeo, "copy", "-q", "--all", img.Ref, "oci:"+dest+":x")
			s, desc := openOCILayoutTag(t, dest, "x")
			if got, want := imageDiffIDs(t, s, desc), sourceDiffIDs(t, dir, img); !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("copy has diff_ids %v, source %v", got, want)
			}
		})
	}

	// dir: naming: a dir:-to-dir: copy by containers/image itself writes
	// exactly the files we wrote.
	t.Run("dir-naming", func(t *testing.T) {
		src := filepath.Join(dir, ImageSchema2)
		dest := filepath.Join(t.TempDir(), "copy")
		runSkopeo(t, skopeo, "copy", "-q", "dir:"+src, "dir:"+dest)
		ours, theirs := listFiles(t, src), listFiles(t, dest)
		names := func(m map[string]fileInfo) []string {
			var out []string
			for k := range m {
				out = append(out, k)
			}
			slices.Sort(out)
			return out
		}
		if !slices.Equal(names(ours), names(theirs)) {
			t.Errorf("skopeo wrote %q, we wrote %q", names(theirs), names(ours))
		}
		if !bytes.Equal(ours["version"].data, theirs["version"].data) {
			t.Errorf("version file: skopeo %q, ours %q", theirs["version"].data, ours["version"].data)
		}
	})

	// Recompressing makes containers/image decompress every layer
	// (uncompressed, zstd and gzip, including the unusual tar endings); the
	// new layers must decompress to the same diff IDs.
	t.Run("recompress", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "copy")
		runSkopeo(t, skopeo, "copy", "-q", "--dest-compress", "--dest-compress-format=zstd",
			"oci:"+filepath.Join(dir, ImageMultiFormat)+":"+Tag, "oci:"+dest+":x")
		s, desc := openOCILayoutTag(t, dest, "x")
		img := checkManifest(t, s, desc)
		for i, l := range img.manifest.Layers {
			if l.MediaType != v1.MediaTypeImageLayerZstd {
				t.Errorf("layer %d: %q after recompression", i, l.MediaType)
			}
		}
		want := catalogueDiffIDs(LayerBasic, LayerWhiteouts, LayerEndingGNURecord, LayerEndingNoEOF, LayerEndingExtraZeros)
		for i, tar := range img.layers {
			if got := DiffID(tar); got != want[i] {
				t.Errorf("layer %d decompresses to %s, want %s", i, got, want[i])
			}
		}
	})
}

// openOCILayoutTag is openOCILayout for a layout written by someone else,
// with any tag.
func openOCILayoutTag(t *testing.T, dir, tag string) (*blobStore, v1.Descriptor) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index v1.Index
	mustUnmarshal(t, data, &index)
	for _, d := range index.Manifests {
		if d.Annotations[v1.AnnotationRefName] == tag {
			return &blobStore{t: t, used: map[string]bool{}, foreign: true, path: func(d digest.Digest) string {
				return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
			}}, d
		}
	}
	t.Fatalf("no tag %q in %s", tag, data)
	return nil, v1.Descriptor{}
}

// imageDiffIDs validates the manifest or index desc points to and returns
// the diff_ids of each image in it (decompressing and checking every layer).
func imageDiffIDs(t *testing.T, s *blobStore, desc v1.Descriptor) [][]digest.Digest {
	t.Helper()
	switch desc.MediaType {
	case v1.MediaTypeImageIndex, MediaTypeDockerManifestList:
		var index v1.Index
		mustUnmarshal(t, s.get(desc), &index)
		var out [][]digest.Digest
		for _, d := range index.Manifests {
			out = append(out, imageDiffIDs(t, s, d)...)
		}
		return out
	}
	return [][]digest.Digest{checkManifest(t, s, desc).config.RootFS.DiffIDs}
}

// sourceDiffIDs is imageDiffIDs for one of the generated images.
func sourceDiffIDs(t *testing.T, dir string, img Image) [][]digest.Digest {
	t.Helper()
	p := filepath.Join(dir, img.Name)
	if strings.HasPrefix(img.Ref, "dir:") {
		manifest, err := os.ReadFile(filepath.Join(p, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		md := digest.FromBytes(manifest)
		s := &blobStore{t: t, used: map[string]bool{}, path: func(d digest.Digest) string {
			if d == md {
				return filepath.Join(p, "manifest.json")
			}
			return filepath.Join(p, d.Encoded())
		}}
		return imageDiffIDs(t, s, v1.Descriptor{MediaType: MediaTypeDockerManifest, Digest: md, Size: int64(len(manifest))})
	}
	s, desc := openOCILayout(t, p)
	return imageDiffIDs(t, s, desc)
}

package layerformat_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/layerformat"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/storage/pkg/chunked/compressor"
)

func decodeDigest(t *testing.T, f layerformat.Format, blob []byte) digest.Digest {
	t.Helper()
	rc, err := layerformat.Decode(f, bytes.NewReader(blob), layerformat.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("decoding %s: %v", f, err)
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
}

// TestZstdChunkedMatchesReference: on every testdata layer, fmtconv's zstd:chunked blob is
// byte-identical to go.podman.io/storage's compressor at the same level, except where keeping the
// diff_id needs a different stream, which the result flags. Every blob decodes to its input.
func TestZstdChunkedMatchesReference(t *testing.T) {
	deviations := 0
	for _, l := range testimages.Layers() {
		for _, level := range []int{3, 10} {
			var ours bytes.Buffer
			res, err := layerformat.Encode(context.Background(), layerformat.ZstdChunked, &ours, bytes.NewReader(l.Tar), layerformat.EncodeOptions{Level: level})
			var ce *layerformat.ContentError
			if errors.As(err, &ce) {
				if l.Name != testimages.LayerDuplicatePaths && l.Name != testimages.LayerPAXGlobal {
					t.Errorf("%s: refused: %v", l.Name, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", l.Name, err)
			}
			if got := decodeDigest(t, layerformat.TargetFormat(layerformat.ZstdChunked), ours.Bytes()); got != testimages.DiffID(l.Tar) || res.DiffID != got {
				t.Errorf("%s level %d: decodes to %s (reported %s), want %s", l.Name, level, got, res.DiffID, testimages.DiffID(l.Tar))
			}
			var ref bytes.Buffer
			meta := map[string]string{}
			cw, err := compressor.ZstdCompressor(&ref, meta, &level)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := cw.Write(l.Tar)
			cerr := cw.Close()
			same := werr == nil && cerr == nil && bytes.Equal(ours.Bytes(), ref.Bytes())
			if res.Deviation != "" {
				deviations++
				if same {
					t.Errorf("%s: flagged a deviation (%s) but the blob equals the reference", l.Name, res.Deviation)
				}
				continue
			}
			if !same {
				t.Errorf("%s level %d: blob differs from the reference compressor (%d vs %d bytes, ref errors %v %v)", l.Name, level, ours.Len(), ref.Len(), werr, cerr)
			}
			for k, v := range meta {
				if res.Annotations[k] != v {
					t.Errorf("%s: annotation %s = %q, reference %q", l.Name, k, res.Annotations[k], v)
				}
			}
		}
	}
	if deviations == 0 {
		t.Errorf("no layer needed a deviation; the ending-inside-padding layer should")
	}
}

// TestPlainMatchesContainersImage: fmtconv's gzip and zstd blobs are byte-identical to what
// containers/image (skopeo, podman push) writes for the same layer and level, with and without an
// explicit level, so a registry stores one blob whichever tool converted the layer.
func TestPlainMatchesContainersImage(t *testing.T) {
	cases := []struct {
		kind   layerformat.Kind
		algo   compression.Algorithm
		levels []int // 0: no level given (each side's default)
	}{
		{layerformat.Gzip, compression.Gzip, []int{0, 1, 6, 9}},
		{layerformat.Zstd, compression.Zstd, []int{0, 1, 3, 9, 19}},
	}
	for _, c := range cases {
		for _, l := range testimages.Layers() {
			for _, level := range c.levels {
				var ours bytes.Buffer
				res, err := layerformat.Encode(context.Background(), c.kind, &ours, bytes.NewReader(l.Tar), layerformat.EncodeOptions{Level: level})
				if err != nil {
					t.Fatalf("%s %s level %d: %v", c.kind, l.Name, level, err)
				}
				if res.DiffID != testimages.DiffID(l.Tar) {
					t.Errorf("%s %s: diff_id %s, want %s", c.kind, l.Name, res.DiffID, testimages.DiffID(l.Tar))
				}
				var lp *int
				if level != 0 {
					lp = &level
				}
				var ref bytes.Buffer
				cw, err := compression.CompressStream(&ref, c.algo, lp)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cw.Write(l.Tar); err != nil {
					t.Fatal(err)
				}
				if err := cw.Close(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(ours.Bytes(), ref.Bytes()) {
					t.Errorf("%s %s level %d: %d bytes %s, containers/image %d bytes %s", c.kind, l.Name, level,
						ours.Len(), digest.FromBytes(ours.Bytes()), ref.Len(), digest.FromBytes(ref.Bytes()))
				}
			}
		}
	}
}

// TestEncodersIgnoreGOMAXPROCS: parallelism never changes the bytes.
func TestEncodersIgnoreGOMAXPROCS(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, k := range []layerformat.Kind{layerformat.Gzip, layerformat.Zstd, layerformat.ZstdChunked} {
		var digests []digest.Digest
		for _, procs := range []int{1, 2, 4} {
			runtime.GOMAXPROCS(procs)
			var b bytes.Buffer
			if _, err := layerformat.Encode(context.Background(), k, &b, bytes.NewReader(l.Tar), layerformat.EncodeOptions{}); err != nil {
				t.Fatal(err)
			}
			digests = append(digests, digest.FromBytes(b.Bytes()))
		}
		if digests[0] != digests[1] || digests[1] != digests[2] {
			t.Errorf("%s: digests differ across GOMAXPROCS 1, 2, 4: %v", k, digests)
		}
	}
}

// TestDetect: the bytes decide the compression, annotations the chunked dialect.
func TestDetect(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	gz, _ := testimages.Compress(l.Tar, testimages.Gzip)
	zs, _ := testimages.Compress(l.Tar, testimages.Zstd)
	for _, tc := range []struct {
		mt   string
		ann  map[string]string
		head []byte
		want string
	}{
		{layerformat.MediaTypeOCIGzip, nil, gz, "gzip"},
		{layerformat.MediaTypeOCIZstd, nil, gz, "gzip"}, // the media type lies; the bytes win
		{layerformat.MediaTypeOCILayer, nil, l.Tar, "uncompressed"},
		{layerformat.MediaTypeOCIGzip, map[string]string{layerformat.AnnotationEstargzTOCDigest: "sha256:x"}, gz, "estargz"},
		{layerformat.MediaTypeOCIZstd, map[string]string{layerformat.AnnotationZstdChunkedManifestChecksum: "sha256:x"}, zs, "zstd:chunked(containers)"},
		{layerformat.MediaTypeOCIZstd, map[string]string{layerformat.AnnotationLegacyZstdChunkedManifestChecksum: "sha256:x"}, zs, "zstd:chunked(containers-legacy)"},
		{layerformat.MediaTypeOCIZstd, map[string]string{layerformat.AnnotationLegacyZstdChunkedManifestChecksum: "sha256:x", layerformat.AnnotationEstargzTOCDigest: "sha256:y"}, zs, "zstd:chunked(stargz)"},
		{layerformat.MediaTypeOCIGzip, nil, []byte("not a layer at all, just text that is long enough"), "unknown"},
	} {
		head := tc.head
		if len(head) > layerformat.HeadSize {
			head = head[:layerformat.HeadSize]
		}
		if got := layerformat.Detect(tc.mt, tc.ann, head).String(); got != tc.want {
			t.Errorf("Detect(%s, %v) = %s, want %s", tc.mt, tc.ann, got, tc.want)
		}
	}
}

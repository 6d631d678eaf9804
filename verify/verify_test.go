package verify_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/verify"
	digest "github.com/opencontainers/go-digest"
)

func mustVerify(t *testing.T, ref string) *verify.Result {
	t.Helper()
	res, err := verify.Verify(context.Background(), ref, verify.Options{})
	if err != nil {
		t.Fatalf("verify %s: %v", ref, err)
	}
	return res
}

func errorIDs(res *verify.Result) []string {
	var ids []string
	for _, f := range res.Findings {
		if f.Severity == check.Error {
			ids = append(ids, f.Check)
		}
	}
	return ids
}

// TestGeneratedImagesAreValid: every image the repository generates verifies without errors.
func TestGeneratedImagesAreValid(t *testing.T) {
	imgs, err := testimages.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		res := mustVerify(t, img.Ref)
		if !res.Valid {
			t.Errorf("%s: %v", img.Name, res.Findings)
		}
		if img.Name == "special" && !slices.ContainsFunc(res.Findings, func(f check.Finding) bool { return f.Check == "tar.duplicate-path" }) {
			t.Errorf("special: duplicate paths not reported: %v", res.Findings)
		}
	}
}

// TestDefectsCaughtByTheirCheck builds one image per defect and expects exactly that check id
// among the errors.
func TestDefectsCaughtByTheirCheck(t *testing.T) {
	basic, _ := testimages.LayerByName(testimages.LayerWhiteouts)
	gz, _ := testimages.Compress(basic.Tar, testimages.Gzip)
	traversal := testimages.MustBuildTar([]testimages.Entry{testimages.File("../../etc/evil", 0o644, testimages.String("x"))}, testimages.Ending{Kind: testimages.EndEOF})
	wrong := digest.Digest("sha256:" + strings.Repeat("1", 64))
	cases := []struct {
		name  string
		layer testimages.LayerBlob
		want  string
	}{
		{"wrong diff_id", testimages.LayerBlob{Tar: basic.Tar, Compression: testimages.Gzip, DiffID: wrong}, verify.CheckLayerDiffID},
		{"gzip bytes under a zstd media type", testimages.LayerBlob{Blob: gz, DiffID: testimages.DiffID(basic.Tar), MediaType: layerformat.MediaTypeOCIZstd}, verify.CheckLayerMediaType},
		{"garbage after the gzip stream", testimages.LayerBlob{Blob: append(bytes.Clone(gz), "garbage!"...), DiffID: testimages.DiffID(basic.Tar), MediaType: layerformat.MediaTypeOCIGzip}, verify.CheckLayerDecode},
		{"truncated gzip stream", testimages.LayerBlob{Blob: gz[:len(gz)-20], DiffID: testimages.DiffID(basic.Tar), MediaType: layerformat.MediaTypeOCIGzip}, verify.CheckLayerDecode},
		{"not a layer at all", testimages.LayerBlob{Blob: bytes.Repeat([]byte("text "), 200), DiffID: wrong, MediaType: layerformat.MediaTypeOCIGzip}, verify.CheckLayerFormat},
		{"zstd:chunked annotations on a gzip layer", testimages.LayerBlob{Tar: basic.Tar, Compression: testimages.Gzip, Annotations: map[string]string{
			layerformat.AnnotationZstdChunkedManifestChecksum: "sha256:" + strings.Repeat("2", 64)}}, verify.CheckLayerAnnotations},
		{"eStargz TOC digest on a plain gzip layer (re-push)", testimages.LayerBlob{Tar: basic.Tar, Compression: testimages.Gzip, Annotations: map[string]string{
			layerformat.AnnotationEstargzTOCDigest: "sha256:" + strings.Repeat("3", 64)}}, verify.CheckLayerAnnotations},
		{"path traversal", testimages.LayerBlob{Tar: traversal, Compression: testimages.Gzip}, "tar.path-traversal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := testimages.WriteOCILayout(dir, "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{c.layer}}); err != nil {
				t.Fatal(err)
			}
			res := mustVerify(t, "oci:"+dir+":x")
			if res.Valid || !slices.Contains(errorIDs(res), c.want) {
				t.Fatalf("want an error %s, got %v", c.want, res.Findings)
			}
		})
	}
}

// TestCorruptBlobFile: a blob file changed on disk is caught by blob.digest.
func TestCorruptBlobFile(t *testing.T) {
	basic, _ := testimages.LayerByName(testimages.LayerBasic)
	dir := t.TempDir()
	b, err := testimages.WriteOCILayout(dir, "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: basic.Tar, Compression: testimages.Uncompressed}}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "blobs", "sha256", b.Layers[0].Digest.Encoded())
	data, _ := os.ReadFile(p)
	data[len(data)/2] ^= 1 // inside a file's content: still a valid tar
	os.WriteFile(p, data, 0o644)
	res := mustVerify(t, "oci:"+dir+":x")
	if ids := errorIDs(res); !slices.Contains(ids, verify.CheckBlobDigest) || !slices.Contains(ids, verify.CheckLayerDiffID) {
		t.Fatalf("want blob.digest and layer.diffid, got %v", res.Findings)
	}
}

// TestOneDecodePass: an eStargz or zstd:chunked layer is decompressed once, by its format's own
// pass over the spooled blob, and the tar checks and diff_id run on what that pass decodes; an
// eStargz blob without a footer falls back to a scan as gzip. Each case expects its check ids, and
// the valid ones the computed diff_id and the TOC digest.
func TestOneDecodePass(t *testing.T) {
	basic, _ := testimages.LayerByName(testimages.LayerBasic)
	traversal := testimages.MustBuildTar([]testimages.Entry{testimages.File("../../etc/evil", 0o644, testimages.String("x"))}, testimages.Ending{Kind: testimages.EndEOF})
	traversalGz, _ := testimages.Compress(traversal, testimages.Gzip)
	wrong := digest.Digest("sha256:" + strings.Repeat("1", 64))
	for _, kind := range []layerformat.Kind{layerformat.Estargz, layerformat.ZstdChunked} {
		var out bytes.Buffer
		enc, err := layerformat.Encode(context.Background(), kind, &out, bytes.NewReader(basic.Tar), layerformat.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		blob := out.Bytes()
		mediaType := layerformat.LayerMediaType(kind, true, false)
		flipped := bytes.Clone(blob)
		flipped[len(flipped)/3] ^= 0x55 // inside the compressed payload (the basic layer's files dwarf its TOC)
		type testCase struct {
			name   string
			blob   []byte
			diffID digest.Digest
			want   []string // error ids; none: valid
		}
		cases := []testCase{
			{"valid", blob, enc.DiffID, nil},
			{"wrong diff_id", blob, wrong, []string{verify.CheckLayerDiffID}},
			{"damaged compressed data", flipped, enc.DiffID, []string{verify.CheckLayerDecode}},
		}
		if kind == layerformat.Estargz {
			cases = append(cases, testCase{"no footer, unsafe path", traversalGz, testimages.DiffID(traversal), []string{verify.CheckLayerAnnotations, "tar.path-traversal"}})
		}
		for _, c := range cases {
			t.Run(string(kind)+"/"+c.name, func(t *testing.T) {
				dir := t.TempDir()
				l := testimages.LayerBlob{Blob: c.blob, DiffID: c.diffID, MediaType: mediaType, Annotations: enc.Annotations}
				if _, err := testimages.WriteOCILayout(dir, "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{l}}); err != nil {
					t.Fatal(err)
				}
				res := mustVerify(t, "oci:"+dir+":x")
				ids := errorIDs(res)
				if c.want == nil {
					lr := res.Manifests[0].Layers[0]
					if !res.Valid || lr.UncompressedDigest != enc.DiffID || lr.Chunked == nil || lr.Chunked.TOCDigest == "" {
						t.Fatalf("valid: valid %v, uncompressed %s (want %s), chunked %+v, findings %v", res.Valid, lr.UncompressedDigest, enc.DiffID, lr.Chunked, res.Findings)
					}
					return
				}
				for _, id := range c.want {
					if !slices.Contains(ids, id) {
						t.Errorf("want an error %s, got %v", id, res.Findings)
					}
				}
				// One decode failure is one layer.decode finding, not one per pass.
				if n := len(slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id != verify.CheckLayerDecode })); n > 1 {
					t.Errorf("%d layer.decode errors: %v", n, res.Findings)
				}
			})
		}
	}
}

// TestLayerFindingsInLayerOrder: verify reads layers side by side, yet findings come in layer
// order and the same every time.
func TestLayerFindingsInLayerOrder(t *testing.T) {
	basic, _ := testimages.LayerByName(testimages.LayerBasic)
	wh, _ := testimages.LayerByName(testimages.LayerWhiteouts)
	traversal := testimages.MustBuildTar([]testimages.Entry{testimages.File("../../etc/evil", 0o644, testimages.String("x"))}, testimages.Ending{Kind: testimages.EndEOF})
	wrong := digest.Digest("sha256:" + strings.Repeat("1", 64))
	dir := t.TempDir()
	spec := testimages.ImageSpec{Layers: []testimages.LayerBlob{
		{Tar: basic.Tar, Compression: testimages.Gzip, DiffID: wrong},
		{Tar: traversal, Compression: testimages.Zstd},
		{Tar: wh.Tar, Compression: testimages.Gzip, DiffID: wrong},
		{Tar: traversal, Compression: testimages.Gzip},
	}}
	if _, err := testimages.WriteOCILayout(dir, "x", spec); err != nil {
		t.Fatal(err)
	}
	var first []check.Finding
	for range 5 {
		res := mustVerify(t, "oci:"+dir+":x")
		var layers []int
		for _, f := range res.Findings {
			if f.Layer != nil {
				layers = append(layers, *f.Layer)
			}
		}
		if !slices.IsSorted(layers) || len(slices.Compact(slices.Clone(layers))) != 4 {
			t.Fatalf("findings by layer %v, want every layer, in order: %v", layers, res.Findings)
		}
		if first == nil {
			first = res.Findings
		} else if !reflect.DeepEqual(first, res.Findings) {
			t.Fatalf("findings differ between runs:\n%v\n%v", first, res.Findings)
		}
	}
}

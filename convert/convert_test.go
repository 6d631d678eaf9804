package convert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fmtconv/fmtconv/convert"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/verify"
	digest "github.com/opencontainers/go-digest"
)

var lossless = []layerformat.Kind{layerformat.Uncompressed, layerformat.Gzip, layerformat.Zstd, layerformat.ZstdChunked}

var (
	genOnce   sync.Once
	genDir    string
	genImages map[string]testimages.Image
	genErr    error
)

// generated returns the repository's generated test images, built once per test binary.
func generated(t *testing.T) map[string]testimages.Image {
	t.Helper()
	genOnce.Do(func() {
		genDir, genErr = os.MkdirTemp("", "fmtconv-testimages-")
		if genErr != nil {
			return
		}
		var imgs []testimages.Image
		imgs, genErr = testimages.Generate(genDir)
		genImages = map[string]testimages.Image{}
		for _, i := range imgs {
			genImages[i.Name] = i
		}
	})
	if genErr != nil {
		t.Fatal(genErr)
	}
	return genImages
}

func TestMain(m *testing.M) {
	code := m.Run()
	if genDir != "" {
		os.RemoveAll(genDir)
	}
	os.Exit(code)
}

func opts(k layerformat.Kind) convert.Options {
	return convert.Options{Target: k, Level: -1, Jobs: 2}
}

func mustConvert(t *testing.T, src, dst string, o convert.Options) *convert.Report {
	t.Helper()
	rep, err := convert.Convert(context.Background(), src, dst, o)
	if err != nil {
		t.Fatalf("convert %s -> %s (%s): %v", src, dst, o.Target, err)
	}
	return rep
}

// imageFacts is what must survive a lossless conversion: per manifest, config digest and diff_ids.
type imageFacts struct {
	configs []digest.Digest
	diffIDs [][]digest.Digest
	uncomp  [][]digest.Digest
	formats [][]string
}

func mustVerify(t *testing.T, ref string) imageFacts {
	t.Helper()
	res, err := verify.Verify(context.Background(), ref, verify.Options{})
	if err != nil {
		t.Fatalf("verify %s: %v", ref, err)
	}
	if !res.Valid {
		t.Fatalf("verify %s: invalid: %+v", ref, res.Findings)
	}
	var f imageFacts
	for _, m := range res.Manifests {
		f.configs = append(f.configs, m.Config)
		var d, u []digest.Digest
		var fm []string
		for _, l := range m.Layers {
			d = append(d, l.DiffID)
			u = append(u, l.UncompressedDigest)
			fm = append(fm, l.Format)
		}
		f.diffIDs, f.uncomp, f.formats = append(f.diffIDs, d), append(f.uncomp, u), append(f.formats, fm)
	}
	return f
}

func tagOf(k layerformat.Kind) string { return strings.ReplaceAll(string(k), ":", "-") }

// TestLosslessMatrix converts every test image to each lossless format, then from each of those to
// each lossless format again: every output layer decompresses to the source's diff_id, the config
// digest never changes, and every output verifies.
func TestLosslessMatrix(t *testing.T) {
	imgs := generated(t)
	for _, name := range []string{"gzip-single", "multi-format", "schema2", "index"} {
		img := imgs[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := mustVerify(t, img.Ref)
			dir := t.TempDir()
			for _, from := range lossless {
				srcRef := fmt.Sprintf("oci:%s/src:%s", dir, tagOf(from))
				mustConvert(t, img.Ref, srcRef, opts(from))
				for _, to := range lossless {
					dstRef := fmt.Sprintf("oci:%s/%s-to-%s:x", dir, tagOf(from), tagOf(to))
					rep := mustConvert(t, srcRef, dstRef, opts(to))
					got := mustVerify(t, dstRef)
					if fmt.Sprint(got.configs) != fmt.Sprint(orig.configs) {
						t.Errorf("%s -> %s: configs %v, want %v", from, to, got.configs, orig.configs)
					}
					if fmt.Sprint(got.uncomp) != fmt.Sprint(orig.diffIDs) {
						t.Errorf("%s -> %s: uncompressed digests %v, want the source diff_ids %v", from, to, got.uncomp, orig.diffIDs)
					}
					want := layerformat.TargetFormat(to).String()
					for _, fm := range got.formats {
						for i, f := range fm {
							if f != want {
								t.Errorf("%s -> %s: layer %d detected as %s", from, to, i, f)
							}
						}
					}
					for _, l := range rep.Layers {
						if reuse := l.Action == "reused"; reuse != (from == to) {
							t.Errorf("%s -> %s: layer %d action %s", from, to, l.Index, l.Action)
						}
					}
				}
			}
		})
	}
}

// TestSchema2BecomesOCIKeepingConfig: zstd needs OCI; the Docker config blob is kept byte for byte.
func TestSchema2BecomesOCIKeepingConfig(t *testing.T) {
	img := generated(t)["schema2"]
	orig := mustVerify(t, img.Ref)
	dir := t.TempDir()
	rep := mustConvert(t, img.Ref, "oci:"+dir+":z", opts(layerformat.Zstd))
	if rep.MediaType != layerformat.MediaTypeOCIManifest {
		t.Fatalf("manifest type %s, want OCI", rep.MediaType)
	}
	if rep.Manifests[0].Config != orig.configs[0] || rep.Manifests[0].ConfigRewrites {
		t.Fatalf("config %s (rewritten %v), want %s unchanged", rep.Manifests[0].Config, rep.Manifests[0].ConfigRewrites, orig.configs[0])
	}
	// gzip keeps the Docker manifest type unless asked.
	rep = mustConvert(t, img.Ref, "dir:"+t.TempDir(), opts(layerformat.Gzip))
	if rep.MediaType != layerformat.MediaTypeDockerManifest {
		t.Fatalf("gzip output manifest type %s, want Docker schema2", rep.MediaType)
	}
	o := opts(layerformat.Gzip)
	o.ManifestFormat = manifestedit.FormatOCI
	if rep = mustConvert(t, img.Ref, "oci:"+dir+":g", o); rep.MediaType != layerformat.MediaTypeOCIManifest {
		t.Fatalf("--format oci gave %s", rep.MediaType)
	}
}

func refusalCode(err error) manifestedit.Code {
	var r *manifestedit.Refusal
	if errors.As(err, &r) {
		return r.Code
	}
	return ""
}

// TestDockerArchiveRefusesZstd: the refusal comes before any blob is written.
func TestDockerArchiveRefusesZstd(t *testing.T) {
	img := generated(t)["gzip-single"]
	for _, k := range []layerformat.Kind{layerformat.Zstd, layerformat.ZstdChunked} {
		archive := filepath.Join(t.TempDir(), "out.tar")
		_, err := convert.Convert(context.Background(), img.Ref, "docker-archive:"+archive+":app:1", opts(k))
		if refusalCode(err) != manifestedit.DestSchema2NoZstd {
			t.Fatalf("%s to docker-archive: %v, want %s", k, err, manifestedit.DestSchema2NoZstd)
		}
		if _, err := os.Stat(archive); !os.IsNotExist(err) {
			t.Fatalf("%s: the refused run left %s behind (%v)", k, archive, err)
		}
		o := opts(k)
		o.ManifestFormat = manifestedit.FormatSchema2
		dir := t.TempDir()
		_, err = convert.Convert(context.Background(), img.Ref, "oci:"+dir+":x", o)
		if refusalCode(err) != manifestedit.DestSchema2NoZstd {
			t.Fatalf("%s --format v2s2: %v", k, err)
		}
		if entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(entries) != 0 {
			t.Fatalf("%s --format v2s2: %d blobs written before the refusal", k, len(entries))
		}
	}
	// gzip to docker-archive works, and the archive reads back with the same diff_ids.
	archive := filepath.Join(t.TempDir(), "out.tar")
	mustConvert(t, img.Ref, "docker-archive:"+archive+":app:1", opts(layerformat.Gzip))
	if a, b := mustVerify(t, "docker-archive:"+archive), mustVerify(t, img.Ref); fmt.Sprint(a.uncomp) != fmt.Sprint(b.diffIDs) {
		t.Fatalf("docker-archive round trip: %v want %v", a.uncomp, b.diffIDs)
	}
}

// TestContentRefusals: zstd:chunked cannot hold duplicate paths or PAX global headers; the run stops
// with its own code and no manifest or tag is written. The other targets convert the same image.
func TestContentRefusals(t *testing.T) {
	img := generated(t)["special"]
	dir := t.TempDir()
	mustConvert(t, img.Ref, "oci:"+dir+":before", opts(layerformat.Gzip))
	before, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = convert.Convert(context.Background(), img.Ref, "oci:"+dir+":chunked", convert.Options{Target: layerformat.ZstdChunked, Level: -1, Jobs: 1})
	if c := refusalCode(err); c != manifestedit.DuplicatePath && c != manifestedit.PAXGlobalHeader && c != manifestedit.UnrepresentableTar {
		t.Fatalf("zstd:chunked of the special image: %v, want a DUPLICATE_PATH or PAX_GLOBAL_HEADER refusal", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if string(after) != string(before) {
		t.Fatalf("index.json changed by a refused run:\n%s\n%s", before, after)
	}
	for _, k := range []layerformat.Kind{layerformat.Uncompressed, layerformat.Zstd} {
		mustConvert(t, img.Ref, "oci:"+dir+":"+tagOf(k), opts(k))
		mustVerify(t, "oci:"+dir+":"+tagOf(k))
	}
}

// TestIndexPlatforms: every platform by default; --platform filters; annotations stay.
func TestIndexPlatforms(t *testing.T) {
	img := generated(t)["index"]
	dir := t.TempDir()
	rep := mustConvert(t, img.Ref, "oci:"+dir+":all", opts(layerformat.Zstd))
	if len(rep.Manifests) != 2 || rep.MediaType != layerformat.MediaTypeOCIIndex {
		t.Fatalf("got %d manifests in a %s", len(rep.Manifests), rep.MediaType)
	}
	o := opts(layerformat.Zstd)
	o.Platforms = []convert.Platform{{OS: "linux", Architecture: "arm64", Variant: "v8"}}
	rep = mustConvert(t, img.Ref, "oci:"+dir+":arm", o)
	if len(rep.Manifests) != 1 || rep.Manifests[0].Platform != "linux/arm64/v8" {
		t.Fatalf("filtered: %+v", rep.Manifests)
	}
	o.Platforms = []convert.Platform{{OS: "windows", Architecture: "amd64"}}
	if _, err := convert.Convert(context.Background(), img.Ref, "oci:"+dir+":none", o); refusalCode(err) != manifestedit.NoMatchingPlatform {
		t.Fatalf("no platform: %v", err)
	}
	// A single-image destination takes one platform, and refuses the whole index.
	archive := filepath.Join(t.TempDir(), "a.tar")
	if _, err := convert.Convert(context.Background(), img.Ref, "docker-archive:"+archive, opts(layerformat.Gzip)); refusalCode(err) != manifestedit.DestNoIndex {
		t.Fatalf("index to docker-archive: %v", err)
	}
	o = opts(layerformat.Gzip)
	o.Platforms = []convert.Platform{{OS: "linux", Architecture: "amd64"}}
	mustConvert(t, img.Ref, "docker-archive:"+archive, o)
}

// TestForceReencodes: --force converts layers already in the target format.
func TestForceReencodes(t *testing.T) {
	img := generated(t)["gzip-single"]
	o := opts(layerformat.Gzip)
	o.Force = true
	o.Level = 1
	rep := mustConvert(t, img.Ref, "oci:"+t.TempDir()+":x", o)
	if rep.Layers[0].Action != "converted" || rep.Layers[0].Target.Digest == rep.Layers[0].Source.Digest {
		t.Fatalf("--force: %+v", rep.Layers[0])
	}
	rep = mustConvert(t, img.Ref, "oci:"+t.TempDir()+":x", opts(layerformat.Gzip))
	if rep.Layers[0].Action != "reused" || rep.Layers[0].Target.Digest != rep.Layers[0].Source.Digest {
		t.Fatalf("without --force: %+v", rep.Layers[0])
	}
}

// TestAnnotations: converting keeps foreign annotations, drops the source format's, adds the target's.
func TestAnnotations(t *testing.T) {
	img := generated(t)["multi-format"]
	dir := t.TempDir()
	mustConvert(t, img.Ref, "oci:"+dir+":c", opts(layerformat.ZstdChunked))
	res, err := verify.Inspect(context.Background(), "oci:"+dir+":c", verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keep := 0
	for _, l := range res.Manifests[0].Layers {
		if l.Annotations["org.example.keep"] == "yes" {
			keep++
		}
		if l.Annotations[layerformat.AnnotationZstdChunkedManifestChecksum] == "" || l.Annotations[layerformat.AnnotationZstdChunkedManifestPosition] == "" {
			t.Errorf("layer %d lacks the zstd:chunked annotations: %v", l.Index, l.Annotations)
		}
	}
	if keep != 1 {
		t.Fatalf("org.example.keep on %d layers, want 1", keep)
	}
	mustConvert(t, "oci:"+dir+":c", "oci:"+dir+":z", opts(layerformat.Zstd))
	res, err = verify.Inspect(context.Background(), "oci:"+dir+":z", verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range res.Manifests[0].Layers {
		for k := range l.Annotations {
			if layerformat.IsFormatAnnotation(k) {
				t.Errorf("layer %d kept %s after leaving zstd:chunked", l.Index, k)
			}
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// mustVerifyOpts verifies a registry image over plain HTTP.
func mustVerifyOpts(t *testing.T, ref string) imageFacts {
	t.Helper()
	res, err := verify.Verify(context.Background(), ref, verify.Options{Src: plainHTTP()})
	if err != nil {
		t.Fatalf("verify %s: %v", ref, err)
	}
	if !res.Valid {
		t.Fatalf("verify %s: invalid: %+v", ref, res.Findings)
	}
	var f imageFacts
	for _, m := range res.Manifests {
		var fm []string
		for _, l := range m.Layers {
			fm = append(fm, l.Format)
		}
		f.formats = append(f.formats, fm)
	}
	return f
}

// TestTarEndingInsidePadding: a tar that stops inside its last file's padding keeps its diff_id in
// every plain format, and zstd:chunked, whose tar-split cannot describe that ending in a form
// containers/storage accepts, refuses it with its own code instead of publishing a broken layer.
func TestTarEndingInsidePadding(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerEndingInsidePadding)
	dir := t.TempDir()
	if _, err := testimages.WriteOCILayout(filepath.Join(dir, "src"), "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: l.Tar, Compression: testimages.Gzip}}}); err != nil {
		t.Fatal(err)
	}
	src := "oci:" + filepath.Join(dir, "src") + ":x"
	for _, k := range []layerformat.Kind{layerformat.Uncompressed, layerformat.Zstd, layerformat.Gzip} {
		o := opts(k)
		o.Force = true
		mustConvert(t, src, "oci:"+filepath.Join(dir, "out")+":"+tagOf(k), o)
		if got := mustVerify(t, "oci:"+filepath.Join(dir, "out")+":"+tagOf(k)); got.uncomp[0][0] != testimages.DiffID(l.Tar) {
			t.Fatalf("%s: %s, want %s", k, got.uncomp[0][0], testimages.DiffID(l.Tar))
		}
	}
	_, err := convert.Convert(context.Background(), src, "oci:"+filepath.Join(dir, "out")+":chunked", opts(layerformat.ZstdChunked))
	if refusalCode(err) != manifestedit.UnrepresentableTar {
		t.Fatalf("zstd:chunked: %v, want %s", err, manifestedit.UnrepresentableTar)
	}
}

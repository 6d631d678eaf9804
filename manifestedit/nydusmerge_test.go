package manifestedit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"testing"

	"github.com/fmtconv/fmtconv/layerformat"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The empty layer is the one acceleration-service writes (Go's gzip of an empty tar, the
// well-known 32-byte blob 4f4fb700…) and decompresses to 1024 zero bytes: the diff_id
// acceleration-service hard-codes.
func TestNydusEmptyLayer(t *testing.T) {
	blob, desc := NydusEmptyLayer()
	if desc.Digest != "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1" || desc.Size != 32 || digest.FromBytes(blob) != desc.Digest {
		t.Fatalf("empty layer %+v", desc)
	}
	if NydusEmptyLayerDiffID != "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef" {
		t.Fatalf("diff_id %s", NydusEmptyLayerDiffID)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || digest.FromBytes(raw) != NydusEmptyLayerDiffID {
		t.Fatalf("decompressed: %d bytes, %v", len(raw), err)
	}
	if _, err := tar.NewReader(bytes.NewReader(raw)).Next(); err != io.EOF {
		t.Fatalf("the empty layer holds an entry: %v", err)
	}
}

// NydusMergedOCI turns a Docker schema2 image into an OCI manifest: media types mapped, the empty
// layer first, diff_ids and history with the empty layer's first, every other config field and
// manifest field kept; the same input always gives the same bytes.
func TestNydusMergedOCI(t *testing.T) {
	l1 := layer(layerformat.MediaTypeDockerGzip, nil)
	cfg := []byte(`{"architecture":"arm64","variant":"v8","os":"linux","x-unknown":{"a":1},"config":{"Env":["A=1"]},` +
		`"rootfs":{"type":"layers","diff_ids":["` + digest.FromString("l1").String() + `"]},"history":[{"created_by":"RUN x"}]}`)
	raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": schema2,
		"config": ocispec.Descriptor{MediaType: layerformat.MediaTypeDockerConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		"layers": []ocispec.Descriptor{l1}})
	m, err := ParseManifest(raw, schema2)
	if err != nil {
		t.Fatal(err)
	}
	sm := SourceManifest{Manifest: m, Digest: digest.FromBytes(raw), Config: cfg}
	mo, err := NydusMergedOCI(sm)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := NydusMergedOCI(sm)
	if !bytes.Equal(mo.Manifest, again.Manifest) || !bytes.Equal(mo.Config, again.Config) {
		t.Fatal("two runs gave different bytes")
	}
	var om ocispec.Manifest
	if err := json.Unmarshal(mo.Manifest, &om); err != nil {
		t.Fatal(err)
	}
	_, empty := NydusEmptyLayer()
	if om.MediaType != oci || om.Config.MediaType != ociCfg || len(om.Layers) != 2 || om.Layers[0].Digest != empty.Digest ||
		om.Layers[1].Digest != l1.Digest || om.Layers[1].MediaType != layerformat.MediaTypeOCIGzip ||
		om.Annotations[AnnotationNydusSourceDigest] != sm.Digest.String() || om.Config.Digest != digest.FromBytes(mo.Config) {
		t.Fatalf("manifest %s", mo.Manifest)
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(mo.Config, &c); err != nil {
		t.Fatal(err)
	}
	want := `{"architecture":"arm64","config":{"Env":["A=1"]},"history":[{"comment":"Nydus Empty Layer","created_by":"Nydus Converter"},{"created_by":"RUN x"}],` +
		`"os":"linux","rootfs":{"type":"layers","diff_ids":["` + NydusEmptyLayerDiffID.String() + `","` + digest.FromString("l1").String() + `"]},"variant":"v8","x-unknown":{"a":1}}`
	if got, _ := json.Marshal(c); !jsonEqual(got, []byte(want)) {
		t.Fatalf("config\n%s\nwant\n%s", got, want)
	}
	if p := ConfigPlatform(mo.Config); p == nil || PlatformString(p) != "linux/arm64/v8" {
		t.Fatalf("platform %+v", p)
	}

	// A config without history gets none: one entry for N+1 layers would not describe them.
	noHist := []byte(`{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}`)
	out, err := addHistory(noHist, NydusEmptyLayerHistory, true)
	if err != nil || !bytes.Equal(out, noHist) {
		t.Fatalf("prepending to no history: %s %v", out, err)
	}
}

// The plan refuses what cannot be kept beside a Nydus manifest, and needs --to nydus.
func TestPlanNydusMergePlatform(t *testing.T) {
	img := imageManifest(t, oci, ociCfg, layer(layerformat.MediaTypeOCIGzip, nil))
	o := PlanOptions{Target: layerformat.Nydus, NydusMergePlatform: true}
	p, err := MakePlan(Source{Name: "src", Manifests: []SourceManifest{img}}, o)
	if err != nil {
		t.Fatal(err)
	}
	if p.IndexType != layerformat.MediaTypeOCIIndex || p.Manifests[0].MergedOCI == nil || p.Manifests[0].MergedOCI.Digest == "" {
		t.Fatalf("plan %+v", p)
	}
	nydusImg := imageManifest(t, oci, ociCfg, layer(layerformat.MediaTypeNydusBlob, nil),
		layer(layerformat.MediaTypeOCIGzip, map[string]string{layerformat.AnnotationNydusBootstrap: "true"}))
	if _, err := MakePlan(Source{Name: "src", Manifests: []SourceManifest{nydusImg}}, o); codeOf(err) != NydusMergeSource {
		t.Fatalf("Nydus source: %v", err)
	}
	o.Target = layerformat.Zstd
	if _, err := MakePlan(Source{Name: "src", Manifests: []SourceManifest{img}}, o); err == nil {
		t.Fatal("--to zstd with --nydus-merge-platform was planned")
	}
}

func codeOf(err error) Code {
	if r, ok := err.(*Refusal); ok {
		return r.Code
	}
	return ""
}

package manifestedit

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/layerformat"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func layer(mt string, ann map[string]string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromString(mt + strings.Repeat("x", len(ann))), Size: 100, Annotations: ann}
}

func imageManifest(t *testing.T, mt, configType string, layers ...ocispec.Descriptor) SourceManifest {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	raw, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mt,
		"config": ocispec.Descriptor{MediaType: configType, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}, "layers": layers})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(raw, mt)
	if err != nil {
		t.Fatal(err)
	}
	sm := SourceManifest{Manifest: m, Digest: digest.FromBytes(raw)}
	if configType == layerformat.MediaTypeOCIConfig || configType == layerformat.MediaTypeDockerConfig {
		sm.Config = cfg
	}
	return sm
}

const (
	oci     = layerformat.MediaTypeOCIManifest
	schema2 = layerformat.MediaTypeDockerManifest
	ociCfg  = layerformat.MediaTypeOCIConfig
)

var schema2Only = []string{schema2}

// TestRules is the table of conversion rules: one row per rule, with its outcome.
func TestRules(t *testing.T) {
	gz := layer(layerformat.MediaTypeOCIGzip, nil)
	zs := layer(layerformat.MediaTypeOCIZstd, nil)
	chunked := layer(layerformat.MediaTypeOCIZstd, map[string]string{layerformat.AnnotationZstdChunkedManifestChecksum: "sha256:aa"})
	stargzDialect := layer(layerformat.MediaTypeOCIZstd, map[string]string{layerformat.AnnotationLegacyZstdChunkedManifestChecksum: "sha256:aa", layerformat.AnnotationEstargzTOCDigest: "sha256:bb"})
	dual := layer(layerformat.MediaTypeOCIZstd, map[string]string{layerformat.AnnotationZstdChunkedManifestChecksum: "sha256:aa", layerformat.AnnotationEstargzTOCDigest: "sha256:bb"})
	encrypted := layer(layerformat.MediaTypeOCIGzip+"+encrypted", nil)
	foreign := layer(layerformat.MediaTypeDockerForeignGzip, nil)
	foreign.URLs = []string{"https://example.com/layer"}
	nydusBlob := layer(layerformat.MediaTypeNydusBlob, map[string]string{layerformat.AnnotationNydusBlob: "true"})
	nydusBoot := layer(layerformat.MediaTypeOCIGzip, map[string]string{layerformat.AnnotationNydusBootstrap: "true"})
	attestation := imageManifest(t, oci, ociCfg, layer("application/vnd.in-toto+json", nil))
	attestation.Descriptor.Annotations = map[string]string{AnnotationReferenceType: ReferenceTypeAttestation, AnnotationReferenceDigest: "sha256:00"}
	artifact := imageManifest(t, oci, "application/vnd.example.config+json", layer("application/vnd.example.data", nil))

	type row struct {
		name    string
		src     Source
		opts    PlanOptions
		code    Code   // refusal expected
		actions string // otherwise: per manifest, the layer actions
		roles   string // and manifest roles
		warn    string // a warning that must appear
		outType string // first manifest's output type
	}
	one := func(sm SourceManifest) Source { return Source{Name: "src", Manifests: []SourceManifest{sm}} }
	rows := []row{
		{name: "schema2-only destination refuses zstd", src: one(imageManifest(t, oci, ociCfg, gz)), opts: PlanOptions{Target: layerformat.Zstd, DestManifestTypes: schema2Only}, code: DestSchema2NoZstd},
		{name: "schema2-only destination refuses zstd:chunked", src: one(imageManifest(t, oci, ociCfg, gz)), opts: PlanOptions{Target: layerformat.ZstdChunked, DestManifestTypes: schema2Only}, code: DestSchema2NoZstd},
		{name: "--format v2s2 refuses zstd", src: one(imageManifest(t, oci, ociCfg, gz)), opts: PlanOptions{Target: layerformat.Zstd, ManifestFormat: FormatSchema2}, code: DestSchema2NoZstd},
		{name: "schema2-only destination refuses eStargz (annotations would be lost)", src: one(imageManifest(t, oci, ociCfg, gz)), opts: PlanOptions{Target: layerformat.Estargz, DestManifestTypes: schema2Only}, code: DestSchema2NoAnnotations},
		{name: "schema2-only destination refuses Nydus", src: one(imageManifest(t, oci, ociCfg, gz)), opts: PlanOptions{Target: layerformat.Nydus, DestManifestTypes: schema2Only}, code: DestSchema2NoAnnotations},
		{name: "schema2 source to zstd becomes OCI", src: one(imageManifest(t, schema2, layerformat.MediaTypeDockerConfig, layer(layerformat.MediaTypeDockerGzip, nil))), opts: PlanOptions{Target: layerformat.Zstd}, actions: "convert", roles: "image", outType: oci},
		{name: "schema2 source to gzip stays schema2", src: one(imageManifest(t, schema2, layerformat.MediaTypeDockerConfig, layer(layerformat.MediaTypeDockerGzip, nil))), opts: PlanOptions{Target: layerformat.Gzip}, actions: "reuse", roles: "image", outType: schema2},
		{name: "encrypted layer refused", src: one(imageManifest(t, oci, ociCfg, gz, encrypted)), opts: PlanOptions{Target: layerformat.Zstd}, code: EncryptedLayer},
		{name: "foreign layer kept with a warning", src: one(imageManifest(t, oci, ociCfg, gz, foreign)), opts: PlanOptions{Target: layerformat.Zstd}, actions: "convert,keep", roles: "image", warn: "foreign"},
		{name: "foreign layer refused for Nydus", src: one(imageManifest(t, oci, ociCfg, gz, foreign)), opts: PlanOptions{Target: layerformat.Nydus}, code: NondistributableNydus},
		{name: "Nydus mixed with other layers is invalid", src: one(imageManifest(t, oci, ociCfg, nydusBlob, gz, nydusBoot)), opts: PlanOptions{Target: layerformat.Gzip}, code: NydusMixed},
		{name: "Nydus image to gzip goes through the Nydus reader", src: one(imageManifest(t, oci, ociCfg, nydusBlob, nydusBoot)), opts: PlanOptions{Target: layerformat.Gzip}, actions: "convert,drop", roles: "image"},
		{name: "Nydus image to Nydus is reused, never relabelled", src: one(imageManifest(t, oci, ociCfg, nydusBlob, nydusBoot)), opts: PlanOptions{Target: layerformat.Nydus}, actions: "reuse,reuse", roles: "image"},
		{name: "eStargz TOC digest with containers zstd:chunked checksum is invalid", src: one(imageManifest(t, oci, ociCfg, dual)), opts: PlanOptions{Target: layerformat.Gzip}, code: DualTOC},
		{name: "stargz-snapshotter zstd:chunked key pair is not a dual TOC", src: one(imageManifest(t, oci, ociCfg, stargzDialect)), opts: PlanOptions{Target: layerformat.ZstdChunked}, actions: "convert", roles: "image"},
		{name: "signed source refused", src: Source{Name: "src", Manifests: []SourceManifest{imageManifest(t, oci, ociCfg, gz)}, Signatures: []string{"1 signature"}}, opts: PlanOptions{Target: layerformat.Zstd}, code: SignedSource},
		{name: "signed source with --remove-signatures", src: Source{Name: "src", Manifests: []SourceManifest{imageManifest(t, oci, ociCfg, gz)}, Signatures: []string{"1 signature"}}, opts: PlanOptions{Target: layerformat.Zstd, RemoveSignatures: true}, actions: "convert", roles: "image", warn: "signatures removed"},
		{name: "artifact in an index passes through", src: Source{Name: "src", IsIndex: true, IndexMediaType: layerformat.MediaTypeOCIIndex, Manifests: []SourceManifest{imageManifest(t, oci, ociCfg, gz), artifact}}, opts: PlanOptions{Target: layerformat.Zstd}, actions: "convert;", roles: "image,artifact"},
		{name: "an artifact as the image is refused", src: one(artifact), opts: PlanOptions{Target: layerformat.Zstd}, code: ArtifactSource},
		{name: "attestation passes through (its index entry is rewritten)", src: Source{Name: "src", IsIndex: true, IndexMediaType: layerformat.MediaTypeOCIIndex, Manifests: []SourceManifest{imageManifest(t, oci, ociCfg, gz), attestation}}, opts: PlanOptions{Target: layerformat.Zstd}, actions: "convert;", roles: "image,attestation"},
		{name: "layer already in the target format is reused", src: one(imageManifest(t, oci, ociCfg, chunked, zs)), opts: PlanOptions{Target: layerformat.ZstdChunked}, actions: "reuse,convert", roles: "image"},
		{name: "--force re-encodes it", src: one(imageManifest(t, oci, ociCfg, chunked)), opts: PlanOptions{Target: layerformat.ZstdChunked, Force: true}, actions: "convert", roles: "image"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			p, err := MakePlan(r.src, r.opts)
			if r.code != "" {
				ref, ok := err.(*Refusal)
				if !ok || ref.Code != r.code {
					t.Fatalf("got %v, want refusal %s", err, r.code)
				}
				if ref.Reason == "" {
					t.Fatalf("refusal %s without a reason", r.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var actions, roles []string
			for _, m := range p.Manifests {
				var la []string
				for _, l := range m.Layers {
					la = append(la, string(l.Action))
				}
				actions = append(actions, strings.Join(la, ","))
				roles = append(roles, string(m.Role))
			}
			if got := strings.Join(actions, ";"); got != r.actions {
				t.Errorf("actions %q, want %q", got, r.actions)
			}
			if got := strings.Join(roles, ","); got != r.roles {
				t.Errorf("roles %q, want %q", got, r.roles)
			}
			if r.warn != "" && !strings.Contains(strings.Join(p.Warnings, "\n"), r.warn) {
				t.Errorf("warnings %q lack %q", p.Warnings, r.warn)
			}
			if r.outType != "" && p.Manifests[0].OutType != r.outType {
				t.Errorf("manifest type %s, want %s", p.Manifests[0].OutType, r.outType)
			}
		})
	}
}

func TestSelectInstancesFollowsAttestations(t *testing.T) {
	amd := ocispec.Descriptor{Digest: digest.FromString("amd"), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	arm := ocispec.Descriptor{Digest: digest.FromString("arm"), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}}
	att := func(d ocispec.Descriptor) ocispec.Descriptor {
		return ocispec.Descriptor{Digest: digest.FromString("att" + d.Digest.String()), Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{AnnotationReferenceType: ReferenceTypeAttestation, AnnotationReferenceDigest: d.Digest.String()}}
	}
	ix := &Index{Manifests: []ocispec.Descriptor{amd, arm, att(amd), att(arm)}}
	sel := SelectInstances(ix, []Platform{{OS: "linux", Architecture: "arm64"}}, layerformat.Zstd)
	var keep []bool
	for _, s := range sel {
		keep = append(keep, s.Keep)
	}
	if want := []bool{false, true, false, true}; !equalBools(keep, want) {
		t.Fatalf("kept %v, want %v", keep, want)
	}
	if sel := SelectInstances(ix, nil, layerformat.Zstd); !sel[0].Keep || !sel[2].Keep {
		t.Fatalf("without --platform everything is kept: %+v", sel)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSelectInstancesMergedPlatform: an index with an OCI and a Nydus manifest for one platform
// (nydusify --merge-platform) converts the OCI one, unless the target is Nydus.
func TestSelectInstancesMergedPlatform(t *testing.T) {
	p := &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	ociDesc := ocispec.Descriptor{Digest: digest.FromString("oci"), Platform: p}
	nydusNew := ocispec.Descriptor{Digest: digest.FromString("nydus"), Platform: p, ArtifactType: layerformat.ArtifactTypeNydusManifest}
	nydusOld := ocispec.Descriptor{Digest: digest.FromString("nydus-old"),
		Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", OSFeatures: []string{layerformat.OSFeatureNydus}}}
	armOCI := ocispec.Descriptor{Digest: digest.FromString("arm"), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}}
	ix := &Index{Manifests: []ocispec.Descriptor{ociDesc, nydusNew, armOCI, nydusOld}}
	keep := func(target layerformat.Kind) []bool {
		var out []bool
		for _, s := range SelectInstances(ix, nil, target) {
			out = append(out, s.Keep)
		}
		return out
	}
	if got := keep(layerformat.Gzip); !equalBools(got, []bool{true, false, true, false}) {
		t.Fatalf("to gzip: %v", got)
	}
	if got := keep(layerformat.Nydus); !equalBools(got, []bool{false, true, false, true}) {
		t.Fatalf("to nydus: %v", got)
	}
	if !IsNydusManifest(nydusOld) || !IsNydusManifest(nydusNew) || IsNydusManifest(armOCI) {
		t.Fatal("IsNydusManifest")
	}
}

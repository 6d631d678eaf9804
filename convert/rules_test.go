package convert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/convert"
	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

// attestationIndex writes an OCI index of two platforms plus a buildx-style attestation manifest
// for the amd64 image, and returns its reference.
func attestationIndex(t *testing.T, dir string) string {
	t.Helper()
	basic, _ := testimages.LayerByName(testimages.LayerBasic)
	small, _ := testimages.LayerByName(testimages.LayerWhiteouts)
	amd := testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: basic.Tar, Compression: testimages.Gzip}}}
	arm := testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: small.Tar, Compression: testimages.Gzip}},
		Platform: ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}
	builtAmd, err := testimages.BuildImage(amd)
	if err != nil {
		t.Fatal(err)
	}
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document"}`)
	att := testimages.ImageSpec{
		Layers:   []testimages.LayerBlob{{Blob: statement, MediaType: "application/vnd.in-toto+json", DiffID: testimages.DiffID(statement)}},
		Platform: ocispec.Platform{OS: "unknown", Architecture: "unknown"},
		DescriptorAnnotations: map[string]string{
			manifestedit.AnnotationReferenceType:   manifestedit.ReferenceTypeAttestation,
			manifestedit.AnnotationReferenceDigest: builtAmd.Manifest.Digest.String(),
		},
	}
	if _, err := testimages.WriteOCIIndex(dir, "multi", testimages.IndexSpec{Images: []testimages.ImageSpec{amd, arm, att},
		Annotations: map[string]string{"org.opencontainers.image.source": "https://example.com/app"}}); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":multi"
}

// TestDryRunGolden: the plan of a multi-platform index with an attestation, as --dry-run prints it.
func TestDryRunGolden(t *testing.T) {
	dir := t.TempDir()
	src := attestationIndex(t, filepath.Join(dir, "src"))
	o := opts(layerformat.ZstdChunked)
	o.DryRun = true
	rep := mustConvert(t, src, "oci:"+filepath.Join(dir, "dst")+":x", o)
	if _, err := os.Stat(filepath.Join(dir, "dst")); !os.IsNotExist(err) {
		t.Fatalf("--dry-run created the destination")
	}
	var buf bytes.Buffer
	rep.WritePlan(&buf)
	got := strings.ReplaceAll(buf.String(), dir, "$TMP")
	golden := filepath.Join("testdata", "dry-run-index-attestation.txt")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./convert -run DryRunGolden -update)", err)
	}
	if got != string(want) {
		t.Fatalf("dry-run plan differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

// TestAttestationFollowsItsSubject: after conversion, the attestation's index entry points at the
// new digest of the manifest it attests, and the attestation itself is unchanged.
func TestAttestationFollowsItsSubject(t *testing.T) {
	dir := t.TempDir()
	src := attestationIndex(t, filepath.Join(dir, "src"))
	out := filepath.Join(dir, "out")
	rep := mustConvert(t, src, "oci:"+out+":x", opts(layerformat.Zstd))
	ix := readOCIIndexOf(t, out, rep.Digest.Encoded())
	if len(ix.Manifests) != 3 {
		t.Fatalf("index has %d entries", len(ix.Manifests))
	}
	byPlatform := map[string]ocispec.Descriptor{}
	for _, d := range ix.Manifests {
		byPlatform[manifestedit.PlatformString(d.Platform)] = d
	}
	att := byPlatform["unknown/unknown"]
	if got, want := att.Annotations[manifestedit.AnnotationReferenceDigest], byPlatform["linux/amd64"].Digest.String(); got != want {
		t.Fatalf("attestation refers to %s, want the new amd64 manifest %s", got, want)
	}
	if ix.Annotations["org.opencontainers.image.source"] != "https://example.com/app" {
		t.Fatalf("index annotations lost: %v", ix.Annotations)
	}
	for _, m := range rep.Manifests {
		if m.Platform == "unknown/unknown" && (!m.PassedThrough || m.Digest != m.SourceDigest) {
			t.Fatalf("attestation manifest changed: %+v", m)
		}
	}
	mustVerify(t, "oci:"+out+":x")
	// --platform keeps the attestation of the selected image only.
	o := opts(layerformat.Zstd)
	o.Platforms = []convert.Platform{{OS: "linux", Architecture: "arm64"}}
	rep = mustConvert(t, src, "oci:"+out+":arm", o)
	if len(rep.Manifests) != 1 {
		t.Fatalf("--platform linux/arm64 wrote %d manifests", len(rep.Manifests))
	}
}

func readOCIIndexOf(t *testing.T, layout, hex string) ocispec.Index {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", hex))
	if err != nil {
		t.Fatal(err)
	}
	var ix ocispec.Index
	if err := json.Unmarshal(b, &ix); err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestRefusalsLeaveDestinationsUnchanged: each refusal, end to end, against an oci: layout that
// already holds an image and against the loopback registry: the code is the rule's, and nothing
// at the destination changed.
func TestRefusalsLeaveDestinationsUnchanged(t *testing.T) {
	reg := testenv.StartRegistry(t)
	imgs := generated(t)
	dir := t.TempDir()

	basic, _ := testimages.LayerByName(testimages.LayerWhiteouts)
	gz, _ := testimages.Compress(basic.Tar, testimages.Gzip)
	custom := func(name string, spec testimages.ImageSpec) string {
		if _, err := testimages.WriteOCILayout(filepath.Join(dir, name), "x", spec); err != nil {
			t.Fatal(err)
		}
		return "oci:" + filepath.Join(dir, name) + ":x"
	}
	encrypted := custom("encrypted", testimages.ImageSpec{Layers: []testimages.LayerBlob{{Blob: gz, MediaType: layerformat.MediaTypeOCIGzip + "+encrypted", DiffID: testimages.DiffID(basic.Tar)}}})
	dual := custom("dual", testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: basic.Tar, Compression: testimages.Gzip, Annotations: map[string]string{
		layerformat.AnnotationEstargzTOCDigest: "sha256:aa", layerformat.AnnotationZstdChunkedManifestChecksum: "sha256:bb"}}}})
	mixed := custom("mixed", testimages.ImageSpec{Layers: []testimages.LayerBlob{
		{Blob: gz, MediaType: layerformat.MediaTypeNydusBlob, DiffID: digest.Digest("sha256:" + strings.Repeat("0", 64)), Annotations: map[string]string{layerformat.AnnotationNydusBlob: "true"}},
		{Tar: basic.Tar, Compression: testimages.Gzip}}})
	artifact := custom("artifact", testimages.ImageSpec{Layers: []testimages.LayerBlob{{Blob: []byte("data"), MediaType: "application/vnd.example.data", DiffID: testimages.DiffID([]byte("data"))}}})
	foreign := custom("foreign", testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: basic.Tar, Compression: testimages.Gzip, MediaType: layerformat.MediaTypeOCINondistGzip}}})
	schema1, _ := writeSchema1Dir(t, filepath.Join(dir, "schema1"))
	badDiffID := custom("baddiffid", testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: basic.Tar, Compression: testimages.Gzip, DiffID: digest.Digest("sha256:" + strings.Repeat("1", 64))}}})
	// A signed dir: source (containers/image stores signatures as signature-N files).
	signedDir := filepath.Join(dir, "signed")
	if _, err := testimages.WriteDirImage(signedDir, testimages.ImageSpec{Layers: []testimages.LayerBlob{{Tar: basic.Tar, Compression: testimages.Gzip}}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(signedDir, "signature-1"), append([]byte{0xa3}, "an OpenPGP-looking blob; only its presence matters"...), 0o644)

	// A signed registry source: a cosign-style sha256-<hex>.sig tag next to the image.
	push := opts(layerformat.Gzip)
	push.Dst = plainHTTP()
	pushed := mustConvert(t, imgs["gzip-single"].Ref, reg.Ref("signed/app", "1"), push)
	sigTag := strings.Replace(pushed.Digest.String(), ":", "-", 1) + ".sig"
	mustConvert(t, imgs["gzip-single"].Ref, reg.Ref("signed/app", sigTag), push)

	type refusal struct {
		name, src string
		target    layerformat.Kind
		mutate    func(*convert.Options)
		code      manifestedit.Code
	}
	cases := []refusal{
		{"schema2 destination", imgs["gzip-single"].Ref, layerformat.Zstd, func(o *convert.Options) { o.ManifestFormat = manifestedit.FormatSchema2 }, manifestedit.DestSchema2NoZstd},
		{"estargz to schema2", imgs["gzip-single"].Ref, layerformat.Estargz, func(o *convert.Options) { o.ManifestFormat = manifestedit.FormatSchema2 }, manifestedit.DestSchema2NoAnnotations},
		{"no matching platform", imgs["index"].Ref, layerformat.Zstd, func(o *convert.Options) { o.Platforms = []convert.Platform{{OS: "plan9", Architecture: "386"}} }, manifestedit.NoMatchingPlatform},
		{"encrypted", encrypted, layerformat.Zstd, nil, manifestedit.EncryptedLayer},
		{"dual toc", dual, layerformat.Zstd, nil, manifestedit.DualTOC},
		{"nydus mixed", mixed, layerformat.Gzip, nil, manifestedit.NydusMixed},
		{"artifact", artifact, layerformat.Zstd, nil, manifestedit.ArtifactSource},
		{"signed dir", "dir:" + signedDir, layerformat.Zstd, nil, manifestedit.SignedSource},
		{"signed registry", reg.Ref("signed/app", "1"), layerformat.Zstd, func(o *convert.Options) { o.Src = plainHTTP() }, manifestedit.SignedSource},
		{"duplicate paths (content)", imgs["special"].Ref, layerformat.ZstdChunked, func(o *convert.Options) { o.Jobs = 1 }, ""},
		{"wrong diff_id (content)", badDiffID, layerformat.Zstd, nil, manifestedit.SourceDiffIDMismatch},
		{"schema1 to schema2", schema1, layerformat.Gzip, func(o *convert.Options) { o.ManifestFormat = manifestedit.FormatSchema2 }, manifestedit.Schema1Destination},
		{"foreign layer to nydus", foreign, layerformat.Nydus, nil, manifestedit.NondistributableNydus},
	}
	// Destinations that already hold an image.
	layout := filepath.Join(dir, "dest")
	mustConvert(t, imgs["gzip-single"].Ref, "oci:"+layout+":existing", opts(layerformat.Gzip))
	mustConvert(t, imgs["gzip-single"].Ref, reg.Ref("dest/app", "existing"), push)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := testenv.DirContents(t, layout)
			for _, dst := range []string{"oci:" + layout + ":new", reg.Ref("dest/app", "new")} {
				o := opts(c.target)
				o.Dst = plainHTTP()
				if c.mutate != nil {
					c.mutate(&o)
				}
				reg.ResetRequestLog()
				_, err := convert.Convert(context.Background(), c.src, dst, o)
				r, ok := convert.IsRefusal(err)
				if !ok || (c.code != "" && r.Code != c.code) || (c.code == "" && r.Code != manifestedit.DuplicatePath && r.Code != manifestedit.PAXGlobalHeader) {
					t.Fatalf("%s: got %v, want refusal %s", dst, err, c.code)
				}
				if r.Instead == "" && r.Code != manifestedit.NoMatchingPlatform {
					t.Errorf("refusal %s says nothing about what to do instead", r.Code)
				}
				for _, q := range reg.RequestLog() {
					if q.IsManifest() && q.Method != "GET" && q.Method != "HEAD" {
						t.Fatalf("%s: a refused run wrote a manifest: %s", dst, q)
					}
					if strings.HasPrefix(q.Path, "/v2/dest/") && q.Method != "GET" && q.Method != "HEAD" && c.code != "" && r.Code != manifestedit.SourceDiffIDMismatch {
						t.Fatalf("%s: a run refused from metadata wrote to the destination: %s", dst, q)
					}
				}
			}
			after := testenv.DirContents(t, layout)
			for name, content := range before {
				if after[name] != content {
					t.Fatalf("oci: layout file %s changed by a refused run", name)
				}
			}
			if c.code != "" && c.code != manifestedit.SourceDiffIDMismatch && len(after) != len(before) {
				t.Fatalf("a run refused from metadata added %d files to the oci: layout", len(after)-len(before))
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); !os.IsNotExist(err) {
		t.Fatal("unexpected")
	}
}

// pushReferrer pushes, under the referrers fallback tag of subject, an index listing one
// artifact manifest of the given artifact type.
func pushReferrer(t *testing.T, reg *testenv.Registry, repo string, subject digest.Digest, artifactType string) {
	t.Helper()
	empty := []byte("{}")
	reg.PushBlob(t, repo, empty)
	payload := []byte(`{"critical":{}}`)
	reg.PushBlob(t, repo, payload)
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest, "artifactType": artifactType,
		"config":  ocispec.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: digest.FromBytes(empty), Size: 2},
		"layers":  []ocispec.Descriptor{{MediaType: "application/octet-stream", Digest: digest.FromBytes(payload), Size: int64(len(payload))}},
		"subject": ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: 1},
	})
	md := reg.PushManifest(t, repo, digest.FromBytes(man).String(), ocispec.MediaTypeImageManifest, man)
	ix, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageIndex,
		"manifests": []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(md), Size: int64(len(man)), ArtifactType: artifactType}}})
	reg.PushManifest(t, repo, strings.Replace(subject.String(), ":", "-", 1), ocispec.MediaTypeImageIndex, ix)
}

// TestSignatureReferrers: a signature found through the referrers fallback tag makes the source
// signed; an SBOM referrer does not.
func TestSignatureReferrers(t *testing.T) {
	reg := testenv.StartRegistry(t)
	imgs := generated(t)
	push := opts(layerformat.Gzip)
	push.Dst = plainHTTP()
	for _, tc := range []struct {
		repo, artifactType string
		signed             bool
	}{
		{"cosign", "application/vnd.dev.cosign.artifact.sig.v1+json", true},
		{"notation", "application/vnd.cncf.notary.signature", true},
		{"sbom", "application/spdx+json", false},
	} {
		rep := mustConvert(t, imgs["gzip-single"].Ref, reg.Ref(tc.repo+"/app", "1"), push)
		pushReferrer(t, reg, tc.repo+"/app", rep.Digest, tc.artifactType)
		o := opts(layerformat.Zstd)
		o.Src, o.Dst = plainHTTP(), plainHTTP()
		_, err := convert.Convert(context.Background(), reg.Ref(tc.repo+"/app", "1"), "oci:"+t.TempDir()+":x", o)
		if tc.signed && refusalCode(err) != manifestedit.SignedSource {
			t.Errorf("%s referrer: %v, want %s", tc.repo, err, manifestedit.SignedSource)
		}
		if !tc.signed && err != nil {
			t.Errorf("%s referrer: %v", tc.repo, err)
		}
		if tc.signed {
			o.RemoveSignatures = true
			rep, err := convert.Convert(context.Background(), reg.Ref(tc.repo+"/app", "1"), "oci:"+t.TempDir()+":x", o)
			if err != nil || !strings.Contains(strings.Join(rep.Warnings, "\n"), "signatures removed") {
				t.Errorf("%s with --remove-signatures: %v %v", tc.repo, err, rep)
			}
		}
	}
}

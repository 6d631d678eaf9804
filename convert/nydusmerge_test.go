package convert_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/convert"
	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func readJSONBlob(t *testing.T, layout string, d digest.Digest, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(b) != d {
		t.Fatalf("blob %s does not match its digest", d)
	}
	if err := jsonUnmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func mergeOpts() convert.Options {
	o := opts(layerformat.Nydus)
	o.NydusMergePlatform = true
	return o
}

// TestNydusMergePlatform: --nydus-merge-platform writes one OCI index holding, per platform, the
// source's manifest with the empty layer prepended (as OCI, digests as the plan said), then the
// Nydus manifest (artifactType, Nydus config media type, same platform). Attestations follow their
// subject's OCI manifest. fmtconv verify accepts the result, and converting it back selects the
// OCI manifests and gives the source's layers.
func TestNydusMergePlatform(t *testing.T) {
	imgs := generated(t)
	dir := t.TempDir()
	sources := map[string]string{
		"index":       imgs["index"].Ref,
		"schema2":     imgs["schema2"].Ref,
		"attestation": attestationIndex(t, filepath.Join(dir, "att")),
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			layout := filepath.Join(t.TempDir(), "merged")
			rep := mustConvert(t, src, "oci:"+layout+":x", mergeOpts())
			if rep.MediaType != layerformat.MediaTypeOCIIndex || rep.Plan.IndexType != layerformat.MediaTypeOCIIndex {
				t.Fatalf("top-level %s, plan index type %s", rep.MediaType, rep.Plan.IndexType)
			}
			var ix ocispec.Index
			readJSONBlob(t, layout, rep.Digest, &ix)
			var images []manifestedit.ManifestPlan
			for _, mp := range rep.Plan.Manifests {
				if mp.Role == manifestedit.RoleImage {
					images = append(images, mp)
				}
			}
			n := len(rep.Plan.Manifests)
			if len(ix.Manifests) != n+len(images) {
				t.Fatalf("index has %d entries, want %d source entries and %d Nydus ones", len(ix.Manifests), n, len(images))
			}
			nydusEntries := ix.Manifests[n:]
			ociDigest := map[digest.Digest]digest.Digest{} // source manifest -> its OCI side
			k := 0
			for i, mp := range rep.Plan.Manifests {
				e := ix.Manifests[i]
				if e.ArtifactType != "" {
					t.Fatalf("entry %d (before the Nydus ones) has artifactType %q", i, e.ArtifactType)
				}
				if mp.Role != manifestedit.RoleImage {
					continue
				}
				if mp.MergedOCI == nil || e.Digest != mp.MergedOCI.Digest {
					t.Fatalf("entry %d is %s; the plan said %+v", i, e.Digest, mp.MergedOCI)
				}
				ociDigest[mp.Digest] = e.Digest
				checkMergedOCI(t, src, layout, mp, e)
				ny := nydusEntries[k]
				k++
				if ny.ArtifactType != layerformat.ArtifactTypeNydusManifest || ny.Platform == nil || e.Platform == nil ||
					manifestedit.PlatformString(ny.Platform) != manifestedit.PlatformString(e.Platform) || e.Platform.OS == "" {
					t.Fatalf("Nydus entry %+v beside OCI entry %+v", ny, e)
				}
				var nm ocispec.Manifest
				readJSONBlob(t, layout, ny.Digest, &nm)
				last := nm.Layers[len(nm.Layers)-1]
				if nm.Config.MediaType != layerformat.MediaTypeNydusConfig || last.Annotations[layerformat.AnnotationNydusBootstrap] != "true" {
					t.Fatalf("Nydus manifest: config %s, last layer %+v", nm.Config.MediaType, last)
				}
			}
			for i, e := range ix.Manifests[:n] {
				if ref := e.Annotations[manifestedit.AnnotationReferenceDigest]; ref != "" {
					if !ociDigestValues(ociDigest)[digest.Digest(ref)] {
						t.Fatalf("attestation entry %d refers to %s, not to an OCI manifest of the index (%v)", i, ref, ociDigest)
					}
				}
			}
			merged := 0
			for _, m := range rep.Manifests {
				if m.Merged != "" {
					merged++
				}
			}
			if merged != 2*len(images) {
				t.Fatalf("report: %d merged manifests, want %d: %+v", merged, 2*len(images), rep.Manifests)
			}
			res := mustVerify(t, "oci:"+layout+":x")
			if len(res.configs) != 2*len(images)+n-len(images) {
				t.Fatalf("verify saw %d manifests", len(res.configs))
			}

			// Back to gzip: the OCI manifests are chosen, and hold the source's layers after the empty one.
			back := "oci:" + filepath.Join(t.TempDir(), "back") + ":x"
			brep := mustConvert(t, "oci:"+layout+":x", back, opts(layerformat.Gzip))
			for _, m := range brep.Manifests {
				if m.PassedThrough {
					continue
				}
				if !ociDigestValues(ociDigest)[m.SourceDigest] {
					t.Fatalf("converting back used manifest %s, not an OCI one (%v)", m.SourceDigest, ociDigest)
				}
			}

			// The plan (--dry-run) gives the same digests and writes nothing.
			dry := mergeOpts()
			dry.DryRun = true
			drep := mustConvert(t, src, "oci:"+filepath.Join(t.TempDir(), "dry")+":x", dry)
			for i, mp := range drep.Plan.Manifests {
				if (mp.MergedOCI == nil) != (rep.Plan.Manifests[i].MergedOCI == nil) ||
					mp.MergedOCI != nil && mp.MergedOCI.Digest != rep.Plan.Manifests[i].MergedOCI.Digest {
					t.Fatalf("dry-run plan %d differs: %+v vs %+v", i, mp.MergedOCI, rep.Plan.Manifests[i].MergedOCI)
				}
			}
		})
	}
}

func ociDigestValues(m map[digest.Digest]digest.Digest) map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

// checkMergedOCI: the OCI manifest is the source's: the empty layer first, then the source blobs
// (present in the layout), the config's diff_ids and history with the empty layer's first and
// everything else as it was.
func checkMergedOCI(t *testing.T, src, layout string, mp manifestedit.ManifestPlan, e ocispec.Descriptor) {
	t.Helper()
	ctx := t.Context()
	source, err := transport.OpenSource(ctx, src, transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	readSource := func(manifest bool, d *digest.Digest, desc ocispec.Descriptor, v any) {
		var b []byte
		var err error
		if manifest {
			b, _, err = source.Manifest(ctx, d)
		} else {
			var rc io.ReadCloser
			if rc, err = source.Blob(ctx, desc); err == nil {
				b, err = io.ReadAll(rc)
				rc.Close()
			}
		}
		if err == nil {
			err = jsonUnmarshal(b, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var sm, om ocispec.Manifest
	var instance *digest.Digest
	if src != mp.Digest.String() && strings.Contains(mp.Platform, "/") {
		instance = &mp.Digest
	}
	readSource(true, instance, ocispec.Descriptor{}, &sm)
	readJSONBlob(t, layout, e.Digest, &om)
	if om.MediaType != layerformat.MediaTypeOCIManifest || om.Annotations[manifestedit.AnnotationNydusSourceDigest] != mp.Digest.String() ||
		e.Annotations[manifestedit.AnnotationNydusSourceDigest] != mp.Digest.String() {
		t.Fatalf("OCI manifest %s: media type %s, annotations %v, entry annotations %v", e.Digest, om.MediaType, om.Annotations, e.Annotations)
	}
	first := om.Layers[0]
	if first.Digest != mp.MergedOCI.EmptyLayer || first.Annotations[manifestedit.AnnotationNydusEmptyLayer] != "true" || first.MediaType != layerformat.MediaTypeOCIGzip {
		t.Fatalf("first layer %+v", first)
	}
	if len(om.Layers) != len(sm.Layers)+1 {
		t.Fatalf("%d layers, source has %d", len(om.Layers), len(sm.Layers))
	}
	for i, l := range sm.Layers {
		if om.Layers[i+1].Digest != l.Digest || om.Layers[i+1].Size != l.Size {
			t.Fatalf("layer %d: %s, source %s", i+1, om.Layers[i+1].Digest, l.Digest)
		}
		if _, err := os.Stat(filepath.Join(layout, "blobs", "sha256", l.Digest.Encoded())); err != nil {
			t.Fatalf("source blob not copied: %v", err)
		}
	}
	var scfg ocispec.Image
	readSource(false, nil, sm.Config, &scfg)
	ocfg := readConfig(t, layout, om.Config.Digest)
	if ocfg.RootFS.DiffIDs[0] != manifestedit.NydusEmptyLayerDiffID || fmt.Sprint(ocfg.RootFS.DiffIDs[1:]) != fmt.Sprint(scfg.RootFS.DiffIDs) {
		t.Fatalf("diff_ids %v, source %v", ocfg.RootFS.DiffIDs, scfg.RootFS.DiffIDs)
	}
	if len(scfg.History) > 0 && (len(ocfg.History) != len(scfg.History)+1 || ocfg.History[0].Comment != "Nydus Empty Layer") {
		t.Fatalf("history %+v, source %+v", ocfg.History, scfg.History)
	}
	if fmt.Sprint(ocfg.Config) != fmt.Sprint(scfg.Config) || ocfg.Architecture != scfg.Architecture {
		t.Fatalf("config fields changed: %+v vs %+v", ocfg.Config, scfg.Config)
	}
}

// TestNydusMergePlatformRefusals: the flag needs --to nydus, an index-capable destination and an
// image that is not Nydus already; every refusal comes before anything is written.
func TestNydusMergePlatformRefusals(t *testing.T) {
	imgs := generated(t)
	dir := t.TempDir()
	merged := "oci:" + filepath.Join(dir, "merged") + ":x"
	mustConvert(t, imgs["gzip-single"].Ref, merged, mergeOpts())
	for _, c := range []struct {
		name, src, dst string
		o              convert.Options
		code           manifestedit.Code
	}{
		// docker-archive holds neither an index nor Nydus's annotations; the manifest rule speaks first.
		{"docker-archive", imgs["gzip-single"].Ref, "docker-archive:" + filepath.Join(dir, "out.tar"), mergeOpts(), manifestedit.DestSchema2NoAnnotations},
		{"already-nydus", merged, "oci:" + filepath.Join(dir, "out") + ":x", mergeOpts(), manifestedit.NydusMergeSource},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := convert.Convert(t.Context(), c.src, c.dst, c.o)
			r, ok := convert.IsRefusal(err)
			if !ok || r.Code != c.code {
				t.Fatalf("got %v, want refusal %s", err, c.code)
			}
			if _, err := os.Stat(strings.Split(strings.SplitN(c.dst, ":", 2)[1], ":")[0]); !os.IsNotExist(err) {
				t.Fatalf("the destination was written: %v", err)
			}
		})
	}
	o := opts(layerformat.Zstd)
	o.NydusMergePlatform = true
	if _, err := convert.Convert(t.Context(), imgs["gzip-single"].Ref, "oci:"+filepath.Join(dir, "z")+":x", o); err == nil || !strings.Contains(err.Error(), "needs --to nydus") {
		t.Fatalf("--to zstd with the flag: %v", err)
	}
}

// TestNydusMergePlatformPeers: pushed to a real registry, the merged index is what plain runtimes
// expect: containerd pulls the host platform, takes the OCI manifest (the Nydus one's config type
// is unknown to it) and unpacks exactly the stock image's filesystem; skopeo copies the OCI
// manifest for the host platform.
func TestNydusMergePlatformPeers(t *testing.T) {
	if !have("ctr", "containerd", "skopeo") && !testenv.InCI() {
		testenv.RequireTool(t, "containerd", "ctr", "skopeo") // skips loudly
	}
	reg := testenv.StartRegistry(t)
	ctrd := testenv.StartContainerd(t)
	imgs := generated(t)
	stock := reg.Ref("stock/index", "1")
	push := opts(layerformat.Gzip)
	push.Dst = plainHTTP()
	mustConvert(t, imgs["index"].Ref, stock, push)
	mergedRef := reg.Ref("merged/index", "1")
	o := mergeOpts()
	o.Src, o.Dst = plainHTTP(), plainHTTP()
	rep := mustConvert(t, stock, mergedRef, o)

	want := mountedTree(t, ctrd, reg.ImageName("stock/index", "1"))
	got := mountedTree(t, ctrd, reg.ImageName("merged/index", "1"))
	if want != got {
		t.Fatalf("containerd unpacked a different filesystem from the merged index:\n%s\nstock image:\n%s", got, want)
	}
	if strings.Count(want, "\n") < 5 {
		t.Fatalf("mounted tree looks empty: %s", want)
	}

	layout := t.TempDir()
	testenv.Skopeo(t, "copy", "--src-tls-verify=false", mergedRef, "oci:"+layout+":x")
	var top ocispec.Index
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil || jsonUnmarshal(b, &top) != nil {
		t.Fatal(err)
	}
	var oci []digest.Digest
	for _, m := range rep.Manifests {
		if m.Merged == "oci" && m.Platform == "linux/amd64" {
			oci = append(oci, m.Digest)
		}
	}
	if len(oci) != 1 || top.Manifests[0].Digest != oci[0] {
		t.Fatalf("skopeo copied %v; the linux/amd64 OCI manifest is %v", top.Manifests, oci)
	}
}

// mountedTree pulls an image into containerd, mounts its host-platform rootfs and lists it: path,
// mode, size and sha256 of regular files, symlink targets.
func mountedTree(t *testing.T, ctrd *testenv.Containerd, ref string) string {
	t.Helper()
	ctrd.Ctr(t, "image", "pull", "--plain-http", "--snapshotter", "native", ref)
	root := ctrd.MountImage(t, ref)
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d", rel, info.Mode(), info.Size())
		switch {
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		}
		if info.IsDir() {
			b.WriteString("/")
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

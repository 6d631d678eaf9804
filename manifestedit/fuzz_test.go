package manifestedit

import (
	"testing"

	"github.com/fmtconv/fmtconv/layerformat"
	digest "github.com/opencontainers/go-digest"
)

// FuzzManifests feeds arbitrary bytes to every parser and pure edit a source's metadata reaches:
// manifests, indexes, configs, schema1, and the plan. None may panic or loop; errors are fine.
func FuzzManifests(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"containerd.io/snapshot/stargz/toc.digest":"x"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"os":"linux","architecture":"amd64"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]}`))
	f.Add([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"]},"history":[{"created_by":"x"},{"empty_layer":true}]}`))
	f.Add([]byte(`{"schemaVersion":1,"name":"a/b","tag":"1","architecture":"amd64","fsLayers":[{"blobSum":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}],"history":[{"v1Compatibility":"{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mt := range []string{layerformat.MediaTypeOCIManifest, layerformat.MediaTypeDockerManifest} {
			if m, err := ParseManifest(b, mt); err == nil {
				sm := SourceManifest{Manifest: m, Digest: digest.FromBytes(b), Config: b}
				for _, k := range []layerformat.Kind{layerformat.ZstdChunked, layerformat.Gzip, layerformat.Nydus} {
					MakePlan(Source{Name: "fuzz", Manifests: []SourceManifest{sm}}, PlanOptions{Target: k})
				}
				EditManifest(m, layerformat.MediaTypeOCIManifest, m.Config, m.Layers)
				for i, l := range m.Layers {
					EditLayer(l, ClaimedFormat(l), LayerChange{Target: layerformat.Zstd, Digest: l.Digest, Size: l.Size}, layerformat.MediaTypeOCIManifest)
					_ = i
				}
			}
		}
		if ix, err := ParseIndex(b, layerformat.MediaTypeOCIIndex); err == nil {
			sel := SelectInstances(ix, []Platform{{OS: "linux", Architecture: "amd64"}}, layerformat.Zstd)
			ch := make([]InstanceChange, len(ix.Manifests))
			for i := range ch {
				ch[i].Drop = !sel[i].Keep
			}
			EditIndex(ix, layerformat.MediaTypeOCIIndex, ch)
		}
		if ids, err := ConfigDiffIDs(b); err == nil {
			EditConfigDiffIDs(b, append(ids, digest.FromString("x")))
			EditConfig(b, ids, []int{0})
		}
		if m, s1, err := ParseSchema1(b, layerformat.MediaTypeDockerSchema1); err == nil {
			ids := make([]digest.Digest, len(m.Layers))
			for i := range ids {
				ids[i] = digest.FromString("x")
			}
			s1.Config(ids)
		}
	})
}

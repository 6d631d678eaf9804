package convert_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	upstream "github.com/containerd/stargz-snapshotter/estargz"
	"github.com/fmtconv/fmtconv/convert"
	"github.com/fmtconv/fmtconv/estargz"
	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/internal/tree"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/transport"
	"github.com/fmtconv/fmtconv/verify"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerTrees reads every layer of an image (first manifest) as a tree.
func layerTrees(t *testing.T, ref string) []tree.Tree {
	t.Helper()
	ctx := context.Background()
	src, err := transport.OpenSource(ctx, ref, transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	res := mustVerify(t, ref)
	_ = res
	raw, mt, err := src.Manifest(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mt == layerformat.MediaTypeOCIIndex {
		t.Fatalf("layerTrees: %s is an index", ref)
	}
	var m ocispec.Manifest
	if err := jsonUnmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var out []tree.Tree
	for _, l := range m.Layers {
		rc, err := src.Blob(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		f := layerformat.Detect(l.MediaType, l.Annotations, nil)
		f.Kind = layerformat.KindFromMediaType(l.MediaType)
		dec, err := layerformat.Decode(f, rc, layerformat.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := tree.Read(dec)
		dec.Close()
		rc.Close()
		if err != nil {
			t.Fatalf("%s layer %s: %v", ref, l.Digest, err)
		}
		out = append(out, tr)
	}
	return out
}

// estargzFiles are what eStargz adds to a layer's tree.
var estargzFiles = []string{"stargz.index.json", ".no.prefetch.landmark", ".prefetch.landmark"}

// TestEstargzRoundTrips: gzip → eStargz → gzip and zstd:chunked → eStargz → zstd:chunked give the
// same file trees as the source; every eStargz layer opens with the upstream reader and passes its
// VerifyTOC and chunk verification.
func TestEstargzRoundTrips(t *testing.T) {
	imgs := generated(t)
	for _, name := range []string{"gzip-single", "multi-format", "schema2"} {
		for _, via := range []layerformat.Kind{layerformat.Gzip, layerformat.ZstdChunked} {
			t.Run(name+"/"+tagOf(via), func(t *testing.T) {
				dir := t.TempDir()
				start := fmt.Sprintf("oci:%s/start:x", dir)
				mustConvert(t, imgs[name].Ref, start, opts(via))
				want := layerTrees(t, start)
				esgz := fmt.Sprintf("oci:%s/esgz:x", dir)
				rep := mustConvert(t, start, esgz, opts(layerformat.Estargz))
				for _, l := range rep.Layers {
					if l.Target.Format != "estargz" || l.TOCDigest == "" {
						t.Fatalf("layer %d: %+v", l.Index, l)
					}
				}
				if !rep.Manifests[0].ConfigRewrites {
					t.Fatalf("eStargz changes diff_ids, but the config was not rewritten")
				}
				checkUpstreamReads(t, filepath.Join(dir, "esgz"), rep)
				mid := layerTrees(t, esgz)
				for i := range want {
					if d := tree.Diff(want[i], mid[i], tree.Options{Ignore: estargzFiles}); len(d) > 0 {
						t.Fatalf("eStargz layer %d differs from the source: %v", i, d[:min(len(d), 5)])
					}
				}
				back := fmt.Sprintf("oci:%s/back:x", dir)
				mustConvert(t, esgz, back, opts(via))
				got := layerTrees(t, back)
				for i := range want {
					if d := tree.Diff(want[i], got[i], tree.Options{}); len(d) > 0 {
						t.Fatalf("round trip layer %d differs: %v", i, d[:min(len(d), 5)])
					}
				}
			})
		}
	}
}

// checkUpstreamReads opens every eStargz layer of a conversion with stargz-snapshotter's reader.
func checkUpstreamReads(t *testing.T, layout string, rep *convert.Report) {
	t.Helper()
	for _, l := range rep.Layers {
		f, err := os.Open(filepath.Join(layout, "blobs", "sha256", l.Target.Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		r, err := upstream.Open(io.NewSectionReader(f, 0, st.Size()))
		if err != nil {
			t.Fatalf("upstream estargz.Open of layer %d: %v", l.Index, err)
		}
		v, err := r.VerifyTOC(l.TOCDigest)
		if err != nil {
			t.Fatalf("upstream VerifyTOC of layer %d: %v", l.Index, err)
		}
		files := 0
		var walk func(e *upstream.TOCEntry)
		walk = func(e *upstream.TOCEntry) {
			e.ForeachChild(func(_ string, c *upstream.TOCEntry) bool {
				if c.Type == "reg" && c.Size > 0 {
					files++
					fr, err := r.OpenFile(c.Name)
					if err != nil {
						t.Fatal(err)
					}
					for off := int64(0); off < c.Size; {
						ce, ok := r.ChunkEntryForOffset(c.Name, off)
						if !ok {
							t.Fatalf("no chunk for %s at %d", c.Name, off)
						}
						cv, err := v.Verifier(ce)
						if err != nil {
							t.Fatal(err)
						}
						if _, err := io.Copy(cv, io.NewSectionReader(fr, ce.ChunkOffset, ce.ChunkSize)); err != nil {
							t.Fatal(err)
						}
						if !cv.Verified() {
							t.Fatalf("chunk of %s at %d does not verify", c.Name, off)
						}
						off += ce.ChunkSize
					}
				}
				walk(c)
				return true
			})
		}
		root, _ := r.Lookup("")
		walk(root)
		f.Close()
	}
}

// TestEstargzIgnoresGOMAXPROCS: the same input gives the same eStargz digests with 1 and 2 procs.
func TestEstargzIgnoresGOMAXPROCS(t *testing.T) {
	img := generated(t)["gzip-single"]
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var digests []digest.Digest
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		rep := mustConvert(t, img.Ref, "oci:"+t.TempDir()+":x", opts(layerformat.Estargz))
		digests = append(digests, rep.Digest)
	}
	if digests[0] != digests[1] {
		t.Fatalf("GOMAXPROCS 1 and 2 gave %v", digests)
	}
}

// TestEstargzPeers: containerd pulls and unpacks fmtconv's eStargz output (checking every
// diff_id), and eStargz made by ctr-remote verifies clean with fmtconv verify.
func TestEstargzPeers(t *testing.T) {
	testenv.RequireTool(t, "containerd", "ctr", "ctr-remote")
	reg := testenv.StartRegistry(t)
	ctrd := testenv.StartContainerd(t)
	img := generated(t)["gzip-single"]
	o := opts(layerformat.Estargz)
	o.Dst = plainHTTP()
	mustConvert(t, img.Ref, reg.Ref("esgz/ours", "1"), o)
	if err := ctrd.PullAndUnpack(t, reg.ImageName("esgz/ours", "1")); err != nil {
		t.Fatalf("containerd: %v", err)
	}
	// ctr-remote converts a gzip image to eStargz; fmtconv verifies it.
	push := opts(layerformat.Gzip)
	push.Dst = plainHTTP()
	mustConvert(t, img.Ref, reg.Ref("esgz/src", "1"), push)
	if err := ctrd.PullAndUnpack(t, reg.ImageName("esgz/src", "1")); err != nil {
		t.Fatal(err)
	}
	ctrd.CtrRemote(t, "image", "convert", "--estargz", "--oci", reg.ImageName("esgz/src", "1"), reg.ImageName("esgz/ctr", "1"))
	ctrd.Ctr(t, "image", "push", "--plain-http", reg.ImageName("esgz/ctr", "1"))
	res := mustVerifyOpts(t, reg.Ref("esgz/ctr", "1"))
	if !strings.HasPrefix(res.formats[0][0], "estargz") {
		t.Fatalf("ctr-remote's layer detected as %s", res.formats[0][0])
	}
	// And fmtconv converts it back to an ordinary layer, without eStargz's files; so too from the
	// stargz-snapshotter dialect of zstd:chunked.
	ctrd.CtrRemote(t, "image", "convert", "--zstdchunked", "--oci", reg.ImageName("esgz/src", "1"), reg.ImageName("esgz/ctrzc", "1"))
	ctrd.Ctr(t, "image", "push", "--plain-http", reg.ImageName("esgz/ctrzc", "1"))
	want := layerTrees(t, img.Ref)
	for _, src := range []string{reg.Ref("esgz/ctr", "1"), reg.Ref("esgz/ctrzc", "1")} {
		for _, k := range []layerformat.Kind{layerformat.Gzip, layerformat.ZstdChunked} {
			back := opts(k)
			back.Src = plainHTTP()
			out := "oci:" + t.TempDir() + ":x"
			rep := mustConvert(t, src, out, back)
			if !strings.HasPrefix(rep.Layers[0].Source.Format, "estargz") && rep.Layers[0].Source.Format != "zstd:chunked(stargz)" {
				t.Fatalf("%s detected as %s", src, rep.Layers[0].Source.Format)
			}
			got := layerTrees(t, out)
			for _, name := range estargzFiles {
				if _, ok := got[0][name]; ok {
					t.Fatalf("%s to %s kept %s", src, k, name)
				}
			}
			// ctr-remote rewrites headers (uid/gid names, formats), so compare content and types.
			for name, n := range want[0] {
				if g, ok := got[0][name]; !ok || g.SHA256 != n.SHA256 || g.Type != n.Type {
					t.Fatalf("%s to %s: %s differs: %+v vs %+v", src, k, name, g, n)
				}
			}
		}
	}
}

// TestEstargzPartialPullByPodman: podman (overlay driver, partial pulls on) pulls fmtconv's
// eStargz layers partially, as its debug log shows.
func TestEstargzPartialPullByPodman(t *testing.T) {
	reg := testenv.StartRegistry(t)
	pm := testenv.StartPodman(t, reg)
	img := generated(t)["multi-format"]
	o := opts(layerformat.Estargz)
	o.Dst = plainHTTP()
	rep := mustConvert(t, img.Ref, reg.Ref("esgz/podman", "1"), o)
	partial, fallbacks := pm.PullPartial(t, reg.ImageName("esgz/podman", "1"))
	if len(fallbacks) > 0 || partial != len(rep.Layers) {
		t.Fatalf("podman pulled %d of %d layers partially; fallbacks: %v", partial, len(rep.Layers), fallbacks)
	}
}

// TestEstargzPrioritizedFilesAcrossLayers: one list of prioritized files serves a multi-layer
// image: each layer puts first the ones it holds.
func TestEstargzPrioritizedFilesAcrossLayers(t *testing.T) {
	img := generated(t)["schema2"] // basic + whiteouts
	o := opts(layerformat.Estargz)
	o.EstargzPrioritizedFiles = []string{"bin/sh", "not/anywhere"}
	out := "oci:" + t.TempDir() + ":x"
	mustConvert(t, img.Ref, out, o)
	res, err := verify.Inspect(context.Background(), out, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := res.Manifests[0].Layers[0].Chunked.Details.(*estargz.Info)
	if first.Landmark != estargz.PrefetchLandmark || !slices.Contains(first.PrioritizedFiles, "bin/sh") {
		t.Fatalf("first layer: landmark %s, prioritized %v", first.Landmark, first.PrioritizedFiles)
	}
	mustVerify(t, out)
}

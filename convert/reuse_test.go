package convert_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/layerformat"
	digest "github.com/opencontainers/go-digest"
)

// TestEstargzIsNotGzip: an eStargz layer is a valid gzip stream, but converting to gzip re-encodes
// it and drops its annotations, so the output is an ordinary gzip layer.
func TestEstargzIsNotGzip(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerWhiteouts)
	blob, err := estargz.Build(io.NewSectionReader(bytes.NewReader(l.Tar), 0, int64(len(l.Tar))), estargz.WithParallelism(1))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(blob)
	blob.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := testimages.WriteOCILayout(dir, "esgz", testimages.ImageSpec{Layers: []testimages.LayerBlob{{
		Blob: data, DiffID: blob.DiffID(), MediaType: layerformat.MediaTypeOCIGzip,
		Annotations: map[string]string{layerformat.AnnotationEstargzTOCDigest: blob.TOCDigest().String(), "org.example.keep": "yes"},
	}}}); err != nil {
		t.Fatal(err)
	}
	src := "oci:" + dir + ":esgz"
	orig := mustVerify(t, src)
	if orig.formats[0][0] != "estargz" {
		t.Fatalf("source detected as %s", orig.formats[0][0])
	}
	rep := mustConvert(t, src, "oci:"+dir+":gz", opts(layerformat.Gzip))
	if l := rep.Layers[0]; l.Action != "converted" || l.Source.Format != "estargz" || l.Target.Format != "gzip" {
		t.Fatalf("eStargz to gzip: %+v", l)
	}
	// By default the eStargz files go: the layer is the original tar again, and the config says so.
	got := mustVerify(t, "oci:"+dir+":gz")
	if got.formats[0][0] != "gzip" || got.uncomp[0][0] != testimages.DiffID(l.Tar) || got.configs[0] == orig.configs[0] {
		t.Fatalf("output %s decoding to %s (config %s), want gzip decoding to the original %s in a new config", got.formats[0][0], got.uncomp[0][0], got.configs[0], testimages.DiffID(l.Tar))
	}
	// --keep-estargz-files keeps them: the diff_id and the config stay.
	o := opts(layerformat.Gzip)
	o.KeepEstargzFiles = true
	mustConvert(t, src, "oci:"+dir+":keep", o)
	got = mustVerify(t, "oci:"+dir+":keep")
	if got.uncomp[0][0] != digest.Digest(blob.DiffID()) || got.configs[0] != orig.configs[0] {
		t.Fatalf("--keep-estargz-files: decodes to %s, config %s; want %s, %s", got.uncomp[0][0], got.configs[0], blob.DiffID(), orig.configs[0])
	}
}

// TestOlderZstdChunkedIsConverted: skopeo 1.9 writes the older containers dialect; asking for
// zstd:chunked converts it to the current one instead of reusing it.
func TestOlderZstdChunkedIsConverted(t *testing.T) {
	testenv.RequireTool(t, "skopeo")
	img := generated(t)["gzip-single"]
	dir := t.TempDir()
	testenv.Skopeo(t, "copy", "--dest-compress-format", "zstd:chunked", img.Ref, "oci:"+dir+":legacy")
	src := "oci:" + dir + ":legacy"
	if f := mustVerify(t, src).formats[0][0]; f != "zstd:chunked(containers-legacy)" {
		t.Fatalf("skopeo's output detected as %s", f)
	}
	rep := mustConvert(t, src, "oci:"+dir+":current", opts(layerformat.ZstdChunked))
	if l := rep.Layers[0]; l.Action != "converted" || l.Target.Format != "zstd:chunked(containers)" {
		t.Fatalf("legacy to current: %+v", l)
	}
	got := mustVerify(t, "oci:"+dir+":current")
	if got.formats[0][0] != "zstd:chunked(containers)" {
		t.Fatalf("output detected as %s", got.formats[0][0])
	}
	// And now it is reused.
	rep = mustConvert(t, "oci:"+dir+":current", "oci:"+dir+":again", opts(layerformat.ZstdChunked))
	if rep.Layers[0].Action != "reused" {
		t.Fatalf("current dialect not reused: %+v", rep.Layers[0])
	}
}

package nydus

import (
	"bytes"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/internal/tree"
)

// What the external tests (package nydus_test: the EROFS readers of nydus/nydustest) use of
// this package's test helpers.

// TestImage is a bootstrap, opened with its blobs, and the tree it must show (nil: the
// tree our reader shows) with the paths only one side may have.
type TestImage struct {
	Name   string
	Boot   []byte
	FS     *FS
	Want   tree.Tree
	Ignore []string
	// Raw is the fixture README's derived raw device of the only blob, if any.
	Raw []byte
	// Files are the sha256 of files the fixture README lists.
	Files map[string]string
}

// WrittenImages are bootstraps we write: merged [basic, whiteouts]; the merged
// [basic, edge, whiteouts] stack; per-layer bootstraps of basic and of the edge layer
// (as Pack inlines them, whiteouts kept as files); with zstd and 1 MiB chunks, lz4 and
// 4 KiB chunks. Want is the OCI reference applier's tree (tree.ApplyOCI).
func WrittenImages(t *testing.T) []TestImage {
	t.Helper()
	var out []TestImage
	basic, wh := catalogueTar(testimages.LayerBasic), catalogueTar(testimages.LayerWhiteouts)
	edge := testimages.MustBuildTar(edgeEntries(), testimages.Ending{})
	for _, c := range []struct {
		name string
		o    PackOptions
	}{{"zstd-1m", PackOptions{}}, {"lz4-4k", PackOptions{Compressor: "lz4_block", ChunkSize: 4096}}} {
		im := packAndMerge(t, c.o, basic, wh)
		out = append(out, TestImage{Name: "merged-basic-whiteouts-" + c.name, Boot: im.merged.Bootstrap, FS: im.open(t), Want: ociApply(t, basic, wh)})
		for _, l := range []struct {
			name   string
			tar    []byte
			ignore []string
		}{{"basic", basic, nil}, {"edge", edge, implicitDirs}} {
			res, blob := pack(t, l.tar, c.o)
			out = append(out, TestImage{Name: "layer-" + l.name + "-" + c.name, Boot: res.Bootstrap, FS: openPacked(t, blob),
				Want: tarTree(t, l.tar).Resolved(), Ignore: l.ignore})
		}
	}
	im := packAndMerge(t, PackOptions{ChunkSize: 4096}, basic, edge, wh)
	out = append(out, TestImage{Name: "merged-basic-edge-whiteouts", Boot: im.merged.Bootstrap, FS: im.open(t),
		Want: ociApply(t, basic, edge, wh), Ignore: implicitDirs})
	return out
}

// FixtureImages are the real nydus-image bootstraps of ../shared/fixtures/nydus:
// rafs-v6-2.2.boot with its blob be7d77ee, and the bootstrap inlined in the 2fa78cad layer blob.
func FixtureImages(t *testing.T) []TestImage {
	t.Helper()
	f22, boot22, _ := open22(t)
	layer := readFixture(t, fxLayer2fa)
	f2fa, err := OpenLayer(bytes.NewReader(layer), int64(len(layer)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return []TestImage{
		{Name: "rafs-v6-2.2", Boot: boot22, FS: f22, Raw: readFixture(t, fxRawBe7d), Files: want22},
		{Name: "2fa78cad", Boot: readFixture(t, fxBoot2fa), FS: f2fa, Raw: readFixture(t, fxRaw2fa), Files: want2fa},
	}
}

// SynthImages are the synthetic bootstraps of synth_test.go (every layout and option our
// reader supports: compact inodes, lz4, V2 ci, 8 KiB chunks, nydus-image's per-file chunk
// size, an inlined bootstrap), as built.
func SynthImages(t *testing.T) []TestImage {
	t.Helper()
	var out []TestImage
	for _, c := range synthConfigs {
		boot, blob := buildStd(t, c.o)
		out = append(out, TestImage{Name: c.name, Boot: boot, FS: openSynth(t, c.o, boot, blob)})
	}
	return out
}

// FakeT records whether a comparison reported a difference.
type FakeT = fakeT

// Failed reports whether Errorf or Fatalf was called.
func (f *fakeT) Failed() bool { return f.failed }

package convert_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"context"

	"github.com/fmtconv/fmtconv/convert"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	digest "github.com/opencontainers/go-digest"
)

// writeSchema1Dir writes a Docker schema1 image (two real layers and one throwaway layer between
// them) as a dir: layout, and returns its reference and the real layers' tars, root first.
func writeSchema1Dir(t *testing.T, dir string) (string, [][]byte) {
	t.Helper()
	base, _ := testimages.LayerByName(testimages.LayerBasic)
	top, _ := testimages.LayerByName(testimages.LayerWhiteouts)
	empty := testimages.MustBuildTar(nil, testimages.Ending{Kind: testimages.EndEOF})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(tar []byte) digest.Digest {
		gz, err := testimages.Compress(tar, testimages.Gzip)
		if err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(gz)
		os.WriteFile(filepath.Join(dir, d.Encoded()), gz, 0o644)
		return d
	}
	ids := []string{strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)}
	compat := func(i int, parent string, throwaway bool, cmd string) string {
		m := map[string]any{"id": ids[i], "created": "2024-01-02T03:04:05Z", "container_config": map[string]any{"Cmd": []string{"/bin/sh", "-c", cmd}}}
		if parent != "" {
			m["parent"] = parent
		}
		if throwaway {
			m["throwaway"] = true
		}
		if i == 2 {
			m["architecture"], m["os"], m["config"] = "amd64", "linux", map[string]any{"Cmd": []string{"/bin/sh"}}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	// fsLayers and history are top layer first.
	man := map[string]any{
		"schemaVersion": 1, "name": "test/app", "tag": "1", "architecture": "amd64",
		"fsLayers": []map[string]string{{"blobSum": put(top.Tar).String()}, {"blobSum": put(empty).String()}, {"blobSum": put(base.Tar).String()}},
		"history": []map[string]string{
			{"v1Compatibility": compat(2, ids[1], false, "add top")},
			{"v1Compatibility": compat(1, ids[0], true, "ENV A=b")},
			{"v1Compatibility": compat(0, "", false, "add base")},
		},
	}
	b, _ := json.MarshalIndent(man, "", "   ")
	os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)
	os.WriteFile(filepath.Join(dir, "version"), []byte("Directory Transport Version: 1.1\n"), 0o644)
	return "dir:" + dir, [][]byte{base.Tar, top.Tar}
}

// TestSchema1BecomesOCI: a schema1 source is converted by becoming OCI, its config built from the
// history with diff_ids computed from the content; a schema2-only destination refuses it.
func TestSchema1BecomesOCI(t *testing.T) {
	src, tars := writeSchema1Dir(t, filepath.Join(t.TempDir(), "s1"))
	for _, k := range []layerformat.Kind{layerformat.Gzip, layerformat.ZstdChunked} {
		out := fmt.Sprintf("oci:%s:x", t.TempDir())
		rep := mustConvert(t, src, out, opts(k))
		if rep.MediaType != layerformat.MediaTypeOCIManifest || len(rep.Layers) != 2 {
			t.Fatalf("%s: %s with %d layers", k, rep.MediaType, len(rep.Layers))
		}
		got := mustVerify(t, out)
		for i, tar := range tars {
			if got.diffIDs[0][i] != testimages.DiffID(tar) || got.uncomp[0][i] != testimages.DiffID(tar) {
				t.Fatalf("%s layer %d: diff_id %s, content %s, want %s", k, i, got.diffIDs[0][i], got.uncomp[0][i], testimages.DiffID(tar))
			}
		}
	}
	o := opts(layerformat.Gzip)
	o.ManifestFormat = manifestedit.FormatSchema2
	if _, err := convert.Convert(context.Background(), src, "oci:"+t.TempDir()+":x", o); refusalCode(err) != manifestedit.Schema1Destination {
		t.Fatalf("schema1 to --format v2s2: %v", err)
	}
	if _, err := convert.Convert(context.Background(), src, "docker-archive:"+filepath.Join(t.TempDir(), "a.tar"), opts(layerformat.Gzip)); refusalCode(err) != manifestedit.Schema1Destination {
		t.Fatalf("schema1 to docker-archive: %v", err)
	}
}

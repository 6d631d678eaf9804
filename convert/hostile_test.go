package convert_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/convert"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/verify"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
)

var updateHostile = flag.Bool("update-hostile", false, "regenerate the committed hostile corpus in testdata/hostile")

// hostileLayer is one kind of hostile layer and the policy for it: what verify reports, and what
// convert does per target ("" = converts, the output's two views agreeing; a code = refuses).
type hostileLayer struct {
	name    string
	blob    func() []byte // the layer blob (zstd)
	verify  string        // the check id verify reports (an error unless warning is set)
	warning bool
	gzip    manifestedit.Code
	chunked manifestedit.Code
	estargz manifestedit.Code
	// maxLayerSize, when set, is passed to both verify and convert.
	maxLayerSize int64
}

func zstdOf(b []byte) []byte {
	var out bytes.Buffer
	w, _ := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func tarOf(es ...testimages.Entry) func() []byte {
	return func() []byte { return zstdOf(testimages.MustBuildTar(es, testimages.Ending{Kind: testimages.EndEOF})) }
}

// rawTar streams the tar into the compressor: the compression bomb's gigabyte never sits in memory.
func rawTar(build func(tw *tar.Writer)) func() []byte {
	return func() []byte {
		var out bytes.Buffer
		zw, _ := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		tw := tar.NewWriter(zw)
		build(tw)
		tw.Close()
		zw.Close()
		return out.Bytes()
	}
}

var x = testimages.String("x")

var hostileLayers = []hostileLayer{
	{name: "absolute-path", blob: tarOf(testimages.File("/etc/passwd", 0o644, x)), verify: "tar.path-absolute"},
	{name: "dotdot-path", blob: tarOf(testimages.File("../../etc/passwd", 0o644, x)), verify: "tar.path-traversal"},
	{name: "symlink-escape", blob: tarOf(testimages.Dir("a", 0o755), testimages.Symlink("a/out", "../../../etc")), verify: "tar.link-escape"},
	{name: "hardlink-escape", blob: tarOf(testimages.File("f", 0o644, x), testimages.Hardlink("h", "../../etc/shadow", 0o644)), verify: "tar.link-escape",
		estargz: manifestedit.HardlinkMissing},
	{name: "duplicate-entries", blob: tarOf(testimages.File("f", 0o644, x), testimages.File("f", 0o600, testimages.String("other"))),
		verify: "tar.duplicate-path", warning: true, chunked: manifestedit.DuplicatePath, estargz: manifestedit.DuplicatePath},
	{name: "hardlink-missing-target", blob: tarOf(testimages.Hardlink("h", "nowhere", 0o644)), verify: "tar.hardlink-missing",
		estargz: manifestedit.HardlinkMissing},
	{name: "huge-claimed-size", blob: func() []byte {
		// A header claiming 1 TiB of data, followed by a few bytes: a truncated layer.
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 40})
		b.Write(bytes.Repeat([]byte("x"), 4096))
		return zstdOf(b.Bytes())
	}, verify: "limit.entry-size", chunked: manifestedit.MalformedTar, estargz: manifestedit.MalformedTar},
	{name: "invalid-utf8-name", blob: rawTar(func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "bad\xff\xfename", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, Format: tar.FormatGNU})
		tw.Write([]byte("x"))
	}), verify: "tar.name-invalid-utf8", warning: true, chunked: manifestedit.NonUTF8Name, estargz: "*"},
	{name: "compression-bomb", blob: rawTar(func(tw *tar.Writer) {
		// 1 GiB of zeros in a few dozen KiB: stopped by the size limit, not by its ratio.
		tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 30})
		zero := make([]byte, 1<<20)
		for i := 0; i < 1<<10; i++ {
			tw.Write(zero)
		}
	}), verify: "limit.total-size", maxLayerSize: 64 << 20, gzip: manifestedit.LayerTooLarge, chunked: manifestedit.LayerTooLarge, estargz: manifestedit.LayerTooLarge},
}

// TestHostileLayers runs the committed hostile corpus through verify and convert and checks the
// policy table in docs/hostile-input.md: verify reports each with its check id; convert either
// refuses with the listed code or writes an output that verifies (its two views agree).
func TestHostileLayers(t *testing.T) {
	dir := t.TempDir()
	for _, h := range hostileLayers {
		t.Run(h.name, func(t *testing.T) {
			path := filepath.Join(testRoot(t), "testdata", "hostile", h.name+".tar.zst")
			blob := h.blob()
			if *updateHostile {
				os.MkdirAll(filepath.Dir(path), 0o755)
				os.WriteFile(path, blob, 0o644)
			}
			committed, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (regenerate with go test ./convert -run Hostile -update-hostile)", err)
			}
			if !bytes.Equal(committed, blob) {
				t.Fatalf("%s differs from what the generator makes now; regenerate it", path)
			}
			diffID := decodeDigestZstd(t, committed)
			src := filepath.Join(dir, h.name)
			if _, err := testimages.WriteOCILayout(src, "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{{
				Blob: committed, MediaType: layerformat.MediaTypeOCIZstd, DiffID: digestOf(diffID)}}}); err != nil {
				t.Fatal(err)
			}
			ref := "oci:" + src + ":x"
			vopts := verify.Options{}
			vopts.Limits.MaxTotalSize = h.maxLayerSize
			res, err := verify.Verify(context.Background(), ref, vopts)
			if err != nil {
				t.Fatal(err)
			}
			sev := check.Error
			if h.warning {
				sev = check.Warning
			}
			if !slices.ContainsFunc(res.Findings, func(f check.Finding) bool { return f.Check == h.verify && f.Severity == sev }) {
				t.Fatalf("verify: want %s (%s), got %v", h.verify, sev, res.Findings)
			}
			for _, c := range []struct {
				k    layerformat.Kind
				want manifestedit.Code
			}{{layerformat.Gzip, h.gzip}, {layerformat.ZstdChunked, h.chunked}, {layerformat.Estargz, h.estargz}} {
				o := opts(c.k)
				o.MaxLayerSize = h.maxLayerSize
				out := fmt.Sprintf("oci:%s/out:%s", src, tagOf(c.k))
				_, err := convert.Convert(context.Background(), ref, out, o)
				switch {
				case c.want == "" && err != nil:
					t.Errorf("%s: %v, want a conversion", c.k, err)
				case c.want == "":
					// The output's views agree: it verifies with no error beyond the tar's own.
					got, err := verify.Verify(context.Background(), out, verify.Options{})
					if err != nil {
						t.Fatal(err)
					}
					for _, f := range got.Findings {
						if f.Severity == check.Error && !strings.HasPrefix(f.Check, "tar.") && !strings.HasPrefix(f.Check, "limit.") {
							t.Errorf("%s: the output has %s: %s", c.k, f.Check, f.Message)
						}
					}
				case err == nil:
					t.Errorf("%s: converted, want %s", c.k, c.want)
				case c.want != "*":
					if r, ok := convert.IsRefusal(err); !ok || r.Code != c.want {
						t.Errorf("%s: %v, want %s", c.k, err, c.want)
					}
				}
			}
		})
	}
}

func testRoot(t *testing.T) string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

func decodeDigestZstd(t *testing.T, blob []byte) string {
	t.Helper()
	d, _ := zstd.NewReader(bytes.NewReader(blob))
	defer d.Close()
	h := sha256.New()
	if _, err := io.Copy(h, d); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil))
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }

package estargz

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	upstream "github.com/containerd/stargz-snapshotter/estargz"
	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
)

type layerUnderTest struct {
	blob        []byte
	annotations map[string]string
	diffID      digest.Digest
}

func (l layerUnderTest) verify(lim Limits) []check.Finding {
	return Verify(context.Background(), bytes.NewReader(l.blob), int64(len(l.blob)), l.annotations, l.diffID, lim)
}

func encodedLayer(t *testing.T, name string, opts EncodeOptions) layerUnderTest {
	t.Helper()
	l, ok := testimages.LayerByName(name)
	if !ok {
		t.Fatalf("no layer %s", name)
	}
	blob, res := encodeBytes(t, l.Tar, opts)
	return layerUnderTest{blob, res.Annotations, res.DiffID}
}

// rewriteTOC replaces a blob's TOC by a mutated copy and recomputes
// everything that depends on it (TOC member, footer, both annotations,
// diff_id), so that only what the mutation broke is wrong.
func rewriteTOC(t *testing.T, l layerUnderTest, mutate func(*JTOC)) layerUnderTest {
	t.Helper()
	toc, err := ReadTOC(bytes.NewReader(l.blob), int64(len(l.blob)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	mutate(&toc.JTOC)
	js, err := json.MarshalIndent(toc.JTOC, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	var tt bytes.Buffer
	tw := tar.NewWriter(&tt)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: TOCTarName, Size: int64(len(js))})
	tw.Write(js)
	tw.Close()
	out := bytes.NewBuffer(slices.Clone(l.blob[:toc.Footer.TOCOffset]))
	zw, _ := gzip.NewWriterLevel(out, 6)
	zw.Write(tt.Bytes())
	zw.Close()
	out.Write(Footer{TOCOffset: toc.Footer.TOCOffset}.Bytes())
	stream := gunzipAll(t, out.Bytes())
	return layerUnderTest{
		blob: out.Bytes(),
		annotations: map[string]string{
			AnnotationTOCDigest:        digest.FromBytes(js).String(),
			AnnotationUncompressedSize: strconv.Itoa(len(stream)),
		},
		diffID: digest.FromBytes(stream),
	}
}

func entryNamed(t *testing.T, toc *JTOC, name string) *TOCEntry {
	t.Helper()
	for _, e := range toc.Entries {
		if e.Name == name && e.Type != "chunk" {
			return e
		}
	}
	t.Fatalf("no TOC entry %q", name)
	return nil
}

// ids returns the distinct check ids of the findings, with their severities.
func ids(fs []check.Finding) []string {
	var out []string
	for _, f := range fs {
		id := f.Check + ":" + string(f.Severity)
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func expectOnly(t *testing.T, fs []check.Finding, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := ids(fs); !slices.Equal(got, want) {
		t.Errorf("findings %v, want exactly %v:", got, want)
		for _, f := range fs {
			t.Logf("  %s %s %s: %s", f.Check, f.Severity, f.Path, f.Message)
		}
	}
}

// TestVerifyCatches: every crafted layer is caught by its own check id, and
// only by it.
func TestVerifyCatches(t *testing.T) {
	good := encodedLayer(t, testimages.LayerBasic, EncodeOptions{ChunkSize: 1 << 20})
	expectOnly(t, good.verify(Limits{}))
	errID := func(id string) string { return id + ":error" }

	t.Run("wrong toc digest annotation", func(t *testing.T) {
		l := good
		l.annotations = map[string]string{AnnotationTOCDigest: digest.FromString("other").String(), AnnotationUncompressedSize: good.annotations[AnnotationUncompressedSize]}
		expectOnly(t, l.verify(Limits{}), errID(CheckTOCDigest))
		l.annotations = map[string]string{AnnotationTOCDigest: "sha256:zz", AnnotationUncompressedSize: good.annotations[AnnotationUncompressedSize]}
		expectOnly(t, l.verify(Limits{}), errID(CheckTOCDigest))
		l.annotations = map[string]string{AnnotationUncompressedSize: good.annotations[AnnotationUncompressedSize]}
		expectOnly(t, l.verify(Limits{}), CheckTOCDigest+":warning")
	})
	t.Run("rewritten toc unchanged", func(t *testing.T) {
		// The rewriting itself breaks nothing.
		expectOnly(t, rewriteTOC(t, good, func(*JTOC) {}).verify(Limits{}))
	})
	t.Run("wrong chunk digest", func(t *testing.T) {
		l := rewriteTOC(t, good, func(toc *JTOC) {
			entryNamed(t, toc, "etc/passwd").ChunkDigest = digest.FromString("not the content").String()
		})
		expectOnly(t, l.verify(Limits{}), errID(CheckChunkDigest))
		// Upstream's verifier agrees that the chunk is bad.
		r, err := upstream.Open(io.NewSectionReader(bytes.NewReader(l.blob), 0, int64(len(l.blob))))
		if err != nil {
			t.Fatal(err)
		}
		v, err := r.VerifyTOC(digest.Digest(l.annotations[AnnotationTOCDigest]))
		if err != nil {
			t.Fatal(err)
		}
		ce, _ := r.ChunkEntryForOffset("etc/passwd", 0)
		sr, _ := r.OpenFile("etc/passwd")
		data, _ := io.ReadAll(io.NewSectionReader(sr, 0, sr.Size()))
		vr, _ := v.Verifier(ce)
		vr.Write(data)
		if vr.Verified() {
			t.Errorf("upstream verifies the chunk")
		}
	})
	t.Run("wrong digest of a later chunk", func(t *testing.T) {
		l := rewriteTOC(t, good, func(toc *JTOC) {
			var chunks []*TOCEntry
			for _, e := range toc.Entries {
				if e.Type == "chunk" && e.Name == "data/big-text" {
					chunks = append(chunks, e)
				}
			}
			if len(chunks) == 0 {
				t.Fatal("data/big-text has no chunk entries")
			}
			chunks[len(chunks)-1].ChunkDigest = digest.FromString("x").String()
		})
		expectOnly(t, l.verify(Limits{}), errID(CheckChunkDigest))
	})
	t.Run("wrong file digest", func(t *testing.T) {
		l := rewriteTOC(t, good, func(toc *JTOC) {
			entryNamed(t, toc, "data/big-text").Digest = digest.FromString("x").String()
		})
		expectOnly(t, l.verify(Limits{}), errID(CheckChunkDigest))
	})
	t.Run("chunk offset not at a member", func(t *testing.T) {
		l := rewriteTOC(t, good, func(toc *JTOC) { entryNamed(t, toc, "etc/passwd").Offset++ })
		expectOnly(t, l.verify(Limits{}), errID(CheckChunkDigest))
	})
	for name, mutate := range map[string]func(*JTOC){
		"mode":      func(toc *JTOC) { entryNamed(t, toc, "etc/hostname").Mode = 0o600 },
		"name":      func(toc *JTOC) { entryNamed(t, toc, "etc/hostname").Name = "etc/hostnamf" },
		"owner":     func(toc *JTOC) { entryNamed(t, toc, "usr/bin/su").UID = 7 },
		"user name": func(toc *JTOC) { entryNamed(t, toc, "etc/passwd").Uname = "mallory" },
		"modtime":   func(toc *JTOC) { entryNamed(t, toc, "etc/passwd").ModTime3339 = "2020-01-01T00:00:00Z" },
		"symlink":   func(toc *JTOC) { entryNamed(t, toc, "links/relative").LinkName = "/etc/shadow" },
		"hardlink":  func(toc *JTOC) { entryNamed(t, toc, "links/hardlink-to-file").LinkName = "etc/passwd" },
		"xattr":     func(toc *JTOC) { entryNamed(t, toc, "xattrs/user").Xattrs["user.comment"] = []byte("bye") },
		"device":    func(toc *JTOC) { entryNamed(t, toc, "dev/null").DevMinor = 5 },
		"type":      func(toc *JTOC) { entryNamed(t, toc, "dev/initctl").Type = "char" },
		"missing": func(toc *JTOC) {
			toc.Entries = slices.DeleteFunc(toc.Entries, func(e *TOCEntry) bool { return e.Name == "etc/empty" })
		},
		"extra": func(toc *JTOC) { toc.Entries = append(toc.Entries, &TOCEntry{Name: "ghost", Type: "dir", Mode: 0o755}) },
		"order": func(toc *JTOC) { a, b := toc.Entries[1], toc.Entries[2]; toc.Entries[1], toc.Entries[2] = b, a },
	} {
		t.Run("view "+name, func(t *testing.T) {
			l := rewriteTOC(t, good, mutate)
			expectOnly(t, l.verify(Limits{}), errID(CheckViewMismatch))
		})
	}
	t.Run("view data elsewhere", func(t *testing.T) {
		// Point file a at b's member (same size), with b's digests: every
		// chunk verifies, but a lazy pull of a gets b's bytes.
		in := testimages.MustBuildTar([]testimages.Entry{
			testimages.File("a", 0o644, testimages.Text(1, 100)),
			testimages.File("b", 0o644, testimages.Text(2, 100)),
		}, testimages.Ending{})
		blob, res := encodeBytes(t, in, EncodeOptions{})
		l := rewriteTOC(t, layerUnderTest{blob, res.Annotations, res.DiffID}, func(toc *JTOC) {
			a, b := entryNamed(t, toc, "a"), entryNamed(t, toc, "b")
			a.Offset, a.Digest, a.ChunkDigest = b.Offset, b.Digest, b.ChunkDigest
		})
		// Two chunks at one offset also draw the shared-member warning.
		expectOnly(t, l.verify(Limits{}), errID(CheckViewMismatch), CheckTOC+":warning")
	})
	t.Run("wrong uncompressed size", func(t *testing.T) {
		l := good
		n, _ := strconv.Atoi(good.annotations[AnnotationUncompressedSize])
		l.annotations = map[string]string{AnnotationTOCDigest: good.annotations[AnnotationTOCDigest], AnnotationUncompressedSize: strconv.Itoa(n + 512)}
		expectOnly(t, l.verify(Limits{}), errID(CheckUncompressedSize))
		l.annotations[AnnotationUncompressedSize] = "lots"
		expectOnly(t, l.verify(Limits{}), errID(CheckUncompressedSize))
	})
	t.Run("wrong diff_id", func(t *testing.T) {
		l := good
		l.diffID = digest.FromString("other")
		expectOnly(t, l.verify(Limits{}), errID(CheckDiffID))
	})
	t.Run("landmark", func(t *testing.T) {
		l := rewriteTOC(t, good, func(toc *JTOC) { toc.Entries[0].ChunkDigest = digest.FromString("x").String() })
		// The TOC no longer says 0x0f, and the content does not match it.
		expectOnly(t, l.verify(Limits{}), errID(CheckChunkDigest), errID(CheckLandmark))
	})
	t.Run("landmark content", func(t *testing.T) {
		// upstream's Writer (unlike Build) keeps a landmark from its input.
		in := testimages.MustBuildTar([]testimages.Entry{
			testimages.File(NoPrefetchLandmark, 0o644, testimages.String("xx")),
			testimages.File("a", 0o644, testimages.String("a")),
		}, testimages.Ending{})
		var buf bytes.Buffer
		w := upstream.NewWriterLevel(&buf, 6)
		if err := w.AppendTar(bytes.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		td, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		l := layerUnderTest{blob: buf.Bytes(), annotations: map[string]string{AnnotationTOCDigest: td.String()}, diffID: digest.Digest(w.DiffID())}
		expectOnly(t, l.verify(Limits{}), errID(CheckLandmark))
	})
	t.Run("no landmark", func(t *testing.T) {
		// upstream's Writer (unlike Build) adds no landmark.
		in, _ := testimages.LayerByName(testimages.LayerPlatformAMD64)
		var buf bytes.Buffer
		w := upstream.NewWriterLevel(&buf, 6)
		if err := w.AppendTar(bytes.NewReader(in.Tar)); err != nil {
			t.Fatal(err)
		}
		td, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		l := layerUnderTest{blob: buf.Bytes(), annotations: map[string]string{AnnotationTOCDigest: td.String()}, diffID: digest.Digest(w.DiffID())}
		expectOnly(t, l.verify(Limits{}), CheckLandmark+":warning")
	})
	t.Run("truncated", func(t *testing.T) {
		l := good
		l.blob = good.blob[:len(good.blob)-1]
		fs := l.verify(Limits{})
		if got := ids(fs); !slices.Contains(got, errID(CheckFooter)) {
			t.Errorf("findings %v, want %s", got, CheckFooter)
		}
	})
	t.Run("corrupt payload", func(t *testing.T) {
		toc, err := ReadTOC(bytes.NewReader(good.blob), int64(len(good.blob)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		l := good
		l.blob = slices.Clone(good.blob)
		l.blob[entryNamed(t, &toc.JTOC, "data/big-text").Offset+500] ^= 0x55
		expectOnly(t, l.verify(Limits{}), errID(CheckDecode))
	})
	t.Run("plain gzip", func(t *testing.T) {
		in, _ := testimages.LayerByName(testimages.LayerBasic)
		gz, err := testimages.Compress(in.Tar, testimages.Gzip)
		if err != nil {
			t.Fatal(err)
		}
		l := layerUnderTest{blob: gz, diffID: digest.FromBytes(in.Tar)}
		expectOnly(t, l.verify(Limits{}), errID(CheckFooter))
	})
	t.Run("limits", func(t *testing.T) {
		for _, lim := range []Limits{{MaxEntries: 10}, {MaxTOCSize: 1000}, {MaxNameLength: 100}} {
			fs := good.verify(lim)
			expectOnly(t, fs, errID(CheckTOC))
			if !strings.Contains(fs[0].Message, ErrLimit.Error()) {
				t.Errorf("%+v: %s", lim, fs[0].Message)
			}
		}
	})
	t.Run("legacy footer", func(t *testing.T) {
		l := good
		f, err := ReadFooter(bytes.NewReader(good.blob), int64(len(good.blob)))
		if err != nil {
			t.Fatal(err)
		}
		l.blob = append(slices.Clone(good.blob[:len(good.blob)-FooterSize]), Footer{TOCOffset: f.TOCOffset, Legacy: true}.Bytes()...)
		expectOnly(t, l.verify(Limits{}))
		f2, err := ReadFooter(bytes.NewReader(l.blob), int64(len(l.blob)))
		if err != nil || !f2.Legacy || f2.TOCOffset != f.TOCOffset {
			t.Errorf("legacy footer read as %+v, %v", f2, err)
		}
		if _, err := upstream.Open(io.NewSectionReader(bytes.NewReader(l.blob), 0, int64(len(l.blob)))); err != nil {
			t.Errorf("upstream cannot open the legacy footer: %v", err)
		}
	})
}

// TestVerifyUpstreamBlobs: blobs written by upstream verify clean.
func TestVerifyUpstreamBlobs(t *testing.T) {
	for _, l := range roundTripLayers() {
		for _, par := range []int{1, 3} {
			blob, err := upstream.Build(io.NewSectionReader(bytes.NewReader(l.Tar), 0, int64(len(l.Tar))), upstream.WithParallelism(par), upstream.WithChunkSize(3000))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(blob)
			blob.Close()
			n, _ := blob.UncompressedSize()
			lt := layerUnderTest{data, map[string]string{AnnotationTOCDigest: blob.TOCDigest().String(), AnnotationUncompressedSize: strconv.FormatInt(n, 10)}, blob.DiffID()}
			if fs := lt.verify(Limits{}); len(fs) > 0 {
				t.Errorf("%s parallelism %d: %v", l.Name, par, fs)
			}
			// Decode gives back the layer's files.
			if got, want := readTree(t, decodeBytes(t, data, DecodeOptions{})), readTree(t, l.Tar); len(got) != len(want) {
				t.Errorf("%s: upstream blob decodes to %d entries, want %d", l.Name, len(got), len(want))
			}
		}
	}
}

func TestFooter(t *testing.T) {
	for _, f := range []Footer{{TOCOffset: 0}, {TOCOffset: 12345}, {TOCOffset: 1 << 40, Legacy: true}} {
		b := f.Bytes()
		if int64(len(b)) != f.Size() {
			t.Fatalf("%+v: %d bytes", f, len(b))
		}
		got, err := ParseFooter(b)
		if err != nil || got != f {
			t.Errorf("%+v: parsed %+v, %v", f, got, err)
		}
	}
	// Byte-identical to upstream's footer.
	var buf bytes.Buffer
	w := upstream.NewWriter(&buf)
	w.AppendTar(bytes.NewReader(testimages.MustBuildTar([]testimages.Entry{testimages.File("a", 0o644, testimages.String("a"))}, testimages.Ending{})))
	w.Close()
	blob := buf.Bytes()
	f, err := ReadFooter(bytes.NewReader(blob), int64(len(blob)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Bytes(), blob[len(blob)-FooterSize:]) {
		t.Errorf("footer bytes differ from upstream's")
	}
	for _, bad := range [][]byte{
		nil,
		make([]byte, FooterSize),
		bytes.Replace(Footer{TOCOffset: 5}.Bytes(), []byte("STARGZ"), []byte("STARGY"), 1),
		bytes.Replace(Footer{TOCOffset: 5}.Bytes(), []byte("0000000000000005"), []byte("-000000000000005"), 1),
		bytes.Replace(Footer{TOCOffset: 5}.Bytes(), []byte("SG"), []byte("GS"), 1),
	} {
		if _, err := ParseFooter(bad); !errors.Is(err, ErrNoFooter) {
			t.Errorf("ParseFooter(%q) = %v", bad, err)
		}
	}
}

// TestDecodeStreams: Decode hands out data before it has read the blob.
func TestDecodeStreams(t *testing.T) {
	blob, _ := encodeBytes(t, bigLayer(), EncodeOptions{})
	cr := &countReader{r: bytes.NewReader(blob)}
	rc, err := Decode(cr, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if cr.n > int64(len(blob))/2 {
		t.Errorf("Decode read %d of %d bytes to return 1 MiB", cr.n, len(blob))
	}
}

// TestDecodeErrors: a corrupt blob fails, also after the end of the archive.
func TestDecodeErrors(t *testing.T) {
	good := encodedLayer(t, testimages.LayerBasic, EncodeOptions{})
	for name, blob := range map[string][]byte{
		"truncated":     good.blob[:len(good.blob)/2],
		"footer broken": append(slices.Clone(good.blob[:len(good.blob)-8]), 1, 2, 3, 4, 5, 6, 7, 8),
	} {
		rc, err := Decode(bytes.NewReader(blob), DecodeOptions{})
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestReadTOCLimits(t *testing.T) {
	good := encodedLayer(t, testimages.LayerBasic, EncodeOptions{})
	ra, size := bytes.NewReader(good.blob), int64(len(good.blob))
	toc, err := ReadTOC(ra, size, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n := len(toc.Entries)
	if _, err := ReadTOC(ra, size, Limits{MaxEntries: n}); err != nil {
		t.Errorf("exactly %d entries: %v", n, err)
	}
	for _, lim := range []Limits{{MaxEntries: n - 1}, {MaxTOCSize: int64(len(toc.JSON)) - 1}, {MaxNameLength: len(testimages.LongPAXName) - 1}} {
		if _, err := ReadTOC(ra, size, lim); !errors.Is(err, ErrLimit) {
			t.Errorf("%+v: %v", lim, err)
		}
	}
	info, err := Inspect(ra, size, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Landmark != NoPrefetchLandmark || len(info.PrioritizedFiles) != 0 || info.TOCDigest.String() != good.annotations[AnnotationTOCDigest] || info.Entries == 0 || info.Chunks < 2 {
		t.Errorf("Inspect: %+v", info)
	}
}

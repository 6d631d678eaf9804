package estargz

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	upstream "github.com/containerd/stargz-snapshotter/estargz"
	"github.com/fmtconv/fmtconv/internal/testimages"
	digest "github.com/opencontainers/go-digest"
)

// fileInfo is what a file tree comparison looks at.
type fileInfo struct {
	Name, Type    string
	Mode          int64
	UID, GID      int
	Uname, Gname  string
	ModTime       time.Time
	Linkname      string
	Major, Minor  int64
	Xattrs        map[string]string
	Size          int64
	ContentDigest digest.Digest
}

type plainFileInfo fileInfo

func (f fileInfo) String() string { return fmt.Sprintf("%+v", plainFileInfo(f)) }

// readTree parses a tar stream into its entries, in order.
func readTree(t testing.TB, stream []byte) []fileInfo {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(stream))
	var out []fileInfo
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("parsing tar after %d entries: %v", len(out), err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %q: %v", h.Name, err)
		}
		fi := fileInfo{
			Name: CleanEntryName(h.Name), Type: tocType(h.Typeflag), Mode: h.Mode, UID: h.Uid, GID: h.Gid,
			Uname: h.Uname, Gname: h.Gname, ModTime: h.ModTime, Linkname: h.Linkname,
			Major: h.Devmajor, Minor: h.Devminor, Size: h.Size, ContentDigest: digest.FromBytes(data),
		}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if fi.Xattrs == nil {
					fi.Xattrs = map[string]string{}
				}
				fi.Xattrs[x] = v
			}
		}
		out = append(out, fi)
	}
}

func decodeBytes(t testing.TB, blob []byte, opts DecodeOptions) []byte {
	t.Helper()
	rc, err := Decode(bytes.NewReader(blob), opts)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return out
}

// roundTripLayers are the catalogue layers eStargz can represent.
func roundTripLayers() []testimages.Layer {
	var out []testimages.Layer
	for _, l := range testimages.Layers() {
		if l.Name != testimages.LayerPAXGlobal && l.Name != testimages.LayerDuplicatePaths {
			out = append(out, l)
		}
	}
	return out
}

// checkUpstreamReads opens blob with upstream's reader, verifies the TOC
// digest, verifies every chunk with upstream's verifiers and checks that
// every regular file reads back (lazily) as the tree says.
//
// With a min chunk size, upstream's VerifyTOC refuses the layer (its own
// too: "offset found twice"), so only the lazy reads are checked.
func checkUpstreamReads(t *testing.T, blob []byte, tocDigest digest.Digest, tree []fileInfo, sharedMembers bool) {
	t.Helper()
	r, err := upstream.Open(io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob))))
	if err != nil {
		t.Fatalf("upstream Open: %v", err)
	}
	if r.TOCDigest() != tocDigest {
		t.Fatalf("upstream reads TOC digest %s, want %s", r.TOCDigest(), tocDigest)
	}
	v, err := r.VerifyTOC(tocDigest)
	if sharedMembers {
		if err == nil {
			t.Fatalf("upstream VerifyTOC now accepts shared members: update the estargz.toc warning")
		}
	} else if err != nil {
		t.Fatalf("upstream VerifyTOC: %v", err)
	}
	toc, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var name string
	chunks := 0
	for _, e := range toc.Entries {
		if sharedMembers {
			break
		}
		if e.Type == "reg" {
			name = e.Name
		}
		if !isData(e) {
			continue
		}
		ce, ok := r.ChunkEntryForOffset(name, e.ChunkOffset)
		if !ok {
			t.Fatalf("%s: upstream has no chunk at %d", name, e.ChunkOffset)
		}
		sr, err := r.OpenFile(name)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, ce.ChunkSize)
		if _, err := sr.ReadAt(buf, ce.ChunkOffset); err != nil && err != io.EOF {
			t.Fatalf("%s: reading chunk at %d: %v", name, ce.ChunkOffset, err)
		}
		vr, err := v.Verifier(ce)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		vr.Write(buf)
		if !vr.Verified() {
			t.Errorf("%s: chunk at %d does not verify", name, ce.ChunkOffset)
		}
		chunks++
	}
	if chunks == 0 && !sharedMembers {
		t.Fatal("no chunk verified")
	}
	for _, fi := range tree {
		if fi.Type != "reg" {
			continue
		}
		sr, err := r.OpenFile(fi.Name)
		if err != nil {
			t.Errorf("%s: upstream OpenFile: %v", fi.Name, err)
			continue
		}
		data, err := io.ReadAll(io.NewSectionReader(sr, 0, sr.Size()))
		if err != nil {
			t.Errorf("%s: %v", fi.Name, err)
			continue
		}
		if digest.FromBytes(data) != fi.ContentDigest {
			t.Errorf("%s: lazy read gives other content", fi.Name)
		}
	}
}

// TestRoundTrip: Encode then Decode gives the same file tree for every
// catalogue layer, at several chunk sizes; the blob verifies with upstream's
// reader (TOC digest and every chunk) and with Verify.
func TestRoundTrip(t *testing.T) {
	for _, l := range roundTripLayers() {
		for _, opts := range []EncodeOptions{{}, {ChunkSize: 1000, Level: 1}, {ChunkSize: 4096, MinChunkSize: 20000, Level: 9}} {
			t.Run(fmt.Sprintf("%s/chunk=%d,min=%d", l.Name, opts.ChunkSize, opts.MinChunkSize), func(t *testing.T) {
				blob, res := encodeBytes(t, l.Tar, opts)
				want := readTree(t, l.Tar)
				plain := decodeBytes(t, blob, DecodeOptions{})
				got := readTree(t, plain)
				if !slices.EqualFunc(got, want, func(a, b fileInfo) bool { return a.String() == b.String() }) {
					t.Errorf("file tree differs after Encode+Decode")
					for i := range max(len(got), len(want)) {
						var a, b fileInfo
						if i < len(got) {
							a = got[i]
						}
						if i < len(want) {
							b = want[i]
						}
						if a.String() != b.String() {
							t.Logf("entry %d:\n got  %v\n want %v", i, a, b)
						}
					}
				}
				if !bytes.HasSuffix(plain, make([]byte, 1024)) || len(plain)%512 != 0 {
					t.Errorf("decoded tar does not end with two zero blocks")
				}
				full := decodeBytes(t, blob, DecodeOptions{KeepEstargzFiles: true})
				if digest.FromBytes(full) != res.DiffID || int64(len(full)) != res.UncompressedSize {
					t.Errorf("DiffID/size %s/%d, the blob decompresses to %s/%d", res.DiffID, res.UncompressedSize, digest.FromBytes(full), len(full))
				}
				fullTree := readTree(t, full)
				if fullTree[0].Name != NoPrefetchLandmark || fullTree[len(fullTree)-1].Name != TOCTarName {
					t.Errorf("full stream starts with %q and ends with %q", fullTree[0].Name, fullTree[len(fullTree)-1].Name)
				}
				checkUpstreamReads(t, blob, res.TOCDigest, want, opts.MinChunkSize > 0)
				verifyClean(t, blob, res, opts)
			})
		}
	}
}

// TestRoundTripTimes pins what eStargz keeps of times: the tar keeps what
// archive/tar writes (nanoseconds in PAX records), the TOC whole seconds
// (rounded).
func TestRoundTripTimes(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	blob, _ := encodeBytes(t, l.Tar, EncodeOptions{})
	for _, fi := range readTree(t, decodeBytes(t, blob, DecodeOptions{})) {
		if fi.Name == "data/nanotime" && fi.ModTime.Nanosecond() != testimages.NanoMtimeNs {
			t.Errorf("data/nanotime lost its nanoseconds in the tar: %v", fi.ModTime)
		}
	}
	toc, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range toc.Entries {
		switch e.Name {
		case "data/nanotime":
			if e.ModTime3339 != testimages.DefaultModTime.Format(time.RFC3339) {
				t.Errorf("TOC modtime of data/nanotime is %q", e.ModTime3339)
			}
		case "data/epoch":
			if e.ModTime3339 != "" {
				t.Errorf("TOC modtime of data/epoch is %q, want none", e.ModTime3339)
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	for name, code := range map[string]string{
		testimages.LayerDuplicatePaths: CodeDuplicatePath,
		testimages.LayerPAXGlobal:      CodePAXGlobalHeader,
	} {
		l, _ := testimages.LayerByName(name)
		for _, opts := range []EncodeOptions{{}, {PrioritizedFiles: []string{"dup/other"}}} {
			_, err := Encode(context.Background(), io.Discard, bytes.NewReader(l.Tar), opts)
			var u *UnsupportedInputError
			if !errors.As(err, &u) || u.Code != code {
				t.Errorf("%s: error %v, want code %s", name, err, code)
			}
		}
	}
	// Upstream refuses the PAX global header too.
	l, _ := testimages.LayerByName(testimages.LayerPAXGlobal)
	if _, err := upstream.Build(io.NewSectionReader(bytes.NewReader(l.Tar), 0, int64(len(l.Tar)))); err == nil {
		t.Errorf("upstream accepts a PAX global header; reconsider refusing it")
	}
	// Non-UTF-8 names.
	bad := testimages.MustBuildTar([]testimages.Entry{testimages.File("bad\xff", 0o644, testimages.String("x"))}, testimages.Ending{})
	_, err := Encode(context.Background(), io.Discard, bytes.NewReader(bad), EncodeOptions{})
	var u *UnsupportedInputError
	if !errors.As(err, &u) || u.Code != CodeNonUTF8Name {
		t.Errorf("non-UTF-8 name: %v", err)
	}
	// Hard links to missing or later entries.
	for _, es := range [][]testimages.Entry{
		{testimages.Hardlink("h", "nope", 0o644)},
		{testimages.Hardlink("h", "f", 0o644), testimages.File("f", 0o644, testimages.String("f"))},
		{testimages.Hardlink("h", "h", 0o644)},
		// Targets the TOC would resolve to another file: absolute, leaving the root, empty.
		{testimages.File("etc/f", 0o644, testimages.String("f")), testimages.Hardlink("h", "/etc/f", 0o644)},
		{testimages.File("etc/f", 0o644, testimages.String("f")), testimages.Hardlink("a/h", "../../etc/f", 0o644)},
		{testimages.File("f", 0o644, testimages.String("f")), testimages.Hardlink("h", "", 0o644)},
	} {
		_, err := Encode(context.Background(), io.Discard, bytes.NewReader(testimages.MustBuildTar(es, testimages.Ending{})), EncodeOptions{StrictHardlinks: true})
		if !errors.As(err, &u) || u.Code != CodeHardlinkMissing {
			t.Errorf("hard link %q -> %q: %v", es[len(es)-1].Name, es[len(es)-1].Linkname, err)
		}
	}
	// Missing prioritized file.
	l, _ = testimages.LayerByName(testimages.LayerBasic)
	_, err = Encode(context.Background(), io.Discard, bytes.NewReader(l.Tar), EncodeOptions{PrioritizedFiles: []string{"no/such/file"}})
	if !errors.As(err, &u) || u.Code != CodePrioritizedNotFound {
		t.Errorf("missing prioritized file: %v", err)
	}
}

// bigLayer has files over partCap (so members cut into parts), files of
// exactly a chunk, many small files and long runs of headers.
func bigLayer() []byte {
	var es []testimages.Entry
	es = append(es, testimages.Dir("big/", 0o755))
	es = append(es, testimages.File("big/random-9m", 0o644, testimages.Random(1, 9<<20+7)))
	es = append(es, testimages.File("big/text-5m", 0o644, testimages.Text(2, 5<<20)))
	es = append(es, testimages.File("big/exact-4m", 0o644, testimages.Text(3, 4<<20)))
	for i := range 3000 {
		es = append(es, testimages.Dir(fmt.Sprintf("dirs/%04d/", i), 0o755))
	}
	for i := range 300 {
		es = append(es, testimages.File(fmt.Sprintf("small/%03d", i), 0o644, testimages.Text(uint64(i), int64(i*37))))
	}
	return testimages.MustBuildTar(es, testimages.Ending{})
}

// TestReproducible: the blob does not depend on GOMAXPROCS.
func TestReproducible(t *testing.T) {
	basic, _ := testimages.LayerByName(testimages.LayerBasic)
	inputs := map[string][]byte{"basic": basic.Tar, "big": bigLayer()}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		prio := []string{"usr/bin/busybox"}
		if name == "big" {
			prio = []string{"small/007", "big/text-5m"}
		}
		for _, opts := range []EncodeOptions{{}, {ChunkSize: 16 << 20, Level: 1}, {MinChunkSize: 1 << 20, Level: 9}, {PrioritizedFiles: prio, TempDir: t.TempDir(), Level: 2}} {
			if name == "big" && opts.Level == 9 {
				opts.Level = 3 // level 9 on 9 MiB of random bytes is slow, and levels do not matter here
			}
			var ref digest.Digest
			for _, procs := range []int{1, 2, 5} {
				runtime.GOMAXPROCS(procs)
				blob, res := encodeBytes(t, inputs[name], opts)
				d := digest.FromBytes(blob)
				if ref == "" {
					ref = d
					verifyClean(t, blob, res, opts)
					checkUpstreamReads(t, blob, res.TOCDigest, nil, opts.MinChunkSize > 0)
				} else if d != ref {
					t.Errorf("%s %+v: GOMAXPROCS=%d gives %s, GOMAXPROCS=1 %s", name, opts, procs, d, ref)
				}
			}
		}
	}
}

// TestPrioritized: prioritized files come first with their parents and hard
// link targets, then .prefetch.landmark; the layout is upstream's.
func TestPrioritized(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	prio := []string{"/usr/bin/busybox", "./links/hardlink-to-file", "etc/passwd"}
	blob, res := encodeBytes(t, l.Tar, EncodeOptions{PrioritizedFiles: prio, TempDir: t.TempDir()})
	ref, _, _ := upstreamBuild(t, l.Tar, upstream.WithPrioritizedFiles(prio), upstream.WithCompressionLevel(6))
	if !bytes.Equal(streamWithoutTOC(t, blob), streamWithoutTOC(t, ref)) {
		t.Errorf("uncompressed stream differs from upstream's")
	}
	if a, b := tocWithoutOffsets(t, blob), tocWithoutOffsets(t, ref); !bytes.Equal(a, b) {
		t.Errorf("TOC differs from upstream's")
	}
	info, err := Inspect(bytes.NewReader(blob), int64(len(blob)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"usr/", "usr/bin/", "usr/bin/busybox", "links/", "data/", "data/size-513", "links/hardlink-to-file", "etc/", "etc/passwd"}
	if info.Landmark != PrefetchLandmark || !slices.Equal(info.PrioritizedFiles, want) {
		t.Errorf("Inspect: landmark %q, prioritized %q; want %q", info.Landmark, info.PrioritizedFiles, want)
	}
	if info.TOCDigest != res.TOCDigest {
		t.Errorf("Inspect TOC digest %s, Encode said %s", info.TOCDigest, res.TOCDigest)
	}
	// Same files, other order.
	byName := func(fs []fileInfo) map[string]string {
		m := map[string]string{}
		for _, f := range fs {
			m[f.Name] = f.String()
		}
		return m
	}
	if !maps.Equal(byName(readTree(t, decodeBytes(t, blob, DecodeOptions{}))), byName(readTree(t, l.Tar))) {
		t.Errorf("prioritized blob decodes to other files")
	}
	verifyClean(t, blob, res, EncodeOptions{})
}

// verifyClean runs Verify on an encoded blob: no findings, except the
// warning about shared members with a min chunk size.
func verifyClean(t *testing.T, blob []byte, res *EncodeResult, opts EncodeOptions) {
	t.Helper()
	fs := Verify(context.Background(), bytes.NewReader(blob), int64(len(blob)), res.Annotations, res.DiffID, Limits{})
	if opts.MinChunkSize > 0 && len(fs) > 0 && fs[0].Check == CheckTOC && fs[0].Severity == "warning" && strings.Contains(fs[0].Message, "share a gzip member") {
		fs = fs[1:]
	}
	if len(fs) > 0 {
		t.Errorf("Verify %+v: %v", opts, fs)
	}
}

// TestReencodeIdempotent: encoding a decoded eStargz layer (with its
// estargz files) drops the old TOC and landmark and gives the same blob.
func TestReencodeIdempotent(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	blob1, _ := encodeBytes(t, l.Tar, EncodeOptions{})
	blob2, _ := encodeBytes(t, decodeBytes(t, blob1, DecodeOptions{KeepEstargzFiles: true}), EncodeOptions{})
	if !bytes.Equal(blob1, blob2) {
		t.Errorf("re-encoding an eStargz stream changes the blob")
	}
}

// TestEncodeConsumesInput: trailing bytes after the end-of-archive blocks
// are read (the pipeline checks that encoders consume the whole stream).
func TestEncodeConsumesInput(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerEndingGNURecord)
	r := bytes.NewReader(l.Tar)
	if _, err := Encode(context.Background(), io.Discard, r, EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left unread", r.Len())
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestEncodeErrors(t *testing.T) {
	in := bigLayer()
	if _, err := Encode(context.Background(), &failWriter{n: 3 << 20}, bytes.NewReader(in), EncodeOptions{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("write error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Encode(ctx, io.Discard, bytes.NewReader(in), EncodeOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if _, err := Encode(context.Background(), io.Discard, bytes.NewReader(in[:len(in)/2]), EncodeOptions{}); err == nil {
		t.Errorf("truncated tar accepted")
	}
	if _, err := Encode(context.Background(), io.Discard, bytes.NewReader(in), EncodeOptions{Level: 10}); err == nil {
		t.Errorf("level 10 accepted")
	}
}

// TestEmptyLayer: an empty tar (or no bytes at all) gives a valid blob that
// decodes to an empty archive.
func TestEmptyLayer(t *testing.T) {
	for _, in := range [][]byte{nil, make([]byte, 1024)} {
		blob, res := encodeBytes(t, in, EncodeOptions{})
		verifyClean(t, blob, res, EncodeOptions{})
		openUpstream(t, blob, res.TOCDigest)
		if got := decodeBytes(t, blob, DecodeOptions{}); !bytes.Equal(got, make([]byte, 1024)) {
			t.Errorf("empty layer decodes to %d bytes", len(got))
		}
	}
}

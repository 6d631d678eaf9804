package tarcheck

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/testimages"
	digest "github.com/opencontainers/go-digest"
)

// fuzzSeeds are the catalogue layers and a few hostile or unusual tars, all
// small: the fuzzer minimises every new input it finds, which takes long for
// large ones. Catalogue layers over 8 KiB are split into groups of a few
// entries with their contents shrunk.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, l := range testimages.Layers() {
		if len(l.Tar) <= 8<<10 {
			seeds = append(seeds, l.Tar)
			continue
		}
		var group []testimages.Entry
		for i, e := range l.Entries {
			if e.Content.Size() > 64 {
				e.Content = testimages.Random(uint64(i), 64)
			}
			group = append(group, e)
			if len(group) == 4 || i == len(l.Entries)-1 {
				seeds = append(seeds, mustTar(t, group, testimages.Ending{}))
				group = nil
			}
		}
	}
	seeds = append(seeds,
		cat(rawEntry("././@LongLink", 'L', []byte("abc\x00def\x00")), rawHeader("x", '0', 0), eofMarker),
		cat(rawEntry("PaxHeaders/x", 'x', paxRecords("path", "a/../../b", "linkpath", "/etc")), rawHeader("x", '1', 0), eofMarker),
		cat(pax1Sparse("s", []int64{1000, 5}, []byte("hello"), 3000), eofMarker),
		cat(pax01Sparse("s", []int64{10, 2, 100, 3}, []byte("hello"), 3000), eofMarker),
		cat(gnuSparseHeader("s", []int64{1000, 5, 2000, 3}, 8, 3000), padded([]byte("hellobye")), eofMarker),
		tarHeaderOnly(t, &tar.Header{Typeflag: tar.TypeReg, Name: "huge", Size: 1 << 40, Format: tar.FormatGNU}),
		mustTar(t, []testimages.Entry{
			testimages.File(".wh.x", 0o600, testimages.Content{}), testimages.File("x", 0o644, testimages.String("x")),
			testimages.Hardlink("h", "x", 0o644), testimages.Symlink("d/s", "../../x"),
		}, testimages.Ending{Kind: testimages.EndNoEOF}),
	)
	return seeds
}

// TestMain shortens the fuzzer's minimisation of new inputs (default 60s per
// input) unless -test.fuzzminimizetime is given: tar inputs are at least a
// few KiB, the byte-subset pass of the minimiser is quadratic, and with the
// default a 60-second fuzz run spends nearly all its time minimising the
// first inputs it finds.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if !set {
		if err := flag.Set("test.fuzzminimizetime", "1s"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

func FuzzScan(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	known := map[string]bool{}
	for _, id := range CheckIDs {
		known[id] = true
	}
	small := Options{KeepEntries: true, Limits: Limits{MaxEntries: 5, MaxNameLength: 40, MaxPAXRecordsSize: 200,
		MaxEntrySize: 3000, MaxFindings: 2}}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range []Options{{KeepEntries: true}, small} {
			if opts.Limits.MaxEntries != 0 {
				opts.Limits.MaxTotalSize = int64(len(data) / 2)
			}
			var hooked int
			opts.OnEntry = func(e Entry, r io.Reader) error {
				hooked++
				_, _ = io.CopyN(io.Discard, r, int64(len(data)%700)) // read errors are the scan's findings
				return nil
			}
			res, err := Scan(context.Background(), bytes.NewReader(data), opts)
			if err != nil {
				t.Fatalf("Scan error on an in-memory stream: %v", err)
			}
			checkResult(t, data, opts, res, known)
			if hooked != res.Count {
				t.Errorf("OnEntry called %d times for %d entries", hooked, res.Count)
			}
			// Deterministic, and independent of read sizes.
			again, err := Scan(context.Background(), iotestOneByte{bytes.NewReader(data)}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(again.Findings, again.Entries, again.Size, again.Digest) != fmt.Sprint(res.Findings, res.Entries, res.Size, res.Digest) {
				t.Errorf("one-byte reads differ:\n%s\nvs\n%s", dump(again.Findings), dump(res.Findings))
			}
		}
	})
}

func checkResult(t *testing.T, data []byte, opts Options, res *Result, known map[string]bool) {
	t.Helper()
	lim := opts.Limits.withDefaults()
	if res.Size > int64(len(data)) || (res.Complete && res.Size != int64(len(data))) {
		t.Fatalf("size %d of %d, complete %v", res.Size, len(data), res.Complete)
	}
	if lim.MaxTotalSize > 0 && res.Size > lim.MaxTotalSize+1 {
		t.Errorf("read %d bytes with MaxTotalSize %d", res.Size, lim.MaxTotalSize)
	}
	if sum := sha256.Sum256(data[:res.Size]); res.Digest != digest.NewDigestFromBytes(digest.SHA256, sum[:]) {
		t.Errorf("digest does not cover the bytes read")
	}
	limited := false
	perID := map[string]int{}
	for _, f := range res.Findings {
		if !known[f.Check] || f.Severity != DefaultSeverity(f.Check) || f.Message == "" {
			t.Errorf("bad finding %+v", f)
		}
		perID[f.Check]++
		limited = limited || strings.HasPrefix(f.Check, "limit.")
	}
	for id, n := range perID {
		if n > lim.MaxFindings+1 {
			t.Errorf("%d findings of %s", n, id)
		}
	}
	if !limited && !res.Complete {
		t.Errorf("stopped without a limit finding:\n%s", dump(res.Findings))
	}
	if res.Count != len(res.Entries) || res.Count > lim.MaxEntries {
		t.Errorf("count %d, %d entries", res.Count, len(res.Entries))
	}
	prev := int64(-1)
	for _, e := range res.Entries {
		if e.Offset <= prev || e.Offset%blockSize != 0 || e.DataOffset < e.Offset+blockSize || e.DataOffset > res.Size {
			t.Errorf("entry %q: offset %d data %d (previous %d, size %d)", e.Name, e.Offset, e.DataOffset, prev, res.Size)
		}
		if len(e.Name) > lim.MaxNameLength || len(e.Linkname) > lim.MaxNameLength {
			t.Errorf("entry %q over the name limit", e.Name)
		}
		prev = e.Offset
		// The entry's headers start at Offset.
		if hdr, err := tar.NewReader(bytes.NewReader(data[e.Offset:])).Next(); err == nil && hdr.Name != e.Name {
			t.Errorf("entry %q: the header at offset %d is %q", e.Name, e.Offset, hdr.Name)
		}
	}
	// Cross-check with archive/tar alone: when it reads the stream without
	// error and we found nothing broken, we agree on the entries.
	if check.HasErrors(res.Findings) {
		return
	}
	tr := tar.NewReader(bytes.NewReader(data))
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF || err == io.ErrUnexpectedEOF && len(findings(res, CheckNoEOF)) > 0 {
			break
		}
		if err != nil {
			t.Fatalf("no error findings, but archive/tar fails: %v\n%s", err, dump(res.Findings))
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if n >= len(res.Entries) || res.Entries[n].Name != hdr.Name {
			t.Fatalf("entry %d: archive/tar reads %q", n, hdr.Name)
		}
		if res.Entries[n].Sparse && hdr.Size > 1<<20 {
			n++ // expanding it would take long; Next checks the physical data
			continue
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("no error findings, but archive/tar fails reading %q: %v", hdr.Name, err)
		}
		// The data section starts at DataOffset.
		if e := res.Entries[n]; !e.Sparse && len(content) > 0 && !bytes.Equal(data[e.DataOffset:e.DataOffset+int64(len(content))], content) {
			t.Errorf("entry %q: the data is not at offset %d", e.Name, e.DataOffset)
		}
		n++
	}
	if n != res.Count {
		t.Errorf("archive/tar reads %d entries, Scan %d", n, res.Count)
	}
}

// TestFuzzSeeds runs the fuzz checks on the seeds in normal test runs.
func TestFuzzSeeds(t *testing.T) {
	for i, s := range fuzzSeeds(t) {
		res := scan(t, s, Options{KeepEntries: true})
		known := map[string]bool{}
		for _, id := range CheckIDs {
			known[id] = true
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkResult(t, s, Options{KeepEntries: true}, res, known) })
	}
}

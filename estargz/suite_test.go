package estargz

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"testing"

	upstream "github.com/containerd/stargz-snapshotter/estargz"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
)

// This file is the equivalent of upstream's CompressionTestSuite for a writer
// that is not an upstream Compression: the suite's testBuild inputs (its four
// entry sets, chunk size 4, min chunk sizes 0 and 64000, names with the
// prefixes "", "./", "/" and "../", ustar, PAX and GNU headers) go through
// Encode and are checked against upstream's Build on the same input, with
// upstream's reader, and gzip member by member. (The suite itself cannot run
// on this writer: it drives upstream's Writer with a Compression.
// testDigestAndVerify's tampering cases are in verify_test.go.)

type member struct{ c, u int64 }

// members lists where each gzip member of a blob starts, compressed and
// uncompressed.
func members(t testing.TB, blob []byte) []member {
	t.Helper()
	br := bytes.NewReader(blob)
	zr := new(gzip.Reader)
	var out []member
	var u int64
	for br.Len() > 0 {
		c := int64(len(blob) - br.Len())
		if err := zr.Reset(br); err != nil {
			t.Fatalf("gzip member at %d: %v", c, err)
		}
		zr.Multistream(false)
		n, err := io.Copy(io.Discard, zr)
		if err != nil {
			t.Fatalf("gzip member at %d: %v", c, err)
		}
		out = append(out, member{c, u})
		u += n
	}
	return out
}

func suiteEntries(prefix string, format tar.Format) map[string][]testimages.Entry {
	f := func(name, content string, xattrs ...string) testimages.Entry {
		e := testimages.File(prefix+name, 0o644, testimages.String(content))
		e.Format = format
		if len(xattrs) == 2 {
			e.Xattrs = map[string]string{xattrs[0]: xattrs[1]}
			e.Format = tar.FormatPAX // as upstream's helper: only PAX supports xattrs
		}
		return e
	}
	d := func(name string) testimages.Entry {
		e := testimages.Dir(prefix+name, 0o755)
		e.Format = format
		return e
	}
	sl := func(name, target string) testimages.Entry {
		e := testimages.Symlink(prefix+name, target)
		e.Format = format
		return e
	}
	hl := func(name, target string) testimages.Entry {
		e := testimages.Hardlink(prefix+name, prefix+target, 0o644)
		e.Format = format
		return e
	}
	dev := func(typ byte, name string, major, minor int64) testimages.Entry {
		e := testimages.Entry{Type: typ, Name: prefix + name, Mode: 0o644, Devmajor: major, Devminor: minor, Format: format}
		return e
	}
	return map[string][]testimages.Entry{
		"regfiles and directories": {f("foo", "test1"), d("foo2/"), f("foo2/bar", "test2", "user.test", "sample")},
		"empty files": {f("foo", "tttttt"), f("foo_empty", ""), f("foo2", "tttttt"), f("foo_empty2", ""), f("foo3", "tttttt"),
			f("foo_empty3", ""), f("foo4", "tttttt"), f("foo_empty4", ""), f("foo5", "tttttt"), f("foo_empty5", ""), f("foo6", "tttttt")},
		"various files": {f("baz.txt", "bazbazbazbazbazbazbaz"), f("foo1.txt", "a"), f("bar/foo2.txt", "b"), f("foo3.txt", "c"),
			sl("barlink", "test/bar.txt"), d("test/"), d("dev/"), dev(tar.TypeBlock, "dev/testblock", 3, 4), dev(tar.TypeFifo, "dev/testfifo", 0, 0),
			dev(tar.TypeChar, "dev/testchar1", 5, 6), f("test/bar.txt", "testbartestbar", "user.test2", "sample2"), d("test2/"),
			hl("test2/bazlink", "baz.txt"), dev(tar.TypeChar, "dev/testchar2", 1, 2)},
		"no contents": {f("baz.txt", ""), sl("barlink", "test/bar.txt"), d("test/"), d("dev/"), dev(tar.TypeBlock, "dev/testblock", 3, 4),
			dev(tar.TypeFifo, "dev/testfifo", 0, 0), dev(tar.TypeChar, "dev/testchar1", 5, 6), f("test/bar.txt", "", "user.test2", "sample2"),
			d("test2/"), hl("test2/bazlink", "baz.txt"), dev(tar.TypeChar, "dev/testchar2", 1, 2)},
	}
}

func TestUpstreamSuiteInputs(t *testing.T) {
	for _, prefix := range []string{"", "./", "/", "../"} {
		for _, format := range []tar.Format{tar.FormatUSTAR, tar.FormatPAX, tar.FormatGNU} {
			sets := suiteEntries(prefix, format)
			for _, name := range slices.Sorted(maps.Keys(sets)) {
				in := testimages.MustBuildTar(sets[name], testimages.Ending{})
				mins := []int{0}
				if name == "various files" {
					mins = append(mins, 64000)
				}
				for _, minChunk := range mins {
					t.Run(fmt.Sprintf("%s/prefix=%q,format=%s,min=%d", name, prefix, format, minChunk), func(t *testing.T) {
						checkAgainstUpstream(t, in, EncodeOptions{ChunkSize: 4, MinChunkSize: minChunk})
					})
				}
			}
		}
	}
}

// checkAgainstUpstream encodes in and checks the blob against upstream's
// Build of the same input: same stream up to the TOC and same TOC except
// offsets (without a min chunk size, for which the member grouping is
// ours), the same member layout, a DiffID and size that are the stream's,
// upstream Open/VerifyTOC, and a clean Verify.
func checkAgainstUpstream(t *testing.T, in []byte, opts EncodeOptions) {
	t.Helper()
	blob, res := encodeBytes(t, in, opts)
	uopts := []upstream.Option{upstream.WithChunkSize(opts.ChunkSize), upstream.WithCompressionLevel(6)}
	if opts.MinChunkSize > 0 {
		uopts = append(uopts, upstream.WithMinChunkSize(opts.MinChunkSize))
	}
	ref, _, _ := upstreamBuild(t, in, uopts...)
	if !bytes.Equal(streamWithoutTOC(t, blob), streamWithoutTOC(t, ref)) {
		t.Errorf("stream differs from upstream's")
	}
	if opts.MinChunkSize == 0 {
		if a, b := tocWithoutOffsets(t, blob), tocWithoutOffsets(t, ref); !bytes.Equal(a, b) {
			t.Errorf("TOC differs from upstream's:\n%s\nupstream:\n%s", a, b)
		}
		// Members start at the same uncompressed offsets as upstream's.
		ours, theirs := members(t, blob), members(t, ref)
		if len(ours) != len(theirs) {
			t.Fatalf("%d gzip members, upstream %d", len(ours), len(theirs))
		}
		for i := range ours {
			if ours[i].u != theirs[i].u {
				t.Errorf("member %d starts at uncompressed offset %d, upstream's at %d", i, ours[i].u, theirs[i].u)
			}
		}
		// And exactly at the blob start, each chunk, the TOC and the footer.
		toc, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]bool{0: true, toc.Footer.TOCOffset: true, int64(len(blob) - FooterSize): true}
		for _, e := range toc.Entries {
			if isData(e) {
				want[e.Offset] = true
			}
		}
		got := map[int64]bool{}
		for _, m := range ours {
			got[m.c] = true
		}
		if !maps.Equal(got, want) {
			t.Errorf("members start at %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	}
	full := gunzipAll(t, blob)
	if digest.FromBytes(full) != res.DiffID || int64(len(full)) != res.UncompressedSize {
		t.Errorf("DiffID/size are not the stream's")
	}
	want := readTree(t, in)
	checkUpstreamReads(t, blob, res.TOCDigest, want, opts.MinChunkSize > 0)
	verifyClean(t, blob, res, opts)
	if got := readTree(t, decodeBytes(t, blob, DecodeOptions{})); len(got) != len(want) {
		t.Errorf("decodes to %d entries, want %d", len(got), len(want))
	}
	_ = context.Background
}

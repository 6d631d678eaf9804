package tarcheck

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/testimages"
)

// scan runs Scan on b and fails the test on an error.
func scan(t testing.TB, b []byte, opts Options) *Result {
	t.Helper()
	res, err := Scan(context.Background(), bytes.NewReader(b), opts)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return res
}

// idSet returns the distinct check ids of fs, sorted.
func idSet(fs []check.Finding) []string {
	m := map[string]bool{}
	for _, f := range fs {
		m[f.Check] = true
	}
	return slices.Sorted(maps.Keys(m))
}

// wantIDs fails unless the distinct check ids of res are exactly want.
func wantIDs(t testing.TB, res *Result, want ...string) {
	t.Helper()
	slices.Sort(want)
	want = slices.Compact(want)
	if want == nil {
		want = []string{}
	}
	if got := idSet(res.Findings); !slices.Equal(got, want) {
		t.Errorf("check ids = %q, want %q\nfindings:\n%s", got, want, dump(res.Findings))
	}
}

// findings returns the findings of check id.
func findings(res *Result, id string) []check.Finding {
	var out []check.Finding
	for _, f := range res.Findings {
		if f.Check == id {
			out = append(out, f)
		}
	}
	return out
}

func dump(fs []check.Finding) string {
	var b bytes.Buffer
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s [%s] %q: %s\n", f.Check, f.Severity, f.Path, f.Message)
	}
	return b.String()
}

func mustTar(t testing.TB, entries []testimages.Entry, end testimages.Ending) []byte {
	t.Helper()
	b, err := testimages.BuildTar(entries, end)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawHeader builds a ustar header block by hand, for headers archive/tar
// refuses to write.
func rawHeader(name string, typ byte, size int64) []byte {
	blk := make([]byte, blockSize)
	copy(blk[0:100], name)
	putOctal(blk[100:108], 0o644)
	putOctal(blk[108:116], 0)
	putOctal(blk[116:124], 0)
	putOctal(blk[124:136], size)
	putOctal(blk[136:148], 1700000000)
	blk[156] = typ
	copy(blk[257:], "ustar\x0000")
	fixChecksum(blk)
	return blk
}

// rawLink is rawHeader with a link name.
func rawLink(name string, typ byte, size int64, link string) []byte {
	blk := rawHeader(name, typ, size)
	copy(blk[157:257], link)
	fixChecksum(blk)
	return blk
}

func putOctal(b []byte, v int64) {
	s := strconv.FormatInt(v, 8)
	for len(s) < len(b)-1 {
		s = "0" + s
	}
	copy(b, s)
	b[len(b)-1] = 0
}

func fixChecksum(blk []byte) {
	copy(blk[148:156], "        ")
	var sum int64
	for _, c := range blk {
		sum += int64(c)
	}
	copy(blk[148:], fmt.Sprintf("%06o\x00 ", sum))
}

// padded returns b zero-padded to a multiple of the block size.
func padded(b []byte) []byte {
	return append(b, make([]byte, -len(b)&(blockSize-1))...)
}

// paxRecords encodes PAX records (keys in the order given).
func paxRecords(kv ...string) []byte {
	var out []byte
	for i := 0; i+1 < len(kv); i += 2 {
		body := " " + kv[i] + "=" + kv[i+1] + "\n"
		size := len(body) + len(strconv.Itoa(len(body)))
		if len(strconv.Itoa(size)+body) != size {
			size++
		}
		out = append(out, strconv.Itoa(size)+body...)
	}
	return out
}

// rawEntry is a raw extension header ('x', 'g', 'L', 'K') with its data.
func rawEntry(name string, typ byte, data []byte) []byte {
	return append(rawHeader(name, typ, int64(len(data))), padded(bytes.Clone(data))...)
}

var eofMarker = make([]byte, 2*blockSize)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// tarHeaderOnly writes hdr with archive/tar and returns the header blocks
// alone (no data, no end marker), for hostile size claims.
func tarHeaderOnly(t testing.TB, hdr *tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

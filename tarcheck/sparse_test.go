package tarcheck

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"
)

// gnuSparseHeader builds an old GNU sparse ('S') header with the given
// fragments (offset, length pairs; at most 4 in the header, the rest in
// extension blocks), physical size and real size.
func gnuSparseHeader(name string, frags []int64, physical, real int64) []byte {
	blk := rawHeader(name, 'S', physical)
	copy(blk[257:265], "ustar  \x00")
	putOctal(blk[483:495], real)
	put := func(b []byte, i int, frags []int64) {
		putOctal(b[i*24:i*24+12], frags[0])
		putOctal(b[i*24+12:i*24+24], frags[1])
	}
	n := 0
	for ; n < 4 && 2*n < len(frags); n++ {
		put(blk[386:482], n, frags[2*n:])
	}
	rest := frags[2*n:]
	if len(rest) > 0 {
		blk[482] = 1
	}
	fixChecksum(blk)
	out := blk
	for len(rest) > 0 {
		ext := make([]byte, blockSize)
		i := 0
		for ; i < 21 && len(rest) > 0; i++ {
			put(ext, i, rest)
			rest = rest[2:]
		}
		if len(rest) > 0 {
			ext[504] = 1
		}
		out = append(out, ext...)
	}
	return out
}

// pax1Sparse is a PAX GNU sparse 1.0 entry: the records, then the header,
// then the data section (map, data) padded.
func pax1Sparse(name string, frags []int64, data []byte, real int64) []byte {
	m := strconv.Itoa(len(frags)/2) + "\n"
	for _, f := range frags {
		m += strconv.FormatInt(f, 10) + "\n"
	}
	section := append(padded([]byte(m)), data...)
	return cat(
		rawEntry("PaxHeaders/"+name, 'x', paxRecords("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", name,
			"GNU.sparse.realsize", strconv.FormatInt(real, 10))),
		rawHeader("GNUSparseFile.0/"+name, '0', int64(len(section))), padded(section))
}

func pax01Sparse(name string, frags []int64, data []byte, real int64) []byte {
	var m string
	for i, f := range frags {
		if i > 0 {
			m += ","
		}
		m += strconv.FormatInt(f, 10)
	}
	return cat(
		rawEntry("PaxHeaders/"+name, 'x', paxRecords("GNU.sparse.major", "0", "GNU.sparse.minor", "1", "GNU.sparse.name", name,
			"GNU.sparse.size", strconv.FormatInt(real, 10), "GNU.sparse.numblocks", strconv.Itoa(len(frags)/2), "GNU.sparse.map", m)),
		rawHeader("GNUSparseFile.0/"+name, '0', int64(len(data))), padded(bytes.Clone(data)))
}

func TestSparse(t *testing.T) {
	after := cat(rawHeader("after", '0', 3), padded([]byte("end")))
	many := make([]int64, 0, 60)
	var manyData []byte
	for i := range 30 {
		many = append(many, int64(i)*100, 2)
		manyData = append(manyData, 'a'+byte(i), 'A'+byte(i))
	}
	cases := []struct {
		name string
		tar  []byte
		want string // expanded content of "s"
	}{
		{"old GNU", cat(gnuSparseHeader("s", []int64{1000, 5}, 5, 3000), padded([]byte("hello")), after, eofMarker), "hello"},
		{"old GNU extended", cat(gnuSparseHeader("s", many, int64(len(manyData)), 3000), padded(manyData), after, eofMarker), string(manyData)},
		{"PAX 1.0", cat(pax1Sparse("s", []int64{1000, 5}, []byte("hello"), 3000), after, eofMarker), "hello"},
		{"PAX 1.0 large map", cat(pax1Sparse("s", many, manyData, 3000), after, eofMarker), string(manyData)},
		{"PAX 0.1", cat(pax01Sparse("s", []int64{1000, 5}, []byte("hello"), 3000), after, eofMarker), "hello"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Without a hook, the data is skipped.
			res := scan(t, c.tar, Options{KeepEntries: true})
			wantIDs(t, res)
			if len(res.Entries) != 2 || res.Entries[0].Name != "s" || !res.Entries[0].Sparse || res.Entries[0].Size != 3000 ||
				res.Entries[1].Name != "after" || res.Entries[1].Sparse {
				t.Fatalf("entries %+v", res.Entries)
			}
			if a := res.Entries[1]; string(c.tar[a.DataOffset:a.DataOffset+3]) != "end" || !bytes.Equal(c.tar[a.Offset:a.Offset+blockSize], rawHeader("after", '0', 3)) {
				t.Errorf("entry after the sparse file at the wrong offsets %d, %d", a.Offset, a.DataOffset)
			}
			if sp := res.Entries[0]; sp.Offset != 0 || sp.DataOffset%blockSize != 0 || sp.DataOffset >= res.Entries[1].Offset {
				t.Errorf("sparse entry at offsets %d, %d", sp.Offset, sp.DataOffset)
			}
			// With a hook, the content is expanded.
			var got []byte
			res = scan(t, c.tar, Options{OnEntry: func(e Entry, r io.Reader) error {
				if e.Name == "s" {
					b, err := io.ReadAll(r)
					got = bytes.ReplaceAll(b, []byte{0}, nil)
					if len(b) != 3000 {
						t.Errorf("expanded to %d bytes", len(b))
					}
					return err
				}
				return nil
			}})
			wantIDs(t, res)
			if string(got) != c.want {
				t.Errorf("content %q, want %q", got, c.want)
			}
		})
	}

	// Fragment maps that promise more or less data than there is: archive/tar
	// notices when the content is read, Scan without reading it.
	for _, bad := range [][]byte{
		cat(gnuSparseHeader("s", []int64{1000, 50}, 5, 3000), padded([]byte("hello")), after, eofMarker),
		cat(gnuSparseHeader("s", []int64{1000, 3}, 5, 3000), padded([]byte("hello")), after, eofMarker),
		cat(gnuSparseHeader("s", append(slices.Clone(many[:len(many)-2]), 2900, 3), int64(len(manyData)), 3000), padded(manyData), after, eofMarker),
		cat(pax1Sparse("s", []int64{1000, 4}, []byte("hello"), 3000), after, eofMarker),
		cat(pax1Sparse("s", []int64{1000, 6}, []byte("hello"), 3000), after, eofMarker),
		cat(pax01Sparse("s", []int64{1000, 4}, []byte("hello"), 3000), after, eofMarker),
	} {
		wantIDs(t, scan(t, bad, Options{}), CheckHeader)
		wantIDs(t, scan(t, bad, Options{OnEntry: func(e Entry, r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }}), CheckHeader)
	}
	// Truncated inside a sparse file's data.
	trunc := cat(gnuSparseHeader("s", []int64{1000, 600}, 600, 3000), []byte("hello"))
	wantIDs(t, scan(t, trunc, Options{}), CheckHeader)
}

// TestSparseBomb: sparse files claiming a huge expanded size cost nothing
// unless OnEntry reads them.
func TestSparseBomb(t *testing.T) {
	var b []byte
	for range 200 {
		b = append(b, pax1Sparse("s", []int64{60 << 30, 1}, []byte("x"), 60<<30+1)...)
	}
	b = append(b, eofMarker...)
	start := time.Now()
	res, err := Scan(context.Background(), bytes.NewReader(b), Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, res, CheckDuplicatePath)
	if res.Count != 200 || !res.Complete {
		t.Errorf("count %d complete %v", res.Count, res.Complete)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	// The expanded size is what MaxEntrySize limits.
	wantIDs(t, scan(t, b, Options{Limits: Limits{MaxEntrySize: 1 << 30}}), CheckLimitEntrySize)
}

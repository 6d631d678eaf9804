package estargz

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"testing"
)

// TestTOCJSONMatchesEncodingJSON: appendTOCJSON writes exactly what
// json.MarshalIndent(toc, "", "\t") writes (upstream's TOC bytes), for
// entries with every field set or zero and strings needing every kind of
// escape.
func TestTOCJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "a", "usr/bin/go", "./a b", "quote\"d", `back\slash`, "<html>&amp;", "tab\tnl\ncr\r",
		"\x00\x01\x1f\x7f", "\b\f", "é ü 日本", "\u2028\u2029", "bad\xffutf8", "emoji 🙂", "~!@#$%^*()_+={}[]|:;',.?/"}
	r := rand.New(rand.NewSource(1))
	pick := func() string { return strs[r.Intn(len(strs))] }
	num := func() int64 {
		switch r.Intn(4) {
		case 0:
			return 0
		case 1:
			return -r.Int63n(1 << 40)
		default:
			return r.Int63()
		}
	}
	randomEntry := func() *TOCEntry {
		e := &TOCEntry{Name: pick(), Type: pick(), Size: num(), ModTime3339: pick(), LinkName: pick(), Mode: num(),
			UID: int(num()), GID: int(num()), Uname: pick(), Gname: pick(), Offset: num(), InnerOffset: num(),
			DevMajor: int(num()), DevMinor: int(num()), Digest: pick(), ChunkOffset: num(), ChunkSize: num(), ChunkDigest: pick()}
		switch r.Intn(4) {
		case 0:
		case 1:
			e.Xattrs = map[string][]byte{}
		default:
			e.Xattrs = map[string][]byte{}
			for range 1 + r.Intn(4) {
				var v []byte
				switch r.Intn(3) {
				case 0:
				case 1:
					v = []byte{}
				default:
					v = []byte(pick())
				}
				e.Xattrs[pick()] = v
			}
		}
		return e
	}
	check := func(toc *JTOC) {
		t.Helper()
		want, err := json.MarshalIndent(toc, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		got := appendTOCJSON([]byte("prefix"), toc)
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("appendTOCJSON differs from encoding/json:\ngot:\n%s\nwant:\n%s", got[len("prefix"):], want)
		}
	}
	check(&JTOC{Version: 1})
	check(&JTOC{Version: 0, Entries: []*TOCEntry{}})
	check(&JTOC{Version: 1, Entries: []*TOCEntry{{}, nil, {Name: "x", Type: "reg"}}})
	for range 2000 {
		toc := &JTOC{Version: r.Intn(3), Entries: make([]*TOCEntry, 1+r.Intn(5))}
		for i := range toc.Entries {
			toc.Entries[i] = randomEntry()
		}
		check(toc)
	}
}

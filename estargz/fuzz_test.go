package estargz

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/klauspost/compress/gzip"
)

var fuzzLimits = Limits{MaxTOCSize: 1 << 20, MaxEntries: 2000, MaxNameLength: 4096}

func fuzzSeedBlob(t testing.TB) []byte {
	l, _ := testimages.LayerByName(testimages.LayerPlatformAMD64)
	blob, _ := encodeBytes(t, l.Tar, EncodeOptions{ChunkSize: 700})
	return blob
}

// FuzzReadTOC feeds arbitrary blobs to the footer and TOC readers (and, when
// they accept it, to Inspect and Verify): no panic, limits respected, and an
// accepted footer re-encodes to the same bytes.
func FuzzReadTOC(f *testing.F) {
	blob := fuzzSeedBlob(f)
	f.Add(blob)
	f.Add(append(bytes.Clone(blob[:len(blob)-FooterSize]), Footer{TOCOffset: int64(len(blob) - FooterSize - 200), Legacy: true}.Bytes()...))
	f.Add(Footer{}.Bytes())
	f.Add(Footer{Legacy: true}.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, n := range []int{FooterSize, LegacyFooterSize} {
			if len(data) >= n {
				if ft, err := ParseFooter(data[len(data)-n:]); err == nil {
					if ft.Size() != int64(n) {
						t.Fatalf("footer of %d bytes parsed as %+v", n, ft)
					}
				}
			}
		}
		ra, size := bytes.NewReader(data), int64(len(data))
		toc, err := ReadTOC(ra, size, fuzzLimits)
		if err != nil {
			return
		}
		if len(toc.Entries) > fuzzLimits.MaxEntries || int64(len(toc.JSON)) > fuzzLimits.MaxTOCSize {
			t.Fatalf("limits not enforced: %d entries, %d bytes", len(toc.Entries), len(toc.JSON))
		}
		if _, err := Inspect(ra, size, fuzzLimits); err != nil {
			t.Fatalf("ReadTOC accepts what Inspect refuses: %v", err)
		}
		Verify(context.Background(), ra, size, nil, "", fuzzLimits)
	})
}

// blobWithTOCJSON puts arbitrary TOC JSON into a valid eStargz blob (the
// payload of a real one, a TOC member holding js, a footer).
func blobWithTOCJSON(payload, js []byte) []byte {
	var tt bytes.Buffer
	tw := tar.NewWriter(&tt)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: TOCTarName, Size: int64(len(js))})
	tw.Write(js)
	tw.Close()
	out := bytes.NewBuffer(bytes.Clone(payload))
	zw, _ := gzip.NewWriterLevel(out, 1)
	zw.Write(tt.Bytes())
	zw.Close()
	out.Write(Footer{TOCOffset: int64(len(payload))}.Bytes())
	return out.Bytes()
}

// FuzzTOCJSON feeds arbitrary TOC JSON, inside an otherwise valid blob, to
// ReadTOC, Inspect and Verify: no panic, no hang, limits respected.
func FuzzTOCJSON(f *testing.F) {
	blob := fuzzSeedBlob(f)
	toc, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), Limits{})
	if err != nil {
		f.Fatal(err)
	}
	payload := blob[:toc.Footer.TOCOffset]
	f.Add(toc.JSON)
	f.Add([]byte(`{"version":1,"entries":[{"name":"a","type":"chunk","offset":10,"chunkSize":-5}]}`))
	f.Add([]byte(`{"version":1,"entries":[{"name":"a","type":"reg","size":100,"offset":0,"chunkSize":1},{"type":"chunk","offset":0,"chunkOffset":1}]}`))
	f.Add([]byte(`{"Entries":[{"name":"h","type":"hardlink","linkName":"h"}],"extra":[1,2,{}]}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		b := blobWithTOCJSON(payload, js)
		ra, size := bytes.NewReader(b), int64(len(b))
		toc, err := ReadTOC(ra, size, fuzzLimits)
		if err != nil {
			return
		}
		if len(toc.Entries) > fuzzLimits.MaxEntries {
			t.Fatalf("%d entries", len(toc.Entries))
		}
		for _, e := range toc.Entries {
			if len(e.Name) > fuzzLimits.MaxNameLength || len(e.LinkName) > fuzzLimits.MaxNameLength {
				t.Fatalf("name of %d bytes", len(e.Name))
			}
		}
		if _, err := Inspect(ra, size, fuzzLimits); err != nil {
			t.Fatal(err)
		}
		Verify(context.Background(), ra, size, map[string]string{AnnotationTOCDigest: toc.Digest.String()}, "", fuzzLimits)
	})
}

package estargz

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	upstream "github.com/containerd/stargz-snapshotter/estargz"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
)

func encodeBytes(t testing.TB, in []byte, opts EncodeOptions) ([]byte, *EncodeResult) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Encode(context.Background(), &buf, bytes.NewReader(in), opts)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes(), res
}

// upstreamBuild runs upstream's Build with one worker and returns the blob,
// its diffID and TOC digest.
func upstreamBuild(t testing.TB, in []byte, opts ...upstream.Option) ([]byte, digest.Digest, digest.Digest) {
	t.Helper()
	blob, err := upstream.Build(io.NewSectionReader(bytes.NewReader(in), 0, int64(len(in))), append([]upstream.Option{upstream.WithParallelism(1)}, opts...)...)
	if err != nil {
		t.Fatalf("upstream Build: %v", err)
	}
	out, err := io.ReadAll(blob)
	if err != nil {
		t.Fatal(err)
	}
	blob.Close()
	return out, blob.DiffID(), blob.TOCDigest()
}

func gunzipAll(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// openUpstream opens a blob with upstream's reader and checks its TOC digest
// and that it has a verifier for every chunk.
func openUpstream(t testing.TB, blob []byte, tocDigest digest.Digest) *upstream.Reader {
	t.Helper()
	r, err := upstream.Open(io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob))))
	if err != nil {
		t.Fatalf("upstream Open: %v", err)
	}
	if _, err := r.VerifyTOC(tocDigest); err != nil {
		t.Fatalf("upstream VerifyTOC: %v", err)
	}
	return r
}

// tocWithoutOffsets returns the TOC JSON of a blob with the compressed offsets
// zeroed, for comparing layouts between writers.
func tocWithoutOffsets(t testing.TB, blob []byte) []byte {
	t.Helper()
	toc, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), Limits{})
	if err != nil {
		t.Fatalf("ReadTOC: %v", err)
	}
	for _, e := range toc.Entries {
		e.Offset = 0
	}
	b, err := json.MarshalIndent(toc.JTOC, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// streamWithoutTOC is a blob's uncompressed stream without the TOC entry and
// the end-of-archive blocks after it (the TOC holds compressed offsets, which
// differ between writers).
func streamWithoutTOC(t testing.TB, blob []byte) []byte {
	t.Helper()
	toc, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), Limits{})
	if err != nil {
		t.Fatalf("ReadTOC: %v", err)
	}
	s := gunzipAll(t, blob)
	n := 512 + (len(toc.JSON)+511)/512*512 + 1024
	if len(s) < n {
		t.Fatalf("stream of %d bytes is shorter than its TOC entry", len(s))
	}
	return s[:len(s)-n]
}

package layerformat_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/fmtconv/fmtconv/internal/hashio"
	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/layerformat"
)

// TestHashedStreams: an encoder given fmtconv's hashing reader and writer (whose digests it
// takes instead of hashing the stream again) writes the same blob and reports the same diff_id
// and size as with a plain reader and writer, and a reader that was already read from is not
// taken for the whole stream.
func TestHashedStreams(t *testing.T) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	ctx := context.Background()
	for _, k := range []layerformat.Kind{layerformat.Uncompressed, layerformat.Gzip, layerformat.Zstd, layerformat.ZstdChunked} {
		var plain bytes.Buffer
		want, err := layerformat.Encode(ctx, k, &plain, bytes.NewReader(l.Tar), layerformat.EncodeOptions{})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		var out bytes.Buffer
		hw := hashio.NewWriter(&out)
		got, err := layerformat.Encode(ctx, k, hw, hashio.NewReader(bytes.NewReader(l.Tar)), layerformat.EncodeOptions{})
		if err != nil {
			t.Fatalf("%s hashed: %v", k, err)
		}
		if !bytes.Equal(out.Bytes(), plain.Bytes()) || got.DiffID != want.DiffID || got.UncompressedSize != want.UncompressedSize {
			t.Errorf("%s: hashed streams gave %d bytes, diff_id %s, size %d; plain ones %d bytes, %s, %d",
				k, out.Len(), got.DiffID, got.UncompressedSize, plain.Len(), want.DiffID, want.UncompressedSize)
		}
		if got.DiffID != decodeDigest(t, layerformat.Format{Kind: k}, out.Bytes()) {
			t.Errorf("%s: diff_id %s is not the digest of what the blob decodes to", k, got.DiffID)
		}

		// A hashing reader that has already given bytes away hashes more than the encoder reads.
		hr := hashio.NewReader(bytes.NewReader(append([]byte("x"), l.Tar...)))
		if _, err := io.ReadFull(hr, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		late, err := layerformat.Encode(ctx, k, io.Discard, hr, layerformat.EncodeOptions{})
		if err != nil {
			t.Fatalf("%s late: %v", k, err)
		}
		if late.DiffID != want.DiffID {
			t.Errorf("%s: a reader read from before gave diff_id %s, want %s", k, late.DiffID, want.DiffID)
		}
	}
}

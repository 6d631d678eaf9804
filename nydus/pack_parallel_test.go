package nydus

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"testing"
)

// batchTar is a layer that reaches every edge of the chunk pipeline's batches:
// hundreds of small files (many chunks per batch, the 256-chunk limit with 4 KiB
// chunks), files of several chunks (a batch closing because the next chunk does
// not fit), full chunks of zeros, equal contents in different batches (dedup),
// incompressible data (stored raw) and empty files.
func batchTar(t *testing.T) []byte {
	t.Helper()
	rng := rand.New(rand.NewSource(8))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	text := func(n int) []byte {
		words := []string{"nydus ", "chunk ", "batch ", "blob ", "layer ", "rafs ", "zstd ", "\n"}
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rng.Intn(len(words))])
		}
		return b.Bytes()[:n]
	}
	shared := text(3000)
	for i := 0; i < 700; i++ {
		switch {
		case i%97 == 0:
			add(fmt.Sprintf("d%d/big%d", i%5, i), text(1<<20+rng.Intn(3<<19)))
		case i%53 == 0:
			add(fmt.Sprintf("d%d/zero%d", i%5, i), make([]byte, 1<<20+4096*rng.Intn(3)))
		case i%31 == 0:
			noise := make([]byte, 1+rng.Intn(100<<10))
			rng.Read(noise)
			add(fmt.Sprintf("d%d/noise%d", i%5, i), noise)
		case i%17 == 0:
			add(fmt.Sprintf("d%d/same%d", i%5, i), shared)
		case i%13 == 0:
			add(fmt.Sprintf("d%d/empty%d", i%5, i), nil)
		default:
			add(fmt.Sprintf("d%d/f%d", i%5, i), text(rng.Intn(9000)))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The batched pipeline writes the same blob whatever Concurrency and
// GOMAXPROCS, and the same bytes as the chunk-at-a-time pipeline it replaced
// (the digests below were written by that one, commit cf9369a).
func TestPackParallelBatches(t *testing.T) {
	in := batchTar(t)
	for _, c := range []struct {
		o    PackOptions
		want string // BlobID
	}{
		{PackOptions{}, "44ceead494543b9fec50eaa88b3f5297de1cb51053aa293a4acb5340fd2b16e0"},
		{PackOptions{ChunkSize: 4096}, "c847dcbe16690f60670c460e2da5c740334c1478cac8f8f5d57772c0d982a022"},
		{PackOptions{Compressor: "lz4_block", ChunkSize: 64 << 10}, "1df36228d7d9f9eec04a171fd354a0c3df2a93535a77c3a4fc12d9f59b819a97"},
		{PackOptions{Compressor: "none", ChunkSize: 4 << 20, Digester: "sha256"}, "e64a63057336d0616c58332ec0f64a647eff07dda77bc3c9e80c6c6b3c46845f"},
	} {
		name := fmt.Sprintf("%s/%d/%s", c.o.Compressor, c.o.ChunkSize, c.o.Digester)
		var first *PackResult
		for _, procs := range []int{1, 2} {
			for _, workers := range []int{0, 1, 2, 5} {
				old := runtime.GOMAXPROCS(procs)
				o := c.o
				o.Concurrency = workers
				res, err := Pack(context.Background(), io.Discard, bytes.NewReader(in), o)
				runtime.GOMAXPROCS(old)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if first == nil {
					first = res
					t.Logf("%s: blob %s, %d chunks (%d raw) of %d refs", name, res.BlobID, res.Chunks, res.RawChunks, res.ChunkRefs)
				} else if res.BlobID != first.BlobID {
					t.Errorf("%s: GOMAXPROCS=%d concurrency %d: blob %s, first %s", name, procs, workers, res.BlobID, first.BlobID)
				}
			}
		}
		if c.want != "" && first.BlobID != c.want {
			t.Errorf("%s: blob %s, the chunk-at-a-time pipeline wrote %s", name, first.BlobID, c.want)
		}
	}
}

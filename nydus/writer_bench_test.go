package nydus

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/internal/testimages"
)

// TestPackThroughput measures Pack on the tar named by NYDUS_BENCH_TAR (read
// into memory first), for the default options and lz4_block, with every
// GOMAXPROCS up to the machine's, and checks the blob. Skipped without the variable.
func TestPackThroughput(t *testing.T) {
	p := os.Getenv("NYDUS_BENCH_TAR")
	if p == "" {
		t.Skip("NYDUS_BENCH_TAR not set")
	}
	tarb, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		o    PackOptions
	}{{"zstd", PackOptions{}}, {"lz4_block", PackOptions{Compressor: "lz4_block"}}, {"none", PackOptions{Compressor: "none"}}} {
		for procs := 1; procs <= runtime.NumCPU(); procs++ {
			old := runtime.GOMAXPROCS(procs)
			start := time.Now()
			res, err := Pack(context.Background(), io.Discard, bytes.NewReader(tarb), c.o)
			d := time.Since(start)
			runtime.GOMAXPROCS(old)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s GOMAXPROCS=%d: %d B tar → %d B blob (%.1f%%) in %.2fs: %.0f MB/s; %d entries, %d chunks (%d raw) of %d refs, bootstrap %d B",
				c.name, procs, len(tarb), res.Size, 100*float64(res.Size)/float64(len(tarb)), d.Seconds(), float64(len(tarb))/1e6/d.Seconds(),
				res.Entries, res.Chunks, res.RawChunks, res.ChunkRefs, len(res.Bootstrap))
		}
	}
}

func BenchmarkPackBasic(b *testing.B) {
	l, _ := testimages.LayerByName(testimages.LayerBasic)
	b.SetBytes(int64(len(l.Tar)))
	for i := 0; i < b.N; i++ {
		if _, err := Pack(context.Background(), io.Discard, bytes.NewReader(l.Tar), PackOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

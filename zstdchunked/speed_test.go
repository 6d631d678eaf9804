package zstdchunked

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestMeasureSpeed compares Encode with compressor.ZstdCompressor on a real
// tar and checks that the outputs are identical. It runs only when
// ZSTDCHUNKED_BENCH_TAR names a tar file, e.g.
//
//	tar cf /tmp/gosrc.tar -C $(go env GOROOT) src
//	ZSTDCHUNKED_BENCH_TAR=/tmp/gosrc.tar go test -run TestMeasureSpeed -v ./zstdchunked/
//
// ZSTDCHUNKED_BENCH_LEVEL (default 3) and ZSTDCHUNKED_BENCH_RUNS (default 3)
// tune it.
func TestMeasureSpeed(t *testing.T) {
	path := os.Getenv("ZSTDCHUNKED_BENCH_TAR")
	if path == "" {
		t.Skip("set ZSTDCHUNKED_BENCH_TAR to a tar file")
	}
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	level, runs := 3, 3
	if v := os.Getenv("ZSTDCHUNKED_BENCH_LEVEL"); v != "" {
		level, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("ZSTDCHUNKED_BENCH_RUNS"); v != "" {
		runs, _ = strconv.Atoi(v)
	}
	best := func(f func() []byte) (time.Duration, []byte) {
		var b time.Duration
		var out []byte
		for i := 0; i < runs; i++ {
			runtime.GC()
			start := time.Now()
			out = f()
			if d := time.Since(start); i == 0 || d < b {
				b = d
			}
		}
		return b, out
	}
	var refAnn map[string]string
	refTime, ref := best(func() []byte {
		out, ann, err := refEncode(t, in, level)
		if err != nil {
			t.Fatal(err)
		}
		refAnn = ann
		return out
	})
	var res *EncodeResult
	ourTime, ours := best(func() []byte {
		var buf bytes.Buffer
		buf.Grow(len(in) / 3)
		r, err := Encode(context.Background(), &buf, bytes.NewReader(in), EncodeOptions{Level: level})
		if err != nil {
			t.Fatal(err)
		}
		res = r
		return buf.Bytes()
	})
	mb := float64(len(in)) / 1e6
	t.Logf("input %.1f MB, level %d, GOMAXPROCS %d, best of %d", mb, level, runtime.GOMAXPROCS(0), runs)
	t.Logf("compressor.ZstdCompressor: %v (%.0f MB/s), output %d bytes", refTime, mb/refTime.Seconds(), len(ref))
	t.Logf("Encode:                    %v (%.0f MB/s), output %d bytes, deviated %v", ourTime, mb/ourTime.Seconds(), len(ours), res.Deviated)
	t.Logf("speed-up %.2fx", refTime.Seconds()/ourTime.Seconds())
	if !bytes.Equal(ours, ref) || !reflect.DeepEqual(res.Annotations, refAnn) {
		t.Fatalf("outputs differ (first difference at %d)", firstDiff(ours, ref))
	}
	if res.DiffID.String() != sha(in) {
		t.Fatal("diff_id differs from the input")
	}
}

// TestMeasureVerifySpeed times Verify on Encode's blob of the tar named by
// ZSTDCHUNKED_BENCH_TAR (read from a temporary file, as fmtconv verify
// does), and requires a clean result.
func TestMeasureVerifySpeed(t *testing.T) {
	path := os.Getenv("ZSTDCHUNKED_BENCH_TAR")
	if path == "" {
		t.Skip("set ZSTDCHUNKED_BENCH_TAR to a tar file")
	}
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "blob")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Encode(context.Background(), f, bytes.NewReader(in), EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in = nil
	var best time.Duration
	for i := 0; i < 2; i++ {
		runtime.GC()
		start := time.Now()
		info, fs, err := Verify(context.Background(), f, res.CompressedSize, res.Annotations, VerifyOptions{DiffID: res.DiffID})
		d := time.Since(start)
		if err != nil || len(fs) != 0 {
			t.Fatalf("Verify: %v%s", err, dumpFindings(fs))
		}
		if i == 0 || d < best {
			best = d
		}
		if i == 0 {
			t.Logf("%d entries, %d files, %d chunks", info.Entries, info.Files, info.Chunks)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mb := float64(res.UncompressedSize) / 1e6
	t.Logf("Verify of %.1f MB (%d bytes compressed), GOMAXPROCS %d: %v (%.0f MB/s of layer), heap in use after %d MB",
		mb, res.CompressedSize, runtime.GOMAXPROCS(0), best, mb/best.Seconds(), ms.HeapInuse>>20)
}

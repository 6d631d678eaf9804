package zstdchunked

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"go.podman.io/storage/pkg/chunked/compressor"
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

// TestMeasureGzipPipeline measures gzip -> zstd:chunked the way fmtconv runs
// it, each case in its own process (wall time, CPU time, peak RSS): the
// layer named by ZSTDCHUNKED_BENCH_GZ (a gzip-compressed tar) is gunzipped
// with klauspost/compress/gzip and fed to
//
//   - reference:  compressor.ZstdCompressor (go.podman.io/storage), output
//     to a file and hashed, as internal/bench does;
//   - ref-tar:    the same reading the tar, gunzipped beforehand to a file
//     (the reference without the gunzip);
//   - sequential: Encode with Parallelism 1, output to a file;
//   - parallel:   Encode with Parallelism 0 and GOMAXPROCS=2;
//
// and the floor is `gzip -dc LAYER | zstd -3 -T2 > /dev/null`. Cases
// alternate for ZSTDCHUNKED_BENCH_RUNS rounds (default 5); the medians are
// logged, with the largest peak RSS (ru_maxrss of the child; for the floor,
// its largest process). The three blobs must be identical, and so must the
// blobs of Encode under GOMAXPROCS=1 (sequential and 3 workers), GOMAXPROCS=8
// and 8 workers on GOMAXPROCS=2. ZSTDCHUNKED_BENCH_PROFILE=DIR writes a CPU
// profile of each Go case.
//
//	ZSTDCHUNKED_BENCH_GZ=/tmp/layer.gz go test -run TestMeasureGzipPipeline -v -timeout 1h ./zstdchunked/
func TestMeasureGzipPipeline(t *testing.T) {
	path := os.Getenv("ZSTDCHUNKED_BENCH_GZ")
	if path == "" {
		t.Skip("set ZSTDCHUNKED_BENCH_GZ to a gzip-compressed tar")
	}
	runs := 5
	if v := os.Getenv("ZSTDCHUNKED_BENCH_RUNS"); v != "" {
		runs, _ = strconv.Atoi(v)
	}
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "layer.tar")
	tarSize, err := gunzipTo(path, tarPath)
	if err != nil {
		t.Fatal(err)
	}
	type sample struct{ wall, cpu, rssMiB float64 }
	cases := []string{"floor", "reference", "ref-tar", "sequential", "parallel"}
	samples := map[string][]sample{}
	digests := map[string]string{}
	for round := 0; round < runs; round++ {
		for _, c := range cases {
			var cmd *exec.Cmd
			if c == "floor" {
				cmd = exec.Command("sh", "-c", `gzip -dc "$1" | zstd -q -3 -T2 > /dev/null`, "sh", path)
			} else {
				cmd = exec.Command(os.Args[0], "-test.run=^TestMeasureChild$", "-test.v")
				cmd.Env = append(os.Environ(), "ZSTDCHUNKED_CHILD="+c, "ZSTDCHUNKED_CHILD_OUT="+filepath.Join(dir, c+".blob"),
					"ZSTDCHUNKED_CHILD_TAR="+tarPath)
				if c == "parallel" {
					cmd.Env = append(cmd.Env, "GOMAXPROCS=2")
				}
			}
			var stdout bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
			start := time.Now()
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v\n%s", c, err, stdout.String())
			}
			wall := time.Since(start).Seconds()
			ps := cmd.ProcessState
			ru := ps.SysUsage().(*syscall.Rusage)
			samples[c] = append(samples[c], sample{wall, (ps.UserTime() + ps.SystemTime()).Seconds(), float64(ru.Maxrss) / 1024})
			t.Logf("round %d %-10s wall %.2f s cpu %.2f s peak RSS %.0f MiB", round, c, wall, samples[c][round].cpu, samples[c][round].rssMiB)
			if c != "floor" {
				m := regexp.MustCompile(`RESULT (\S+)`).FindStringSubmatch(stdout.String())
				if m == nil {
					t.Fatalf("%s: no result:\n%s", c, stdout.String())
				}
				digests[c] = m[1]
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("input %s: tar %.1f MB; %d rounds; load average %s", path, float64(tarSize)/1e6, runs, strings.TrimSpace(string(load)))
	floor := 0.0
	for _, c := range cases {
		ss := samples[c]
		walls, cpus := make([]float64, len(ss)), make([]float64, len(ss))
		rss := 0.0
		for i, s := range ss {
			walls[i], cpus[i] = s.wall, s.cpu
			rss = max(rss, s.rssMiB)
		}
		wall, cpu := median(walls), median(cpus)
		if c == "floor" {
			floor = wall
		}
		t.Logf("%-10s wall %6.2f s (min %.2f, max %.2f)  cpu %6.2f s (%3.0f%% of 2 cores)  %4.0f MB/s  peak RSS %4.0f MiB  %.2fx floor",
			c, wall, slices.Min(walls), slices.Max(walls), cpu, 100*cpu/2/wall, float64(tarSize)/1e6/wall, rss, wall/floor)
	}
	// The same bytes whatever GOMAXPROCS and Parallelism.
	for _, v := range []struct{ procs, par string }{{"1", "0"}, {"1", "3"}, {"8", "0"}, {"2", "8"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMeasureChild$", "-test.v")
		cmd.Env = append(os.Environ(), "ZSTDCHUNKED_CHILD=parallel", "ZSTDCHUNKED_CHILD_OUT="+filepath.Join(dir, "p.blob"),
			"GOMAXPROCS="+v.procs, "ZSTDCHUNKED_CHILD_PAR="+v.par)
		out, err := cmd.CombinedOutput()
		m := regexp.MustCompile(`RESULT (\S+)`).FindSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("GOMAXPROCS=%s Parallelism=%s: %v\n%s", v.procs, v.par, err, out)
		}
		digests["GOMAXPROCS="+v.procs+" Parallelism="+v.par] = string(m[1])
	}
	for k, d := range digests {
		if d != digests["reference"] {
			t.Fatalf("blobs differ: %s gives %s, the reference %s", k, d, digests["reference"])
		}
	}
	t.Logf("identical blobs and annotations (blob sha256/annotations sha256 prefixes) from the reference, sequential, parallel and %d GOMAXPROCS/Parallelism variants: %s",
		len(digests)-4, digests["parallel"])
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// gunzipTo writes the gunzipped layer to dst and returns its size.
func gunzipTo(path, dst string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return 0, err
	}
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, zr)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// TestMeasureChild is one case of TestMeasureGzipPipeline, in a child process.
func TestMeasureChild(t *testing.T) {
	c := os.Getenv("ZSTDCHUNKED_CHILD")
	if c == "" {
		t.Skip("run by TestMeasureGzipPipeline")
	}
	if dir := os.Getenv("ZSTDCHUNKED_BENCH_PROFILE"); dir != "" {
		pf, err := os.Create(filepath.Join(dir, c+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		defer pf.Close()
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	in, err := os.Open(os.Getenv("ZSTDCHUNKED_BENCH_GZ"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var zr io.Reader
	if c == "ref-tar" {
		// The reference on the tar itself, gunzipped beforehand.
		tf, err := os.Open(os.Getenv("ZSTDCHUNKED_CHILD_TAR"))
		if err != nil {
			t.Fatal(err)
		}
		defer tf.Close()
		zr = bufio.NewReaderSize(tf, 1<<20)
		c = "reference"
	} else if zr, err = gzip.NewReader(bufio.NewReaderSize(in, 1<<20)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(os.Getenv("ZSTDCHUNKED_CHILD_OUT"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blob digest.Digest
	var ann map[string]string
	switch c {
	case "reference":
		bw := bufio.NewWriterSize(f, 1<<20)
		h := sha256.New()
		ann = map[string]string{}
		level := 3
		w, err := compressor.ZstdCompressor(io.MultiWriter(bw, h), ann, &level)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, zr); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		blob = digest.NewDigest(digest.SHA256, h)
	case "sequential", "parallel":
		par := 0
		if c == "sequential" {
			par = 1
		}
		if v := os.Getenv("ZSTDCHUNKED_CHILD_PAR"); v != "" {
			par, _ = strconv.Atoi(v)
		}
		res, err := Encode(context.Background(), f, zr, EncodeOptions{Level: 3, Parallelism: par})
		if err != nil {
			t.Fatal(err)
		}
		blob, ann = res.Digest, res.Annotations
	default:
		t.Fatalf("unknown case %q", c)
	}
	fmt.Printf("RESULT %s/%s\n", blob.Encoded()[:16], digest.FromString(fmt.Sprint(ann)).Encoded()[:16])
}

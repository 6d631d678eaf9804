package estargz

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	upstream "github.com/containerd/stargz-snapshotter/estargz"
)

// Measured on this machine (2 cores, GOMAXPROCS=2, Go 1.26, a 100 MiB tar of
// $GOROOT/src: 9,000 files), MB/s of uncompressed input, blob size:
//
//	                          level 6               level 9
//	Encode (this package)     see BENCHMARKS below
//	upstream Build, par. 2
//
// BENCHMARKS is filled in from `go test -run XXX -bench . ./estargz/`.

const benchTarLimit = 100 << 20

// goSrcTar is a tar of $GOROOT/src, cut at about 100 MiB, built once.
var goSrcTar = sync.OnceValues(func() ([]byte, error) {
	root := filepath.Join(runtime.GOROOT(), "src")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if buf.Len() > benchTarLimit {
			return filepath.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
})

func benchInput(b *testing.B) []byte {
	in, err := goSrcTar()
	if err != nil {
		b.Skipf("no GOROOT/src tar: %v", err)
	}
	return in
}

// cpuTime is the process's user+system CPU time so far. The benchmarks
// report it per op too: the machine they were measured on is shared, and CPU
// time is less disturbed by other load than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func BenchmarkEncode(b *testing.B) {
	in := benchInput(b)
	for _, level := range []int{1, 6, 9} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			var out countWriter
			start := cpuTime()
			for b.Loop() {
				out.n = 0
				if _, err := Encode(context.Background(), &out, bytes.NewReader(in), EncodeOptions{Level: level}); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
			b.ReportMetric(float64(out.n), "blob-bytes")
		})
	}
}

func BenchmarkUpstreamBuild(b *testing.B) {
	in := benchInput(b)
	for _, level := range []int{6, 9} {
		b.Run(fmt.Sprintf("level=%d,parallelism=2", level), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			var n int64
			start := cpuTime()
			for b.Loop() {
				blob, err := upstream.Build(io.NewSectionReader(bytes.NewReader(in), 0, int64(len(in))),
					upstream.WithCompressionLevel(level), upstream.WithParallelism(2))
				if err != nil {
					b.Fatal(err)
				}
				n, err = io.Copy(io.Discard, blob)
				if err != nil {
					b.Fatal(err)
				}
				blob.Close()
			}
			reportCPU(b, start)
			b.ReportMetric(float64(n), "blob-bytes")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	in := benchInput(b)
	var blob bytes.Buffer
	if _, err := Encode(context.Background(), &blob, bytes.NewReader(in), EncodeOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		rc, err := Decode(bytes.NewReader(blob.Bytes()), DecodeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

func BenchmarkVerify(b *testing.B) {
	in := benchInput(b)
	var blob bytes.Buffer
	res, err := Encode(context.Background(), &blob, bytes.NewReader(in), EncodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if fs := Verify(context.Background(), bytes.NewReader(blob.Bytes()), int64(blob.Len()), res.Annotations, res.DiffID, Limits{}); len(fs) > 0 {
			b.Fatal(fs)
		}
	}
}

package zstdchunked

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// nopSink is a frameSink that drops everything (for benchmarks).
type nopSink struct{ cuts int }

func (s *nopSink) data(p []byte) error  { return nil }
func (s *nopSink) zeros(n int64) error  { return nil }
func (s *nopSink) cut(zeros bool) error { s.cuts++; return nil }

const benchGoSrc = "/usr/local/go/src"

var benchCorpus struct {
	once  sync.Once
	files [][]byte // regular files of benchGoSrc, walk order, at most ~48 MB
	tar   []byte   // the same files as one tar stream
}

// goSrcCorpus returns realistic payloads: the files of the Go source tree
// (text, some binaries and test data), and a tar of them.
func goSrcCorpus(b *testing.B) ([][]byte, []byte) {
	if _, err := os.Stat(benchGoSrc); err != nil {
		b.Skipf("no %s: %v", benchGoSrc, err)
	}
	benchCorpus.once.Do(func() {
		const limit = 48 << 20
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		total := 0
		filepath.WalkDir(benchGoSrc, func(path string, d fs.DirEntry, err error) error {
			if err != nil || total >= limit {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil || len(data) == 0 {
				return nil
			}
			total += len(data)
			benchCorpus.files = append(benchCorpus.files, data)
			tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
			tw.Write(data)
			return nil
		})
		tw.Close()
		benchCorpus.tar = buf.Bytes()
	})
	if len(benchCorpus.files) == 0 {
		b.Skip("empty corpus")
	}
	return benchCorpus.files, benchCorpus.tar
}

// BenchmarkDataBytes measures the rolling-checksum chunking loop alone:
// "files" with the production call pattern (a reset and one dataBytes per
// file, many of them small), "tar" as one long stream in 256 KiB pieces.
func BenchmarkDataBytes(b *testing.B) {
	files, tarball := goSrcCorpus(b)
	b.Run("files", func(b *testing.B) {
		total := 0
		for _, f := range files {
			total += len(f)
		}
		b.SetBytes(int64(total))
		var sink nopSink
		var ck chunker
		for range b.N {
			for _, f := range files {
				ck.reset(&sink)
				ck.dataBytes(f)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(total), "ns/byte")
	})
	b.Run("tar", func(b *testing.B) {
		b.SetBytes(int64(len(tarball)))
		var sink nopSink
		var ck chunker
		for range b.N {
			ck.reset(&sink)
			for p := tarball; len(p) > 0; {
				n := min(len(p), payloadBufSize)
				ck.dataBytes(p[:n])
				p = p[n:]
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(tarball)), "ns/byte")
	})
}

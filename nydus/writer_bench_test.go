//go:build linux

package nydus

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/internal/testimages"
)

// TestPackThroughput measures Pack on the tar named by NYDUS_BENCH_TAR: from
// memory, and fed by "gzip -dc" of the same tar gzipped (NYDUS_BENCH_TAR.gz,
// made if missing), against "gzip -dc | zstd -3 -T2 >/dev/null"; best of
// NYDUS_BENCH_ROUNDS (default 3) rounds, the three alternating. Skipped
// without the variable.
func TestPackThroughput(t *testing.T) {
	p := os.Getenv("NYDUS_BENCH_TAR")
	if p == "" {
		t.Skip("NYDUS_BENCH_TAR not set")
	}
	tarb, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	gz := p + ".gz"
	if _, err := os.Stat(gz); err != nil {
		if out, err := exec.Command("sh", "-c", "gzip -6 -c '"+p+"' > '"+gz+"'").CombinedOutput(); err != nil {
			t.Fatalf("gzip: %v %s", err, out)
		}
	}
	rounds := 3
	if s := os.Getenv("NYDUS_BENCH_ROUNDS"); s != "" {
		if n, err := time.ParseDuration(s + "s"); err == nil {
			rounds = int(n.Seconds())
		}
	}
	mbps := func(d time.Duration) float64 { return float64(len(tarb)) / 1e6 / d.Seconds() }
	best := map[string]time.Duration{}
	cpu := map[string]time.Duration{}
	var cpu0 time.Duration
	keep := func(name string, d time.Duration) {
		c := cpuTime() - cpu0
		if b, ok := best[name]; !ok || d < b {
			best[name] = d
		}
		if b, ok := cpu[name]; !ok || c < b {
			cpu[name] = c
		}
	}
	var last *PackResult
	for r := 0; r < rounds; r++ {
		start := time.Now()
		cpu0 = cpuTime()
		if out, err := exec.Command("sh", "-c", "gzip -dc '"+gz+"' | zstd -3 -T2 >/dev/null").CombinedOutput(); err != nil {
			t.Fatalf("reference: %v %s", err, out)
		}
		keep("gzip -dc | zstd -3 -T2", time.Since(start))
		for _, c := range []struct {
			name string
			o    PackOptions
		}{{"zstd", PackOptions{}}, {"lz4_block", PackOptions{Compressor: "lz4_block"}}, {"none", PackOptions{Compressor: "none"}}} {
			start, cpu0 = time.Now(), cpuTime()
			res, err := Pack(context.Background(), io.Discard, bytes.NewReader(tarb), c.o)
			if err != nil {
				t.Fatal(err)
			}
			keep("Pack "+c.name+" (tar in memory)", time.Since(start))
			if c.name == "zstd" {
				last = res
				for _, procs := range []int{1} {
					old := runtime.GOMAXPROCS(procs)
					start, cpu0 = time.Now(), cpuTime()
					if _, err := Pack(context.Background(), io.Discard, bytes.NewReader(tarb), c.o); err != nil {
						t.Fatal(err)
					}
					keep("Pack zstd GOMAXPROCS=1 (tar in memory)", time.Since(start))
					runtime.GOMAXPROCS(old)
				}
				cmd := exec.Command("gzip", "-dc", gz)
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				start, cpu0 = time.Now(), cpuTime()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				if _, err := Pack(context.Background(), io.Discard, stdout, c.o); err != nil {
					t.Fatal(err)
				}
				if err := cmd.Wait(); err != nil {
					t.Fatal(err)
				}
				keep("gzip -dc | Pack zstd", time.Since(start))
			}
		}
	}
	for _, name := range []string{"gzip -dc | zstd -3 -T2", "gzip -dc | Pack zstd", "Pack zstd (tar in memory)", "Pack zstd GOMAXPROCS=1 (tar in memory)", "Pack lz4_block (tar in memory)", "Pack none (tar in memory)"} {
		t.Logf("%-40s wall %5.2fs %4.0f MB/s   CPU %5.2fs %4.0f MB/CPU-s", name, best[name].Seconds(), mbps(best[name]), cpu[name].Seconds(), mbps(cpu[name]))
	}
	t.Logf("tar %d B, %d entries; zstd blob %d B (%.1f%%), %d chunks (%d raw) of %d refs, bootstrap %d B; GOMAXPROCS %d",
		len(tarb), last.Entries, last.Size, 100*float64(last.Size)/float64(len(tarb)), last.Chunks, last.RawChunks, last.ChunkRefs, len(last.Bootstrap), runtime.GOMAXPROCS(0))
}

// cpuTime is the CPU time (user + system) of this process and its waited-for children.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
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

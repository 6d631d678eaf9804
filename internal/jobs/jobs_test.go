package jobs

import (
	"context"
	"errors"
	"math"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/layerformat"
)

// TestRunBoundedMemoryBudget: jobs run side by side only while their weights fit the budget.
// Each job waits (up to a second) for a second job to run beside it, so a run that may overlap
// does, and the peak number of jobs running at once tells whether the budget held.
func TestRunBoundedMemoryBudget(t *testing.T) {
	const mib = 1 << 20
	zc := layerformat.EncodeMemory(layerformat.ZstdChunked)
	cases := []struct {
		name    string
		weights []int64
		jobs    int
		budget  int64
		peak    int32
	}{
		{"two zstd:chunked encodes in a 128 MiB budget", []int64{zc, zc, zc}, 2, 128 * mib, 1},
		{"two plain zstd encodes fit", []int64{32 * mib, 32 * mib, 32 * mib}, 2, 128 * mib, 2},
		{"no memory limit", []int64{zc, zc, zc}, 2, math.MaxInt64, 2},
		{"--jobs 1", []int64{mib, mib}, 1, math.MaxInt64, 1},
		{"a weight over the budget still runs", []int64{1 << 40, mib}, 2, 64 * mib, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var running, peak, done atomic.Int32
			err := RunBounded(context.Background(), len(c.weights), c.jobs, c.budget, func(i int) int64 { return c.weights[i] },
				func(ctx context.Context, i int) error {
					n := running.Add(1)
					defer running.Add(-1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					for deadline := time.Now().Add(time.Second); peak.Load() < 2 && int(done.Load()) < len(c.weights)-1 && time.Now().Before(deadline); {
						time.Sleep(time.Millisecond)
					}
					done.Add(1)
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if peak.Load() != c.peak || int(done.Load()) != len(c.weights) {
				t.Errorf("peak %d jobs at once, want %d; %d of %d ran", peak.Load(), c.peak, done.Load(), len(c.weights))
			}
		})
	}
}

// TestRunBoundedError: the first error is returned and the jobs not started yet do not run.
func TestRunBoundedError(t *testing.T) {
	boom := errors.New("boom")
	var ran atomic.Int32
	err := RunBounded(context.Background(), 10, 1, math.MaxInt64, func(int) int64 { return 1 }, func(ctx context.Context, i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		ran.Add(1)
		if i == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || ran.Load() != 3 {
		t.Fatalf("error %v after %d jobs, want boom after 3", err, ran.Load())
	}
}

// TestMemoryBudget: the budget follows the process's memory limit, and there is none without one.
func TestMemoryBudget(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	debug.SetMemoryLimit(160 << 20)
	if got := MemoryBudget(); got != 128<<20 {
		t.Errorf("limit 160 MiB: budget %d MiB, want 128", got>>20)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if got := MemoryBudget(); got != math.MaxInt64 {
		t.Errorf("no limit: budget %d, want none", got)
	}
}

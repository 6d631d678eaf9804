// Package jobs runs the per-layer work of a conversion or a verification side by side, as far
// as both a job count and the process's memory limit allow.
package jobs

import (
	"context"
	"math"
	"runtime/debug"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// RunBounded runs run(0) … run(n-1), started in that order, at most jobs at once and, together,
// within budget by weight (a weight over the budget counts as the whole budget, so every item
// runs). The first error cancels the others' context and is returned.
func RunBounded(ctx context.Context, n, jobs int, budget int64, weight func(int) int64, run func(context.Context, int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	sem := semaphore.NewWeighted(budget)
	for i := range n {
		g.Go(func() error {
			w := min(weight(i), budget)
			if err := sem.Acquire(gctx, w); err != nil {
				return err
			}
			defer sem.Release(w)
			return run(gctx, i)
		})
	}
	return g.Wait()
}

// MemoryBudget is how much live memory the jobs running at once may use together: the process's
// memory limit (debug.SetMemoryLimit; the CLI sets 160 MiB unless GOMEMLIMIT is set) less what
// the rest of a run keeps. Past the limit the collector runs without pause: two zstd:chunked
// encodes at once took 9.7 s and 504 collections where one after the other took 7.3 s and 11
// (GOROOT corpus plus 588 MB of /usr/share, 2 cores). Without a limit there is no budget.
func MemoryBudget() int64 {
	const rest = 32 << 20
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		return math.MaxInt64
	}
	return max(limit-rest, 16<<20)
}

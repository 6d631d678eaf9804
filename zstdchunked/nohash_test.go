package zstdchunked

import (
	"fmt"
	"testing"
)

// TestNoDiffIDNoDigest: the options leave DiffID and Digest empty and change
// nothing else, with the sequential and the parallel writer.
func TestNoDiffIDNoDigest(t *testing.T) {
	for _, c := range parallelCases(t)[:6] {
		for _, par := range []int{1, 2} {
			want := encodeOpts(c.tar, EncodeOptions{Level: 3, Parallelism: par})
			got := encodeOpts(c.tar, EncodeOptions{Level: 3, Parallelism: par, NoDiffID: true, NoDigest: true})
			what := fmt.Sprintf("%s parallelism %d", c.name, par)
			if got.err != nil || want.err != nil {
				if (got.err == nil) != (want.err == nil) {
					t.Fatalf("%s: error %v, with hashing %v", what, got.err, want.err)
				}
				continue
			}
			if got.res.DiffID != "" || got.res.Digest != "" {
				t.Errorf("%s: DiffID %q, Digest %q, want both empty", what, got.res.DiffID, got.res.Digest)
			}
			got.res.DiffID, got.res.Digest = want.res.DiffID, want.res.Digest
			sameOutcome(t, what, got, want)
		}
	}
}

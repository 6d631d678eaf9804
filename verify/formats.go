package verify

import (
	"context"
	"io"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/tarcheck"
	digest "github.com/opencontainers/go-digest"
)

// ChunkedInfo is what a chunked format's checks learnt about a layer: its TOC and which lazy-pull
// runtimes can use it.
type ChunkedInfo struct {
	Dialect   string        `json:"dialect,omitempty"`
	TOCDigest digest.Digest `json:"tocDigest,omitempty"`
	Entries   int           `json:"entries,omitempty"`
	Chunks    int           `json:"chunks,omitempty"`
	Details   any           `json:"details,omitempty"`
}

// formatChecks runs the checks a format package owns on a spooled layer blob.
func formatChecks(ctx context.Context, f layerformat.Format, ra io.ReaderAt, size int64, ann map[string]string,
	diffID digest.Digest, lim tarcheck.Limits) (*ChunkedInfo, []check.Finding, error) {
	return nil, nil, nil
}

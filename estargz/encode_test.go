package estargz

import (
	"bytes"
	"testing"

	upstream "github.com/containerd/stargz-snapshotter/estargz"
	"github.com/fmtconv/fmtconv/internal/testimages"
)

// TestSameStreamAsUpstream: for every catalogue layer upstream accepts, the
// uncompressed stream up to the TOC entry and the TOC apart from compressed
// offsets are byte-identical to upstream Build with one worker, and the blob
// opens and verifies with upstream's reader.
func TestSameStreamAsUpstream(t *testing.T) {
	for _, l := range testimages.Layers() {
		if l.Name == testimages.LayerPAXGlobal || l.Name == testimages.LayerDuplicatePaths {
			continue
		}
		for _, cs := range []int{0, 1000, 4096} {
			t.Run(l.Name, func(t *testing.T) {
				var uopts []upstream.Option
				if cs > 0 {
					uopts = append(uopts, upstream.WithChunkSize(cs))
				}
				ref, _, _ := upstreamBuild(t, l.Tar, append(uopts, upstream.WithCompressionLevel(6))...)
				got, res := encodeBytes(t, l.Tar, EncodeOptions{ChunkSize: cs})
				if !bytes.Equal(streamWithoutTOC(t, got), streamWithoutTOC(t, ref)) {
					t.Errorf("uncompressed stream differs from upstream's")
				}
				if a, b := tocWithoutOffsets(t, got), tocWithoutOffsets(t, ref); !bytes.Equal(a, b) {
					t.Errorf("TOC differs from upstream's:\n%s\nupstream:\n%s", a, b)
				}
				openUpstream(t, got, res.TOCDigest)
			})
		}
	}
}

package estargz

import (
	"archive/tar"
	"io"
)

// StripTar is Decode's filter on an already uncompressed eStargz tar stream (for instance the
// stargz-snapshotter dialect of zstd:chunked, which is zstd, not gzip): stargz.index.json and the
// landmark files are removed, every other entry is copied byte for byte, and two zero blocks end
// the archive. Closing it does not close r.
func StripTar(r io.Reader) io.ReadCloser {
	d := &decoder{zr: io.NopCloser(r), rec: &recorder{r: r}, scratch: make([]byte, 64<<10)}
	d.tr = tar.NewReader(d.rec)
	return d
}

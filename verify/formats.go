package verify

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/estargz"
	"github.com/fmtconv/fmtconv/internal/hashio"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/nydus"
	"github.com/fmtconv/fmtconv/tarcheck"
	"github.com/fmtconv/fmtconv/zstdchunked"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ChunkedInfo is what a chunked format's checks learnt about a layer: its TOC and which lazy-pull
// runtimes can use it.
type ChunkedInfo struct {
	Dialect   string        `json:"dialect,omitempty"`
	TOCDigest digest.Digest `json:"tocDigest,omitempty"`
	Entries   int           `json:"entries,omitempty"`
	Chunks    int           `json:"chunks,omitempty"`
	// Details are the format's own facts (estargz.Info, zstdchunked.LayerInfo).
	Details any `json:"details,omitempty"`
}

// decodesOnce reports whether a format's own checks decompress the whole blob in order (the
// full-pull view): then the tar checks run on what that pass decodes, and the blob is
// decompressed once.
func decodesOnce(f layerformat.Format) bool {
	return f.Kind == layerformat.Estargz || f.Kind == layerformat.ZstdChunked
}

// checksWithScan runs a decodesOnce format's checks on a spooled blob and, on a goroutine of its
// own, the tar checks and the diff_id on the stream the format's pass hands over through a pipe.
func (w *walker) checksWithScan(ctx context.Context, l ocispec.Descriptor, lr *LayerResult, f layerformat.Format,
	spool *os.File, size int64) (*ChunkedInfo, []check.Finding, error) {
	type scanned struct {
		fs  []check.Finding
		err error
	}
	done := make(chan scanned, 1)
	pr, pw := io.Pipe()
	go func() {
		fs, _, err := w.scanTar(ctx, l, lr, f, bufio.NewReaderSize(pr, 1<<20))
		io.Copy(io.Discard, pr) // the format's pass writes the stream to its end
		done <- scanned{fs, err}
	}()
	info, fs, err := w.streamingFormatChecks(ctx, f, spool, size, l.Annotations, lr.DiffID, pw)
	// The format closed the stream already, unless it failed before its pass (a pipe keeps the
	// first close's error).
	pw.CloseWithError(cmp.Or(err, errNoStream))
	sc := <-done
	if err != nil {
		return nil, nil, err
	}
	if sc.err != nil {
		return nil, nil, sc.err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return info, append(sc.fs, fs...), nil
}

var errNoStream = errors.New("the format's checks did not decompress the layer")

// streamingFormatChecks runs the checks a decodesOnce format package owns, writing the blob's
// decompressed stream to stream (the format closes it; checksWithScan does when it fails first). The diff_id and decoding are reported by the
// scan of that stream (layer.diffid, layer.decode), so the format's own findings of those are
// dropped.
func (w *walker) streamingFormatChecks(ctx context.Context, f layerformat.Format, spool *os.File, size int64,
	ann map[string]string, diffID digest.Digest, stream *io.PipeWriter) (*ChunkedInfo, []check.Finding, error) {
	lim := w.limits
	switch f.Kind {
	case layerformat.Estargz:
		if _, err := estargz.ReadFooter(spool, size); err != nil {
			// A plain gzip layer still carrying an eStargz TOC digest (re-pushed by a tool that
			// recompressed it but kept the annotations) is not eStargz at all: scanned as gzip.
			fs := []check.Finding{check.Errorf(CheckLayerAnnotations,
				"the layer carries the eStargz TOC digest annotation but has no eStargz footer (%v): a plain gzip layer with stale annotations", err)}
			dec, err := layerformat.Decode(f, io.NewSectionReader(spool, 0, size), layerformat.DecodeOptions{})
			if err == nil {
				_, err = io.Copy(stream, dec)
				dec.Close()
			}
			stream.CloseWithError(err)
			return nil, fs, nil
		}
		elim := estargz.Limits{MaxEntries: lim.MaxEntries, MaxNameLength: lim.MaxNameLength}
		fs := dropIDs(estargz.VerifyStream(ctx, spool, size, ann, "", elim, stream), CheckLayerDiffID, CheckLayerDecode)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		info := &ChunkedInfo{}
		if in, err := estargz.Inspect(spool, size, elim); err == nil {
			info = &ChunkedInfo{TOCDigest: in.TOCDigest, Entries: in.Entries, Chunks: in.Chunks, Details: in}
		}
		return info, fs, nil
	case layerformat.ZstdChunked:
		zlim := zstdchunked.Limits{MaxEntries: lim.MaxEntries, MaxNameLength: lim.MaxNameLength}
		info, fs, err := zstdchunked.Verify(ctx, spool, size, ann, zstdchunked.VerifyOptions{Limits: zlim, DiffID: diffID, Stream: stream})
		if err != nil {
			return nil, nil, err
		}
		fs = dropIDs(fs, CheckLayerDiffID, CheckLayerDecode, zstdchunked.CheckDiffID)
		if info == nil {
			return nil, fs, nil
		}
		return &ChunkedInfo{Dialect: string(info.Dialect), TOCDigest: info.TOCDigest, Entries: info.Entries, Chunks: info.Chunks, Details: info}, fs, nil
	}
	return nil, nil, fmt.Errorf("%s: no streaming checks", f)
}

// formatChecks runs the checks a format package owns on a spooled layer blob whose format does not
// decompress it (Nydus blobs are stored uncompressed). Each format package verifies its own
// structure (footer, TOC, chunks, and that the TOC and the tar agree); this is only the dispatch.
func formatChecks(ctx context.Context, f layerformat.Format, ra io.ReaderAt, size int64) (*ChunkedInfo, []check.Finding, error) {
	if f.Kind != layerformat.NydusBlob {
		return nil, nil, nil
	}
	fs := nydus.VerifyLayer(ra, size, nil, &nydus.VerifyOptions{})
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	info := &ChunkedInfo{}
	if li, err := nydus.InspectLayer(ra, size); err == nil {
		info = &ChunkedInfo{TOCDigest: digest.Digest(li.TOCDigest), Details: li}
	}
	return info, fs, nil
}

func dropIDs(fs []check.Finding, ids ...string) []check.Finding {
	out := fs[:0]
	for _, f := range fs {
		keep := true
		for _, id := range ids {
			if f.Check == id {
				keep = false
			}
		}
		if keep {
			out = append(out, f)
		}
	}
	return out
}

// inspectTOC spools a chunked layer (no decompression) and reads its footer and TOC, so that
// inspect can show the TOC digest, entry count, prioritized files and landmark.
func (w *walker) inspectTOC(ctx context.Context, l ocispec.Descriptor, lr *LayerResult, f layerformat.Format, r io.Reader) error {
	spool, err := os.CreateTemp(w.tempDir, "fmtconv-inspect-")
	if err != nil {
		return err
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	n, err := io.Copy(spool, hashio.ContextReader(ctx, r))
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	switch f.Kind {
	case layerformat.NydusBlob:
		if li, err := nydus.InspectLayer(spool, n); err == nil {
			lr.Chunked = &ChunkedInfo{TOCDigest: digest.Digest(li.TOCDigest), Details: li}
		} else {
			lr.Chunked = &ChunkedInfo{Details: "unreadable Nydus blob: " + err.Error()}
		}
	case layerformat.Estargz:
		if in, err := estargz.Inspect(spool, n, estargz.Limits{}); err == nil {
			lr.Chunked = &ChunkedInfo{TOCDigest: in.TOCDigest, Entries: in.Entries, Chunks: in.Chunks, Details: in}
		} else {
			lr.Chunked = &ChunkedInfo{Details: "unreadable TOC: " + err.Error()}
		}
	case layerformat.ZstdChunked:
		toc, _, err := zstdchunked.ReadTOC(spool, n, l.Annotations, zstdchunked.Limits{})
		if err != nil {
			lr.Chunked = &ChunkedInfo{Dialect: f.Dialect, Details: "unreadable TOC: " + err.Error()}
			break
		}
		info := &ChunkedInfo{Dialect: string(toc.Dialect), TOCDigest: toc.Digest}
		for _, e := range toc.Entries {
			if e.Type == "chunk" {
				info.Chunks++
				continue
			}
			info.Entries++
			if e.Type == "reg" && e.Size > 0 {
				info.Chunks++
			}
		}
		lr.Chunked = info
	}
	return nil
}

// maxNydusBootstrap bounds the bootstrap verify keeps from a Nydus bootstrap layer.
const maxNydusBootstrap = 512 << 20

// keepNydusBootstrap is the tarcheck hook that spools image/image.boot out of a Nydus bootstrap
// layer while the layer is checked, so the merged bootstrap needs no second read.
func (w *walker) keepNydusBootstrap(e tarcheck.Entry, r io.Reader) error {
	if tarcheck.NormalizePath(e.Name) != "image/image.boot" || e.Type != '0' {
		return nil
	}
	f, err := os.CreateTemp(w.tempDir, "fmtconv-bootstrap-")
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, maxNydusBootstrap+1))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	w.dropNydusBootstrap() // a second image/image.boot entry replaces the first
	w.nydusBoot, w.nydusBootSize = f, n
	return nil
}

// dropNydusBootstrap removes the spooled bootstrap, once checked or when it will not be.
func (w *walker) dropNydusBootstrap() {
	if w.nydusBoot != nil {
		w.nydusBoot.Close()
		os.Remove(w.nydusBoot.Name())
		w.nydusBoot = nil
	}
}

// checkNydusBootstrap verifies a manifest's merged bootstrap: its structure, and that every blob
// it names is one of the manifest's Nydus blob layers (nydusd fetches blobs by id). Chunk data was
// verified layer by layer.
func (w *walker) checkNydusBootstrap(md digest.Digest, layers []ocispec.Descriptor) {
	if w.nydusBoot == nil {
		return
	}
	defer w.dropNydusBootstrap()
	var blobs []digest.Digest
	for _, l := range layers {
		if l.MediaType == layerformat.MediaTypeNydusBlob {
			blobs = append(blobs, l.Digest)
		}
	}
	if w.nydusBootSize > maxNydusBootstrap {
		w.add(Finding{Check: "limit.bootstrap-size", Severity: Error, Manifest: md, Message: fmt.Sprintf("the Nydus bootstrap is over %d bytes", maxNydusBootstrap)})
		return
	}
	for _, f := range nydus.Verify(w.nydusBoot, w.nydusBootSize, nil, &nydus.VerifyOptions{LayerDigests: blobs, SkipData: true}) {
		if f.Check == nydus.CheckBlobMissing && f.Severity == check.Warning {
			continue // chunk data was verified blob layer by blob layer
		}
		f.Manifest = md
		w.add(f)
	}
	if in, err := nydus.Inspect(w.nydusBoot, w.nydusBootSize); err == nil {
		w.res.Nydus = append(w.res.Nydus, NydusInfo{Manifest: md, Info: in})
	}
}

// inspectNydusBootstrap reads image/image.boot out of a Nydus bootstrap layer and inspects it.
func (w *walker) inspectNydusBootstrap(ctx context.Context, md digest.Digest, r io.Reader) error {
	dec, err := layerformat.Decode(layerformat.Format{Kind: layerformat.NydusBootstrap}, r, layerformat.DecodeOptions{})
	if err != nil {
		return nil // verify reports it; inspect shows what it can
	}
	defer dec.Close()
	if _, err := tarcheck.Scan(ctx, dec, tarcheck.Options{Limits: w.limits, OnEntry: w.keepNydusBootstrap}); err != nil {
		return nil
	}
	if w.nydusBoot == nil {
		return nil
	}
	defer w.dropNydusBootstrap()
	if in, err := nydus.Inspect(w.nydusBoot, w.nydusBootSize); err == nil {
		w.res.Nydus = append(w.res.Nydus, NydusInfo{Manifest: md, Info: in})
	}
	return nil
}

package verify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/hashio"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/tarcheck"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// needsRandomAccess reports whether a format's own checks read the blob out of order (a footer,
// a TOC, chunks at offsets), so the one pass over the source also spools the blob to a local file.
func needsRandomAccess(f layerformat.Format) bool {
	switch f.Kind {
	case layerformat.ZstdChunked, layerformat.Estargz, layerformat.NydusBlob:
		return true
	}
	return false
}

// readLayer is the one pass over a layer blob: the blob is hashed as it streams, decompressed,
// and the tar stream is hashed (the diff_id) and checked entry by entry; formats with a TOC get
// their blob spooled to a temporary file for their own checks afterwards.
func (w *walker) readLayer(ctx context.Context, md digest.Digest, l ocispec.Descriptor, lr *LayerResult,
	f layerformat.Format, blob *hashio.Reader, br *bufio.Reader) error {
	idx := lr.Index
	locate := func(fs []check.Finding) {
		for _, x := range fs {
			x.Manifest, x.Layer, x.Blob = md, &idx, l.Digest
			w.add(x)
		}
	}
	find := func(id string, sev check.Severity, msg string) {
		locate([]check.Finding{{Check: id, Severity: sev, Message: msg}})
	}
	var in io.Reader = br
	var spool *os.File
	if needsRandomAccess(f) {
		var err error
		if spool, err = os.CreateTemp(w.tempDir, "fmtconv-verify-"); err != nil {
			return err
		}
		defer func() { spool.Close(); os.Remove(spool.Name()) }()
		in = io.TeeReader(br, spool)
	}
	inBuf := bufio.NewReaderSize(&sourceReader{in}, 64<<10)

	switch f.Kind {
	case layerformat.NydusBlob:
		// Stored uncompressed: the blob is its own tar view, and its diff_id is its digest.
		if lr.DiffID != "" && lr.DiffID != l.Digest {
			find(CheckLayerDiffID, Error, fmt.Sprintf("a Nydus blob layer's diff_id must be its digest %s; the config says %s", l.Digest, lr.DiffID))
		}
		lr.UncompressedDigest = l.Digest
	case layerformat.Estargz, layerformat.ZstdChunked:
		// Spooled only: the format's own pass over the spool hands the tar to the scan, so the
		// blob is decompressed once (checksWithScan).
	case layerformat.Uncompressed, layerformat.Gzip, layerformat.Zstd, layerformat.NydusBootstrap:
		dec, err := layerformat.Decode(f, inBuf, layerformat.DecodeOptions{})
		if err != nil {
			find(CheckLayerDecode, Error, fmt.Sprintf("decoding as %s: %v", f, err))
			break
		}
		fs, decoded, err := w.scanTar(ctx, l, lr, f, dec)
		dec.Close()
		if err != nil {
			return err
		}
		locate(fs)
		if !decoded {
			break
		}
		if n, _ := io.Copy(io.Discard, inBuf); n > 0 {
			find(CheckLayerTrailing, Error, fmt.Sprintf("%d bytes follow the end of the compressed stream", n))
		}
	}
	if _, err := io.Copy(io.Discard, inBuf); err != nil {
		var se *sourceError
		if errors.As(err, &se) {
			err = se.err
		}
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	if got := blob.Digest(); got != l.Digest {
		find(CheckBlobDigest, Error, fmt.Sprintf("the blob's content has digest %s", got))
	}
	if blob.N != l.Size {
		find(CheckBlobSize, Error, fmt.Sprintf("the blob has %d bytes, its descriptor says %d", blob.N, l.Size))
	}
	if decodesOnce(f) {
		info, fs, err := w.checksWithScan(ctx, l, lr, f, spool, blob.N)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		lr.Chunked = info
		locate(fs)
	} else if spool != nil {
		info, fs, err := formatChecks(ctx, f, spool, blob.N)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		lr.Chunked = info
		locate(fs)
	}
	return nil
}

// scanTar reads the decoded stream dec of layer l to its end: the tar checks, and the diff_id
// against the config's. Problems of the bytes (the stream does not decompress, a bad tar) are
// findings; the error is the source's (network, I/O) or the context's. decoded reports that the
// stream decompressed to its end.
func (w *walker) scanTar(ctx context.Context, l ocispec.Descriptor, lr *LayerResult, f layerformat.Format, dec io.Reader) (_ []check.Finding, decoded bool, _ error) {
	decodeFailed := func(err error) ([]check.Finding, bool, error) {
		var se *sourceError
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		} else if errors.As(err, &se) {
			return nil, false, fmt.Errorf("layer %s: %w", l.Digest, se.err)
		}
		// The bytes arrived but do not decompress: a problem of the layer, not of the check.
		return []check.Finding{{Check: CheckLayerDecode, Severity: Error, Message: fmt.Sprintf("decoding as %s: %v", f, err)}}, false, nil
	}
	opts := tarcheck.Options{Limits: w.limits}
	if f.Kind == layerformat.NydusBootstrap {
		// The merged bootstrap is checked once the whole manifest has been read.
		opts.OnEntry = w.keepNydusBootstrap
	}
	res, err := tarcheck.Scan(ctx, dec, opts)
	if err != nil {
		return decodeFailed(err)
	}
	fs := res.Findings
	// What a limit left unread is still decompressed, so the decoder's own errors surface.
	if _, err := io.Copy(io.Discard, hashio.ContextReader(ctx, dec)); err != nil {
		more, _, err := decodeFailed(err)
		return append(fs, more...), false, err
	}
	if res.Complete {
		lr.UncompressedDigest, lr.UncompressedSize = res.Digest, res.Size
		if lr.DiffID != "" && lr.UncompressedDigest != lr.DiffID {
			fs = append(fs, check.Finding{Check: CheckLayerDiffID, Severity: Error,
				Message: fmt.Sprintf("the layer decompresses to %s, the config's diff_id is %s", lr.UncompressedDigest, lr.DiffID)})
		}
	}
	return fs, true, nil
}

// sourceReader marks errors of the source stream (network, I/O), so that they are told apart from
// errors of the bytes themselves (a stream that does not decompress), which are findings.
type sourceReader struct{ r io.Reader }

type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

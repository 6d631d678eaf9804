package convert

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerJob is one distinct source blob and, once done, what became of it.
type layerJob struct {
	desc         ocispec.Descriptor
	configDiffID digest.Digest
	passThru     bool // a blob of an artifact: copied unchanged
	result       *layerResult
}

type layerResult struct {
	from   layerformat.Format
	change manifestedit.LayerChange
	// sourceDiffID is the digest of the source's uncompressed stream ("" if the blob was not read).
	sourceDiffID digest.Digest
	diffID       digest.Digest
	report       LayerReport
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// claimedFormat is what a descriptor says about its blob before the bytes are read.
func claimedFormat(d ocispec.Descriptor) layerformat.Format {
	switch k := layerformat.KindFromMediaType(d.MediaType); k {
	case layerformat.Gzip:
		if d.Annotations[layerformat.AnnotationEstargzTOCDigest] != "" {
			return layerformat.Format{Kind: layerformat.Estargz}
		}
		return layerformat.Format{Kind: k}
	case layerformat.Zstd:
		if dl := layerformat.ZstdChunkedDialect(d.Annotations); dl != "" {
			return layerformat.Format{Kind: layerformat.ZstdChunked, Dialect: dl}
		}
		return layerformat.Format{Kind: k}
	default:
		return layerformat.Format{Kind: k}
	}
}

func (c *converter) convertLayer(ctx context.Context, j *layerJob) error {
	start := time.Now()
	target := layerformat.TargetFormat(c.o.Target)
	claimed := claimedFormat(j.desc)
	rep := LayerReport{Source: LayerSide{Digest: j.desc.Digest, Format: claimed.String(), Size: j.desc.Size, MediaType: j.desc.MediaType}}
	finish := func(r *layerResult) error {
		r.report.Seconds = time.Since(start).Seconds()
		j.result = r
		return nil
	}

	// A blob that stays as it is and is already at the destination is not even downloaded.
	reuse := j.passThru || (!c.o.Force && claimed == target)
	if reuse {
		if ok, err := c.dst.HasBlob(ctx, j.desc); err != nil {
			return err
		} else if ok {
			rep.Action, rep.Note = "reused", "already at the destination"
			rep.Target = rep.Source
			rep.DiffID = j.configDiffID
			return finish(&layerResult{from: claimed, change: manifestedit.LayerChange{Reused: true}, diffID: j.configDiffID, report: rep})
		}
	}

	var prog LayerProgress
	if c.o.Progress != nil {
		action := "convert"
		if reuse {
			action = "copy"
		}
		prog = c.o.Progress.Layer(j.desc, action)
	}
	rc, err := c.src.Blob(ctx, j.desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	var in io.Reader = transport.VerifyingReader(rc, j.desc.Digest, j.desc.Size)
	if prog != nil {
		in = &progressReader{in, prog}
	}
	br := bufio.NewReaderSize(in, 1<<20)

	tmp, err := os.CreateTemp(c.o.TempDir, "fmtconv-layer-")
	if err != nil {
		return err
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	out := &hashingWriter{w: tmp, h: sha256.New()}

	res, err := c.transcode(ctx, j, br, out, claimed, target, &rep)
	if prog != nil {
		prog.Done(err)
	}
	if err != nil {
		return err
	}
	newDesc := ocispec.Descriptor{Digest: out.digest(), Size: out.n, MediaType: j.desc.MediaType}
	if ok, err := c.dst.HasBlob(ctx, newDesc); err != nil {
		return err
	} else if !ok {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := c.dst.PutBlob(ctx, tmp, newDesc, false); err != nil {
			return err
		}
	}
	res.change.Digest, res.change.Size = newDesc.Digest, newDesc.Size
	res.report.Target.Digest, res.report.Target.Size = newDesc.Digest, newDesc.Size
	return finish(res)
}

// transcode reads the source blob once: either copying it (reuse) while decoding it alongside for
// its diff_id, or decoding it and encoding the tar stream to the target.
func (c *converter) transcode(ctx context.Context, j *layerJob, br *bufio.Reader, out io.Writer,
	claimed, target layerformat.Format, rep *LayerReport) (*layerResult, error) {
	if j.passThru {
		if _, err := io.Copy(out, layerformat.ContextReader(ctx, br)); err != nil {
			return nil, err
		}
		rep.Action, rep.Target = "reused", rep.Source
		return &layerResult{from: claimed, change: manifestedit.LayerChange{Reused: true}, report: *rep}, nil
	}
	head, err := br.Peek(layerformat.HeadSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	from := layerformat.Detect(j.desc.MediaType, j.desc.Annotations, head)
	rep.Source.Format = from.String()
	if from.Kind == layerformat.Unknown {
		return nil, manifestedit.Refuse(manifestedit.UnknownLayerFormat, j.desc.Digest.String(),
			"the blob is not a tar, gzip or zstd stream", "check the source image; fmtconv verify reports what it is")
	}
	if from.Kind != claimed.Kind && !(claimed.Kind == layerformat.Gzip && from.Kind == layerformat.Estargz) {
		rep.Note = fmt.Sprintf("media type %s says %s but the bytes are %s", j.desc.MediaType, claimed, from)
	}

	if !c.o.Force && from == target {
		diffID, _, err := copyAndDecode(ctx, br, out, from)
		if err != nil {
			return nil, err
		}
		rep.Action, rep.DiffID = "reused", diffID
		rep.Target = LayerSide{Format: from.String()}
		return &layerResult{from: from, change: manifestedit.LayerChange{Reused: true}, sourceDiffID: diffID, diffID: diffID, report: *rep}, nil
	}

	dec, err := layerformat.Decode(from, br)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	srcHash := sha256.New()
	tarStream := io.TeeReader(dec, srcHash)
	enc, err := layerformat.Encode(ctx, target.Kind, out, tarStream, c.level)
	if err != nil {
		var unsupported *layerformat.ContentError
		if errors.As(err, &unsupported) {
			return nil, manifestedit.Refuse(manifestedit.Code(unsupported.Code), j.desc.Digest.String(),
				fmt.Sprintf("%s cannot represent this layer: %s", target.Kind, unsupported.Error()),
				"convert to gzip or zstd instead, or fix the layer")
		}
		return nil, fmt.Errorf("encoding to %s: %w", target, err)
	}
	// Everything after the tar stream must have been consumed, and the compressed stream must end
	// where the blob ends (so its digest was checked).
	if n, err := io.Copy(io.Discard, tarStream); err != nil {
		return nil, err
	} else if n > 0 {
		return nil, fmt.Errorf("encoder to %s stopped %d bytes before the end of the tar stream", target, n)
	}
	if err := expectEOF(br); err != nil {
		return nil, err
	}
	sourceDiffID := digest.NewDigestFromBytes(digest.SHA256, srcHash.Sum(nil))
	rep.Action, rep.DiffID, rep.TOCDigest = "converted", enc.DiffID, enc.TOCDigest
	rep.Target = LayerSide{Format: target.String()}
	if enc.Deviation != "" {
		rep.Note = joinNote(rep.Note, enc.Deviation)
	}
	return &layerResult{from: from, sourceDiffID: sourceDiffID, diffID: enc.DiffID, report: *rep,
		change: manifestedit.LayerChange{Target: target.Kind, Annotations: enc.Annotations}}, nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// expectEOF fails if r has bytes left: data after a compressed stream is garbage, not layer content.
func expectEOF(r io.Reader) error {
	var b [1]byte
	n, err := io.ReadFull(r, b[:])
	if n > 0 {
		return fmt.Errorf("trailing data after the compressed stream")
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

// copyAndDecode copies a blob to out unchanged while a second goroutine decodes the same bytes,
// so the reused blob's diff_id is known from one read.
func copyAndDecode(ctx context.Context, r io.Reader, out io.Writer, f layerformat.Format) (digest.Digest, int64, error) {
	pr, pw := io.Pipe()
	type result struct {
		d   digest.Digest
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		dec, err := layerformat.Decode(f, pr)
		if err != nil {
			pr.CloseWithError(err)
			done <- result{err: err}
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, dec)
		dec.Close()
		if err == nil {
			err = expectEOF(pr)
		}
		pr.CloseWithError(err)
		done <- result{digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), n, err}
	}()
	_, err := io.Copy(io.MultiWriter(out, pw), layerformat.ContextReader(ctx, r))
	pw.CloseWithError(err)
	res := <-done
	if err != nil {
		return "", 0, err
	}
	if res.err != nil {
		return "", 0, fmt.Errorf("decoding %s: %w", f, res.err)
	}
	return res.d, res.n, nil
}

type hashingWriter struct {
	w io.Writer
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (h *hashingWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingWriter) digest() digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, h.h.Sum(nil))
}

type progressReader struct {
	r io.Reader
	p LayerProgress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.p.Add(int64(n))
	return n, err
}

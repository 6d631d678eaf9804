package convert

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/internal/hashio"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/nydus"
	"github.com/fmtconv/fmtconv/transport"
	"github.com/fmtconv/fmtconv/zstdchunked"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerJob is one distinct source blob and, once done, what became of it.
type layerJob struct {
	desc         ocispec.Descriptor
	index        int
	plan         manifestedit.LayerPlan
	configDiffID digest.Digest
	// copyOnly marks a blob of an artifact or attestation: copied unchanged, never decoded.
	copyOnly bool
	result   *layerResult
}

type layerResult struct {
	from   layerformat.Format
	change manifestedit.LayerChange
	// sourceDiffID is the digest of the source's uncompressed stream ("" if the blob was not read).
	sourceDiffID digest.Digest
	diffID       digest.Digest
	// keepsDiffID: the plan promised the uncompressed stream stays bit for bit.
	keepsDiffID bool
	// nydusLayer is what the merged bootstrap needs when the layer was packed into a Nydus blob.
	nydusLayer *nydus.LayerBootstrap
	report     LayerReport
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func (c *converter) convertLayer(ctx context.Context, j *layerJob) error {
	start := time.Now()
	rep := LayerReport{Source: LayerSide{Digest: j.desc.Digest, Format: j.plan.From.String(), Size: j.desc.Size, MediaType: j.desc.MediaType}}
	finish := func(r *layerResult) error {
		r.report.Seconds = time.Since(start).Seconds()
		j.result = r
		return nil
	}
	unchanged := func(action, note string) error {
		rep.Action, rep.Note, rep.Target = action, note, rep.Source
		rep.DiffID = j.configDiffID
		return finish(&layerResult{from: j.plan.From, change: manifestedit.LayerChange{Reused: true}, diffID: j.configDiffID, keepsDiffID: true, report: rep})
	}
	if j.copyOnly {
		rep.Source.Format = "blob"
	}
	if j.plan.Action == manifestedit.ActionKeep && len(j.desc.URLs) > 0 {
		// A foreign layer lives at its URLs; it is never uploaded.
		return unchanged("kept", j.plan.Reason)
	}
	// A blob that stays as it is and is already at the destination is not even downloaded
	// (unless its diff_id must be computed from it: schema1 sources).
	if (j.copyOnly || j.plan.Action != manifestedit.ActionConvert) && j.desc.Size >= 0 && (j.copyOnly || j.configDiffID != "") {
		if ok, err := c.dst.HasBlob(ctx, j.desc); err != nil {
			return err
		} else if ok {
			return unchanged(reportAction(actionOf(j)), "already at the destination")
		}
	}

	var prog LayerProgress
	if c.o.Progress != nil {
		prog = c.o.Progress.Layer(j.desc, string(actionOf(j)))
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
	var tmpW io.Writer = tmp
	if c.linksTemp {
		tmpW = newWritebackWriter(tmp)
	}
	out := hashio.NewWriter(tmpW)

	res, err := c.transcode(ctx, j, br, out, tmp, &rep)
	if prog != nil {
		prog.Done(err)
	}
	if err != nil {
		return err
	}
	newDesc := ocispec.Descriptor{Digest: out.Digest(), Size: out.N, MediaType: j.desc.MediaType}
	if ok, err := c.dst.HasBlob(ctx, newDesc); err != nil {
		return err
	} else if !ok {
		if err := c.putBlobFile(ctx, tmp, newDesc); err != nil {
			return err
		}
	}
	res.change.Digest, res.change.Size = newDesc.Digest, newDesc.Size
	res.report.Target.Digest, res.report.Target.Size = newDesc.Digest, newDesc.Size
	return finish(res)
}

// reportAction is the action as the report words it: reused, converted, kept, copied.
func reportAction(a manifestedit.LayerAction) string {
	switch a {
	case manifestedit.ActionReuse:
		return "reused"
	case manifestedit.ActionConvert:
		return "converted"
	case manifestedit.ActionKeep:
		return "kept"
	}
	return "copied"
}

func actionOf(j *layerJob) manifestedit.LayerAction {
	if j.copyOnly {
		return "copy"
	}
	return j.plan.Action
}

// transcode reads the source blob once: either copying it (reuse, keep) while decoding it alongside
// for its diff_id, or decoding it and encoding the tar stream to the target.
func (c *converter) transcode(ctx context.Context, j *layerJob, br *bufio.Reader, out *hashio.Writer, tmp *os.File, rep *LayerReport) (*layerResult, error) {
	if j.copyOnly {
		if _, err := io.Copy(out, hashio.ContextReader(ctx, br)); err != nil {
			return nil, err
		}
		rep.Action, rep.Target = "copied", rep.Source
		return &layerResult{change: manifestedit.LayerChange{Reused: true}, report: *rep}, nil
	}
	head, err := br.Peek(layerformat.HeadSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	plan := j.plan
	from := layerformat.Detect(j.desc.MediaType, j.desc.Annotations, head)
	rep.Source.Format = from.String()
	if from.Kind == layerformat.Unknown {
		return nil, manifestedit.Refuse(manifestedit.UnknownLayerFormat, j.desc.Digest.String(),
			"the blob is not a tar, gzip or zstd stream", "check the source image; fmtconv verify reports what it is")
	}
	if from != plan.From {
		// The bytes disagree with the descriptor: ask the rules again with what the bytes say.
		rep.Note = fmt.Sprintf("the descriptor claims %s but the bytes are %s", plan.From, from)
		if plan, err = manifestedit.DecideLayer(j.index, j.desc, from, c.planOptions()); err != nil {
			return nil, err
		}
	}

	if plan.Action != manifestedit.ActionConvert {
		diffID, _, err := copyAndDecode(ctx, br, out, from, func(r io.Reader) io.Reader { return c.limitDecoded(j, from, r) })
		if err != nil {
			return nil, err
		}
		rep.Action, rep.DiffID = reportAction(plan.Action), diffID
		rep.Target = LayerSide{Format: from.String()}
		if plan.Action == manifestedit.ActionKeep {
			rep.Note = joinNote(rep.Note, plan.Reason)
		}
		return &layerResult{from: from, change: manifestedit.LayerChange{Reused: true}, sourceDiffID: diffID, diffID: diffID, keepsDiffID: true, report: *rep}, nil
	}

	if from.Kind == layerformat.NydusBlob {
		return c.fromNydus(ctx, j, br, out, from, plan, rep)
	}

	// The source's diff_id is checked on the stream as stored; the encoder reads that stream, or,
	// when the layer leaves eStargz, that stream without eStargz's own files.
	rawDec, err := layerformat.Decode(from, br, layerformat.DecodeOptions{})
	if err != nil {
		return nil, err
	}
	defer rawDec.Close()
	// src hashes the stream as the encoder reads it; a plain encoder (gzip, zstd, uncompressed)
	// takes its digest as the diff_id instead of hashing the same bytes a second time.
	src := hashio.NewReader(c.limitDecoded(j, from, rawDec))
	var tarStream io.Reader = src
	if plan.StripEstargzFiles {
		stripped := layerformat.StripEstargzFiles(tarStream)
		defer stripped.Close()
		tarStream = stripped
	}
	enc, err := layerformat.Encode(ctx, plan.To.Kind, out, tarStream, c.encodeOptions())
	if err != nil {
		var content *layerformat.ContentError
		if errors.As(err, &content) {
			return nil, manifestedit.Refuse(manifestedit.Code(content.Code), j.desc.Digest.String(),
				fmt.Sprintf("%s cannot represent this layer: %s", plan.To.Kind, content.Error()),
				"convert to gzip or zstd instead, or fix the layer")
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) {
			// The source blob arrived whole (its digest is checked as it is read), so a tar that
			// ends early or has a broken header is the layer's own defect: retrying cannot help.
			return nil, manifestedit.Refuse(manifestedit.MalformedTar, j.desc.Digest.String(),
				fmt.Sprintf("%s needs to read every tar entry, and the layer's tar is malformed: %v", plan.To.Kind, err),
				"fmtconv verify shows the defect; convert to gzip or zstd, which keep the stream as it is")
		}
		return nil, fmt.Errorf("encoding to %s: %w", plan.To, err)
	}
	// Everything after the tar stream must have been consumed, and the compressed stream must end
	// where the blob ends (so its digest was checked).
	if n, err := io.Copy(io.Discard, tarStream); err != nil {
		return nil, err
	} else if n > 0 {
		return nil, fmt.Errorf("encoder to %s stopped %d bytes before the end of the tar stream", plan.To, n)
	}
	if _, err := io.Copy(io.Discard, src); err != nil { // what a stripping filter left unread
		return nil, err
	}
	if err := expectEOF(br); err != nil {
		return nil, err
	}
	sourceDiffID := src.Digest()
	if enc.Deviation != "" {
		// The encoder had to leave its reference's byte layout to keep the diff_id: check the blob
		// with the format's own verifier before anything publishes it.
		if err := selfCheck(ctx, plan.To, tmp, out.N, enc); err != nil {
			return nil, manifestedit.Refuse(manifestedit.UnrepresentableTar, j.desc.Digest.String(),
				fmt.Sprintf("%s cannot represent this layer bit for bit: %v", plan.To.Kind, err),
				"convert to zstd or gzip instead, or repair the layer (complete its padding and end-of-archive blocks)")
		}
	}
	rep.Action, rep.DiffID, rep.TOCDigest = "converted", enc.DiffID, enc.TOCDigest
	rep.Target = LayerSide{Format: plan.To.String()}
	if enc.Deviation != "" {
		rep.Note = joinNote(rep.Note, enc.Deviation)
	}
	return &layerResult{from: from, sourceDiffID: sourceDiffID, diffID: enc.DiffID, keepsDiffID: plan.KeepsDiffID, report: *rep,
		nydusLayer: enc.NydusLayer,
		change:     manifestedit.LayerChange{Target: plan.To.Kind, Annotations: enc.Annotations}}, nil
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
func copyAndDecode(ctx context.Context, r io.Reader, out io.Writer, f layerformat.Format, limit func(io.Reader) io.Reader) (digest.Digest, int64, error) {
	pr, pw := io.Pipe()
	type result struct {
		d   digest.Digest
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		dec, err := layerformat.Decode(f, pr, layerformat.DecodeOptions{})
		if err != nil {
			pr.CloseWithError(err)
			done <- result{err: err}
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, limit(dec))
		dec.Close()
		if err == nil {
			err = expectEOF(pr)
		}
		pr.CloseWithError(err)
		done <- result{digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), n, err}
	}()
	_, err := io.Copy(io.MultiWriter(out, pw), hashio.ContextReader(ctx, r))
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

type progressReader struct {
	r io.Reader
	p LayerProgress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.p.Add(int64(n))
	return n, err
}

// selfCheck verifies an encoder's output file with the format's verifier and returns an error
// naming the first error finding.
func selfCheck(ctx context.Context, f layerformat.Format, blob *os.File, size int64, enc *layerformat.EncodeResult) error {
	if f.Kind != layerformat.ZstdChunked {
		return nil
	}
	_, fs, err := zstdchunked.Verify(ctx, blob, size, enc.Annotations, zstdchunked.VerifyOptions{DiffID: enc.DiffID})
	if err != nil {
		return err
	}
	for _, x := range fs {
		if x.Severity == check.Error {
			return fmt.Errorf("%s: %s", x.Check, x.Message)
		}
	}
	return nil
}

// DefaultMaxLayerSize bounds the uncompressed size of one layer unless the user says otherwise.
const DefaultMaxLayerSize = 256 << 30

// limitDecoded stops a layer whose uncompressed stream grows beyond --max-layer-size, or beyond the
// size its format declares (eStargz's uncompressed-size annotation), with a refusal instead of
// filling the disk: a compression bomb is stopped early, whatever its ratio.
func (c *converter) limitDecoded(j *layerJob, f layerformat.Format, r io.Reader) io.Reader {
	limit, why := c.o.MaxLayerSize, "--max-layer-size"
	if limit <= 0 {
		limit = DefaultMaxLayerSize
	}
	if f.Kind == layerformat.Estargz {
		if n, err := strconv.ParseInt(j.desc.Annotations[layerformat.AnnotationEstargzUncompressedSize], 10, 64); err == nil && n >= 0 && n < limit {
			limit, why = n, "its "+layerformat.AnnotationEstargzUncompressedSize+" annotation"
		}
	}
	return &sizeLimitReader{r: r, left: limit, limit: limit, why: why, subject: j.desc.Digest.String()}
}

type sizeLimitReader struct {
	r            io.Reader
	left, limit  int64
	why, subject string
}

func (s *sizeLimitReader) Read(p []byte) (int, error) {
	if s.left < 0 {
		return 0, s.err()
	}
	if int64(len(p)) > s.left+1 {
		p = p[:s.left+1]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	if s.left < 0 {
		return n, s.err()
	}
	return n, err
}

func (s *sizeLimitReader) err() error {
	return manifestedit.Refuse(manifestedit.LayerTooLarge, s.subject,
		fmt.Sprintf("the layer decompresses to more than %d bytes, the limit set by %s", s.limit, s.why),
		"raise --max-layer-size if the layer is genuine; a layer past what it declares is corrupt or hostile")
}

// putBlobFile stores a blob fmtconv wrote to tmp (its digest computed as it was written): linked
// into place where the destination can (an oci: layout on the same file system), else uploaded.
func (c *converter) putBlobFile(ctx context.Context, tmp *os.File, d ocispec.Descriptor) error {
	if l, ok := c.dst.(transport.BlobLinker); ok {
		if linked, err := l.LinkBlob(ctx, tmp, d); err != nil || linked {
			return err
		}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return c.dst.PutBlob(ctx, tmp, d, false)
}

// Package verify proves an image is what its manifests claim: digests and sizes of every manifest
// and blob, the config, each layer's real format against its media type and annotations, and each
// layer's uncompressed digest against its diff_id. Format packages add their own checks per layer.
// Inspect walks the same way without reading whole layers.
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
	"github.com/fmtconv/fmtconv/internal/jobs"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/nydus"
	"github.com/fmtconv/fmtconv/tarcheck"
	"github.com/fmtconv/fmtconv/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Severities.
const (
	Error   = check.Error
	Warning = check.Warning
)

// Check ids; stable, documented in the README.
const (
	CheckManifestDigest   = "manifest.digest"
	CheckManifestParse    = "manifest.parse"
	CheckConfigDigest     = "config.digest"
	CheckConfigParse      = "config.parse"
	CheckConfigDiffIDs    = "config.diffid-count"
	CheckBlobDigest       = "blob.digest"
	CheckBlobSize         = "blob.size"
	CheckLayerDiffID      = "layer.diffid"
	CheckLayerMediaType   = "layer.mediatype"
	CheckLayerFormat      = "layer.format"
	CheckLayerDecode      = "layer.decode"
	CheckLayerTrailing    = "layer.trailing-data"
	CheckLayerAnnotations = "layer.annotation-stale"
)

// Finding is one problem found.
type Finding = check.Finding

// Result is everything verify or inspect learned about an image.
type Result struct {
	Image     string           `json:"image"`
	Digest    digest.Digest    `json:"digest"`
	MediaType string           `json:"mediaType"`
	Valid     bool             `json:"valid"`
	Manifests []ManifestResult `json:"manifests"`
	Findings  []Finding        `json:"findings"`
	// Nydus holds, per Nydus manifest, what its merged bootstrap says (fs version, blobs, chunks).
	Nydus []NydusInfo `json:"nydus,omitempty"`
}

// NydusInfo is a Nydus manifest's bootstrap, inspected.
type NydusInfo struct {
	Manifest digest.Digest `json:"manifest"`
	Info     *nydus.Info   `json:"info"`
}

// ManifestResult is one image manifest.
type ManifestResult struct {
	Platform  string        `json:"platform,omitempty"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Config    digest.Digest `json:"config"`
	Layers    []LayerResult `json:"layers"`
}

// LayerResult is one layer.
type LayerResult struct {
	Index       int               `json:"index"`
	Digest      digest.Digest     `json:"digest"`
	Size        int64             `json:"size"`
	MediaType   string            `json:"mediaType"`
	Format      string            `json:"format"`
	DiffID      digest.Digest     `json:"diffID,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Uncompressed is the computed uncompressed digest and size (verify only).
	UncompressedDigest digest.Digest `json:"uncompressedDigest,omitempty"`
	UncompressedSize   int64         `json:"uncompressedSize,omitempty"`
	// TOCDigest is the digest lazy-pull runtimes look the layer up by (from its annotations).
	TOCDigest digest.Digest `json:"tocDigest,omitempty"`
	// Chunked holds what a chunked format's checks found (TOC digest, dialect, ...).
	Chunked *ChunkedInfo `json:"chunked,omitempty"`
	// Runtimes says which lazy-pull runtimes can use the layer as it is, and why not.
	Runtimes []RuntimeSupport `json:"runtimes,omitempty"`
}

// Options configure verify and inspect.
type Options struct {
	Src transport.Options
	// Limits bound what a layer may claim (entries, name lengths, sizes); zero values mean defaults.
	Limits tarcheck.Limits
	// TempDir holds a spooled copy of one chunked layer at a time ("" = the system default).
	TempDir string
}

// Verify checks every manifest, config and layer of image name. The error is non-nil only when
// the image could not be checked (I/O, authentication, unsupported input); problems with the
// image itself are findings, and Result.Valid is false if any is an error.
func Verify(ctx context.Context, name string, o Options) (*Result, error) {
	return walk(ctx, name, o, true)
}

// Inspect reports each manifest and layer with its detected format, reading only the first bytes
// of each layer.
func Inspect(ctx context.Context, name string, o Options) (*Result, error) {
	return walk(ctx, name, o, false)
}

type walker struct {
	// nydusBoot is the bootstrap spooled from a Nydus bootstrap layer of the manifest being read.
	nydusBoot     *os.File
	nydusBootSize int64
	src           *transport.Source
	res           *Result
	full          bool
	limits        tarcheck.Limits
	tempDir       string
}

func (w *walker) add(f Finding) { w.res.Findings = append(w.res.Findings, f) }

func walk(ctx context.Context, name string, o Options, full bool) (*Result, error) {
	src, err := transport.OpenSource(ctx, name, o.Src)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	w := &walker{src: src, res: &Result{Image: name, Findings: []Finding{}}, full: full, limits: o.Limits, tempDir: o.TempDir}
	top, mt, err := src.Manifest(ctx, nil)
	if err != nil {
		return nil, err
	}
	w.res.Digest, w.res.MediaType = digest.FromBytes(top), mt
	switch mt {
	case layerformat.MediaTypeOCIIndex, layerformat.MediaTypeDockerManifestList:
		ix, err := manifestedit.ParseIndex(top, mt)
		if err != nil {
			w.add(Finding{Check: CheckManifestParse, Severity: Error, Message: err.Error(), Manifest: w.res.Digest})
			break
		}
		for _, d := range ix.Manifests {
			raw, cmt, err := src.Manifest(ctx, &d.Digest)
			if err != nil {
				return nil, err
			}
			if got := digest.FromBytes(raw); got != d.Digest {
				w.add(Finding{Check: CheckManifestDigest, Severity: Error, Manifest: d.Digest,
					Message: fmt.Sprintf("index entry %s: the manifest's content has digest %s", d.Digest, got)})
			}
			if int64(len(raw)) != d.Size {
				w.add(Finding{Check: CheckBlobSize, Severity: Error, Manifest: d.Digest,
					Message: fmt.Sprintf("index entry %s says %d bytes, the manifest has %d", d.Digest, d.Size, len(raw))})
			}
			if err := w.image(ctx, raw, cmt, d); err != nil {
				return nil, err
			}
		}
	default:
		if err := w.image(ctx, top, mt, ocispec.Descriptor{}); err != nil {
			return nil, err
		}
	}
	w.res.Valid = true
	for _, f := range w.res.Findings {
		if f.Severity == Error {
			w.res.Valid = false
		}
	}
	return w.res, nil
}

func (w *walker) image(ctx context.Context, raw []byte, mt string, desc ocispec.Descriptor) error {
	p := desc.Platform
	md := digest.FromBytes(raw)
	mr := ManifestResult{Digest: md, MediaType: mt}
	if p != nil {
		mr.Platform = p.OS + "/" + p.Architecture
		if p.Variant != "" {
			mr.Platform += "/" + p.Variant
		}
	}
	m, err := manifestedit.ParseManifest(raw, mt)
	if err != nil {
		w.add(Finding{Check: CheckManifestParse, Severity: Error, Message: err.Error(), Manifest: md})
		w.res.Manifests = append(w.res.Manifests, mr)
		return nil
	}
	mr.Config = m.Config.Digest
	var diffIDs []digest.Digest
	// Artifacts and attestations are checked blob by blob; only images have layers and diff_ids.
	isImage := manifestedit.Role(m, desc) == manifestedit.RoleImage
	if isImage {
		cfg, err := w.readConfig(ctx, m.Config, md)
		if err != nil {
			return err
		}
		if cfg != nil {
			if diffIDs, err = manifestedit.ConfigDiffIDs(cfg); err != nil {
				w.add(Finding{Check: CheckConfigParse, Severity: Error, Message: err.Error(), Manifest: md, Blob: m.Config.Digest})
			} else if len(diffIDs) != len(m.Layers) {
				w.add(Finding{Check: CheckConfigDiffIDs, Severity: Error, Manifest: md, Blob: m.Config.Digest,
					Message: fmt.Sprintf("the manifest has %d layers and the config %d diff_ids", len(m.Layers), len(diffIDs))})
				diffIDs = nil
			}
		}
	}
	mr.Layers = make([]LayerResult, len(m.Layers))
	for i, l := range m.Layers {
		mr.Layers[i] = LayerResult{Index: i, Digest: l.Digest, Size: l.Size, MediaType: l.MediaType, Annotations: l.Annotations}
		if diffIDs != nil {
			mr.Layers[i].DiffID = diffIDs[i]
		}
	}
	if err := w.layers(ctx, md, m.Layers, mr.Layers, isImage); err != nil {
		return err
	}
	if w.full {
		w.checkNydusBootstrap(md, m.Layers)
	}
	w.res.Manifests = append(w.res.Manifests, mr)
	return nil
}

// layers checks a manifest's layers (or, for artifacts, its blobs). Verify reads two at once
// (within the memory budget, see internal/jobs), each into a walker of its own whose findings are
// added in layer order afterwards, so the result does not depend on scheduling; inspect reads
// only heads, one after the other.
func (w *walker) layers(ctx context.Context, md digest.Digest, ls []ocispec.Descriptor, lrs []LayerResult, isImage bool) error {
	checkOne := func(w *walker, ctx context.Context, i int) error {
		if isImage {
			return w.layer(ctx, md, ls[i], &lrs[i])
		}
		if w.full {
			return w.blob(ctx, md, ls[i], &lrs[i])
		}
		return nil
	}
	if !w.full {
		for i := range ls {
			if err := checkOne(w, ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	subs := make([]*walker, len(ls))
	err := jobs.RunBounded(ctx, len(ls), layerJobs, jobs.MemoryBudget(), func(i int) int64 { return verifyMemory(ls[i]) },
		func(ctx context.Context, i int) error {
			subs[i] = &walker{src: w.src, res: &Result{}, full: w.full, limits: w.limits, tempDir: w.tempDir}
			return checkOne(subs[i], ctx, i)
		})
	for _, sub := range subs {
		if sub == nil {
			continue
		}
		w.res.Findings = append(w.res.Findings, sub.res.Findings...)
		if sub.nydusBoot != nil {
			// The manifest's bootstrap layer (checked once every layer is read); if there are
			// several, the last one, as nydus-snapshotter takes it.
			w.dropNydusBootstrap()
			w.nydusBoot, w.nydusBootSize = sub.nydusBoot, sub.nydusBootSize
		}
	}
	if err != nil {
		w.dropNydusBootstrap()
	}
	return err
}

// layerJobs is how many layers verify reads at once: with two, the second layer's download and
// decompression run beside the first's, which leaves a core idle on its own about half the time.
const layerJobs = 2

// verifyMemory is about how much live memory checking one layer needs: a decoder and the tar
// scan, plus, for chunked formats, their own pass over the spooled blob.
func verifyMemory(l ocispec.Descriptor) int64 {
	switch layerformat.KindFromMediaType(l.MediaType) {
	case layerformat.Gzip, layerformat.Uncompressed:
		if _, ok := l.Annotations[layerformat.AnnotationEstargzTOCDigest]; !ok {
			return 32 << 20
		}
	}
	return 96 << 20
}

func (w *walker) readConfig(ctx context.Context, d ocispec.Descriptor, md digest.Digest) ([]byte, error) {
	const max = 32 << 20
	if d.Size > max {
		w.add(Finding{Check: CheckConfigParse, Severity: Error, Manifest: md, Blob: d.Digest, Message: fmt.Sprintf("config claims %d bytes, over the %d limit", d.Size, max)})
		return nil, nil
	}
	rc, err := w.src.Blob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", d.Digest, err)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		w.add(Finding{Check: CheckConfigDigest, Severity: Error, Manifest: md, Blob: d.Digest, Message: fmt.Sprintf("config content has digest %s", got)})
	}
	if int64(len(b)) != d.Size {
		w.add(Finding{Check: CheckBlobSize, Severity: Error, Manifest: md, Blob: d.Digest, Message: fmt.Sprintf("config has %d bytes, its descriptor says %d", len(b), d.Size)})
	}
	return b, nil
}

func (w *walker) layer(ctx context.Context, md digest.Digest, l ocispec.Descriptor, lr *LayerResult) error {
	idx := lr.Index
	find := func(id string, sev check.Severity, msg string) {
		w.add(Finding{Check: id, Severity: sev, Message: msg, Manifest: md, Layer: &idx, Blob: l.Digest})
	}
	rc, err := w.src.Blob(ctx, l)
	if err != nil {
		return err
	}
	defer rc.Close()
	blob := hashio.NewReader(rc)
	br := bufio.NewReaderSize(blob, 1<<20)
	head, err := br.Peek(layerformat.HeadSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	f := layerformat.Detect(l.MediaType, l.Annotations, head)
	lr.Format = f.String()
	lr.Runtimes = Runtimes(f)
	lr.TOCDigest = tocDigestAnnotation(f, l.Annotations)
	claimed := layerformat.KindFromMediaType(l.MediaType)
	bytesKind := layerformat.SniffCompression(head)
	switch {
	case f.Kind == layerformat.Unknown:
		find(CheckLayerFormat, Error, "the blob is not a tar, gzip or zstd stream")
	case f.Kind != layerformat.NydusBlob && claimed != bytesKind && claimed != layerformat.Encrypted:
		if w.src.SynthesizesManifest() {
			// containers/image serves docker-archive layers uncompressed under a made-up tar.gzip type.
			break
		}
		find(CheckLayerMediaType, Error, fmt.Sprintf("media type %s says %s, the bytes are %s", l.MediaType, claimed, bytesKind))
	}
	for _, k := range staleAnnotations(f, l.Annotations) {
		find(CheckLayerAnnotations, Error, fmt.Sprintf("annotation %s belongs to another format than this %s layer", k, f))
	}
	if !w.full {
		switch {
		case needsRandomAccess(f):
			return w.inspectTOC(ctx, l, lr, f, br)
		case f.Kind == layerformat.NydusBootstrap:
			return w.inspectNydusBootstrap(ctx, md, br)
		}
		return nil
	}
	return w.readLayer(ctx, md, l, lr, f, blob, br)
}

// blob checks a non-layer blob (of an artifact or attestation): digest and size only.
func (w *walker) blob(ctx context.Context, md digest.Digest, l ocispec.Descriptor, lr *LayerResult) error {
	idx := lr.Index
	lr.Format = "blob"
	rc, err := w.src.Blob(ctx, l)
	if err != nil {
		return err
	}
	defer rc.Close()
	b := hashio.NewReader(rc)
	if _, err := io.Copy(io.Discard, hashio.ContextReader(ctx, b)); err != nil {
		return fmt.Errorf("blob %s: %w", l.Digest, err)
	}
	if got := b.Digest(); got != l.Digest {
		w.add(Finding{Check: CheckBlobDigest, Severity: Error, Manifest: md, Layer: &idx, Blob: l.Digest, Message: fmt.Sprintf("the blob's content has digest %s", got)})
	}
	if b.N != l.Size {
		w.add(Finding{Check: CheckBlobSize, Severity: Error, Manifest: md, Layer: &idx, Blob: l.Digest, Message: fmt.Sprintf("the blob has %d bytes, its descriptor says %d", b.N, l.Size)})
	}
	return nil
}

// staleAnnotations lists annotations of a format the layer is not in (an eStargz TOC digest on a
// plain zstd layer after a re-push, for instance).
func staleAnnotations(f layerformat.Format, ann map[string]string) []string {
	var out []string
	for k := range ann {
		if !layerformat.IsFormatAnnotation(k) {
			continue
		}
		owned := false
		for _, o := range layerformat.OwnedAnnotations(f.Kind) {
			if o == k {
				owned = true
			}
		}
		if !owned {
			out = append(out, k)
		}
	}
	return out
}

// tocDigestAnnotation is the TOC digest a chunked layer's annotations give (the zstd:chunked
// manifest checksum, or the eStargz TOC digest).
func tocDigestAnnotation(f layerformat.Format, ann map[string]string) digest.Digest {
	switch {
	case f.Kind == layerformat.ZstdChunked && f.Dialect == layerformat.DialectContainers:
		return digest.Digest(ann[layerformat.AnnotationZstdChunkedManifestChecksum])
	case f.Kind == layerformat.ZstdChunked && f.Dialect == layerformat.DialectContainersLegacy:
		return digest.Digest(ann[layerformat.AnnotationLegacyZstdChunkedManifestChecksum])
	case f.Kind == layerformat.ZstdChunked, f.Kind == layerformat.Estargz:
		return digest.Digest(ann[layerformat.AnnotationEstargzTOCDigest])
	}
	return ""
}

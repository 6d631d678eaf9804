package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/fmtconv/fmtconv/internal/jobs"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxConfigSize bounds how much of a config blob is read into memory.
const maxConfigSize = 32 << 20

// ErrNotImplemented is returned (after every refusal rule passed) when the plan needs an encoder
// that does not exist yet. Its code is NOT_IMPLEMENTED; the CLI exits 2 for it, not 3.
var ErrNotImplemented = errors.New("NOT_IMPLEMENTED")

// image is one manifest taking part, with its plan.
type image struct {
	src     manifestedit.SourceManifest
	plan    *manifestedit.ManifestPlan
	diffIDs []digest.Digest
	slot    int // its entry in the source index (-1 for a single image)
}

// Convert converts the image or index srcName into dstName. Every refusal that manifests, configs
// and annotations can reveal is returned before any blob is written; refusals that only layer
// content reveals stop the run before any manifest is written.
func Convert(ctx context.Context, srcName, dstName string, o Options) (*Report, error) {
	start := time.Now()
	if _, ok := layerformat.Targets[o.Target]; !ok {
		return nil, fmt.Errorf("unknown target format %q", o.Target)
	}
	level := o.Level
	if level < 0 {
		level = layerformat.DefaultLevel(o.Target)
	}
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = 2
	}
	if o.Retry.Times == 0 && o.Retry.Delay == 0 {
		o.Retry = Retry{Times: 3, Delay: time.Second}
	}
	c := &converter{o: o, level: level, jobs: jobs,
		report: &Report{Source: srcName, Destination: dstName, Target: layerformat.TargetFormat(o.Target).String(), Level: level, DryRun: o.DryRun}}
	if o.Target == layerformat.Nydus {
		// A Nydus image is blob layers plus a bootstrap layer; chunks have a compressor, not a level.
		c.report.Target, c.report.Level = string(layerformat.Nydus), 0
	}
	// Opening a registry source talks to it (ping, manifest), so it is a step that is retried.
	err := c.retry(ctx, "opening source", func() (err error) {
		c.src, err = transport.OpenSource(ctx, srcName, o.Src)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.src.Close()
	if c.dst, err = transport.OpenDestination(ctx, dstName, o.Dst); err != nil {
		return nil, err
	}
	defer c.dst.Close()
	if l, ok := c.dst.(transport.BlobLinker); ok {
		tempDir := o.TempDir
		if tempDir == "" {
			tempDir = os.TempDir()
		}
		c.linksTemp = l.LinksFrom(tempDir)
	}
	err = c.run(ctx)
	c.report.Seconds = time.Since(start).Seconds()
	if err != nil {
		return c.report, err
	}
	return c.report, nil
}

type converter struct {
	src    *transport.Source
	dst    transport.Destination
	o      Options
	level  int
	jobs   int
	report *Report
	// linksTemp: finished layer files in the temporary directory are linked into the destination
	// (and synced there), so their disk writes may start while they are written.
	linksTemp bool

	mu     sync.Mutex
	layers map[digest.Digest]*layerJob
}

func (c *converter) planOptions() manifestedit.PlanOptions {
	return manifestedit.PlanOptions{Target: c.o.Target, Force: c.o.Force, ManifestFormat: c.o.ManifestFormat,
		RemoveSignatures: c.o.RemoveSignatures, KeepEstargzFiles: c.o.KeepEstargzFiles, NydusMergePlatform: c.o.NydusMergePlatform,
		DestName: c.dst.Name(), DestManifestTypes: c.dst.ManifestTypes()}
}

func (c *converter) encodeOptions() layerformat.EncodeOptions {
	return layerformat.EncodeOptions{Level: c.level, EstargzChunkSize: c.o.EstargzChunkSize,
		EstargzMinChunkSize: c.o.EstargzMinChunkSize, EstargzPrioritizedFiles: c.o.EstargzPrioritizedFiles, TempDir: c.o.TempDir,
		NydusCompressor: c.o.NydusCompressor, NydusChunkSize: c.o.NydusChunkSize, NydusPrefetchPatterns: c.o.NydusPrefetchPatterns}
}

func (c *converter) run(ctx context.Context) error {
	var top []byte
	var topType string
	err := c.retry(ctx, "source manifest", func() (err error) {
		top, topType, err = c.src.Manifest(ctx, nil)
		return err
	})
	if err != nil {
		return err
	}
	// Read every selected manifest and config, then plan; nothing is written before the plan.
	var (
		index  *manifestedit.Index
		images []*image
	)
	switch topType {
	case layerformat.MediaTypeOCIIndex, layerformat.MediaTypeDockerManifestList:
		if index, err = manifestedit.ParseIndex(top, topType); err != nil {
			return err
		}
		for i, sel := range manifestedit.SelectInstances(index, c.o.Platforms, c.o.Target) {
			if !sel.Keep {
				continue
			}
			d := index.Manifests[i]
			var sm *manifestedit.SourceManifest
			if err := c.retry(ctx, "manifest "+d.Digest.String(), func() (err error) {
				sm, err = c.readManifest(ctx, &d.Digest, d)
				return err
			}); err != nil {
				return err
			}
			images = append(images, &image{src: *sm, slot: i})
		}
		if len(images) == 0 {
			return manifestedit.Refuse(manifestedit.NoMatchingPlatform, c.src.Name(),
				fmt.Sprintf("no index entry matches --platform %v", c.o.Platforms), "list the platforms with fmtconv inspect")
		}
	default:
		var sm *manifestedit.SourceManifest
		if err := c.retry(ctx, "manifest", func() (err error) {
			sm, err = c.readManifest(ctx, nil, ocispec.Descriptor{})
			return err
		}); err != nil {
			return err
		}
		images = []*image{{src: *sm, slot: -1}}
	}
	source := manifestedit.Source{Name: c.src.Name(), IsIndex: index != nil, IndexMediaType: topType}
	for _, img := range images {
		source.Manifests = append(source.Manifests, img.src)
	}
	if err := c.retry(ctx, "signatures", func() (err error) {
		source.Signatures, err = c.findSignatures(ctx, top, images)
		return err
	}); err != nil {
		return err
	}
	plan, err := manifestedit.MakePlan(source, c.planOptions())
	if err != nil {
		return err
	}
	c.report.Plan = plan
	c.report.Warnings = append(c.report.Warnings, plan.Warnings...)
	for k, img := range images {
		img.plan = &plan.Manifests[k]
	}
	if index != nil && !c.dst.CanStoreIndex() {
		if imageCount(images) != 1 {
			return manifestedit.Refuse(manifestedit.DestNoIndex, c.dst.Name(),
				fmt.Sprintf("the source is an index of %d images and the destination holds one image", imageCount(images)),
				"choose one image with --platform os/arch[/variant]")
		}
		index = nil // write the one selected image on its own
		images = onlyImages(images)
	}
	if !layerformat.Targets[c.o.Target] && planEncodes(plan) {
		return fmt.Errorf("%w: every rule allows this conversion, but the %s encoder is not implemented yet", ErrNotImplemented, c.o.Target)
	}
	if c.o.DryRun {
		return nil
	}

	// Layers: each distinct source blob once, in parallel.
	if err := c.convertLayers(ctx, images); err != nil {
		return err
	}

	// Every config blob, then every manifest; then the index; then the commit. No manifest is
	// written while a blob of the same run is still to come.
	edited := make([]*editedImage, len(images))
	newDigest := map[digest.Digest]digest.Digest{}
	for k, img := range images {
		if edited[k], err = c.editImage(ctx, img); err != nil {
			return err
		}
		newDigest[img.src.Digest] = edited[k].desc.Digest
	}
	if c.o.NydusMergePlatform {
		return c.writeMergedIndex(ctx, index, images, edited)
	}
	var changes []manifestedit.InstanceChange
	if index != nil {
		changes = make([]manifestedit.InstanceChange, len(index.Manifests))
		for i := range changes {
			changes[i].Drop = true
		}
	}
	instanceTypes := make([]string, 0, len(images))
	for k, e := range edited {
		img := images[k]
		var inst *digest.Digest
		if index != nil {
			inst = &e.desc.Digest
		}
		if err := c.retry(ctx, "manifest "+e.desc.Digest.String(), func() error { return c.dst.PutManifest(ctx, e.raw, e.desc.MediaType, inst) }); err != nil {
			return err
		}
		instanceTypes = append(instanceTypes, e.desc.MediaType)
		if index == nil {
			c.report.Digest, c.report.MediaType = e.desc.Digest, e.desc.MediaType
			continue
		}
		ch := manifestedit.InstanceChange{Digest: e.desc}
		if img.plan.Role == manifestedit.RoleAttestation {
			ch.Annotations = manifestedit.RewriteAttestationReference(index.Manifests[img.slot].Annotations, newDigest)
		}
		changes[img.slot] = ch
	}
	if index != nil {
		outType := manifestedit.IndexType(index.MediaType, instanceTypes, c.o.ManifestFormat)
		b, err := manifestedit.EditIndex(index, outType, changes)
		if err != nil {
			return err
		}
		if err := c.retry(ctx, "index", func() error { return c.dst.PutManifest(ctx, b, outType, nil) }); err != nil {
			return err
		}
		c.report.Digest, c.report.MediaType = digest.FromBytes(b), outType
	}
	return c.retry(ctx, "commit", func() error { return c.dst.Commit(ctx) })
}

func imageCount(images []*image) int { return len(onlyImages(images)) }

func onlyImages(images []*image) []*image {
	var out []*image
	for _, img := range images {
		if img.plan.Role == manifestedit.RoleImage {
			out = append(out, img)
		}
	}
	return out
}

func planEncodes(p *manifestedit.Plan) bool {
	for _, m := range p.Manifests {
		for _, l := range m.Layers {
			if l.Action == manifestedit.ActionConvert {
				return true
			}
		}
	}
	return false
}

// readManifest reads a manifest and, for images, its config.
func (c *converter) readManifest(ctx context.Context, instance *digest.Digest, desc ocispec.Descriptor) (*manifestedit.SourceManifest, error) {
	raw, mt, err := c.src.Manifest(ctx, instance)
	if err != nil {
		return nil, err
	}
	md := digest.FromBytes(raw)
	if instance != nil && md != *instance {
		return nil, fmt.Errorf("manifest %s: content does not match its digest", *instance)
	}
	switch mt {
	case layerformat.MediaTypeOCIManifest, layerformat.MediaTypeDockerManifest:
	case layerformat.MediaTypeDockerSchema1, layerformat.MediaTypeDockerSchema1Signed:
		m, s1, err := manifestedit.ParseSchema1(raw, mt)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", md, err)
		}
		return &manifestedit.SourceManifest{Manifest: m, Digest: md, Descriptor: desc, Schema1: s1}, nil
	default:
		return nil, manifestedit.Refuse(manifestedit.UnsupportedManifest, md.String(),
			fmt.Sprintf("manifest type %q is not an image manifest fmtconv converts", mt), "")
	}
	m, err := manifestedit.ParseManifest(raw, mt)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", md, err)
	}
	sm := &manifestedit.SourceManifest{Manifest: m, Digest: md, Descriptor: desc}
	if manifestedit.Role(m, desc) != manifestedit.RoleImage {
		return sm, nil
	}
	cfg := m.Config
	if cfg.Size > maxConfigSize {
		return nil, fmt.Errorf("manifest %s: config is %d bytes, more than the %d fmtconv reads", md, cfg.Size, maxConfigSize)
	}
	rc, err := c.src.Blob(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if sm.Config, err = io.ReadAll(transport.VerifyingReader(io.LimitReader(rc, maxConfigSize+1), cfg.Digest, cfg.Size)); err != nil {
		return nil, fmt.Errorf("config %s: %w", cfg.Digest, err)
	}
	diffIDs, err := manifestedit.ConfigDiffIDs(sm.Config)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", cfg.Digest, err)
	}
	if len(diffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s has %d layers but its config lists %d diff_ids", md, len(m.Layers), len(diffIDs))
	}
	return sm, nil
}

// convertLayers converts every distinct layer of every image, at most c.jobs at once. Blobs of
// artifacts and attestations, and layers kept as they are, are copied unchanged.
func (c *converter) convertLayers(ctx context.Context, images []*image) error {
	c.layers = map[digest.Digest]*layerJob{}
	var order []*layerJob
	add := func(j *layerJob) {
		if _, ok := c.layers[j.desc.Digest]; ok {
			return
		}
		c.layers[j.desc.Digest] = j
		order = append(order, j)
	}
	// Blobs copied unchanged for --nydus-merge-platform's OCI manifests: the same source blobs as
	// the Nydus conversion reads, so they are jobs of their own.
	copies := map[digest.Digest]bool{}
	addCopy := func(l ocispec.Descriptor) {
		if !copies[l.Digest] {
			copies[l.Digest] = true
			order = append(order, &layerJob{desc: l, copyOnly: true})
		}
	}
	for _, img := range images {
		m := img.src.Manifest
		if img.plan.Role != manifestedit.RoleImage {
			add(&layerJob{desc: m.Config, copyOnly: true})
			for _, l := range m.Layers {
				add(&layerJob{desc: l, copyOnly: true})
			}
			continue
		}
		var diffIDs []digest.Digest
		if img.src.Schema1 == nil {
			diffIDs, _ = manifestedit.ConfigDiffIDs(img.src.Config)
		}
		img.diffIDs = diffIDs // nil for schema1: computed from the content
		for i, l := range m.Layers {
			if img.plan.MergedOCI != nil {
				// The OCI manifest kept beside the Nydus one lists the source blobs as they are.
				addCopy(l)
			}
			if img.plan.Layers[i].Action == manifestedit.ActionDrop {
				continue
			}
			var want digest.Digest
			if diffIDs != nil {
				want = diffIDs[i]
			}
			add(&layerJob{desc: l, index: i, plan: img.plan.Layers[i], configDiffID: want})
		}
	}
	return jobs.RunBounded(ctx, len(order), c.jobs, jobs.MemoryBudget(), func(i int) int64 { return c.layerMemory(order[i]) },
		func(ctx context.Context, i int) error {
			j := order[i]
			if err := c.retry(ctx, "layer "+j.desc.Digest.String(), func() error { return c.convertLayer(ctx, j) }); err != nil {
				return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
			}
			return nil
		})
}

// layerMemory is the live memory a layer job is expected to use (layerformat.EncodeMemory).
func (c *converter) layerMemory(j *layerJob) int64 {
	if j.copyOnly || j.plan.Action != manifestedit.ActionConvert {
		return layerformat.EncodeMemory(layerformat.Uncompressed)
	}
	return layerformat.EncodeMemory(c.o.Target)
}

// editedImage is a manifest ready to be written.
type editedImage struct {
	raw  []byte
	desc ocispec.Descriptor
	// mergedOCI is, with --nydus-merge-platform, the OCI manifest kept beside this Nydus one.
	mergedOCI *editedImage
}

// editImage writes an image's config (its layers are already written) and returns its edited
// manifest, to be written once every blob of the run is.
func (c *converter) editImage(ctx context.Context, img *image) (*editedImage, error) {
	m := img.src.Manifest
	if img.plan.Role != manifestedit.RoleImage {
		c.report.Manifests = append(c.report.Manifests, ManifestReport{Platform: img.plan.Platform, SourceDigest: img.src.Digest,
			Digest: img.src.Digest, MediaType: m.MediaType, SourceConfig: m.Config.Digest, Config: m.Config.Digest, PassedThrough: true})
		return &editedImage{raw: m.Raw, desc: ocispec.Descriptor{MediaType: m.MediaType, Digest: img.src.Digest, Size: int64(len(m.Raw))}}, nil
	}
	var (
		layers  []ocispec.Descriptor
		diffIDs []digest.Digest
		dropped []int
	)
	for i, l := range m.Layers {
		if img.plan.Layers[i].Action == manifestedit.ActionDrop {
			dropped = append(dropped, i)
			c.report.Layers = append(c.report.Layers, LayerReport{Manifest: img.src.Digest, Index: i, Action: "dropped",
				Source: LayerSide{Digest: l.Digest, Format: img.plan.Layers[i].From.String(), Size: l.Size, MediaType: l.MediaType},
				Note:   img.plan.Layers[i].Reason})
			continue
		}
		r := c.layers[l.Digest].result
		if img.diffIDs == nil && r.sourceDiffID == "" {
			// Schema1: the diff_id must come from the content, so the blob must have been read.
			r.sourceDiffID, r.diffID = r.report.DiffID, r.report.DiffID
		}
		if img.diffIDs != nil && r.sourceDiffID != "" && r.sourceDiffID != img.diffIDs[i] {
			return nil, manifestedit.Refuse(manifestedit.SourceDiffIDMismatch, fmt.Sprintf("manifest %s layer %d (%s)", img.src.Digest, i, l.Digest),
				fmt.Sprintf("the layer decompresses to %s but its config claims %s", r.sourceDiffID, img.diffIDs[i]),
				"the source image is corrupt; rebuild or re-pull it")
		}
		d := r.diffID
		if d == "" && img.diffIDs != nil { // kept as it is and not read
			d = img.diffIDs[i]
		}
		if d == "" {
			return nil, fmt.Errorf("manifest %s layer %d: no diff_id could be computed", img.src.Digest, i)
		}
		// A layer the plan says keeps its diff_id must; anything else is a bug we refuse to publish.
		if img.diffIDs != nil && r.keepsDiffID && d != img.diffIDs[i] {
			return nil, manifestedit.Refuse(manifestedit.DiffIDNotPreserved, fmt.Sprintf("manifest %s layer %d", img.src.Digest, i),
				fmt.Sprintf("the converted layer decompresses to %s, not to the source's %s", d, img.diffIDs[i]),
				"report this as a bug; use --to gzip or --to zstd meanwhile")
		}
		nd := manifestedit.EditLayer(l, r.from, r.change, img.plan.OutType)
		layers, diffIDs = append(layers, nd), append(diffIDs, d)
		rep := r.report
		rep.Manifest, rep.Index = img.src.Digest, i
		rep.Target.MediaType = nd.MediaType
		c.report.Layers = append(c.report.Layers, rep)
	}
	appendHistory := false
	if bootstraps := c.nydusBootstraps(m); bootstraps != nil {
		// A Nydus image ends with the bootstrap layer merged from every layer's own bootstrap.
		desc, diffID, err := c.writeNydusBootstrap(ctx, bootstraps)
		if err != nil {
			return nil, err
		}
		layers, diffIDs = append(layers, desc), append(diffIDs, diffID)
		appendHistory = true
		c.report.Layers = append(c.report.Layers, LayerReport{Manifest: img.src.Digest, Index: len(m.Layers), Action: "added",
			Target: LayerSide{Digest: desc.Digest, Format: string(layerformat.NydusBootstrap), Size: desc.Size, MediaType: desc.MediaType},
			DiffID: diffID, Note: "merged Nydus bootstrap"})
	}
	var config []byte
	var err error
	if img.src.Schema1 != nil {
		config, err = img.src.Schema1.Config(diffIDs)
	} else {
		config, err = manifestedit.EditConfig(img.src.Config, diffIDs, dropped)
	}
	if err == nil && appendHistory {
		config, err = manifestedit.AppendHistory(config, manifestedit.NydusHistoryEntry)
	}
	if err != nil {
		return nil, err
	}
	cfgDesc := ocispec.Descriptor{MediaType: manifestedit.ConfigMediaType(m.Config.MediaType, img.plan.OutType, c.o.Target),
		Digest: digest.FromBytes(config), Size: int64(len(config))}
	if img.plan.MergedOCI != nil {
		// Plain containerd must not pick the Nydus manifest of a merged index: it would pull the
		// blobs as layers. nydus-snapshotter finds it by the index entry's artifactType.
		cfgDesc.MediaType = layerformat.MediaTypeNydusConfig
	}
	if err := c.retry(ctx, "config "+cfgDesc.Digest.String(), func() error { return c.putBytes(ctx, config, cfgDesc, true) }); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	raw, err := manifestedit.EditManifest(m, img.plan.OutType, withDescriptorFields(m.Config, cfgDesc), layers)
	if err != nil {
		return nil, err
	}
	desc := ocispec.Descriptor{MediaType: img.plan.OutType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	mr := ManifestReport{Platform: img.plan.Platform, SourceDigest: img.src.Digest,
		Digest: desc.Digest, MediaType: img.plan.OutType, SourceConfig: m.Config.Digest, Config: cfgDesc.Digest,
		ConfigRewrites: cfgDesc.Digest != m.Config.Digest}
	out := &editedImage{raw: raw, desc: desc}
	if img.plan.MergedOCI != nil {
		if out.mergedOCI, err = c.writeMergedOCI(ctx, img); err != nil {
			return nil, err
		}
		mr.Merged = "nydus"
	}
	c.report.Manifests = append(c.report.Manifests, mr)
	return out, nil
}

// withDescriptorFields keeps the fields of the source config descriptor (annotations, ...) and
// takes the new media type, digest and size.
func withDescriptorFields(src, d ocispec.Descriptor) ocispec.Descriptor {
	src.MediaType, src.Digest, src.Size = d.MediaType, d.Digest, d.Size
	return src
}

func (c *converter) putBytes(ctx context.Context, b []byte, d ocispec.Descriptor, isConfig bool) error {
	if ok, err := c.dst.HasBlob(ctx, d); err != nil {
		return err
	} else if ok {
		return nil
	}
	return c.dst.PutBlob(ctx, bytesReader(b), d, isConfig)
}

// IsRefusal reports whether err is (or wraps) a refusal, and returns it.
func IsRefusal(err error) (*manifestedit.Refusal, bool) {
	var r *manifestedit.Refusal
	ok := errors.As(err, &r)
	return r, ok
}

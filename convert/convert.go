package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/manifestedit"
	"github.com/fmtconv/fmtconv/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// maxConfigSize bounds how much of a config blob is read into memory.
const maxConfigSize = 32 << 20

// image is one image manifest to convert, with everything read from the source up front.
type image struct {
	platform   string
	manifest   *manifestedit.Manifest
	digest     digest.Digest
	config     []byte
	diffIDs    []digest.Digest
	outType    string
	passedThru bool // not an image (an artifact): copied unchanged
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
	src, err := transport.OpenSource(ctx, srcName, o.Src)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := transport.OpenDestination(ctx, dstName, o.Dst)
	if err != nil {
		return nil, err
	}
	defer dst.Close()

	c := &converter{src: src, dst: dst, o: o, level: level, jobs: jobs,
		report: &Report{Source: srcName, Destination: dstName, Target: string(o.Target), Level: level}}
	if err := c.run(ctx); err != nil {
		return nil, err
	}
	c.report.Seconds = time.Since(start).Seconds()
	return c.report, nil
}

type converter struct {
	src    *transport.Source
	dst    transport.Destination
	o      Options
	level  int
	jobs   int
	report *Report

	mu     sync.Mutex
	layers map[digest.Digest]*layerJob
}

func (c *converter) run(ctx context.Context) error {
	top, topType, err := c.src.Manifest(ctx, nil)
	if err != nil {
		return err
	}
	// Plan: read every manifest and config, and decide every refusal, before writing anything.
	var (
		index   *manifestedit.Index
		changes []manifestedit.InstanceChange
		images  []*image
		slots   []int // images[k] is index entry slots[k]
	)
	switch topType {
	case layerformat.MediaTypeOCIIndex, layerformat.MediaTypeDockerManifestList:
		if index, err = manifestedit.ParseIndex(top, topType); err != nil {
			return err
		}
		changes = make([]manifestedit.InstanceChange, len(index.Manifests))
		for i, d := range index.Manifests {
			if !c.selected(d.Platform) {
				changes[i].Drop = true
				continue
			}
			img, err := c.readImage(ctx, &d.Digest, platformString(d.Platform))
			if err != nil {
				return err
			}
			images = append(images, img)
			slots = append(slots, i)
		}
		if len(images) == 0 {
			return manifestedit.Refuse(manifestedit.NoMatchingPlatform, c.src.Name(),
				fmt.Sprintf("no index entry matches --platform %v", c.o.Platforms), "list the platforms with fmtconv inspect")
		}
	default:
		img, err := c.readImage(ctx, nil, "")
		if err != nil {
			return err
		}
		images = []*image{img}
	}
	if index != nil && !c.dst.CanStoreIndex() {
		if len(images) != 1 {
			return manifestedit.Refuse(manifestedit.DestNoIndex, c.dst.Name(),
				fmt.Sprintf("the source is an index of %d images and the destination holds one image", len(images)),
				"choose one image with --platform os/arch[/variant]")
		}
		index = nil // write the one selected image on its own
	}
	for _, img := range images {
		if err := c.plan(img); err != nil {
			return err
		}
	}

	// Layers: each distinct source blob is converted once, in parallel.
	if err := c.convertLayers(ctx, images); err != nil {
		return err
	}

	// Every config blob, then every manifest; then the index; then the commit. No manifest is
	// written while a blob of the same run is still to come.
	edited := make([]*editedImage, len(images))
	for k, img := range images {
		if edited[k], err = c.editImage(ctx, img); err != nil {
			return err
		}
	}
	instanceTypes := make([]string, 0, len(images))
	for k, e := range edited {
		var inst *digest.Digest
		if index != nil {
			inst = &e.desc.Digest
		}
		if err := c.dst.PutManifest(ctx, e.raw, e.desc.MediaType, inst); err != nil {
			return err
		}
		instanceTypes = append(instanceTypes, e.desc.MediaType)
		if index != nil {
			changes[slots[k]] = manifestedit.InstanceChange{Digest: e.desc}
		} else {
			c.report.Digest, c.report.MediaType = e.desc.Digest, e.desc.MediaType
		}
	}
	if index != nil {
		outType := manifestedit.IndexType(index.MediaType, instanceTypes, c.o.ManifestFormat)
		b, err := manifestedit.EditIndex(index, outType, changes)
		if err != nil {
			return err
		}
		if err := c.dst.PutManifest(ctx, b, outType, nil); err != nil {
			return err
		}
		c.report.Digest, c.report.MediaType = digest.FromBytes(b), outType
	}
	return c.dst.Commit(ctx)
}

func (c *converter) selected(p *ocispec.Platform) bool {
	if len(c.o.Platforms) == 0 {
		return true
	}
	for _, f := range c.o.Platforms {
		if f.Matches(p) {
			return true
		}
	}
	return false
}

// readImage reads a manifest and its config.
func (c *converter) readImage(ctx context.Context, instance *digest.Digest, platform string) (*image, error) {
	raw, mt, err := c.src.Manifest(ctx, instance)
	if err != nil {
		return nil, err
	}
	if instance != nil && digest.FromBytes(raw) != *instance {
		return nil, fmt.Errorf("manifest %s: content does not match its digest", *instance)
	}
	img := &image{platform: platform, digest: digest.FromBytes(raw)}
	switch mt {
	case layerformat.MediaTypeOCIManifest, layerformat.MediaTypeDockerManifest:
	case layerformat.MediaTypeDockerSchema1, layerformat.MediaTypeDockerSchema1Signed:
		return nil, manifestedit.Refuse(manifestedit.UnsupportedManifest, img.digest.String(),
			"Docker schema1 manifests are not converted", "convert the image to OCI first with skopeo copy --format oci")
	default:
		return nil, manifestedit.Refuse(manifestedit.UnsupportedManifest, img.digest.String(),
			fmt.Sprintf("manifest type %q is not an image manifest fmtconv converts", mt), "")
	}
	if img.manifest, err = manifestedit.ParseManifest(raw, mt); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", img.digest, err)
	}
	cfg := img.manifest.Config
	if cfg.MediaType != layerformat.MediaTypeOCIConfig && cfg.MediaType != layerformat.MediaTypeDockerConfig {
		// An artifact (or anything not a container image): pass it through unchanged.
		img.passedThru = true
		return img, nil
	}
	if cfg.Size > maxConfigSize {
		return nil, fmt.Errorf("manifest %s: config is %d bytes, more than the %d fmtconv reads", img.digest, cfg.Size, maxConfigSize)
	}
	rc, err := c.src.Blob(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if img.config, err = io.ReadAll(transport.VerifyingReader(io.LimitReader(rc, maxConfigSize+1), cfg.Digest, cfg.Size)); err != nil {
		return nil, fmt.Errorf("config %s: %w", cfg.Digest, err)
	}
	if img.diffIDs, err = manifestedit.ConfigDiffIDs(img.config); err != nil {
		return nil, fmt.Errorf("config %s: %w", cfg.Digest, err)
	}
	if len(img.diffIDs) != len(img.manifest.Layers) {
		return nil, fmt.Errorf("manifest %s has %d layers but its config lists %d diff_ids", img.digest, len(img.manifest.Layers), len(img.diffIDs))
	}
	return img, nil
}

// plan decides the output manifest type and refuses what cannot be done, from metadata alone.
func (c *converter) plan(img *image) error {
	if img.passedThru {
		img.outType = img.manifest.MediaType
		return nil
	}
	var err error
	img.outType, err = manifestedit.ManifestType(img.manifest.MediaType, c.o.Target, c.o.ManifestFormat, c.dst.ManifestTypes(), c.dst.Name())
	if err != nil {
		return err
	}
	for i, l := range img.manifest.Layers {
		if layerformat.IsEncrypted(l.MediaType) {
			return manifestedit.Refuse(manifestedit.EncryptedLayer, fmt.Sprintf("layer %d (%s)", i, l.Digest),
				"the layer is encrypted, so its content cannot be read and converted", "decrypt the image first (skopeo copy --decryption-key)")
		}
	}
	for _, a := range manifestedit.DroppedAnnotations(img.manifest.Layers, img.outType) {
		c.report.Warnings = append(c.report.Warnings, fmt.Sprintf("manifest %s: Docker schema2 cannot carry the annotation %s", img.digest, a))
	}
	return nil
}

// convertLayers converts every distinct layer of every image, at most c.jobs at once.
func (c *converter) convertLayers(ctx context.Context, images []*image) error {
	c.layers = map[digest.Digest]*layerJob{}
	var order []*layerJob
	for _, img := range images {
		for i, l := range img.manifest.Layers {
			if _, ok := c.layers[l.Digest]; ok {
				continue
			}
			var diffID digest.Digest
			if !img.passedThru {
				diffID = img.diffIDs[i]
			}
			j := &layerJob{desc: l, configDiffID: diffID, passThru: img.passedThru}
			c.layers[l.Digest] = j
			order = append(order, j)
		}
		if img.passedThru {
			cfg := img.manifest.Config
			if _, ok := c.layers[cfg.Digest]; !ok {
				j := &layerJob{desc: cfg, passThru: true}
				c.layers[cfg.Digest] = j
				order = append(order, j)
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.jobs)
	for _, j := range order {
		g.Go(func() error {
			if err := c.convertLayer(gctx, j); err != nil {
				return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// editedImage is an image manifest ready to be written.
type editedImage struct {
	raw  []byte
	desc ocispec.Descriptor
}

// editImage writes an image's config (its layers are already written) and returns its edited
// manifest, to be written once every blob of the run is.
func (c *converter) editImage(ctx context.Context, img *image) (*editedImage, error) {
	m := img.manifest
	if img.passedThru {
		c.report.Manifests = append(c.report.Manifests, ManifestReport{Platform: img.platform, SourceDigest: img.digest,
			Digest: img.digest, MediaType: m.MediaType, SourceConfig: m.Config.Digest, Config: m.Config.Digest, PassedThrough: true})
		return &editedImage{raw: m.Raw, desc: ocispec.Descriptor{MediaType: m.MediaType, Digest: img.digest, Size: int64(len(m.Raw))}}, nil
	}
	layers := make([]ocispec.Descriptor, len(m.Layers))
	diffIDs := make([]digest.Digest, len(m.Layers))
	for i, l := range m.Layers {
		j := c.layers[l.Digest]
		r := j.result
		if r.sourceDiffID != "" && r.sourceDiffID != img.diffIDs[i] {
			return nil, manifestedit.Refuse(manifestedit.SourceDiffIDMismatch, fmt.Sprintf("manifest %s layer %d (%s)", img.digest, i, l.Digest),
				fmt.Sprintf("the layer decompresses to %s but its config claims %s", r.sourceDiffID, img.diffIDs[i]),
				"the source image is corrupt; rebuild or re-pull it")
		}
		layers[i] = manifestedit.EditLayer(l, r.from, r.change, img.outType)
		diffIDs[i] = r.diffID
		rep := r.report
		rep.Manifest, rep.Index = img.digest, i
		rep.Target.MediaType = layers[i].MediaType
		c.report.Layers = append(c.report.Layers, rep)
	}
	// Lossless targets keep every diff_id; anything else is a bug we refuse to publish.
	for i := range diffIDs {
		if !layerformat.KeepsDiffID(c.o.Target) {
			break
		}
		if diffIDs[i] != img.diffIDs[i] {
			return nil, manifestedit.Refuse(manifestedit.DiffIDNotPreserved, fmt.Sprintf("manifest %s layer %d", img.digest, i),
				fmt.Sprintf("the converted layer decompresses to %s, not to the source's %s", diffIDs[i], img.diffIDs[i]),
				"report this as a bug; use --to gzip or --to zstd meanwhile")
		}
	}
	config, err := manifestedit.EditConfigDiffIDs(img.config, diffIDs)
	if err != nil {
		return nil, err
	}
	cfgDesc := ocispec.Descriptor{MediaType: manifestedit.ConfigMediaType(m.Config.MediaType, img.outType),
		Digest: digest.FromBytes(config), Size: int64(len(config))}
	if err := c.putBytes(ctx, config, cfgDesc, true); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	raw, err := manifestedit.EditManifest(m, img.outType, withDescriptorFields(m.Config, cfgDesc), layers)
	if err != nil {
		return nil, err
	}
	desc := ocispec.Descriptor{MediaType: img.outType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	c.report.Manifests = append(c.report.Manifests, ManifestReport{Platform: img.platform, SourceDigest: img.digest,
		Digest: desc.Digest, MediaType: img.outType, SourceConfig: m.Config.Digest, Config: cfgDesc.Digest,
		ConfigRewrites: cfgDesc.Digest != m.Config.Digest})
	return &editedImage{raw: raw, desc: desc}, nil
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

package transport

import (
	"context"
	"fmt"
	"io"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// imageDestination adapts a containers/image ImageDestination.
type imageDestination struct {
	name     string
	ref      types.ImageReference
	dst      types.ImageDestination
	toplevel []byte
	topType  string
	// putMu serialises PutBlob for destinations that say they cannot take parallel uploads.
	putMu *sync.Mutex
}

func openImageDestination(ctx context.Context, name string, o Options) (*imageDestination, error) {
	ref, err := alltransports.ParseImageName(name)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", name, err)
	}
	sys, err := o.SystemContext()
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", name, err)
	}
	dst, err := ref.NewImageDestination(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("opening destination %q: %w", name, err)
	}
	d := &imageDestination{name: name, ref: ref, dst: dst}
	if !dst.HasThreadSafePutBlob() {
		d.putMu = &sync.Mutex{}
	}
	return d, nil
}

func (d *imageDestination) Name() string            { return d.name }
func (d *imageDestination) ManifestTypes() []string { return d.dst.SupportedManifestMIMETypes() }

func (d *imageDestination) CanStoreIndex() bool {
	switch d.ref.Transport().Name() {
	case "docker-archive", "docker-daemon":
		return false
	}
	return true
}

func (d *imageDestination) HasBlob(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	ok, _, err := d.dst.TryReusingBlob(ctx, types.BlobInfo{Digest: desc.Digest, Size: desc.Size, MediaType: desc.MediaType}, cache, false)
	if err != nil {
		return false, fmt.Errorf("checking for blob %s: %w", desc.Digest, err)
	}
	return ok, nil
}

func (d *imageDestination) PutBlob(ctx context.Context, r io.Reader, desc ocispec.Descriptor, isConfig bool) error {
	info := types.BlobInfo{Digest: desc.Digest, Size: desc.Size, MediaType: desc.MediaType}
	if d.putMu != nil {
		d.putMu.Lock()
		defer d.putMu.Unlock()
	}
	got, err := d.dst.PutBlob(ctx, VerifyingReader(r, desc.Digest, desc.Size), info, cache, isConfig)
	if err != nil {
		return fmt.Errorf("writing blob %s: %w", desc.Digest, err)
	}
	if got.Digest != desc.Digest {
		return fmt.Errorf("writing blob %s: destination stored it as %s", desc.Digest, got.Digest)
	}
	return nil
}

func (d *imageDestination) PutManifest(ctx context.Context, m []byte, mediaType string, instance *digest.Digest) error {
	if err := d.dst.PutManifest(ctx, m, instance); err != nil {
		return fmt.Errorf("writing manifest %s: %w", digest.FromBytes(m), err)
	}
	if instance == nil {
		d.toplevel, d.topType = m, mediaType
	}
	return nil
}

func (d *imageDestination) Commit(ctx context.Context) error {
	if d.toplevel == nil {
		return fmt.Errorf("commit of %s before its manifest was written", d.name)
	}
	if err := d.dst.Commit(ctx, unparsedImage{ref: d.ref, manifest: d.toplevel, mediaType: d.topType}); err != nil {
		return fmt.Errorf("committing %s: %w", d.name, err)
	}
	return nil
}

func (d *imageDestination) Close() error { return d.dst.Close() }

// unparsedImage is the minimal types.UnparsedImage that Commit needs.
type unparsedImage struct {
	ref       types.ImageReference
	manifest  []byte
	mediaType string
}

func (u unparsedImage) Reference() types.ImageReference { return u.ref }
func (u unparsedImage) Manifest(context.Context) ([]byte, string, error) {
	return u.manifest, u.mediaType, nil
}
func (u unparsedImage) Signatures(context.Context) ([][]byte, error) { return nil, nil }

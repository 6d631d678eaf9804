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

// imageDestination adapts a containers/image ImageDestination. The destination is opened on the
// first write, not before: some transports create files when opened (dir: makes its directory),
// and a refused or dry run must leave the destination exactly as it was.
type imageDestination struct {
	name     string
	ref      types.ImageReference
	sys      *types.SystemContext
	toplevel []byte
	topType  string

	openOnce sync.Once
	dst      types.ImageDestination
	openErr  error
	// putMu serialises PutBlob for destinations that say they cannot take parallel uploads.
	putMu sync.Mutex
}

func openImageDestination(_ context.Context, name string, o Options) (*imageDestination, error) {
	ref, err := alltransports.ParseImageName(name)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", name, err)
	}
	sys, err := o.SystemContext()
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", name, err)
	}
	return &imageDestination{name: name, ref: ref, sys: sys}, nil
}

func (d *imageDestination) open(ctx context.Context) (types.ImageDestination, error) {
	d.openOnce.Do(func() {
		d.dst, d.openErr = d.ref.NewImageDestination(ctx, d.sys)
		if d.openErr != nil {
			d.openErr = fmt.Errorf("opening destination %q: %w", d.name, d.openErr)
		}
	})
	return d.dst, d.openErr
}

func (d *imageDestination) Name() string { return d.name }

// ManifestTypes is known per transport without opening the destination (containers/image's
// own answers: docker-archive and docker-daemon hold Docker schema2 only; oci-archive OCI only;
// dir: and registries anything).
func (d *imageDestination) ManifestTypes() []string {
	switch d.ref.Transport().Name() {
	case "docker-archive", "docker-daemon":
		return []string{"application/vnd.docker.distribution.manifest.v2+json"}
	case "oci-archive", "oci":
		return []string{"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"}
	}
	return nil
}

func (d *imageDestination) CanStoreIndex() bool {
	switch d.ref.Transport().Name() {
	case "docker-archive", "docker-daemon":
		return false
	}
	return true
}

func (d *imageDestination) HasBlob(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	dst, err := d.open(ctx)
	if err != nil {
		return false, err
	}
	ok, _, err := dst.TryReusingBlob(ctx, types.BlobInfo{Digest: desc.Digest, Size: desc.Size, MediaType: desc.MediaType}, cache, false)
	if err != nil {
		return false, fmt.Errorf("checking for blob %s: %w", desc.Digest, err)
	}
	return ok, nil
}

func (d *imageDestination) PutBlob(ctx context.Context, r io.Reader, desc ocispec.Descriptor, isConfig bool) error {
	dst, err := d.open(ctx)
	if err != nil {
		return err
	}
	info := types.BlobInfo{Digest: desc.Digest, Size: desc.Size, MediaType: desc.MediaType}
	if !dst.HasThreadSafePutBlob() {
		d.putMu.Lock()
		defer d.putMu.Unlock()
	}
	got, err := dst.PutBlob(ctx, VerifyingReader(r, desc.Digest, desc.Size), info, cache, isConfig)
	if err != nil {
		return fmt.Errorf("writing blob %s: %w", desc.Digest, err)
	}
	if got.Digest != desc.Digest {
		return fmt.Errorf("writing blob %s: destination stored it as %s", desc.Digest, got.Digest)
	}
	return nil
}

func (d *imageDestination) PutManifest(ctx context.Context, m []byte, mediaType string, instance *digest.Digest) error {
	dst, err := d.open(ctx)
	if err != nil {
		return err
	}
	if err := dst.PutManifest(ctx, m, instance); err != nil {
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
	dst, err := d.open(ctx)
	if err != nil {
		return err
	}
	if err := dst.Commit(ctx, unparsedImage{ref: d.ref, manifest: d.toplevel, mediaType: d.topType}); err != nil {
		return fmt.Errorf("committing %s: %w", d.name, err)
	}
	return nil
}

func (d *imageDestination) Close() error {
	if d.dst == nil {
		return nil
	}
	return d.dst.Close()
}

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

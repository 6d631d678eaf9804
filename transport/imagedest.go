package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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

	// mu guards dst and stale. dst is opened on first use and dropped after a failed registry
	// ping (see dropIfPingFailed); dropped ones are closed with the destination.
	mu    sync.Mutex
	dst   types.ImageDestination
	stale []types.ImageDestination
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
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dst == nil {
		dst, err := d.ref.NewImageDestination(ctx, d.sys)
		if err != nil {
			return nil, fmt.Errorf("opening destination %q: %w", d.name, err)
		}
		d.dst = dst
	}
	return d.dst, nil
}

// dropIfPingFailed forgets a docker:// destination whose registry ping failed, so that the
// caller's retry opens a fresh one. containers/image pings a registry once per client and keeps
// the answer, failure included, for the client's life: without this, a registry that was
// restarting at the first contact would fail every retry. Blobs already uploaded stay in the
// registry, so a fresh destination loses nothing; other transports never ping.
func (d *imageDestination) dropIfPingFailed(dst types.ImageDestination, err error) error {
	if err != nil && d.ref.Transport().Name() == "docker" && strings.Contains(err.Error(), "pinging container registry") {
		d.mu.Lock()
		if d.dst == dst {
			d.dst, d.stale = nil, append(d.stale, dst)
		}
		d.mu.Unlock()
	}
	return err
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
		return false, fmt.Errorf("checking for blob %s: %w", desc.Digest, d.dropIfPingFailed(dst, err))
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
		return fmt.Errorf("writing blob %s: %w", desc.Digest, d.dropIfPingFailed(dst, err))
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
		return fmt.Errorf("writing manifest %s: %w", digest.FromBytes(m), d.dropIfPingFailed(dst, err))
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
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, dst := range append(d.stale, d.dst) {
		if dst != nil {
			errs = append(errs, dst.Close())
		}
	}
	return errors.Join(errs...)
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

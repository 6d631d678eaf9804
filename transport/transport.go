// Package transport is where images come in and go out: sources and destinations of every
// containers/image transport (docker://, oci:, oci-archive:, docker-archive:, dir:), behind two
// small types. oci: destinations are written by fmtconv itself (see ocilayout.go) so that index.json
// is replaced atomically under a lock; every other destination is containers/image's.
package transport

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/pkg/blobinfocache/memory"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// Options are the per-side settings, spelled as skopeo spells its flags.
type Options struct {
	AuthFile  string // --src-authfile / --dest-authfile; the standard auth files are used when empty
	Creds     string // USER[:PASSWORD]
	CertDir   string
	TLSVerify *bool // nil: the transport's default (verify, except registries marked insecure)
	// TempDir holds large temporary files (oci-archive: staging); "" means the system default.
	TempDir string
}

// SystemContext turns Options into the containers/image settings.
func (o Options) SystemContext() (*types.SystemContext, error) {
	sys := &types.SystemContext{
		AuthFilePath:                o.AuthFile,
		DockerCertPath:              o.CertDir,
		OCICertPath:                 o.CertDir,
		BigFilesTemporaryDir:        o.TempDir,
		DockerRegistryUserAgent:     "fmtconv",
		OCIAcceptUncompressedLayers: true,
		DirForceCompress:            false,
	}
	if o.AuthFile == "" {
		sys.AuthFilePath = os.Getenv("REGISTRY_AUTH_FILE")
	}
	if o.TLSVerify != nil {
		sys.DockerInsecureSkipTLSVerify = types.NewOptionalBool(!*o.TLSVerify)
		sys.OCIInsecureSkipTLSVerify = !*o.TLSVerify
		sys.DockerDaemonInsecureSkipTLSVerify = !*o.TLSVerify
	}
	if o.Creds != "" {
		user, pass, _ := strings.Cut(o.Creds, ":")
		if user == "" {
			return nil, fmt.Errorf("credentials %q: user name is empty", o.Creds)
		}
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: pass}
	}
	return sys, nil
}

// cache is shared by every source and destination of a process, so that a registry destination
// learns where a source blob lives and can mount it across repositories instead of uploading it.
var cache = memory.New()

// Source reads one image reference.
type Source struct {
	sys  *types.SystemContext
	name string
	ref  types.ImageReference
	src  types.ImageSource
}

// OpenSource opens a containers/image reference such as "docker://host/repo:tag" or "oci:dir:tag".
func OpenSource(ctx context.Context, name string, o Options) (*Source, error) {
	ref, err := alltransports.ParseImageName(name)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", name, err)
	}
	sys, err := o.SystemContext()
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", name, err)
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("opening source %q: %w", name, err)
	}
	return &Source{name: name, ref: ref, src: src, sys: sys}, nil
}

// Name is the reference the source was opened with.
func (s *Source) Name() string { return s.name }

// Transport is the source's transport name ("docker", "oci", "dir", ...).
func (s *Source) Transport() string { return s.ref.Transport().Name() }

// SynthesizesManifest reports whether containers/image makes the manifest up for this transport
// (docker-archive: lists every layer as tar.gzip under its diff_id and serves it uncompressed), so
// that layer media types there say nothing about the stored bytes.
func (s *Source) SynthesizesManifest() bool {
	switch s.Transport() {
	case "docker-archive", "docker-daemon":
		return true
	}
	return false
}

// Manifest returns the top-level manifest (instance nil) or one instance of an index.
func (s *Source) Manifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	b, mt, err := s.src.GetManifest(ctx, instance)
	if err != nil {
		if instance != nil {
			return nil, "", fmt.Errorf("manifest %s: %w", *instance, err)
		}
		return nil, "", fmt.Errorf("manifest: %w", err)
	}
	return b, mt, nil
}

// Blob opens a blob as a stream. The caller verifies the digest while reading (see VerifyingReader).
func (s *Source) Blob(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	rc, _, err := s.src.GetBlob(ctx, types.BlobInfo{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType, URLs: d.URLs}, cache)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return rc, nil
}

// Signatures returns the signatures containers/image finds for the image or an instance.
func (s *Source) Signatures(ctx context.Context, instance *digest.Digest) ([][]byte, error) {
	return s.src.GetSignatures(ctx, instance)
}

// Tags lists the repository's tags for registry sources (nil for other transports), so that
// signature tags next to the image can be found.
func (s *Source) Tags(ctx context.Context) ([]string, error) {
	if s.Transport() != "docker" {
		return nil, nil
	}
	return docker.GetRepositoryTags(ctx, s.sys, s.ref)
}

// Close releases the source (and removes staging directories, for archives).
func (s *Source) Close() error { return s.src.Close() }

// Destination receives blobs, then manifests, then a commit. Nothing a user can see as an image
// (a manifest, a tag, an index.json entry) may appear before Commit, or before all of its blobs.
type Destination interface {
	Name() string
	// ManifestTypes lists the manifest media types it can store; nil means any.
	ManifestTypes() []string
	// CanStoreIndex reports whether it can hold an image index or manifest list.
	CanStoreIndex() bool
	// HasBlob reports whether the destination already holds the blob (for a registry this may mount
	// it from a repository a source blob was read from), so that it need not be uploaded.
	HasBlob(ctx context.Context, d ocispec.Descriptor) (bool, error)
	// PutBlob stores a blob whose digest and size are known; it fails if the stream does not match.
	PutBlob(ctx context.Context, r io.Reader, d ocispec.Descriptor, isConfig bool) error
	// PutManifest stores an index instance (instance != nil) or the top-level manifest (nil).
	PutManifest(ctx context.Context, m []byte, mediaType string, instance *digest.Digest) error
	// Commit makes the top-level manifest visible (tags it, writes index.json or the archive).
	Commit(ctx context.Context) error
	Close() error
}

// BlobLinker is a Destination that can take a finished blob file without copying it (an oci:
// layout on the same file system hard-links it). The caller vouches for the file's digest.
type BlobLinker interface {
	LinkBlob(ctx context.Context, f *os.File, d ocispec.Descriptor) (bool, error)
	// LinksFrom reports whether a file created in dir is on the destination's file system, so
	// that LinkBlob will link it rather than have the caller copy it.
	LinksFrom(dir string) bool
}

// OpenDestination opens a destination reference. "oci:" layouts are written by fmtconv itself.
func OpenDestination(ctx context.Context, name string, o Options) (Destination, error) {
	if rest, ok := strings.CutPrefix(name, "oci:"); ok {
		dir, tag, _ := strings.Cut(rest, ":")
		if dir == "" {
			return nil, fmt.Errorf("destination %q: empty directory", name)
		}
		if strings.Contains(tag, "@") {
			return nil, fmt.Errorf("destination %q: a destination needs a tag, not a digest", name)
		}
		return openOCILayout(name, dir, tag)
	}
	return openImageDestination(ctx, name, o)
}

// VerifyingReader wraps r so that reading it to EOF fails unless exactly size bytes with digest d
// came out. Use it on every blob read from a source.
func VerifyingReader(r io.Reader, d digest.Digest, size int64) io.Reader {
	return &verifyingReader{r: r, want: d, size: size, v: d.Verifier()}
}

type verifyingReader struct {
	r    io.Reader
	want digest.Digest
	size int64
	n    int64
	v    digest.Verifier
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.v.Write(p[:n])
	if v.size >= 0 && v.n > v.size {
		return n, fmt.Errorf("blob %s is longer than its descriptor's %d bytes", v.want, v.size)
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("blob %s has %d bytes, its descriptor says %d", v.want, v.n, v.size)
		}
		if !v.v.Verified() {
			return n, fmt.Errorf("blob %s: content does not match its digest", v.want)
		}
	}
	return n, err
}

package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fmtconv/fmtconv/internal/hashio"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ociLayout writes an OCI image layout directory. Blobs are written to a temporary file and renamed
// into place, so a blob file is always complete. index.json is touched only by Commit, which takes a
// lock file beside it, re-reads it, merges in the new descriptor and renames a new file over it: a
// kill at any moment leaves index.json as it was or as it will be, and concurrent runs that write
// different tags into one layout all land.
type ociLayout struct {
	name, dir, tag string
	top            *ocispec.Descriptor
}

const (
	ociLayoutFile  = "oci-layout"
	ociIndexFile   = "index.json"
	ociLockFile    = "index.json.lock"
	ociLayoutBytes = `{"imageLayoutVersion":"1.0.0"}`
)

// openOCILayout checks an existing layout but creates nothing: directories appear with the first
// blob, so a refused or dry run leaves no trace.
func openOCILayout(name, dir, tag string) (*ociLayout, error) {
	if b, err := os.ReadFile(filepath.Join(dir, ociLayoutFile)); err == nil {
		var l ocispec.ImageLayout
		if err := json.Unmarshal(b, &l); err != nil || l.Version == "" {
			return nil, fmt.Errorf("destination %q: %s is not an OCI layout file", name, ociLayoutFile)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("destination %q: %w", name, err)
	}
	return &ociLayout{name: name, dir: dir, tag: tag}, nil
}

func (l *ociLayout) Name() string { return l.name }
func (l *ociLayout) ManifestTypes() []string {
	return []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex}
}
func (l *ociLayout) CanStoreIndex() bool { return true }

func (l *ociLayout) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("blob digest %q: %w", d, err)
	}
	return filepath.Join(l.dir, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

func (l *ociLayout) HasBlob(_ context.Context, d ocispec.Descriptor) (bool, error) {
	p, err := l.blobPath(d.Digest)
	if err != nil {
		return false, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Blob files are only ever renamed into place complete, so a right-sized file is the blob.
	return st.Mode().IsRegular() && st.Size() == d.Size, nil
}

func (l *ociLayout) PutBlob(ctx context.Context, r io.Reader, d ocispec.Descriptor, _ bool) error {
	p, err := l.blobPath(d.Digest)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(p, func(f *os.File) error {
		_, err := io.Copy(f, VerifyingReader(hashio.ContextReader(ctx, r), d.Digest, d.Size))
		return err
	})
}

// LinkBlob puts a complete blob file into the layout by hard-linking it, without copying or
// reading it again: the caller vouches that the file holds exactly d (it digested what it wrote).
// The file is synced first, so the blob is as durable as a copied one. It returns false, and
// nothing changed, when the file cannot be linked here (another file system); then use PutBlob.
func (l *ociLayout) LinkBlob(ctx context.Context, f *os.File, d ocispec.Descriptor) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p, err := l.blobPath(d.Digest)
	if err != nil {
		return false, err
	}
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st.Size() != d.Size {
		return false, fmt.Errorf("blob file %s: %d bytes, the descriptor says %d", f.Name(), st.Size(), d.Size)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return false, err
	}
	if err := f.Sync(); err != nil {
		return false, err
	}
	tmp := filepath.Join(filepath.Dir(p), fmt.Sprintf(".tmp-link-%s-%d", d.Digest.Encoded(), time.Now().UnixNano()))
	if err := os.Link(f.Name(), tmp); err != nil {
		return false, nil // another file system, or links not allowed: the caller copies
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return false, err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return false, err
	}
	if dir, err := os.Open(filepath.Dir(p)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return true, nil
}

// LinksFrom compares the file systems of dir and the layout (or, before the layout exists, the
// directory it will be created in).
func (l *ociLayout) LinksFrom(dir string) bool {
	a, err := os.Stat(dir)
	if err != nil {
		return false
	}
	p, err := filepath.Abs(l.dir)
	if err != nil {
		return false
	}
	b, err := os.Stat(p)
	for err != nil && errors.Is(err, fs.ErrNotExist) && filepath.Dir(p) != p {
		p = filepath.Dir(p)
		b, err = os.Stat(p)
	}
	if err != nil {
		return false
	}
	sa, okA := a.Sys().(*syscall.Stat_t)
	sb, okB := b.Sys().(*syscall.Stat_t)
	return okA && okB && sa.Dev == sb.Dev
}

func (l *ociLayout) PutManifest(ctx context.Context, m []byte, mediaType string, instance *digest.Digest) error {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(m), Size: int64(len(m))}
	if instance != nil && *instance != d.Digest {
		return fmt.Errorf("manifest instance %s does not match its bytes (%s)", *instance, d.Digest)
	}
	if err := l.PutBlob(ctx, bytes.NewReader(m), d, false); err != nil {
		return err
	}
	if instance == nil {
		l.top = &d
	}
	return nil
}

// Commit merges the top-level descriptor into index.json under the layout's lock.
func (l *ociLayout) Commit(ctx context.Context) error {
	if l.top == nil {
		return fmt.Errorf("commit of %s before its manifest was written", l.name)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(l.dir, ociLockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("locking %s: %w", l.dir, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", l.dir, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	layoutPath := filepath.Join(l.dir, ociLayoutFile)
	if _, err := os.Stat(layoutPath); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(layoutPath, func(f *os.File) error { _, err := f.WriteString(ociLayoutBytes); return err }); err != nil {
			return err
		}
	}
	index := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	index.SchemaVersion = 2
	indexPath := filepath.Join(l.dir, ociIndexFile)
	if b, err := os.ReadFile(indexPath); err == nil {
		if err := json.Unmarshal(b, &index); err != nil {
			return fmt.Errorf("%s: %w", indexPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	index.Manifests = MergeIndexDescriptor(index.Manifests, *l.top, l.tag)
	b, err := json.Marshal(index)
	if err != nil {
		return err
	}
	return writeFileAtomic(indexPath, func(f *os.File) error { _, err := f.Write(b); return err })
}

// MergeIndexDescriptor returns descs with d added under tag: an entry that had the same tag loses
// it (as containers/image does), and an untagged entry for the same digest is not duplicated.
func MergeIndexDescriptor(descs []ocispec.Descriptor, d ocispec.Descriptor, tag string) []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, 0, len(descs)+1)
	for _, e := range descs {
		name := e.Annotations[ocispec.AnnotationRefName]
		if tag != "" && name == tag {
			continue
		}
		if tag == "" && name == "" && e.Digest == d.Digest {
			continue
		}
		out = append(out, e)
	}
	if tag != "" {
		d.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	}
	return append(out, d)
}

func (l *ociLayout) Close() error { return nil }

// writeFileAtomic writes path through a temporary file in the same directory, synced and renamed.
func writeFileAtomic(path string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

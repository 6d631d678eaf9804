package transport

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LinkBlob puts a finished file into the layout under its digest (same inode, readable by all,
// the caller's file untouched), refuses a file whose size is not the descriptor's, and PutBlob
// still verifies what it copies.
func TestOCILayoutLinkBlob(t *testing.T) {
	dir := t.TempDir()
	l, err := openOCILayout("oci:"+dir+"/img:x", dir+"/img", "x")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("layer "), 1000)
	f, err := os.CreateTemp(dir, "blob-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	d := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	ctx := context.Background()
	if linked, err := l.LinkBlob(ctx, f, ocispec.Descriptor{Digest: d.Digest, Size: d.Size + 1}); err == nil || linked {
		t.Fatalf("a wrong size was linked: %v %v", linked, err)
	}
	linked, err := l.LinkBlob(ctx, f, d)
	if err != nil || !linked {
		t.Fatalf("LinkBlob: %v %v", linked, err)
	}
	p := filepath.Join(dir, "img", "blobs", "sha256", d.Digest.Encoded())
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("linked blob: %v", err)
	}
	st, _ := os.Stat(p)
	src, _ := f.Stat()
	if !os.SameFile(st, src) || st.Mode().Perm() != 0o644 {
		t.Fatalf("blob is not the linked file with mode 0644: %v", st.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	if ok, err := l.HasBlob(ctx, d); err != nil || !ok {
		t.Fatalf("HasBlob after LinkBlob: %v %v", ok, err)
	}
	if err := l.PutBlob(ctx, bytes.NewReader(data[1:]), ocispec.Descriptor{Digest: digest.FromString("x"), Size: d.Size - 1}, false); err == nil {
		t.Fatal("PutBlob stored a blob that does not match its digest")
	}
}

// LinksFrom says whether a temporary directory is on the layout's file system, also before the
// layout directory exists (fmtconv decides that when it opens the destination).
func TestOCILayoutLinksFrom(t *testing.T) {
	dir := t.TempDir()
	l, err := openOCILayout("oci:"+dir+"/new/img:x", dir+"/new/img", "x")
	if err != nil {
		t.Fatal(err)
	}
	if !l.LinksFrom(dir) {
		t.Errorf("LinksFrom(%s) = false for a layout to be created under it", dir)
	}
	if l.LinksFrom(filepath.Join(dir, "missing")) {
		t.Error("LinksFrom a missing directory = true")
	}
	// /dev/shm is a tmpfs on Linux; the test directory is not, on this project's machines.
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() && !sameFSForTest(t, "/dev/shm", dir) {
		if l.LinksFrom("/dev/shm") {
			t.Error("LinksFrom(/dev/shm) = true for a layout on another file system")
		}
	}
}

func sameFSForTest(t *testing.T, a, b string) bool {
	t.Helper()
	out, err := exec.Command("stat", "-c", "%d", a, b).Output()
	if err != nil {
		t.Skipf("stat: %v", err)
	}
	f := strings.Fields(string(out))
	return len(f) == 2 && f[0] == f[1]
}

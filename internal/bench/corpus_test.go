package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func genBytes(t *testing.T, g tarGen) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := g(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTreeTarDeterministic(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{"src/b.go": "package b\n", "src/a/x.txt": "x", "bin/go": "binary", "VERSION": "go1"} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first := genBytes(t, treeTar(root, nil, []string{"bin"}))
	// Times and permissions bits other than x do not matter.
	if err := os.Chtimes(filepath.Join(root, "VERSION"), time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "VERSION"), 0o640); err != nil {
		t.Fatal(err)
	}
	if second := genBytes(t, treeTar(root, nil, []string{"bin"})); !bytes.Equal(first, second) {
		t.Fatal("two tars of the same tree differ")
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(first))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(fixedMtime) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid)
		}
		names = append(names, hdr.Name)
	}
	want := []string{"go/", "go/VERSION", "go/src/", "go/src/a/", "go/src/a/x.txt", "go/src/b.go"}
	if len(names) != len(want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %q, want %q", names, want)
		}
	}
}

func TestBigTarDeterministic(t *testing.T) {
	const size = 3 << 20
	a, b := genBytes(t, bigTar(size)), genBytes(t, bigTar(size))
	if !bytes.Equal(a, b) {
		t.Fatal("two big tars differ")
	}
	if len(a) < size || len(a) > size+64<<10 {
		t.Fatalf("big tar is %d bytes, want about %d", len(a), size)
	}
	tr := tar.NewReader(bytes.NewReader(a))
	for {
		if _, err := tr.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			t.Fatal(err)
		}
	}
}

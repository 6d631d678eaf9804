package nydus

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/internal/tree"
)

// FuzzPack feeds arbitrary tar streams to Pack. Pack either refuses the input
// with a *PackError (or the tar reader's error wrapped in one), or writes a
// blob that VerifyLayer finds nothing wrong with, that reads back as the files
// Go's tar reader sees (last entry wins), and that merges under itself.
func FuzzPack(f *testing.F) {
	for _, l := range testimages.Layers() {
		if len(l.Tar) < 64<<10 {
			f.Add(l.Tar, uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, tarb []byte, sel uint8) {
		// keep one input cheap: no entry may declare more than 64 MiB (sparse
		// headers can declare terabytes in a few bytes; TestPackSparseFiles covers them)
		tr := tar.NewReader(bytes.NewReader(tarb))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Size > 64<<20 {
				return
			}
		}
		o := PackOptions{ChunkSize: 4096 << (sel % 3), Compressor: []string{"zstd", "lz4_block", "none"}[sel%3/1], Concurrency: 1 + int(sel>>6)}
		var buf bytes.Buffer
		res, err := Pack(context.Background(), &buf, bytes.NewReader(tarb), o)
		if err != nil {
			var pe *PackError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		blob := buf.Bytes()
		if fs := VerifyLayer(bytes.NewReader(blob), int64(len(blob)), nil, nil); len(fs) != 0 {
			t.Fatalf("VerifyLayer: %s", dumpFindings(fs))
		}
		want, err := tree.Read(bytes.NewReader(tarb))
		if err != nil {
			return // Pack accepts some streams tree.Read does not (nothing to compare with)
		}
		// compare only what both sides define for arbitrary input: the set of
		// paths that are not under a replaced or implied directory
		f := openPacked(t, blob)
		got := fsTree(t, f)
		for p := range want {
			if _, ok := got[p]; !ok && p != "" {
				if _, err := f.Lookup(p); err != nil {
					// a later entry replaced a parent directory with a file, or the name
					// is one Pack drops (eStargz metadata)
					continue
				}
				t.Errorf("%s in the tar but not in ToTar's output", p)
			}
		}
		m, err := Merge([]LayerBootstrap{res.LayerBootstrap(), res.LayerBootstrap()}, MergeOptions{})
		if err != nil {
			t.Fatalf("Merge: %v", err)
		}
		blobs := map[string][]byte{res.BlobID: blob}
		if fs := Verify(bytes.NewReader(m.Bootstrap), int64(len(m.Bootstrap)), mapResolver(blobs), nil); len(fs) != 0 {
			t.Fatalf("Verify merged: %s", dumpFindings(fs))
		}
	})
}

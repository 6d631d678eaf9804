package nydus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/fmtconv/fmtconv/internal/tree"
)

// Helpers of the writer tests (Pack, Merge): packing in memory, reading
// trees, the reference OCI layer applier. The EROFS readers (fsck.erofs, the
// kernel, go-erofs) are in nydus/nydustest, used by erofs_test.go.

// pack runs Pack into memory and checks what the result says about the bytes.
func pack(t testing.TB, tarb []byte, o PackOptions) (*PackResult, []byte) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Pack(context.Background(), &buf, bytes.NewReader(tarb), o)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	blob := buf.Bytes()
	sum := sha256.Sum256(blob)
	if res.BlobID != hex.EncodeToString(sum[:]) || res.Digest.Encoded() != res.BlobID || res.Size != int64(len(blob)) {
		t.Fatalf("result %s / %s / %d does not describe the %d bytes written (sha256 %x)", res.BlobID, res.Digest, res.Size, len(blob), sum)
	}
	return res, blob
}

// openPacked opens the bootstrap inlined in a packed blob.
func openPacked(t testing.TB, blob []byte) *FS {
	t.Helper()
	f, err := OpenLayer(bytes.NewReader(blob), int64(len(blob)), nil)
	if err != nil {
		t.Fatalf("OpenLayer: %v", err)
	}
	return f
}

// fsTree reads a bootstrap's files as a tree (through ToTar and tree.Read).
func fsTree(t testing.TB, f *FS) tree.Tree {
	t.Helper()
	tb, err := f.TarBytes(nil)
	if err != nil {
		t.Fatalf("ToTar: %v", err)
	}
	tr, err := tree.Read(bytes.NewReader(tb))
	if err != nil {
		t.Fatalf("tree.Read of ToTar output: %v", err)
	}
	return tr
}

func tarTree(t testing.TB, tarb []byte) tree.Tree {
	t.Helper()
	tr, err := tree.Read(bytes.NewReader(tarb))
	if err != nil {
		t.Fatalf("tree.Read: %v", err)
	}
	return tr
}

// ociApply is the OCI merged filesystem of layer tars (tree.ApplyOCI).
func ociApply(t testing.TB, layers ...[]byte) tree.Tree {
	t.Helper()
	out, err := tree.ApplyOCI(layers...)
	if err != nil {
		t.Fatalf("tree.ApplyOCI: %v", err)
	}
	return out
}

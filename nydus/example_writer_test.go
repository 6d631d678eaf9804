package nydus_test

import (
	"bytes"
	"context"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/nydus"
)

// Converting an image: one Nydus blob layer per OCI layer (Pack, from the
// uncompressed layer tar), then the merged bootstrap (Merge) packed as the
// last layer (BootstrapLayerTar).
func ExamplePack() {
	var layers []nydus.LayerBootstrap
	var metas []nydus.BootstrapLayerFile
	for _, name := range []string{testimages.LayerBasic, testimages.LayerWhiteouts} {
		l, _ := testimages.LayerByName(name)
		var blob bytes.Buffer // the blob layer: push it as sha256:<res.BlobID>
		res, err := nydus.Pack(context.Background(), &blob, bytes.NewReader(l.Tar), nydus.PackOptions{})
		if err != nil {
			panic(err)
		}
		// the layer digest (and diff_id: the blob is not compressed as a whole)
		fmt.Printf("%s: %d chunks, digest is the blob's sha256: %v\n", name, res.Chunks, res.Digest == digest.FromBytes(blob.Bytes()))
		layers = append(layers, res.LayerBootstrap())
		if m, ok := res.BlobMetaFile(); ok {
			metas = append(metas, m)
		}
	}
	merged, err := nydus.Merge(layers, nydus.MergeOptions{})
	if err != nil {
		panic(err)
	}
	info, err := nydus.BootstrapLayerTar(io.Discard, merged.Bootstrap, metas...)
	if err != nil {
		panic(err)
	}
	// push the bootstrap layer as info.Digest, with diff_id info.DiffID
	fmt.Printf("bootstrap: %d blobs, %d inodes; layer gzip-compressed: %v\n", len(merged.BlobIDs), merged.Inodes, info.DiffID != info.Digest)
	// Output:
	// basic: 35 chunks, digest is the blob's sha256: true
	// whiteouts: 2 chunks, digest is the blob's sha256: true
	// bootstrap: 2 blobs, 54 inodes; layer gzip-compressed: true
}

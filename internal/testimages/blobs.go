package testimages

import (
	"bytes"
	_ "crypto/sha256" // registers sha256 for go-digest
	"fmt"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression says how a layer tar is encoded into its blob.
type Compression int

const (
	Uncompressed Compression = iota // the tar itself
	Gzip                            // klauspost gzip, level 6, no name/mtime in the header
	Zstd                            // klauspost zstd, default level, single-threaded
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// GzipLevel is the gzip level used for every gzip layer.
const GzipLevel = 6

// Media types not defined by image-spec.
const (
	MediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerConfig    = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer     = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// DiffID returns the digest of an uncompressed layer tar, i.e. its
// rootfs.diff_ids entry.
func DiffID(tar []byte) digest.Digest { return digest.FromBytes(tar) }

// Compress encodes tar with c, deterministically.
func Compress(tar []byte, c Compression) ([]byte, error) {
	var buf bytes.Buffer
	switch c {
	case Uncompressed:
		return bytes.Clone(tar), nil
	case Gzip:
		// A fresh Writer has no name and no comment. Its zero ModTime is
		// not enough: klauspost/compress writes uint32(ModTime.Unix())
		// unconditionally, which for the zero time.Time is 0x886e0900, so
		// set the Unix epoch to get the "no mtime" value 0.
		zw, err := gzip.NewWriterLevel(&buf, GzipLevel)
		if err != nil {
			return nil, err
		}
		zw.ModTime = time.Unix(0, 0)
		if _, err := zw.Write(tar); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case Zstd:
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(tar); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown compression %v", c)
	}
	return buf.Bytes(), nil
}

// LayerMediaType returns the default layer media type for c in a manifest
// of the given format.
func LayerMediaType(f ManifestFormat, c Compression) (string, error) {
	switch f {
	case OCI:
		switch c {
		case Uncompressed:
			return v1.MediaTypeImageLayer, nil
		case Gzip:
			return v1.MediaTypeImageLayerGzip, nil
		case Zstd:
			return v1.MediaTypeImageLayerZstd, nil
		}
	case DockerSchema2:
		switch c {
		case Uncompressed:
			return MediaTypeDockerLayer, nil
		case Gzip:
			return MediaTypeDockerLayerGzip, nil
		case Zstd:
			return "", fmt.Errorf("docker schema2 has no zstd layer media type; set LayerBlob.MediaType explicitly")
		}
	}
	return "", fmt.Errorf("no media type for %v layers in manifest format %v", c, f)
}

// Blob is one content-addressed blob.
type Blob struct {
	MediaType string
	Digest    digest.Digest
	Data      []byte
}

func newBlob(mediaType string, data []byte) Blob {
	return Blob{MediaType: mediaType, Digest: digest.FromBytes(data), Data: data}
}

// Descriptor returns an OCI descriptor for b (without annotations).
func (b Blob) Descriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: int64(len(b.Data))}
}

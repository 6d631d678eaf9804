package layerformat

import (
	"strings"
)

// Media types of layers, configs and manifests that fmtconv reads or writes.
const (
	MediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeOCILayer    = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeOCIGzip     = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeOCIZstd     = "application/vnd.oci.image.layer.v1.tar+zstd"
	// Non-distributable ("foreign") OCI layers; deprecated by the spec but still found in Windows images.
	MediaTypeOCINondistLayer = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	MediaTypeOCINondistGzip  = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	MediaTypeOCINondistZstd  = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

	MediaTypeDockerManifest      = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	MediaTypeDockerConfig        = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer         = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerGzip          = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerZstd          = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	MediaTypeDockerForeignGzip   = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

	MediaTypeNydusBlob = "application/vnd.oci.image.layer.nydus.blob.v1"
	// MediaTypeNydusConfig is the config media type of Nydus manifests in merged-platform indexes.
	MediaTypeNydusConfig = "application/vnd.nydus.image.config.v1+json"
	// ArtifactTypeNydusManifest marks a Nydus manifest in an index (current nydusify).
	ArtifactTypeNydusManifest = "application/vnd.nydus.image.manifest.v1+json"
	// OSFeatureNydus marks a Nydus manifest in an index (older nydusify).
	OSFeatureNydus = "nydus.remoteimage.v1"
)

// Layer annotation keys each format owns. A layer that leaves a format loses its keys.
const (
	AnnotationEstargzTOCDigest        = "containerd.io/snapshot/stargz/toc.digest"
	AnnotationEstargzUncompressedSize = "io.containers.estargz.uncompressed-size"

	AnnotationZstdChunkedManifestChecksum = "io.github.containers.zstd-chunked.manifest-checksum"
	AnnotationZstdChunkedManifestPosition = "io.github.containers.zstd-chunked.manifest-position"
	AnnotationZstdChunkedTarSplitPosition = "io.github.containers.zstd-chunked.tarsplit-position"
	// Deprecated by containers/storage (the tar-split digest moved into the TOC) but still found.
	AnnotationZstdChunkedTarSplitChecksum = "io.github.containers.zstd-chunked.tarsplit-checksum"

	AnnotationLegacyZstdChunkedManifestChecksum = "io.containers.zstd-chunked.manifest-checksum"
	AnnotationLegacyZstdChunkedManifestPosition = "io.containers.zstd-chunked.manifest-position"

	AnnotationNydusBlob             = "containerd.io/snapshot/nydus-blob"
	AnnotationNydusBootstrap        = "containerd.io/snapshot/nydus-bootstrap"
	AnnotationNydusFSVersion        = "containerd.io/snapshot/nydus-fs-version"
	AnnotationNydusBlobIDs          = "containerd.io/snapshot/nydus-blob-ids"
	AnnotationNydusReferenceBlobIDs = "containerd.io/snapshot/nydus-reference-blob-ids"
	AnnotationNydusSourceChainID    = "containerd.io/snapshot/nydus-source-chainid"
)

// ownedAnnotations lists, per kind, the layer annotations that describe that kind's representation.
var ownedAnnotations = map[Kind][]string{
	ZstdChunked: {
		AnnotationZstdChunkedManifestChecksum, AnnotationZstdChunkedManifestPosition,
		AnnotationZstdChunkedTarSplitPosition, AnnotationZstdChunkedTarSplitChecksum,
		AnnotationLegacyZstdChunkedManifestChecksum, AnnotationLegacyZstdChunkedManifestPosition,
		// The stargz dialect of zstd:chunked carries the eStargz keys too.
		AnnotationEstargzTOCDigest, AnnotationEstargzUncompressedSize,
	},
	Estargz:        {AnnotationEstargzTOCDigest, AnnotationEstargzUncompressedSize},
	NydusBlob:      {AnnotationNydusBlob, AnnotationNydusBlobIDs, AnnotationNydusReferenceBlobIDs, AnnotationNydusSourceChainID},
	NydusBootstrap: {AnnotationNydusBootstrap, AnnotationNydusFSVersion, AnnotationNydusBlobIDs, AnnotationNydusReferenceBlobIDs},
}

// OwnedAnnotations returns the layer annotation keys that belong to kind k's representation.
func OwnedAnnotations(k Kind) []string { return ownedAnnotations[k] }

// IsFormatAnnotation reports whether key describes some format's representation of a layer
// (and so must not survive a change of format).
func IsFormatAnnotation(key string) bool {
	for _, keys := range ownedAnnotations {
		for _, k := range keys {
			if k == key {
				return true
			}
		}
	}
	return false
}

// LayerMediaType is the media type of a layer of kind k in an OCI (oci=true) or Docker schema2
// manifest. nondist keeps the non-distributable flavour. It returns "" when the manifest type
// cannot express the kind (zstd in schema2, for instance).
func LayerMediaType(k Kind, oci, nondist bool) string {
	if oci {
		switch k {
		case Uncompressed:
			if nondist {
				return MediaTypeOCINondistLayer
			}
			return MediaTypeOCILayer
		case Gzip, Estargz:
			if nondist {
				return MediaTypeOCINondistGzip
			}
			return MediaTypeOCIGzip
		case Zstd, ZstdChunked:
			if nondist {
				return MediaTypeOCINondistZstd
			}
			return MediaTypeOCIZstd
		case NydusBlob:
			return MediaTypeNydusBlob
		}
		return ""
	}
	switch k {
	case Uncompressed:
		if nondist {
			return ""
		}
		return MediaTypeDockerLayer
	case Gzip:
		if nondist {
			return MediaTypeDockerForeignGzip
		}
		return MediaTypeDockerGzip
	}
	return ""
}

// IsNondistributable reports whether a layer media type is a foreign/non-distributable one.
func IsNondistributable(mediaType string) bool {
	return strings.Contains(mediaType, "nondistributable") || strings.Contains(mediaType, ".foreign.")
}

// IsEncrypted reports whether a layer media type is an ocicrypt-encrypted one.
func IsEncrypted(mediaType string) bool { return strings.HasSuffix(mediaType, "+encrypted") }

// KindFromMediaType is what a media type claims about a layer, before the bytes are looked at.
func KindFromMediaType(mediaType string) Kind {
	switch {
	case IsEncrypted(mediaType):
		return Encrypted
	case mediaType == MediaTypeNydusBlob:
		return NydusBlob
	case strings.HasSuffix(mediaType, "+gzip"), strings.HasSuffix(mediaType, ".tar.gzip"):
		return Gzip
	case strings.HasSuffix(mediaType, "+zstd"), strings.HasSuffix(mediaType, ".tar.zstd"):
		return Zstd
	case strings.HasSuffix(mediaType, ".tar"), mediaType == MediaTypeDockerLayer:
		return Uncompressed
	}
	return Unknown
}

// IsLayerMediaType reports whether a media type is one of the image layer types fmtconv converts
// (as opposed to artifacts, attestations or unknown blobs, which it passes through).
func IsLayerMediaType(mediaType string) bool {
	switch KindFromMediaType(mediaType) {
	case Uncompressed, Gzip, Zstd:
		return true
	}
	return false
}

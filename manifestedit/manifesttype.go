package manifestedit

import (
	"fmt"
	"slices"

	"github.com/fmtconv/fmtconv/layerformat"
)

// Manifest format choices for --format.
const (
	FormatAuto    = ""
	FormatOCI     = "oci"
	FormatSchema2 = "v2s2"
)

// IsDocker reports whether a manifest or index media type is a Docker one.
func IsDocker(mediaType string) bool {
	return mediaType == layerformat.MediaTypeDockerManifest || mediaType == layerformat.MediaTypeDockerManifestList
}

func supports(destTypes []string, mt string) bool {
	return destTypes == nil || slices.Contains(destTypes, mt)
}

// ManifestType decides the media type of an image manifest written for target from a source
// manifest of type srcType, given --format and the destination's supported types (nil = any).
// Formats that need layer annotations or zstd media types are only possible in OCI; a destination
// or --format that cannot give OCI makes this a refusal, decided before any blob is written.
func ManifestType(srcType string, target layerformat.Kind, format string, destTypes []string, dest string) (string, error) {
	oci, schema2 := layerformat.MediaTypeOCIManifest, layerformat.MediaTypeDockerManifest
	switch srcType {
	case oci, schema2:
	case layerformat.MediaTypeDockerSchema1, layerformat.MediaTypeDockerSchema1Signed:
		// Schema1 has no config and no diff_ids: it is converted only by becoming OCI, with the
		// diff_ids computed from the content.
		if format == FormatSchema2 || !supports(destTypes, oci) {
			return "", Refuse(Schema1Destination, dest,
				"a Docker schema1 source is converted only by turning it into OCI (its diff_ids computed from the content), and the destination cannot hold OCI",
				"write to an OCI-capable destination (oci:, oci-archive:, dir:, docker://)")
		}
		return oci, nil
	default:
		return "", Refuse(UnsupportedManifest, srcType, "fmtconv converts OCI and Docker schema2 image manifests only",
			"convert the image to OCI first (for example with skopeo copy --format oci)")
	}
	if format != FormatAuto && format != FormatOCI && format != FormatSchema2 {
		return "", fmt.Errorf("unknown manifest format %q (want oci or v2s2)", format)
	}
	needsOCI := target != layerformat.Uncompressed && target != layerformat.Gzip
	if needsOCI {
		if format == FormatSchema2 || !supports(destTypes, oci) {
			where := "--format v2s2 asks for Docker schema2"
			if format != FormatSchema2 {
				where = fmt.Sprintf("destination %s can only hold %v", dest, destTypes)
			}
			if target == layerformat.Zstd || target == layerformat.ZstdChunked {
				return "", Refuse(DestSchema2NoZstd, dest, fmt.Sprintf("%s layers need an OCI manifest, and %s", target, where),
					"write to a destination that accepts OCI (oci:, oci-archive:, dir:, docker://) or convert to gzip")
			}
			return "", Refuse(DestSchema2NoAnnotations, dest, fmt.Sprintf("%s layers depend on layer annotations that Docker schema2 cannot carry, and %s", target, where),
				"write to a destination that accepts OCI (oci:, oci-archive:, dir:, docker://)")
		}
		return oci, nil
	}
	want := srcType
	switch format {
	case FormatOCI:
		want = oci
	case FormatSchema2:
		want = schema2
	}
	if supports(destTypes, want) {
		return want, nil
	}
	if format == FormatAuto {
		for _, alt := range []string{oci, schema2} {
			if supports(destTypes, alt) {
				return alt, nil
			}
		}
	}
	return "", fmt.Errorf("destination %s cannot hold %s manifests (it accepts %v)", dest, want, destTypes)
}

// IndexType is the media type of an index whose instances have the given manifest types: a Docker
// manifest list can only list Docker manifests, so any OCI instance makes it an OCI index.
func IndexType(srcType string, instanceTypes []string, format string) string {
	if format == FormatOCI {
		return layerformat.MediaTypeOCIIndex
	}
	if srcType == layerformat.MediaTypeDockerManifestList {
		for _, t := range instanceTypes {
			if t == layerformat.MediaTypeOCIManifest {
				return layerformat.MediaTypeOCIIndex
			}
		}
		return srcType
	}
	if format == FormatSchema2 {
		return layerformat.MediaTypeDockerManifestList
	}
	return srcType
}

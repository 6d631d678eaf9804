package verify

import (
	"github.com/fmtconv/fmtconv/layerformat"
)

// RuntimeSupport says whether a lazy-pull runtime can use a layer as it is.
type RuntimeSupport struct {
	Runtime string `json:"runtime"`
	Lazy    bool   `json:"lazy"`
	Reason  string `json:"reason"`
}

// Lazy-pull runtimes fmtconv knows.
const (
	RuntimeContainersStorage = "containers/storage partial pull (podman, CRI-O)"
	RuntimeStargz            = "stargz-snapshotter (containerd)"
	RuntimeNydus             = "nydus-snapshotter (containerd)"
)

// Runtimes says, for a layer in format f, which lazy-pull runtimes can use it as it is. Every
// runtime can still pull any valid layer whole; this is about lazy (partial) pulls only.
func Runtimes(f layerformat.Format) []RuntimeSupport {
	cs := RuntimeSupport{Runtime: RuntimeContainersStorage}
	sg := RuntimeSupport{Runtime: RuntimeStargz}
	ny := RuntimeSupport{Runtime: RuntimeNydus, Reason: "not a Nydus layer"}
	switch {
	case f.Kind == layerformat.ZstdChunked && f.Dialect == layerformat.DialectContainers:
		cs.Lazy, cs.Reason = true, "the current zstd:chunked dialect (tar-split digest in the TOC), read by containers/storage since the tar-split moved into the TOC (podman 5.x)"
		sg.Reason = "stargz-snapshotter reads only its own zstd:chunked dialect (40-byte footer, eStargz TOC)"
	case f.Kind == layerformat.ZstdChunked && f.Dialect == layerformat.DialectContainersLegacy:
		cs.Reason = "the older dialect has no tar-split: containers/storage before the tar-split (podman 4.x) pulls it partially; current versions pull it whole"
		sg.Reason = "stargz-snapshotter needs a chunk digest on every file, which this dialect omits for single-chunk files"
	case f.Kind == layerformat.ZstdChunked && f.Dialect == layerformat.DialectStargz:
		cs.Reason = "the eStargz TOC digest makes containers/storage treat it as eStargz, which it reads only with insecure_allow_unpredictable_image_contents"
		sg.Lazy, sg.Reason = true, "stargz-snapshotter's own zstd:chunked dialect"
	case f.Kind == layerformat.Estargz:
		cs.Reason = "current containers/storage reads eStargz only with insecure_allow_unpredictable_image_contents (podman 4.x read it by default)"
		sg.Lazy, sg.Reason = true, "eStargz"
	case f.Kind == layerformat.NydusBlob || f.Kind == layerformat.NydusBootstrap:
		cs.Reason, sg.Reason = "not a tar layer", "not a tar layer"
		ny.Lazy, ny.Reason = true, "a Nydus layer"
	default:
		cs.Reason = "no TOC: " + f.String() + " layers are pulled whole"
		sg.Reason = cs.Reason
		ny.Reason = cs.Reason
	}
	return []RuntimeSupport{cs, sg, ny}
}

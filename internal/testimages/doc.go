// Package testimages generates small, fully deterministic container images
// for tests: the role go-containerregistry's "random" package plays
// elsewhere, except that every run produces exactly the same bytes.
//
// There is no time.Now, no crypto/rand and no dependence on map iteration
// order anywhere in this package: pseudo-random content comes from a seeded
// math/rand/v2 PCG, timestamps are fixed (DefaultModTime, DefaultCreated),
// maps are always walked in sorted order and JSON is produced by
// encoding/json (which sorts map keys).
//
// The package has three layers of API:
//
//   - Layer tars: describe the content as a []Entry and turn it into tar
//     bytes with BuildTar (which can also produce unusual archive endings,
//     see Ending). Layers returns the catalogue of ready-made layers
//     ("basic", "whiteouts", the "ending-*" layers, "pax-global",
//     "duplicate-paths", ...).
//   - Images: ImageSpec / IndexSpec describe an image (or an image index)
//     made of LayerBlob values; BuildImage / BuildIndex encode them into
//     content-addressed blobs, and WriteOCILayout, WriteOCIIndex and
//     WriteDirImage store them on disk in the layouts understood by
//     containers/image's "oci:" and "dir:" transports.
//   - Generate writes the standard set of test images (gzip-single,
//     multi-format, schema2, index, special) into a directory; the
//     genimages command (internal/testimages/cmd/genimages) is a thin
//     wrapper around it.
package testimages

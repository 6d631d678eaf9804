// Package estargz writes, reads and verifies eStargz container-image layers.
//
// The package is the whole format in one place: the writer ([Encode]), the
// readers ([ParseFooter], [ReadFooter], [ReadTOC], [Decode], [Inspect]) and the
// verifier ([Verify]). Facts were read from
// github.com/containerd/stargz-snapshotter/estargz v0.19.1 ("upstream", whose
// types [JTOC] and [TOCEntry] this package reuses) and checked by the tests
// against upstream's Build, Writer, Open and VerifyTOC.
//
// # What an eStargz blob is
//
// A concatenation of gzip members that is also an ordinary tar+gzip layer
// (media type application/vnd.oci.image.layer.v1.tar+gzip). Decompressing it
// whole gives a tar stream whose entries are, in order:
//
//   - .no.prefetch.landmark (a regular file holding the byte 0x0f), or, when
//     files are prioritized, those files followed by .prefetch.landmark;
//   - the layer's entries;
//   - stargz.index.json, the TOC, followed by two zero blocks.
//
// Gzip members start at the blob start, at the first byte of every payload
// chunk of a regular file (files are cut into chunks of at most 4 MiB), at
// the TOC entry's header, and at the footer. Headers of the entries after a
// payload share that payload's last member. The footer is an empty gzip
// member whose extra field holds "%016xSTARGZ" with the TOC member's offset:
// 51 bytes (subfield 'S','G') or, in the legacy stargz form, 47 bytes.
//
// The TOC JSON ({"version":1,"entries":[...]}, json.MarshalIndent with tabs)
// lists every entry with its name, type, size, mode, owner (user and group
// names only when they change for an id), modification time in RFC 3339
// seconds (rounded), link target, device numbers, xattrs (base64) and, for
// regular files, the offset of the member holding the first chunk, the
// file's sha256 ("digest") and the chunk's ("chunkDigest"). Further chunks
// are "chunk" entries with their own offset, chunkOffset, chunkSize (0 for
// the last) and chunkDigest. With a minimum chunk size several payloads share
// a member and carry an innerOffset.
//
// Layer annotations: containerd.io/snapshot/stargz/toc.digest is the sha256
// of the uncompressed TOC JSON; io.containers.estargz.uncompressed-size is
// the uncompressed length. The diff_id is the sha256 of the whole uncompressed
// stream, so converting to eStargz changes it (and the config's diff_ids).
//
// # The writer
//
// [Encode] reads the tar once and writes the blob as it goes (unless files
// are prioritized: then the payloads are spooled to a temporary file first).
// Up to the TOC, the uncompressed stream is byte for byte the one upstream's
// Build(WithParallelism(1)) produces; the TOC too, except the compressed
// offsets. The members are compressed with klauspost/compress on GOMAXPROCS
// workers and written in order; each member is cut into 4 MiB parts that are
// compressed independently (sync flush, previous 32 KiB as dictionary), so the
// blob does not depend on the number of workers. Upstream's Build does: its
// blob changes with WithParallelism/GOMAXPROCS.
//
// Deliberate differences from upstream: duplicate paths, PAX global headers,
// sparse files, other entry types and non-UTF-8 names are refused with an
// [UnsupportedInputError] (upstream keeps the last duplicate, silently
// corrupts non-UTF-8 names in the TOC, and refuses the others); MinChunkSize
// counts uncompressed bytes; the gzip level defaults to 6, not 9; missing
// parent directories of prioritized files are not an error.
//
// Note that upstream's VerifyTOC (v0.19.1) refuses any layer in which two
// chunks share a member ("offset found twice"), including its own
// WithMinChunkSize layers; [Verify] warns about such layers.
//
// # The readers
//
// [ReadTOC] bounds the TOC member, the JSON, the entry count and name lengths
// ([Limits]) before allocating them. [Decode] streams the tar out of a blob,
// by default as an ordinary layer (TOC entry and landmarks removed, every
// other entry copied as stored, end-of-archive blocks written).
//
// # The verifier
//
// [Verify] reads the footer and TOC, then the whole blob once, and compares
// the lazy-pull view (TOC entries and the bytes a lazy pull reads at each
// chunk offset) with the full-pull view (the tar entries of the stream). Its
// findings use the check ids Check* (estargz.footer, estargz.toc-digest,
// estargz.toc, estargz.chunk-digest, estargz.view-mismatch,
// estargz.uncompressed-size, estargz.landmark, and the shared layer.diffid and
// layer.decode).
package estargz

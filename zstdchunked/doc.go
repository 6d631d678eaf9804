// Package zstdchunked writes and reads zstd:chunked container-image layers.
//
// The package is the whole format in one place: the writer ([Encode]), the
// readers ([ReadFooter], [ReadTOC], [ReadTarSplit], [Decode], [RebuildTar]) and
// this comment, which is written so that it can be used as the specification.
// Facts were read from go.podman.io/storage v1.65.0 (pkg/chunked/compressor,
// pkg/chunked/internal/minimal, pkg/chunked/compression_linux.go) and
// github.com/containerd/stargz-snapshotter/estargz v0.19.1 (zstdchunked), and
// checked byte by byte by the tests of this package.
//
// # What a zstd:chunked blob is
//
// A zstd:chunked blob is an ordinary zstd stream (RFC 8878): a sequence of
// zstd frames, some of them "skippable" frames that a plain zstd decoder
// ignores. Decompressing the whole blob with any zstd decoder gives the layer's
// tar stream; its sha256 is the layer's diff_id. The blob is published with the
// OCI media type application/vnd.oci.image.layer.v1.tar+zstd; only the layer
// annotations tell a zstd:chunked blob apart from plain zstd.
//
// A skippable frame is 4 magic bytes 50 2A 4D 18 (0x184D2A50 little endian),
// a 4-byte little-endian length N, then N bytes of data. Every
// "offset" below points at the data, i.e. 8 bytes past the skippable magic.
//
// Three dialects exist. They share the idea (one zstd frame per file chunk,
// a JSON table of contents (TOC) in a skippable frame, a footer) but differ in
// keys, footer, TOC schema and whether the tar stream is preserved.
//
// # Dialect "containers" (current c/storage, podman ≥ 5, this package's writer)
//
// Layout, in order:
//
//	[frame H0: tar bytes before the first payload byte: headers (incl. PAX 'x'
//	           and GNU 'L'/'K' records) of the first entries]
//	[frame: chunk 1 of file A] [frame: chunk 2 of file A] ...
//	[frame: padding of file A + headers of the following entries] ...
//	[last frame: headers after the last payload + end-of-archive blocks +
//	             any bytes after them (GNU record padding, garbage)]
//	[skippable frame: zstd-compressed TOC JSON]
//	[skippable frame: zstd-compressed tar-split JSON lines]
//	[skippable frame of 64 bytes: the footer]        (the blob's last 72 bytes)
//
// Rules of the tar part:
//
//   - The tar stream is consumed with tar-split's archive/tar reader. Bytes
//     that are not file payload (the previous entry's padding, all header
//     blocks of an entry) go into the current frame.
//   - At the first payload byte of a file the current frame is closed. Each
//     chunk of the payload is then one frame. After the last chunk a new frame
//     is opened for the following tar bytes.
//   - Chunks are content defined, file by file, with a fresh bup-style rolling
//     checksum (64-byte window, char offset 31, see [RollsumBits]): a chunk
//     ends after a data byte when the low 16 bits of s2 are all ones (about
//     64 KiB on average; no minimum, no maximum).
//   - A maximal run of at least [HolesThreshold] (1024) zero bytes is a chunk
//     of its own with chunkType "zeros" (still written as a small zstd frame;
//     c/storage does not fetch it). The data chunk before it is cut at the run.
//     The zeros are fed to the rolling checksum but cannot end a chunk.
//   - Frame restarts always happen where the reference compressor restarts,
//     even when no byte was written in between. Such an empty frame is still
//     emitted by the encoder (13 bytes: magic, frame header descriptor 04,
//     window descriptor, an empty last raw block 01 00 00, and the xxhash
//     checksum 99 e9 d8 51). This happens when a rolling-checksum cut falls on a file's
//     last byte, right before a zero run, and after a zero run that ends a file.
//   - Every frame is a complete zstd frame written by klauspost/compress's
//     streaming encoder (zstd.NewWriter with WithEncoderLevel(
//     zstd.EncoderLevelFromZstd(level)), CRC on): Write the bytes, Close, Reset.
//     The last frame is written with Write for the last header bytes and then
//     Encoder.ReadFrom for the bytes after the end-of-archive marker (this is
//     what io.Copy does in the reference, and it changes the block split).
//     A frame's bytes depend only on its content and these options, not on
//     the encoder's earlier frames nor on how the content is split into Write
//     calls; a frame shorter than the encoder's block size (64 KiB at levels
//     1-2, 128 KiB above) is also what Encoder.EncodeAll gives for it. Encode
//     relies on this to compress frames on several encoders at once.
//
// Footer, 64 bytes = 8 little-endian uint64 slots, inside a skippable frame
// of length 64 (so the blob ends with 50 2A 4D 18 40 00 00 00 + 64 bytes):
//
//	[0] TOC offset (of the compressed TOC, past its skippable header)
//	[1] TOC compressed length     [2] TOC uncompressed length
//	[3] manifest type, always 1 ([ManifestTypeCRFS])
//	[4] tar-split offset          [5] tar-split compressed length
//	[6] tar-split uncompressed length
//	[7] magic 47 4E 55 6C 49 6E 55 78 = "GNUlInUx" ([FooterMagic])
//
// c/storage never reads the footer; it locates everything from annotations:
//
//	io.github.containers.zstd-chunked.manifest-checksum = "sha256:<hex>" of the
//	    compressed TOC bytes (the zstd frame inside the skippable frame). This is
//	    the layer's "TOC digest".
//	io.github.containers.zstd-chunked.manifest-position = "off:clen:ulen:1"
//	io.github.containers.zstd-chunked.tarsplit-position = "off:clen:ulen"
//
// (io.github.containers.zstd-chunked.tarsplit-checksum is deprecated and not
// written; the tar-split digest lives in the TOC as tarSplitDigest.)
//
// The TOC (one zstd frame, same level) is JSON marshalled with json-iterator's
// ConfigCompatibleWithStandardLibrary (sorted map keys, HTML escaping):
//
//	{"version":1,"entries":[...],"tarSplitDigest":"sha256:..."}
//
// entries is null for an archive without entries. tarSplitDigest is the sha256
// of the compressed tar-split frame. Each entry is a [FileMetadata]; the field
// order of that struct is the JSON order. One entry per tar entry (its "name"
// is the raw tar name, e.g. "./usr/" or "dir/"); for a file of N > 1 chunks the
// "reg" entry describes chunk 0 (chunkSize, chunkDigest, chunkType, offset of
// chunk 0's frame) plus the whole file (digest, size, endOffset = end of its
// last frame) and is followed by N-1 "chunk" entries with name, offset,
// chunkSize, chunkOffset, chunkDigest, chunkType. A single-chunk file has no
// chunk* fields. An empty file has no digest and no offsets. xattrs holds the
// PAX SCHILY.xattr.* records, values base64-encoded. Times are RFC 3339 with
// nanoseconds, absent when zero.
//
// The tar-split (one zstd frame, same level) is the JSON-lines output of
// github.com/vbatts/tar-split's storage.NewJSONPacker: "segment" entries with
// the raw non-payload bytes (base64) and "file" entries with the name, size and
// the crc64 (ISO) of the payload. Segments + payloads rebuild the tar stream
// bit for bit; c/storage rebuilds the layer this way after a partial pull and
// compares the result with the config's diff_id. Trailing bytes after the
// end-of-archive blocks are stored as segments of at most 1 MiB.
//
// # Dialect "containers-legacy" (c/storage ≤ 1.4x, skopeo 1.9, podman 4)
//
// Same frame layout and TOC schema, but: the annotation keys are
// io.containers.zstd-chunked.manifest-checksum and
// io.containers.zstd-chunked.manifest-position (no "github."), there is no
// tar-split frame and no tarSplitDigest, and the footer is a skippable frame of
// length 40 (the blob ends with 50 2A 4D 18 28 00 00 00 + 40 bytes):
//
//	[0] TOC offset  [1] TOC compressed length  [2] TOC uncompressed length
//	[3] manifest type 1
//	[4] magic 47 6E 55 6C 49 6E 55 78 = "GnUlInUx" ([LegacyFooterMagic], lower-case n)
//
// Writers of this dialect are known to drop 512 trailing zero bytes of
// record-padded tars, so the diff_id must always be recomputed.
//
// # Dialect "stargz" (stargz-snapshotter estargz/zstdchunked, ctr-remote, nerdctl)
//
// An eStargz layer compressed with zstd instead of gzip: the tar stream is
// rewritten by estargz.Build (a ".no.prefetch.landmark" or ".prefetch.landmark"
// entry is added, duplicates are dropped, and there are no tar end-of-archive
// blocks), files are cut in fixed 4 MiB chunks, and the TOC is an eStargz JTOC
// (json.MarshalIndent with tabs; modtime as an RFC 3339 string, userName,
// groupName, chunkDigest on every chunk, no endOffset) compressed into a
// skippable frame. The footer is the same 40-byte "GnUlInUx" form as the legacy
// dialect. Annotations: the two io.containers.zstd-chunked.* keys plus
// containerd.io/snapshot/stargz/toc.digest (sha256 of the uncompressed TOC JSON)
// and usually io.containers.estargz.uncompressed-size. c/storage sees the
// stargz key, treats the layer as eStargz and cannot pull it partially.
//
// # Telling dialects apart
//
// Annotations decide ([DetectDialect]); the footer only locates the TOC. Two
// dialects share the 40-byte footer, so without annotations the TOC's shape
// ([TOCShape], reported by [ReadTOC]) decides between legacy and stargz.
//
// # Older forms of the containers dialect
//
// c/storage wrote io.github.containers.zstd-chunked.* keys from 1.44 on
// (before that: the legacy keys). 1.44-1.46 wrote the 40-byte "GnUlInUx"
// footer and no tar-split; 1.47-1.49 a 56-byte footer (the four TOC slots,
// "GnUlInUx" at bytes 32-39, 16 zero bytes) plus a tar-split located and
// authenticated only by the tarsplit-position and tarsplit-checksum
// annotations; 1.50 introduced the 64-byte "GNUlInUx" footer, and 1.54 moved
// the tar-split digest into the TOC. ReadFooter reads all three footer forms.
//
// # Verifying a layer
//
// [Verify] reads a layer the way each reader does and reports every
// disagreement as a [github.com/fmtconv/fmtconv/check.Finding] with one of
// [VerifyCheckIDs]. A partial pull (c/storage, stargz-snapshotter) sees the
// annotations, the TOC, each file's frames at its TOC offsets ("zeros"
// chunks as zeros) and, in the
// containers dialect, the tar stream rebuilt from the tar-split around those
// files; a full pull sees the blob decompressed as one zstd stream. The two
// must give the same files with the same metadata in the same order and the
// same tar stream, whose sha256 is the diff_id. For stargz-dialect layers the
// TOC follows estargz's rules (link names only on links, sizes only on
// regular files, modification times rounded to seconds, no access and change
// times; chunk ranges end at the next entry's offset).
//
// # Differences between this package's writer and c/storage's
//
// For every tar that c/storage's compressor.ZstdCompressor handles correctly,
// [Encode] writes the same bytes and annotations (tested at levels 1, 3 and 10).
// It differs only where the reference loses data or fails, and then reports
// EncodeResult.Deviated:
//
//   - A tar that ends inside the padding of its last file: the reference drops
//     the padding bytes it read (the diff_id changes, container-libs#391); Encode
//     keeps them in the last frame and in the tar-split.
//   - A tar that ends inside its end-of-archive blocks (e.g. one zero block plus
//     a partial one): the reference fails; Encode keeps the bytes.
//
// A tar truncated inside a run of >= 1024 zero bytes makes the reference spin
// for ever (its holes finder turns the sticky read error into endless zero
// bytes; observed with storage v1.65.0); Encode returns an error, as for any
// other truncated tar.
//
// Bytes after the end-of-archive blocks are split into tar-split segments of
// exactly 1 MiB. The reference splits them wherever the caller's Write calls
// fall; both agree when the tar is handed over in one Write (or in writes that
// are multiples of 1 MiB past the end of the archive).
package zstdchunked

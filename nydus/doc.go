// Package nydus reads and writes Nydus images (RAFS v6) in pure Go: bootstraps,
// the per-layer blobs a registry holds, and the chunks of files in them. The
// package is the whole format in one place: layout.go holds every on-disk
// structure and constant with its byte layout (usable by a writer too), and
// this comment describes how the pieces fit, so the package doubles as the
// specification. Facts were read from dragonflyoss/nydus (v2.4, commit
// 34e6071e: rafs/src/metadata/layout/v6.rs, rafs/src/metadata/direct_v6.rs,
// storage/src/meta, builder/src/core) and the Linux EROFS on-disk format, and
// are checked by the tests against real nydus-image output, fsck.erofs /
// dump.erofs and kernel EROFS mounts.
//
// # A Nydus image in a registry
//
// One blob layer per OCI layer (media type
// application/vnd.oci.image.layer.nydus.blob.v1, annotation
// containerd.io/snapshot/nydus-blob: "true"), then one bootstrap layer last (a
// tar.gz with image/image.boot, annotation containerd.io/snapshot/nydus-bootstrap:
// "true"). nydusd never downloads the blob layers; it range-reads
// /v2/<repo>/blobs/sha256:<blob id>, so every blob id in the merged bootstrap must
// be the digest of a blob layer.
//
// # A blob layer ("reverse tar")
//
// Each part of the blob is followed by a 512-byte GNU tar header naming it
// (see LayerBlob, SectionHeader): chunk data (image.blob, at offset 0),
// ci array + 4 KiB BlobMetaHeader (blob.meta), chunk digests (blob.digest),
// the layer's own bootstrap, zstd-compressed (image.boot), and a TOC
// (rafs.blob.toc: TOCEntry × k, within the last 4096 bytes). Sections are found
// by walking the headers backwards from the end (ParseLayerBlob). The TOC digest
// stored in the merged bootstrap's blob table is sha256(TOC entries ‖ TOC header).
//
// # A bootstrap (RAFS v6 = EROFS metadata + RAFS tables)
//
//	1024  SuperBlock (EROFS, magic E2 E1 F5 E0, compat RAFS_V6, incompat = chunked|device table)
//	1152  SuperBlockExt (flags: compressor, digester; chunk size; blob/chunk/prefetch tables)
//	1408  DeviceSlot × nblobs (EROFS extra devices: device k+1 = blob k)
//	4096+ BlobEntry × nblobs, prefetch nids
//	meta  inodes (Inode: 32-byte compact or 64-byte extended, nid = (offset − meta)/32),
//	      each followed by inline xattrs and either inline data (directories,
//	      symlinks: FLAT_INLINE) or chunk indexes (regular files: CHUNK_BASED)
//	...   directory blocks (Dirent arrays + names, sorted bytewise), chunk info table
//
// A regular file of size S has ceil(S / chunk size) ChunkIndex entries. Each
// names a blob (device id − 1), an index into that blob's ci array and the
// chunk's raw-device block. Reading chunk k: ci[index] (or the chunk table entry
// with the same blob, index and block) gives the compressed range in the blob
// and the uncompressed size; the bytes are decompressed with the blob's
// compressor (zstd frame, raw LZ4 block, or stored) unless stored raw (V1 ci:
// compressed size = uncompressed size), and their blake3/sha256 digest is the
// chunk table's digest and blob.digest[index]. Writing every chunk at block × 4096
// gives the blob's EROFS "raw device" (WriteRawDevice), with which fsck.erofs and
// the kernel read the bootstrap as a plain EROFS image.
//
// # Blob ids
//
// In a pushed image a blob id is the sha256 of the blob layer. nydus-image run
// outside that flow computes other ids: with a separate bootstrap, sha256 of the
// blob without its blob.digest array; with an inlined bootstrap, the placeholder
// "x"×64 (≥ 2.3) or sha256 of the blob up to the bootstrap (2.2). Verify accepts
// the sha256, warns for the nydus-image hashes (a registry could not serve such
// a blob), and accepts anything for the bootstrap inlined in the blob itself
// (merge rewrites it). VerifyOptions.LayerDigests checks ids against the image.
//
// # Whiteouts
//
// RAFS records no whiteout convention: per-layer bootstraps built from tar
// (nydusify, nydus-snapshotter) keep OCI markers ".wh.<name>" and ".wh..wh..opq"
// as empty regular files; bootstraps built from an overlayfs upper directory
// hold char devices 0/0 and trusted.overlay.opaque="y"; merged bootstraps have
// them applied. ToTar writes OCI whiteouts in both cases (WhiteoutOCI) or the
// entries as stored (WhiteoutVerbatim).
//
// # Reading hostile input
//
// Every offset, count, size and name length read from the bytes is checked
// before use; reads go through io.ReaderAt with the known size, never whole-file
// reads. Errors are *FormatError (with a check id) or *VersionError; valid but
// unsupported features wrap ErrUnsupported. Work and memory stay proportional to
// the input: directories are visited once (a second visit is a loop), the
// metadata referenced by distinct inodes may not add up to more than the
// bootstrap (overlapping inodes are refused), paths are at most 4096 bytes,
// symlink targets 4096, chunks 16 MiB, and decompressed bootstraps and ci arrays
// are bounded by Options. Open never panics on any input (see the fuzz targets).
//
// # Verify check ids
//
//	nydus.bootstrap     superblocks, table placement, RAFS version
//	nydus.blob-table    blob and device table entries
//	nydus.blob-id       ids well formed, unique, consistent, resolvable to a blob with that sha256
//	nydus.blob-missing  a referenced blob could not be read (warning when no blobs are given)
//	nydus.blob-meta     blob.meta header / ci array in the blob
//	nydus.inode-range   nids, inodes, xattrs, data and chunk indexes inside the bootstrap
//	nydus.inode         inode fields and layouts
//	nydus.xattr         inline xattrs
//	nydus.dirent        name offsets, names, ".", "..", file types, duplicates
//	nydus.dirent-order  names sorted bytewise
//	nydus.dir-loop      a directory reached twice
//	nydus.hardlink      nlink of regular files (warning)
//	nydus.chunk-index   chunk indexes (blob, ci index, block address, holes, contiguity)
//	nydus.chunk-info    ci and chunk table entries (ranges, sizes, agreement)
//	nydus.chunk-digest  decompression, digest and CRC32C of every chunk
//	nydus.toc           sections and TOC of a blob
//	nydus.toc-digest    TOC digest vs blob table; TOC entry digests vs section contents
//	nydus.prefetch      prefetch table
//
// # Writing: Pack, Merge, BootstrapLayerTar
//
// Pack turns one OCI layer (its uncompressed tar) into the blob layer
// nydus-snapshotter's converter gets from nydus-image create --type tar-rafs
// --fs-version 6 --blob-inline-meta --features blob-toc --whiteout-spec none;
// Merge builds the image's bootstrap from the layers' bootstraps (nydus-image
// merge); BootstrapLayerTar packs it as the image's last layer. What they write:
//
//   - Blob: chunk data, blob.meta, blob.digest, image.boot, rafs.blob.toc, each
//     followed by nydus-image's GNU section header; blob features 0x70000023
//     (ALIGNED, INLINED_FS_META, INLINED_CHUNK_DIGEST, HAS_TAR_HEADER, HAS_TOC,
//     CAP_TAR_TOC), ci array V1, zstd-compressed when that shrinks it (raw
//     with compressor none; nydus-image uses the chunk compressor, but
//     nydus-snapshotter's TOC reader extracts only zstd or raw entries);
//     bootstrap zstd-compressed (raw if that does not shrink it); TOC entries
//     image.blob (digest of the data and its header, offset 0), blob.meta,
//     blob.meta.header, blob.digest, image.boot. A layer without file data has
//     only image.boot and the TOC, and no blob in its bootstrap.
//   - Blob id: the sha256 of the whole blob, computed while writing. The inlined
//     bootstrap names its blob "x"×64 (as nydus-image ≥ 2.3), so the id does not
//     depend on itself; Merge writes the real id into the device and blob tables
//     (and, knowing the blob, its size and TOC digest, as nydus-image merge does
//     when it can read the blob).
//   - Chunks: files are cut at the chunk size (default 1 MiB); each chunk is
//     compressed alone (one zstd frame without checksum, level 3 by default; a
//     raw LZ4 block; or none) and stored raw when that does not shrink it.
//     Identical chunks (same blake3/sha256 digest) are stored once per blob, so
//     a blob depends on its layer only. Uncompressed offsets are 4 KiB aligned.
//     Chunk table entries carry CRC32C (HAS_CRC32), as nydus-image ≥ 2.3.1 writes.
//   - Bootstrap: the layout of nydus-image (root nid 128, extended 64-byte
//     inodes only, inline xattrs sorted by name, directories and symlinks
//     inline after their inode when they fit the same 4 KiB block and in
//     FLAT_PLAIN blocks otherwise, chunk indexes with the filesystem chunk size,
//     chunk table sorted by digest, prefetch nids, flat-device addresses aligned
//     to 512 KiB, superblock flags compressor|digester|EXPLICIT_UID_GID|HAS_XATTR|
//     INLINED_CHUNK_DIGEST — no ENCRYPTION_NONE, which nydusd before encryption
//     support refuses). Inodes are laid out breadth first with names sorted.
//
// Where Pack differs from nydus-image, on purpose: mtimes keep their
// nanoseconds (tar-rafs drops them); hard links to symlinks, devices and fifos
// are kept (nydus-image refuses them); symlink targets longer than 4095 bytes,
// xattrs outside user./trusted./security./system.posix_acl_*, device numbers
// over 12:20 bits and ids over 32 bits are refused with a *PackError (code
// SYMLINK_TARGET, XATTR, DEVICE_NUMBER, ID_RANGE). A path given twice is
// extracted as tar does (the last entry wins; a directory again only changes
// metadata), or refused with RejectDuplicates (DUPLICATE_PATH); a PAX global
// header is ignored when it carries only comment/charset records and refused
// otherwise (PAX_GLOBAL_HEADER). OCI whiteouts stay plain files in a layer's
// bootstrap and are applied by Merge. Directories the tar implies but never
// names get mode 0755, owner 0:0, mtime 0 (as nydus-image); Merge keeps a
// lower layer's metadata for them when it knows them (PackResult.ImplicitDirs),
// where nydus-image merge lets them override it.
//
// Streaming and memory: chunk data is written to the output as the tar is
// read (it comes first in the blob), so nothing is spooled to disk; the tree,
// the chunk list (about 100 bytes per unique chunk) and the bootstrap are kept
// in memory until the end (a few hundred bytes per file). Digesting and
// compressing run on Concurrency goroutines (default GOMAXPROCS) with at most
// 2·Concurrency+2 chunks in flight, each with an input and an output buffer
// (bounded to 64 MiB for large chunk sizes); chunks are stored in tar order,
// so the output is the same for any concurrency. Full chunks of zeros are
// digested and compressed once, so sparse files cost little. Equal inputs and options give equal bytes: no clocks, no map
// order, fixed encoder settings (github.com/klauspost/compress/zstd; LZ4 and
// BLAKE3 are this package's own).
//
// Merge follows nydus-image merge: the layers' trees are overlaid bottom up;
// in each layer ".wh.<name>" removes <name> and ".wh..wh..opq" empties its
// directory in the layers below before the layer's entries are added; a
// directory over a directory takes the upper metadata and merges contents,
// anything else replaces what was there. Hard links keep sharing an inode,
// nlink is recounted. The blob table lists, in layer order, the blobs files
// still use. Chunk size and digester must agree across layers.
//
// # Not supported
//
// RAFS v5 (refused with ErrRAFSV5), tarfs mode, zran/gzip ("OCI-ref") chunks,
// batch chunks, encrypted blobs, EROFS compressed layouts and shared xattrs:
// each gives an error wrapping ErrUnsupported when reached. The writer does
// not write these, nor chunk dictionaries, nor nydus-image's per-file
// "next power of two" chunk size (an optional page-cache optimisation).
package nydus

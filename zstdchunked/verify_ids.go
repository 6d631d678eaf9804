package zstdchunked

import (
	"fmt"

	"github.com/fmtconv/fmtconv/check"
)

// Check ids reported by Verify; stable. The severity in brackets is what
// Verify gives a finding of that id (two ids use both, as described).
//
// Verify reports each defect once, under the id of its root cause: when a
// check cannot be made because an earlier one failed (a file whose offsets
// are invalid is not decompressed; a tar-split whose digest does not match
// is not used; a rebuild that involved a file already reported is not
// compared), the later check stays silent.
const (
	// CheckAnnotations [error, warning]: the zstd:chunked layer annotations
	// parse ("off:clen:ulen:type" and "off:clen:ulen" positions of decimal
	// integers, manifest type 1, digests in "algorithm:hex" form) and form a
	// complete set. Errors are what c/storage fails on hard: a manifest
	// checksum without a manifest position (containers dialect), a position
	// without a checksum (legacy dialect, c/storage < 1.44 requires it), a TOC
	// with tarSplitDigest but no tarsplit-position annotation, the
	// io.github and io.containers keys naming different TOCs. Warnings: a
	// position without a checksum (containers dialect; runtimes then do not
	// see a TOC and pull the layer whole), a tarsplit-position without the
	// manifest keys, the deprecated tarsplit-checksum annotation, and an
	// io.containers.estargz.uncompressed-size that is not the layer's size.
	CheckAnnotations = "zstdchunked.annotations"
	// CheckFooter [error, warning]: the footer exists, has the form of the
	// dialect (64-byte "GNUlInUx"; 56- and 40-byte "GnUlInUx" of older
	// c/storage; 40-byte "GnUlInUx" for the legacy and stargz dialects),
	// manifest type 1, and agrees with the annotations (TOC and tar-split
	// offsets and lengths). Warnings: a layer without zstd:chunked
	// annotations but with a footer (runtimes locate the TOC only through
	// annotations, so they pull it whole), and a containers-dialect layer
	// without a footer (c/storage never reads it, other readers need it).
	// A stargz-dialect layer without a footer is an error: stargz-snapshotter
	// locates the TOC through it.
	CheckFooter = "zstdchunked.footer"
	// CheckDualTOC [error]: the eStargz TOC digest annotation
	// (containerd.io/snapshot/stargz/toc.digest) together with
	// io.github.containers.zstd-chunked.manifest-checksum: c/storage refuses
	// the layer ("both zstd:chunked and eStargz TOC found"). The stargz
	// dialect's eStargz key with the older io.containers keys is not this.
	CheckDualTOC = "zstdchunked.dual-toc"
	// CheckDialect [error]: the annotations name one dialect and the TOC has
	// the schema of another (a minimal containers TOC with endOffset and
	// chunkType versus an eStargz JTOC with landmarks), or the footer form
	// contradicts the TOC schema; different readers would then read the
	// layer differently.
	CheckDialect = "zstdchunked.dialect"
	// CheckTOCChecksum [error]: the manifest checksum annotation does not
	// match the compressed TOC bytes, or (stargz dialect) the eStargz TOC
	// digest annotation does not match the sha256 of the uncompressed TOC.
	CheckTOCChecksum = "zstdchunked.toc-checksum"
	// CheckTOC [error, warning]: the TOC cannot be located (the position
	// does not point at a skippable frame of the claimed length), does not
	// decompress to its claimed length, is not valid UTF-8 (JSON readers then
	// disagree on names) or not valid TOC JSON of version 1, or
	// has an invalid entry: unknown type, empty or NUL-containing name, a
	// negative number, a chunk entry that does not follow its regular file
	// (or carries another name), chunk offsets and sizes that do not cover
	// the file exactly, an unknown chunkType, a missing or malformed
	// digest, two entries with the same name. Warning: a non-empty regular
	// file of a containers-schema TOC without endOffset (c/storage derives
	// it from the next entry).
	CheckTOC = "zstdchunked.toc"
	// CheckOffsets [error]: a regular file's offset, chunk offset or
	// endOffset does not lie inside the data area (the zstd frames before
	// the TOC), is not the start of a zstd frame (endOffset: not a frame
	// boundary), or offsets of one file do not increase.
	CheckOffsets = "zstdchunked.offsets"
	// CheckFileDigest [error]: a regular file's content as a partial pull
	// reads it (the frames at its TOC offsets, "zeros" chunks as zeros) does
	// not have the TOC's length and digest, or its frames do not decompress.
	CheckFileDigest = "zstdchunked.file-digest"
	// CheckChunkDigest [error]: a chunk's frames do not decompress to the
	// chunk's size and chunkDigest, or a "zeros" chunk's frame does not hold
	// only zero bytes.
	CheckChunkDigest = "zstdchunked.chunk-digest"
	// CheckTarSplit [error]: the tar-split (containers dialect) cannot be
	// located or read, does not decompress to its claimed length, or is not
	// valid tar-split JSON lines with parseable tar headers.
	CheckTarSplit = "zstdchunked.tarsplit"
	// CheckTarSplitDigest [error]: the compressed tar-split does not match
	// TOC.tarSplitDigest (or, for older layers whose TOC lacks it, the
	// deprecated tarsplit-checksum annotation); c/storage fails the pull.
	CheckTarSplitDigest = "zstdchunked.tarsplit-digest"
	// CheckRebuild [error]: the tar stream rebuilt from the tar-split and the
	// partial-pull file contents (what c/storage does after a partial pull)
	// differs from the blob's plain decompression (or, when that is not
	// available, from the config diff_id), a file's content fails the
	// tar-split's crc64, or the sizes in the tar-split do not add up to the
	// layer's size (c/storage takes the layer size from them).
	CheckRebuild = "zstdchunked.rebuild"
	// CheckDiffID [error]: the sha256 of the blob's plain decompression (the
	// full-pull view) is not the config's diff_id (VerifyOptions.DiffID).
	CheckDiffID = "zstdchunked.diff-id"
	// CheckStream [error]: the blob does not decompress as a zstd stream, or
	// the result is not a readable tar stream, so a full pull fails.
	CheckStream = "zstdchunked.stream"
	// CheckViewMismatch [error]: the full-pull view and the partial-pull view
	// describe different files: the tar headers of the plain decompression
	// and the TOC entries differ (name, type, size, mode, uid/gid, link
	// target, times, xattrs, device numbers, order, an entry only in one of
	// them), a file's content differs between the two views, or the
	// tar-split's headers and the TOC differ the way c/storage's
	// ensureTOCMatchesTarSplit checks (the same set of names, no duplicates,
	// equal attributes).
	CheckViewMismatch = "zstdchunked.view-mismatch"
	// CheckTrailingData [error, warning]: bytes outside the expected layout
	// (zstd frames, then the TOC, the tar-split and the footer frames): bytes
	// that are not a zstd frame (error: a full pull fails on them), zstd data
	// frames after the TOC (error: a full pull decompresses them, a partial
	// pull never sees them), a frame that overlaps the TOC, and unknown
	// skippable frames (warning).
	CheckTrailingData = "zstdchunked.trailing-data"

	// CheckLimitTOCSize [error]: the compressed or the claimed uncompressed
	// TOC is larger than Limits.MaxTOCSize.
	CheckLimitTOCSize = "limit.toc-size"
	// CheckLimitTarSplitSize [error]: the compressed or the claimed
	// uncompressed tar-split is larger than Limits.MaxTarSplitSize.
	CheckLimitTarSplitSize = "limit.tarsplit-size"
	// CheckLimitEntries [error]: the TOC has more than Limits.MaxEntries entries.
	CheckLimitEntries = "limit.entries"
	// CheckLimitNameLength [error]: a TOC name or link name is longer than
	// Limits.MaxNameLength bytes.
	CheckLimitNameLength = "limit.name-length"
	// CheckLimitDecompressedSize [error]: something decompresses to more
	// than it claims (the TOC or the tar-split more than its uncompressed
	// length, a chunk's frames more than the chunk size), the plain
	// decompression is longer than the TOC and the tar-split account for,
	// or the layer claims or holds more than Limits.MaxUncompressedSize
	// bytes. Decompression stops there.
	CheckLimitDecompressedSize = "limit.decompressed-size"
)

// VerifyCheckIDs lists every check id Verify can report, in documentation order.
var VerifyCheckIDs = []string{
	CheckAnnotations, CheckFooter, CheckDualTOC, CheckDialect, CheckTOCChecksum, CheckTOC,
	CheckOffsets, CheckFileDigest, CheckChunkDigest, CheckTarSplit, CheckTarSplitDigest,
	CheckRebuild, CheckDiffID, CheckStream, CheckViewMismatch, CheckTrailingData,
	CheckLimitTOCSize, CheckLimitTarSplitSize, CheckLimitEntries, CheckLimitNameLength,
	CheckLimitDecompressedSize,
}

// findings collects findings and keeps at most max per check id; the rest
// are counted and summarised by list.
type findings struct {
	max     int
	list    []check.Finding
	count   map[string]int
	dropped map[string]int
	errs    map[string]int
}

func newFindings(max int) *findings {
	return &findings{max: max, count: map[string]int{}, dropped: map[string]int{}, errs: map[string]int{}}
}

func (f *findings) add(x check.Finding) {
	if x.Severity == check.Error {
		f.errs[x.Check]++
	}
	if f.count[x.Check] >= f.max {
		f.dropped[x.Check]++
		return
	}
	f.count[x.Check]++
	f.list = append(f.list, x)
}

func (f *findings) errorf(id, format string, a ...any) { f.add(check.Errorf(id, format, a...)) }
func (f *findings) warnf(id, format string, a ...any)  { f.add(check.Warnf(id, format, a...)) }
func (f *findings) errorAt(path, id, format string, a ...any) {
	f.add(check.Errorf(id, format, a...).At(path))
}

// hasError reports whether an error finding of id was added.
func (f *findings) hasError(id string) bool { return f.errs[id] > 0 }

// merge appends the findings of others, keeping the per-id bound, and then
// one summary finding per id that had findings dropped.
func (f *findings) merge(others ...*findings) {
	for _, o := range others {
		for _, x := range o.list {
			f.add(x)
		}
		for id, n := range o.dropped {
			f.dropped[id] += n
		}
		for id, n := range o.errs {
			f.errs[id] += n - o.errsKept(id)
		}
	}
}

// errsKept counts the error findings of id in the list.
func (f *findings) errsKept(id string) int {
	n := 0
	for _, x := range f.list {
		if x.Check == id && x.Severity == check.Error {
			n++
		}
	}
	return n
}

func (f *findings) result() []check.Finding {
	out := f.list
	for _, id := range VerifyCheckIDs {
		if n := f.dropped[id]; n > 0 {
			sev := check.Error
			for _, x := range f.list {
				if x.Check == id {
					sev = x.Severity
					break
				}
			}
			out = append(out, check.Finding{Check: id, Severity: sev, Message: fmt.Sprintf("%d more finding%s of this check not shown", n, plural(n))})
		}
	}
	return out
}

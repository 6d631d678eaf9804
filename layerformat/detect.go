package layerformat

import (
	"bytes"
)

// Magic numbers at the start of a compressed stream.
var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	// A zstd skippable frame (0x184D2A50..5F little endian); a blob may legally start with one.
	zstdSkippableMagicLow = []byte{0x2a, 0x4d, 0x18}
)

// HeadSize is how many leading bytes Detect wants to see.
const HeadSize = 512

// SniffCompression looks at the first bytes of a blob and says which compression they start:
// Gzip, Zstd, Uncompressed (a tar header with its "ustar" magic, or an empty/zero stream), or Unknown.
func SniffCompression(head []byte) Kind {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	case len(head) >= 4 && head[0]&0xf0 == 0x50 && bytes.Equal(head[1:4], zstdSkippableMagicLow):
		return Zstd
	case len(head) >= 263 && bytes.Equal(head[257:262], []byte("ustar")):
		return Uncompressed
	case len(head) == 0 || isAllZero(head):
		// An empty layer or one that is only end-of-archive blocks.
		return Uncompressed
	case len(head) >= 512 && looksLikeV7Tar(head):
		return Uncompressed
	}
	return Unknown
}

func isAllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// looksLikeV7Tar checks the header checksum of a pre-POSIX tar header.
func looksLikeV7Tar(h []byte) bool {
	var sum int64
	for i, c := range h[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	field := bytes.TrimRight(bytes.TrimLeft(h[148:156], " "), " \x00")
	var want int64
	for _, c := range field {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
	}
	return len(field) > 0 && want == sum
}

// Detect decides a layer's format from its media type, annotations and first bytes. The bytes
// decide the compression; the annotations decide which chunked dialect a compressed stream claims to
// be (the footer and TOC confirm it when the whole blob is read). It never trusts the media type alone.
func Detect(mediaType string, annotations map[string]string, head []byte) Format {
	if IsEncrypted(mediaType) {
		return Format{Kind: Encrypted}
	}
	if mediaType == MediaTypeNydusBlob || annotations[AnnotationNydusBlob] == "true" {
		return Format{Kind: NydusBlob}
	}
	if annotations[AnnotationNydusBootstrap] == "true" {
		return Format{Kind: NydusBootstrap}
	}
	switch SniffCompression(head) {
	case Gzip:
		if annotations[AnnotationEstargzTOCDigest] != "" {
			return Format{Kind: Estargz}
		}
		return Format{Kind: Gzip}
	case Zstd:
		if d := ZstdChunkedDialect(annotations); d != "" {
			return Format{Kind: ZstdChunked, Dialect: d}
		}
		return Format{Kind: Zstd}
	case Uncompressed:
		return Format{Kind: Uncompressed}
	}
	return Format{Kind: Unknown}
}

// ZstdChunkedDialect names the zstd:chunked dialect that a zstd layer's annotations claim, or "".
func ZstdChunkedDialect(annotations map[string]string) string {
	switch {
	case annotations[AnnotationZstdChunkedManifestChecksum] != "":
		return DialectContainers
	case annotations[AnnotationLegacyZstdChunkedManifestChecksum] != "" && annotations[AnnotationEstargzTOCDigest] != "":
		return DialectStargz
	case annotations[AnnotationLegacyZstdChunkedManifestChecksum] != "":
		return DialectContainersLegacy
	}
	return ""
}

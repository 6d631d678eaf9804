package zstdchunked

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/check"
	"github.com/opencontainers/go-digest"
)

// fuzzLimits keep one execution small.
var fuzzLimits = Limits{
	MaxTOCSize:          1 << 20,
	MaxTarSplitSize:     1 << 20,
	MaxEntries:          1000,
	MaxNameLength:       1000,
	MaxUncompressedSize: 32 << 20,
	MaxFindings:         20,
}

// fuzzAnnotations derives annotations from the blob's own footer, with the
// checksums of whatever the footer points at, so that mutations reach the
// checks behind them. mode 0 gives none, 1 the dialect's keys, 2 also the
// eStargz TOC digest.
func fuzzAnnotations(blob []byte, mode uint8) map[string]string {
	if mode%3 == 0 {
		return nil
	}
	f, err := ReadFooter(bytes.NewReader(blob), int64(len(blob)))
	if err != nil {
		return map[string]string{AnnotationManifestChecksum: digest.FromBytes(blob).String(), AnnotationManifestPosition: "8:16:16:1"}
	}
	at := func(off, n uint64) []byte {
		if off > uint64(len(blob)) || n > uint64(len(blob))-off {
			return nil
		}
		return blob[off : off+n]
	}
	toc := at(f.TOCOffset, f.TOCLength)
	pos := fmt.Sprintf("%d:%d:%d:%d", f.TOCOffset, f.TOCLength, f.TOCUncompressedLength, f.ManifestType)
	if f.Size != LegacyFooterSize {
		ann := map[string]string{AnnotationManifestChecksum: digest.FromBytes(toc).String(), AnnotationManifestPosition: pos}
		if f.Size == FooterSize {
			ann[AnnotationTarSplitPosition] = fmt.Sprintf("%d:%d:%d", f.TarSplitOffset, f.TarSplitLength, f.TarSplitUncompressedLength)
		}
		return ann
	}
	ann := map[string]string{AnnotationLegacyManifestChecksum: digest.FromBytes(toc).String(), AnnotationLegacyManifestPosition: pos}
	if mode%3 == 2 {
		js, lerr, derr := decompressCapped(toc, min(f.TOCUncompressedLength, 1<<20))
		if lerr == nil && derr == nil {
			ann[AnnotationStargzTOCDigest] = digest.FromBytes(js).String()
		}
	}
	return ann
}

type fuzzSeed struct {
	blob []byte
	mode uint8 // the annotations that make it valid
}

func hdrDir(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}
}
func hdrFile(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: epoch}
}
func hdrLink(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}
}

func fuzzSeeds(t testing.TB) []fuzzSeed {
	r := rand.New(rand.NewSource(7))
	in := buildTar(t, []tarEntry{
		{hdrDir("d/"), nil},
		{hdrFile("d/a", 300), textBytes(r, 300)},
		{hdrFile("d/z", 3000), cat(randBytes(r, 100), zeros(2000), randBytes(r, 900))},
		{hdrLink("d/l", "a"), nil},
		{hdrFile("e", 0), nil},
	}, 0)
	var seeds []fuzzSeed
	b, _ := ourEncode(t, in, 1)
	seeds = append(seeds, fuzzSeed{b, 1})
	ref, _, err := refEncode(t, in, 1)
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, fuzzSeed{ref, 1})
	lb, _, _ := legacyBlob(t, in)
	seeds = append(seeds, fuzzSeed{lb, 1})
	sb, _, _ := stargzBlob(t, in)
	seeds = append(seeds, fuzzSeed{sb, 2})
	empty, _ := ourEncode(t, buildTar(t, nil, 0), 1)
	seeds = append(seeds, fuzzSeed{empty, 1})
	return seeds
}

func FuzzVerify(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		for mode := uint8(0); mode < 3; mode++ {
			f.Add(s.blob, mode)
		}
	}
	known := map[string]bool{}
	for _, id := range VerifyCheckIDs {
		known[id] = true
	}
	f.Fuzz(func(t *testing.T, blob []byte, mode uint8) {
		ann := fuzzAnnotations(blob, mode)
		start := time.Now()
		info, fs, err := Verify(context.Background(), bytes.NewReader(blob), int64(len(blob)), ann, VerifyOptions{Limits: fuzzLimits})
		if err != nil {
			t.Fatalf("Verify returned an error for an in-memory blob: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Verify took %v on %d bytes", d, len(blob))
		}
		perID := map[string]int{}
		for _, x := range fs {
			if !known[x.Check] || (x.Severity != check.Error && x.Severity != check.Warning) || x.Message == "" {
				t.Fatalf("bad finding %+v", x)
			}
			perID[x.Check]++
		}
		for id, n := range perID {
			if n > fuzzLimits.MaxFindings+1 {
				t.Fatalf("%d findings of %s", n, id)
			}
		}
		if info == nil {
			t.Fatal("nil info")
		}
		if !check.HasErrors(fs) && len(blob) > 0 && info.UncompressedDigest == "" {
			t.Fatalf("no errors but no uncompressed digest:%s", dumpFindings(fs))
		}
	})
}

// TestVerifySeedsClean: the fuzz seeds verify clean with their own
// annotations, so the fuzzer starts from valid blobs.
func TestVerifySeedsClean(t *testing.T) {
	for i, s := range fuzzSeeds(t) {
		_, fs := verifyBlob(t, s.blob, fuzzAnnotations(s.blob, s.mode), VerifyOptions{Limits: fuzzLimits})
		if len(fs) > 0 {
			t.Fatalf("seed %d:%s", i, dumpFindings(fs))
		}
	}
}

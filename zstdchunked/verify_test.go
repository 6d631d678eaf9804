package zstdchunked

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/opencontainers/go-digest"
)

var (
	richOnce sync.Once
	richTar  []byte
	richData map[string][]byte
)

// rich is the shared test input: richEntries(51, true) as a tar, and each
// file's content.
func rich(t testing.TB) ([]byte, map[string][]byte) {
	richOnce.Do(func() {
		es := richEntries(51, true)
		richTar = tarOf(t, es)
		richData = map[string][]byte{}
		for _, e := range es {
			richData[e.hdr.Name] = e.data
		}
	})
	return richTar, richData
}

func TestVerifyClean(t *testing.T) {
	in, _ := rich(t)
	diffID := digest.FromBytes(in)

	t.Run("encode", func(t *testing.T) {
		blob, res := ourEncode(t, in, 3)
		info, fs := verifyBlob(t, blob, res.Annotations, VerifyOptions{DiffID: res.DiffID})
		wantIDs(t, fs)
		if info.Dialect != DialectContainers || info.Shape != ShapeContainers || !info.HasTarSplit ||
			info.TOCDigest != res.TOCDigest || info.UncompressedDigest != diffID || info.UncompressedSize != int64(len(in)) {
			t.Fatalf("info %+v", info)
		}
		if info.Files < 20 || info.Chunks <= info.Files || info.ZeroChunks == 0 || info.Entries < info.Files {
			t.Fatalf("counts %+v", info)
		}
		if !strings.Contains(info.PartialPull, "containers/storage >= 1.54") {
			t.Fatalf("PartialPull %q", info.PartialPull)
		}
	})
	for _, level := range []int{3, 10} {
		t.Run("reference-level"+string(rune('0'+level/10))+string(rune('0'+level%10)), func(t *testing.T) {
			blob, ann, err := refEncode(t, in, level)
			if err != nil {
				t.Fatal(err)
			}
			info, fs := verifyBlob(t, blob, ann, VerifyOptions{DiffID: diffID})
			wantIDs(t, fs)
			if info.Dialect != DialectContainers || !info.HasTarSplit || info.UncompressedDigest != diffID {
				t.Fatalf("info %+v", info)
			}
		})
	}
	t.Run("empty-tar", func(t *testing.T) {
		empty := tarOf(t, nil)
		blob, res := ourEncode(t, empty, 3)
		info, fs := verifyBlob(t, blob, res.Annotations, VerifyOptions{DiffID: digest.FromBytes(empty)})
		wantIDs(t, fs)
		if info.Entries != 0 || info.Files != 0 || !info.HasTarSplit {
			t.Fatalf("info %+v", info)
		}
	})
	t.Run("legacy", func(t *testing.T) {
		blob, ann, _ := legacyBlob(t, in)
		info, fs := verifyBlob(t, blob, ann, VerifyOptions{DiffID: diffID})
		wantIDs(t, fs)
		if info.Dialect != DialectContainersLegacy || info.HasTarSplit || info.UncompressedDigest != diffID ||
			!strings.Contains(info.PartialPull, "< 1.44") {
			t.Fatalf("info %+v", info)
		}
	})
	t.Run("stargz-min-chunk-size", func(t *testing.T) {
		// Small files share frames (innerOffset).
		blob, ann, sdiff := stargzBlob(t, in, estargz.WithMinChunkSize(16<<10))
		toc, _, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), ann, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(toc.Entries, func(e FileMetadata) bool { return e.InnerOffset > 0 }) {
			t.Fatal("no entry with innerOffset")
		}
		_, fs := verifyBlob(t, blob, ann, VerifyOptions{DiffID: sdiff})
		wantIDs(t, fs)
	})
	t.Run("stargz-prioritized", func(t *testing.T) {
		blob, ann, sdiff := stargzBlob(t, in, estargz.WithPrioritizedFiles([]string{"usr/text", "zz-last"}))
		toc, _, err := ReadTOC(bytes.NewReader(blob), int64(len(blob)), ann, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(toc.Entries, func(e FileMetadata) bool { return e.Name == PrefetchLandmark }) {
			t.Fatal("no prefetch landmark")
		}
		_, fs := verifyBlob(t, blob, ann, VerifyOptions{DiffID: sdiff})
		wantIDs(t, fs)
	})
	t.Run("stargz", func(t *testing.T) {
		blob, ann, sdiff := stargzBlob(t, in)
		info, fs := verifyBlob(t, blob, ann, VerifyOptions{DiffID: sdiff})
		wantIDs(t, fs)
		if info.Dialect != DialectStargz || info.Shape != ShapeEStargz || info.HasTarSplit || info.UncompressedDigest != sdiff ||
			info.Chunks <= info.Files || !strings.Contains(info.PartialPull, "stargz-snapshotter") {
			t.Fatalf("info %+v", info)
		}
	})
}

// TestVerifyWithoutAnnotations: the footer locates the TOC; only a warning.
func TestVerifyWithoutAnnotations(t *testing.T) {
	in, _ := rich(t)
	blob, _ := ourEncode(t, in, 3)
	info, fs := verifyBlob(t, blob, nil, VerifyOptions{})
	wantIDs(t, fs, CheckFooter+"(w)")
	if info.Dialect != DialectContainers || !info.HasTarSplit || !strings.HasPrefix(info.PartialPull, "none") {
		t.Fatalf("info %+v", info)
	}
	lb, _, _ := legacyBlob(t, in)
	info, fs = verifyBlob(t, lb, nil, VerifyOptions{})
	wantIDs(t, fs, CheckFooter+"(w)")
	if info.Dialect != DialectContainersLegacy {
		t.Fatalf("info %+v", info)
	}
	sb, _, _ := stargzBlob(t, in)
	info, fs = verifyBlob(t, sb, nil, VerifyOptions{})
	wantIDs(t, fs, CheckFooter+"(w)")
	if info.Dialect != DialectStargz {
		t.Fatalf("info %+v", info)
	}
	// Not zstd:chunked at all: plain zstd.
	plain := zstdCompress(t, 3, in)
	_, fs = verifyBlob(t, plain, nil, VerifyOptions{})
	wantIDs(t, fs, CheckFooter)
}

func TestVerifyContextCancel(t *testing.T) {
	in, _ := rich(t)
	blob, res := ourEncode(t, in, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Verify(ctx, bytes.NewReader(blob), int64(len(blob)), res.Annotations, VerifyOptions{}); err == nil {
		t.Fatal("no error with a cancelled context")
	}
}

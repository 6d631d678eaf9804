package nydus

import (
	"bytes"
	"errors"
	"github.com/fmtconv/fmtconv/internal/testenv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// fuzzLimits keep one fuzz input cheap: a decompressed inlined bootstrap or ci
// array may not exceed a few MiB (real limits are much larger).
var fuzzLimits = Options{MaxBootstrapSize: 4 << 20, MaxCISize: 1 << 20}

func fuzzSeed(f *testing.F, name string) []byte {
	b, err := os.ReadFile(filepath.Join(fixtureDirRel, name))
	if err != nil {
		if testenv.InCI() {
			f.Fatalf("fixture %s: %v (CI=true)", name, err)
		}
		f.Logf("SKIP seed %s: %v", name, err)
		return nil
	}
	return b
}

// checkErr: every error from parsing is typed (FormatError, VersionError or an
// ErrUnsupported) — nothing else may come out of hostile bytes.
func checkErr(t *testing.T, err error) {
	t.Helper()
	var fe *FormatError
	var ve *VersionError
	if err != nil && !errors.As(err, &fe) && !errors.As(err, &ve) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, errNoBlob) {
		t.Fatalf("untyped error: %v", err)
	}
}

// exercise runs every reader path over an opened FS.
func exercise(t *testing.T, fsys *FS) {
	_ = fsys.Info()
	_ = fsys.Walk(func(e *Entry) error {
		// io/fs cannot address a name that is not valid UTF-8 (fs.ValidPath), so ReadFile rightly
		// answers fs.ErrInvalid for it; ToTar below still reads such files through the tree.
		if e.Type == FileTypeReg && e.Size <= 1<<20 && fs.ValidPath(e.Path) {
			_, err := fsys.ReadFile(e.Path)
			var pe interface{ Unwrap() error }
			if errors.As(err, &pe) {
				checkErr(t, pe.Unwrap())
			}
			_, _ = fsys.Chunks(e.Path)
		}
		if e.Type == FileTypeDir {
			_, _ = fsys.ReadDir(e.Path)
		}
		return nil
	})
	_ = fsys.ToTar(io.Discard, nil)
}

// FuzzBootstrap feeds arbitrary bytes to the RAFS v6 bootstrap parser, the tree
// walk, file reads (against a fixed blob), ToTar, Inspect and Verify.
func FuzzBootstrap(f *testing.F) {
	for _, name := range []string{fxBoot22, fxBoot2fa, fxV5} {
		if b := fuzzSeed(f, name); b != nil {
			f.Add(b)
		}
	}
	blob := fuzzSeed(f, fxBlobBe7d)
	// small synthetic images (symlinks, devices, xattrs, hard links, multi-chunk files)
	small := synthTree(synthBuildTime)[:23]
	for _, c := range synthConfigs[:3] {
		o := c.o
		o.buildTime = synthBuildTime
		boot, sb := buildSynth(f, small, o)
		f.Add(boot)
		if blob == nil {
			blob = sb
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res := anyResolver(blob)
		fsys, err := OpenWithOptions(bytes.NewReader(data), int64(len(data)), res, &fuzzLimits)
		checkErr(t, err)
		if err == nil {
			exercise(t, fsys)
		}
		_ = Verify(bytes.NewReader(data), int64(len(data)), res, &VerifyOptions{Options: fuzzLimits})
	})
}

// FuzzLayerBlob feeds arbitrary bytes to the reverse-tar section walk, the TOC,
// the inlined bootstrap and VerifyLayer.
func FuzzLayerBlob(f *testing.F) {
	for _, name := range []string{fxLayer2fa, fxBlobBe7d} {
		if b := fuzzSeed(f, name); b != nil {
			f.Add(b)
		}
	}
	o := synthOpts{compressor: CompressLZ4Block, digester: DigestSHA256, inline: true, blobDigest: true, ciZstd: true}
	_, layer := buildSynth(f, synthTree(synthBuildTime)[:12], o)
	f.Add(layer)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		lb, err := ParseLayerBlob(r, int64(len(data)))
		checkErr(t, err)
		if err == nil {
			fsys, err := lb.FS(nil, &fuzzLimits)
			checkErr(t, err)
			if err == nil {
				exercise(t, fsys)
			}
		}
		_ = VerifyLayer(r, int64(len(data)), nil, &VerifyOptions{Options: fuzzLimits})
	})
}

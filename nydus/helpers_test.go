package nydus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/fmtconv/fmtconv/internal/testenv"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/check"
)

// The fixtures live outside the repository: ../shared/fixtures/nydus relative
// to the repository root (see that directory's README). They are never copied in.
const fixtureDirRel = "../../shared/fixtures/nydus"

// Fixture file names and the facts their README lists.
const (
	fxBoot22    = "rafs-v6-2.2.boot"
	fxBlobBe7d  = "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef"
	fxLayer2fa  = "2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca"
	fxV5        = "rafs-v5-sha256-nocompress-repeatable.boot"
	fxRawBe7d   = "derived/be7d77ee.rawdev"
	fxBoot2fa   = "derived/2fa78cad.image.boot"
	fxRaw2fa    = "derived/2fa78cad.rawdev"
	fxBe7dSHA   = "4b16fb83ae9f62d8263323b8569535e66ebf21171cf98fd94db9db27b59755ac" // sha256 of the be7d77ee file (≠ its id)
	fxTOCDig2fa = "4fdfbb36"                                                         // README: TOC digest prefix
)

// Expected sha256 of the files (fixture README: from fsck.erofs --extract on the derived raw devices).
var (
	want22 = map[string]string{
		"lib.rs":     "1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69",
		"sync_io.rs": "e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96",
	}
	want2fa = map[string]string{
		"error.rs":  "b23741280bb7fbbd48b68da04f1ee8a4559a3191fd26e7bc332fe9a82205750b",
		"lib.rs":    "7628231c52136b04935025215115e29df7f16f223f66c7793e70721483896210",
		"logger.rs": "085f726e0b038b4121a0c9fa15a04e154f80e703be78b3d54c2dd445eae807bc",
	}
	// README abbreviations, checked against the full values above so the two cannot drift.
	readmeAbbrev = map[string]string{
		"1810eba8": "0c69", "e629ab26": "ff96", "b2374128": "750b", "7628231c": "6210", "085f726e": "07bc",
	}
)

func fixturePath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(fixtureDirRel, name)
	testenv.RequireFile(t, p)
	return p
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixturePath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	testenv.RequireTool(t, name)
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mapResolver serves blobs from memory by id.
func mapResolver(m map[string][]byte) BlobResolver {
	return func(id string) (io.ReaderAt, int64, error) {
		b, ok := m[id]
		if !ok {
			return nil, 0, fmt.Errorf("blob %s: %w", id, fs.ErrNotExist)
		}
		return bytes.NewReader(b), int64(len(b)), nil
	}
}

// anyResolver serves one blob for every id.
func anyResolver(b []byte) BlobResolver {
	return func(string) (io.ReaderAt, int64, error) { return bytes.NewReader(b), int64(len(b)), nil }
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func errorFindings(fs []check.Finding) []check.Finding {
	var out []check.Finding
	for _, f := range fs {
		if f.Severity == check.Error {
			out = append(out, f)
		}
	}
	return out
}

func hasError(fs []check.Finding, id string) bool {
	for _, f := range fs {
		if f.Check == id && f.Severity == check.Error {
			return true
		}
	}
	return false
}

func dumpFindings(fs []check.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %s %s %s %s", f.Severity, f.Check, f.Path, f.Message)
	}
	return b.String()
}

// treeEntry is what our reader and the synthetic images' specification are compared on.
type treeEntry struct {
	Type    string
	Size    int64
	SHA     string // regular files
	Target  string // symlinks
	Mode    uint32 // permission bits
	UID     uint32
	GID     uint32
	Mtime   int64 // seconds
	Rdev    uint64
	LinkKey string // hard-link group: first path
}

func (e treeEntry) String() string {
	return fmt.Sprintf("%s size=%d sha=%.12s target=%q mode=%o uid=%d gid=%d mtime=%d rdev=%d link=%q",
		e.Type, e.Size, e.SHA, e.Target, e.Mode, e.UID, e.GID, e.Mtime, e.Rdev, e.LinkKey)
}

// ourTree reads every entry (without the root) with our reader.
func ourTree(t *testing.T, f *FS) map[string]treeEntry {
	t.Helper()
	out := map[string]treeEntry{}
	err := f.Walk(func(e *Entry) error {
		if e.Path == "." {
			return nil
		}
		te := treeEntry{Type: e.Type.String(), Mode: e.Mode, UID: e.UID, GID: e.GID, Mtime: e.ModTime.Unix(), LinkKey: e.HardlinkTo}
		switch e.Type {
		case FileTypeReg:
			b, err := f.ReadFile(e.Path)
			if err != nil {
				return fmt.Errorf("%s: %w", e.Path, err)
			}
			te.Size, te.SHA = int64(len(b)), sha(b)
			if int64(len(b)) != e.Size {
				return fmt.Errorf("%s: read %d bytes, size %d", e.Path, len(b), e.Size)
			}
		case FileTypeSymlink:
			te.Target, te.Size = e.LinkTarget, e.Size
		case FileTypeChar, FileTypeBlock:
			te.Rdev = uint64(e.Rdev)
		}
		out[e.Path] = te
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// linkGroups returns the hard-link groups (sorted path lists with ≥ 2 names) of a tree.
func linkGroups(tree map[string]treeEntry) []string {
	groups := map[string][]string{}
	for p, e := range tree {
		if e.Type == "dir" {
			continue
		}
		key := p
		if e.LinkKey != "" {
			key = e.LinkKey
		}
		groups[key] = append(groups[key], p)
	}
	var out []string
	for _, g := range groups {
		if len(g) > 1 {
			sort.Strings(g)
			out = append(out, strings.Join(g, ","))
		}
	}
	sort.Strings(out)
	return out
}

// compareTrees compares names, types, sizes, contents, symlink targets, device
// numbers, modes, owners and mtimes. It returns the number of entries compared.
func compareTrees(t *testing.T, ours, disk map[string]treeEntry) int {
	t.Helper()
	n := 0
	for p, a := range ours {
		b, ok := disk[p]
		if !ok {
			t.Errorf("%s: only in our tree (%v)", p, a)
			continue
		}
		n++
		if a.Type != b.Type || a.SHA != b.SHA || a.Target != b.Target || a.Rdev != b.Rdev ||
			(a.Type != "dir" && a.Size != b.Size) {
			t.Errorf("%s differs:\n ours %v\n disk %v", p, a, b)
			continue
		}
		if a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || (a.Type != "symlink" && a.Mtime != b.Mtime) {
			t.Errorf("%s metadata differs:\n ours %v\n disk %v", p, a, b)
		}
	}
	for p, b := range disk {
		if _, ok := ours[p]; !ok {
			t.Errorf("%s: only in the expected tree (%v)", p, b)
		}
	}
	return n
}

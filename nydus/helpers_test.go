package nydus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
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

func inCI() bool { return os.Getenv("CI") == "true" }

// skipOrFail skips loudly, or fails when CI=true.
func skipOrFail(t testing.TB, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if inCI() {
		t.Fatalf("%s (CI=true: not skipping)", msg)
	}
	t.Logf("SKIP: %s", msg)
	t.Skip("SKIP: " + msg)
}

func fixturePath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(fixtureDirRel, name)
	if _, err := os.Stat(p); err != nil {
		skipOrFail(t, "nydus fixture %s not found (%v)", p, err)
	}
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
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, "%s not installed", name)
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

// treeEntry is what both readers (ours, fsck.erofs --extract) are compared on.
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
	Ino     uint64 // extracted tree: inode number, for hard-link grouping
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

// diskTree reads an extracted directory the same way; hard links are grouped by inode number.
func diskTree(t *testing.T, root string) map[string]treeEntry {
	t.Helper()
	out := map[string]treeEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		te := treeEntry{Mode: uint32(st.Mode) & ModePermMask, UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Sec, Ino: st.Ino}
		switch m := fi.Mode(); {
		case m.IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			te.Type, te.Size, te.SHA = "reg", int64(len(b)), sha(b)
		case m.IsDir():
			te.Type = "dir"
		case m&fs.ModeSymlink != 0:
			tg, err := os.Readlink(p)
			if err != nil {
				return err
			}
			te.Type, te.Target, te.Size = "symlink", tg, int64(len(tg))
		case m&fs.ModeCharDevice != 0:
			te.Type, te.Rdev = "char", linuxRdev(st.Rdev)
		case m&fs.ModeDevice != 0:
			te.Type, te.Rdev = "block", linuxRdev(st.Rdev)
		case m&fs.ModeNamedPipe != 0:
			te.Type = "fifo"
		case m&fs.ModeSocket != 0:
			te.Type = "socket"
		}
		out[rel] = te
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// linkGroups returns the hard-link groups (sorted path lists with ≥ 2 names) of a tree.
func linkGroups(tree map[string]treeEntry, byIno bool) []string {
	groups := map[string][]string{}
	for p, e := range tree {
		if e.Type == "dir" {
			continue
		}
		key := p
		if byIno {
			key = fmt.Sprint(e.Ino)
		} else if e.LinkKey != "" {
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

type compareOpts struct {
	meta  bool // also mode, uid, gid, mtime
	links bool // also hard-link groups
	// noSUID ignores setuid/setgid on regular files: fsck.erofs 1.5 --extract
	// chowns after chmod, which clears them.
	noSUID bool
}

// compareTrees compares names, types, sizes, contents and symlink targets (and
// optionally metadata and hard links). It returns the number of entries compared.
func compareTrees(t *testing.T, ours, disk map[string]treeEntry, o compareOpts) int {
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
		am, bm := a.Mode, b.Mode
		if o.noSUID && a.Type == "reg" {
			am, bm = am&^0o6000, bm&^0o6000
		}
		if o.meta && (am != bm || a.UID != b.UID || a.GID != b.GID || (a.Type != "symlink" && a.Mtime != b.Mtime)) {
			t.Errorf("%s metadata differs:\n ours %v\n disk %v", p, a, b)
		}
	}
	for p, b := range disk {
		if _, ok := ours[p]; !ok {
			t.Errorf("%s: only in the extracted tree (%v)", p, b)
		}
	}
	if o.links {
		if a, b := linkGroups(ours, false), linkGroups(disk, true); strings.Join(a, ";") != strings.Join(b, ";") {
			t.Errorf("hard-link groups differ:\n ours %v\n disk %v", a, b)
		}
	}
	return n
}

// fsckExtract runs fsck.erofs --extract on a bootstrap with raw devices.
func fsckExtract(t *testing.T, boot string, devices ...string) string {
	t.Helper()
	tool := needTool(t, "fsck.erofs")
	out := filepath.Join(t.TempDir(), "x")
	args := []string{}
	for _, d := range devices {
		args = append(args, "--device="+d)
	}
	args = append(args, "--extract="+out, boot)
	cmd := exec.Command(tool, args...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.erofs %v: %v\n%s", args, err, b)
	}
	return out
}

// linuxRdev converts Linux dev_t (glibc makedev) into new_encode_dev.
func linuxRdev(dev uint64) uint64 {
	major := (dev >> 8 & 0xfff) | (dev >> 32 &^ 0xfff)
	minor := (dev & 0xff) | (dev >> 12 &^ 0xff)
	return uint64(EncodeDev(uint32(major), uint32(minor)))
}

// dumpErofsNids lists, with dump.erofs --ls, the nid and dirent type of every
// name of every directory, keyed by path.
func dumpErofsNids(t *testing.T, boot, dev string, dirs []string) map[string][2]uint64 {
	t.Helper()
	tool := needTool(t, "dump.erofs")
	out := map[string][2]uint64{}
	for _, d := range dirs {
		p := "/" + d
		if d == "." {
			p = "/"
		}
		b, err := exec.Command(tool, "--device="+dev, "--ls", "--path="+p, boot).CombinedOutput()
		if err != nil {
			t.Fatalf("dump.erofs --ls %s: %v\n%s", p, err, b)
		}
		list := false
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == "NID" {
				list = true
				continue
			}
			if !list || len(f) != 3 || f[2] == "." || f[2] == ".." {
				continue
			}
			var nid, typ uint64
			fmt.Sscan(f[0], &nid)
			fmt.Sscan(f[1], &typ)
			out[joinPath(d, f[2])] = [2]uint64{nid, typ}
		}
	}
	return out
}

// checkNidsWithDumpErofs compares our nids and types with dump.erofs (hard links share a nid).
func checkNidsWithDumpErofs(t *testing.T, f *FS, boot, dev string) int {
	t.Helper()
	var dirs []string
	ours := map[string][2]uint64{}
	_ = f.Walk(func(e *Entry) error {
		if e.Type == FileTypeDir {
			dirs = append(dirs, e.Path)
		}
		if e.Path != "." {
			ours[e.Path] = [2]uint64{e.Nid, uint64(e.Type)}
		}
		return nil
	})
	theirs := dumpErofsNids(t, boot, dev, dirs)
	for p, v := range ours {
		if theirs[p] != v {
			t.Errorf("%s: nid/type %v, dump.erofs %v", p, v, theirs[p])
		}
	}
	if len(theirs) != len(ours) {
		t.Errorf("dump.erofs lists %d names, we %d", len(theirs), len(ours))
	}
	return len(ours)
}

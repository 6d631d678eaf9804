package nydus

import (
	"archive/tar"
	"bytes"
	"io"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/fmtconv/fmtconv/check"
)

// specTree is what the synthetic tree must read back as.
func specTree(t *testing.T, es []synthEntry, buildTime int64) map[string]treeEntry {
	out := map[string]treeEntry{}
	byPath := map[string]synthEntry{}
	for _, e := range es {
		if e.path == "." {
			continue
		}
		if e.link != "" {
			l := byPath[e.link]
			te := out[e.link]
			te.LinkKey = e.link
			out[e.path] = te
			byPath[e.path] = l
			continue
		}
		byPath[e.path] = e
		te := treeEntry{Type: e.typ.String(), Mode: e.mode, UID: e.uid, GID: e.gid, Mtime: e.mtime}
		switch e.typ {
		case FileTypeReg:
			te.Size, te.SHA = int64(len(e.data)), sha(e.data)
		case FileTypeSymlink:
			te.Target, te.Size = e.target, int64(len(e.target))
		case FileTypeChar, FileTypeBlock:
			te.Rdev = uint64(EncodeDev(e.major, e.minor))
		}
		out[e.path] = te
		// implicit parents
		for d, _ := splitPath(e.path); d != "."; d, _ = splitPath(d) {
			if _, ok := out[d]; !ok {
				out[d] = treeEntry{Type: "dir", Mode: 0o755, Mtime: 1700000000}
			}
		}
	}
	return out
}

func TestSynthRoundTrip(t *testing.T) {
	for _, c := range synthConfigs {
		t.Run(c.name, func(t *testing.T) {
			es := synthTree(synthBuildTime)
			boot, blob := buildStd(t, c.o)
			f := openSynth(t, c.o, boot, blob)
			ours := ourTree(t, f)
			spec := specTree(t, es, synthBuildTime)
			n := compareTrees(t, ours, spec)
			if len(linkGroups(ours)) != 2 {
				t.Errorf("hard-link groups %v", linkGroups(ours))
			}
			// xattrs and nanoseconds
			e, err := f.Lookup("bin/busybox")
			if err != nil || len(e.Xattrs) != 2 || e.Xattrs[0].Name != "security.capability" || string(e.Xattrs[1].Value) != "big file" {
				t.Errorf("xattrs %+v %v", e, err)
			}
			if e, _ := f.Lookup("bin"); e.ModTime.Nanosecond() != 123456789 {
				t.Errorf("bin mtime %v", e.ModTime)
			}
			if e, _ := f.Lookup("dev/big"); e.DevMajor != 259 || e.DevMinor != 70000 {
				t.Errorf("dev/big %d:%d", e.DevMajor, e.DevMinor)
			}
			// Verify: no findings at all
			var fs []findingT
			if c.o.inline {
				fs = VerifyLayer(bytes.NewReader(blob), int64(len(blob)), nil, nil)
			} else {
				fs = Verify(bytes.NewReader(boot), int64(len(boot)), anyResolver(blob), nil)
			}
			if len(fs) != 0 {
				t.Fatalf("Verify: %s", dumpFindings(fs))
			}
			info := f.Info()
			t.Logf("%s: %d entries as built; %d inodes, %d chunk refs, %d unique chunks, types %v, bootstrap %d B, blob %d B",
				c.name, n, info.Inodes, info.ChunkRefs, info.ChunkTableEntries, info.ByType, len(boot), len(blob))
		})
	}
}

type findingT = check.Finding

func TestSynthFSTest(t *testing.T) {
	for _, c := range synthConfigs[:2] {
		boot, blob := buildStd(t, c.o)
		f := openSynth(t, c.o, boot, blob)
		if err := fstest.TestFS(f, "bin/busybox", "bin/sh-link", "etc/passwd", "many/file-with-a-rather-long-name-0299", "dev/null"); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// symlinks are followed inside the image, absolute ones from its root
		b, err := f.ReadFile("bin/abs")
		if err != nil || !strings.HasPrefix(string(b), "root:") {
			t.Fatalf("read through absolute symlink: %q %v", b, err)
		}
		if tg, err := f.ReadLink("bin/ls"); err != nil || tg != "busybox" {
			t.Fatalf("readlink %q %v", tg, err)
		}
	}
}

type tarEnt struct {
	hdr  tar.Header
	data []byte
}

func readTar(t *testing.T, b []byte) []tarEnt {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []tarEnt
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		d, _ := io.ReadAll(tr)
		out = append(out, tarEnt{*h, d})
	}
}

func TestSynthToTar(t *testing.T) {
	o := synthConfigs[0].o
	boot, blob := buildStd(t, o)
	f := openSynth(t, o, boot, blob)
	tb, err := f.TarBytes(nil)
	if err != nil {
		t.Fatal(err)
	}
	tb2, _ := f.TarBytes(nil)
	if !bytes.Equal(tb, tb2) {
		t.Fatal("ToTar is not deterministic")
	}
	ents := readTar(t, tb)
	by := map[string]tarEnt{}
	var names []string
	for _, e := range ents {
		by[e.hdr.Name] = e
		names = append(names, e.hdr.Name)
	}
	// order: parents first, names sorted within a directory
	if names[0] != "bin/" || by["./"].hdr.Name != "" {
		t.Errorf("first entries %v", names[:3])
	}
	pos := map[string]int{}
	for i, n := range names {
		pos[n] = i
	}
	for _, n := range names {
		d, _ := splitPath(strings.TrimSuffix(n, "/"))
		if d != "." && pos[d+"/"] > pos[n] {
			t.Errorf("%s before its directory", n)
		}
	}
	check := func(name string, ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %s: %+v", name, what, by[name].hdr)
		}
	}
	check("bin/sh-link", by["bin/sh-link"].hdr.Typeflag == tar.TypeLink && by["bin/sh-link"].hdr.Linkname == "bin/sh", "hard link")
	check("etc/passwd.hard", by["etc/passwd.hard"].hdr.Typeflag == tar.TypeLink && by["etc/passwd.hard"].hdr.Linkname == "etc/passwd", "hard link")
	check("bin/sh", by["bin/sh"].hdr.Mode == 0o4755 && string(by["bin/sh"].data) == "#!/bin/true\n", "setuid file")
	check("bin/busybox", by["bin/busybox"].hdr.PAXRecords["SCHILY.xattr.security.capability"] == string(capNetBindService), "xattr")
	check("bin/busybox", len(by["bin/busybox"].data) == 34000, "content")
	check("bin/", by["bin/"].hdr.ModTime.Equal(time.Unix(1600000000, 123456789)), "nanosecond mtime")
	check("bin/ls", by["bin/ls"].hdr.Typeflag == tar.TypeSymlink && by["bin/ls"].hdr.Linkname == "busybox", "symlink")
	check("dev/big", by["dev/big"].hdr.Typeflag == tar.TypeChar && by["dev/big"].hdr.Devmajor == 259 && by["dev/big"].hdr.Devminor == 70000, "char device")
	check("dev/sda", by["dev/sda"].hdr.Typeflag == tar.TypeBlock && by["dev/sda"].hdr.Gid == 6, "block device")
	check("dev/fifo", by["dev/fifo"].hdr.Typeflag == tar.TypeFifo, "fifo")
	check("dev/sock", by["dev/sock"].hdr.Name == "", "socket skipped")
	check("bin/random", by["bin/random"].hdr.Uid == 1000 && by["bin/random"].hdr.Mode == 0o600, "owner")
	check("sticky/", by["sticky/"].hdr.Mode == 0o1777, "sticky dir")
	// whiteouts: OCI markers kept, overlayfs ones converted
	check("etc/.wh.shadow", by["etc/.wh.shadow"].hdr.Typeflag == tar.TypeReg, "OCI whiteout kept")
	check("opt/.wh..wh..opq", by["opt/.wh..wh..opq"].hdr.Typeflag == tar.TypeReg, "OCI opaque kept")
	check("etc/.wh.gone", by["etc/.wh.gone"].hdr.Typeflag == tar.TypeReg && by["etc/.wh.gone"].hdr.Size == 0, "overlay whiteout converted")
	check("etc/gone", by["etc/gone"].hdr.Name == "", "no char device for the whiteout")
	check("etc/.wh..wh..opq", by["etc/.wh..wh..opq"].hdr.Typeflag == tar.TypeReg && pos["etc/.wh..wh..opq"] == pos["etc/"]+1, "opaque marker after its dir")
	check("etc/", by["etc/"].hdr.PAXRecords["SCHILY.xattr.trusted.overlay.opaque"] == "", "opaque xattr dropped")

	// verbatim: as stored
	vb, err := f.TarBytes(&TarOptions{Whiteouts: WhiteoutVerbatim, IncludeRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	vby := map[string]tar.Header{}
	for _, e := range readTar(t, vb) {
		vby[e.hdr.Name] = e.hdr
	}
	if vby["etc/gone"].Typeflag != tar.TypeChar || vby["etc/"].PAXRecords["SCHILY.xattr.trusted.overlay.opaque"] != "y" || vby["./"].Typeflag != tar.TypeDir {
		t.Errorf("verbatim: %+v %+v %+v", vby["etc/gone"], vby["etc/"], vby["./"])
	}
	if _, ok := vby["etc/.wh..wh..opq"]; ok {
		t.Error("verbatim wrote an opaque marker")
	}
	var keys []string
	for k := range vby {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("tar: %d entries (OCI whiteouts), %d (verbatim, with root)", len(ents), len(keys))
}

// An FS is safe for concurrent use (run with -race).
func TestConcurrentReads(t *testing.T) {
	o := synthConfigs[0].o
	boot, blob := buildStd(t, o)
	f := openSynth(t, o, boot, blob)
	want := ourTree(t, f)
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for p, e := range want {
				if e.Type != "reg" {
					continue
				}
				b, err := f.ReadFile(p)
				if err != nil {
					done <- err
					return
				}
				if sha(b) != e.SHA {
					done <- io.ErrUnexpectedEOF
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// ToTar of the fixtures gives the files the README lists.
func TestFixtureToTar(t *testing.T) {
	f22, _, _ := open22(t)
	layer := readFixture(t, fxLayer2fa)
	f2fa, err := OpenLayer(bytes.NewReader(layer), int64(len(layer)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    *FS
		want map[string]string
	}{{f22, want22}, {f2fa, want2fa}} {
		tb, err := c.f.TarBytes(nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range readTar(t, tb) {
			got[e.hdr.Name] = sha(e.data)
			if e.hdr.ModTime.Nanosecond() == 0 || e.hdr.Mode != 0o644 {
				t.Errorf("%s: %v %o", e.hdr.Name, e.hdr.ModTime, e.hdr.Mode)
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("tar entries %v", got)
		}
		for p, w := range c.want {
			if got[p] != w {
				t.Errorf("%s: %s, want %s", p, got[p], w)
			}
		}
	}
}

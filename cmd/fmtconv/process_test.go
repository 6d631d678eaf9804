package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/internal/testimages"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The test binary doubles as the fmtconv binary, so tests can run real processes (to kill them,
// or to race two of them) without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("FMTCONV_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func fmtconvProcess(args ...string) *exec.Cmd {
	exe, _ := os.Executable()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "FMTCONV_TEST_RUN_MAIN=1")
	return cmd
}

func bigImage(t *testing.T, dir string) string {
	t.Helper()
	// Several layers of a few MiB, so a conversion takes long enough to be interrupted.
	var layers []testimages.LayerBlob
	for i := 0; i < 6; i++ {
		tar := testimages.MustBuildTar([]testimages.Entry{
			testimages.File(fmt.Sprintf("f%d", i), 0o644, testimages.Random(uint64(i), 6<<20)),
		}, testimages.Ending{Kind: testimages.EndEOF})
		layers = append(layers, testimages.LayerBlob{Tar: tar, Compression: testimages.Gzip})
	}
	if _, err := testimages.WriteOCILayout(dir, "big", testimages.ImageSpec{Layers: layers}); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":big"
}

// TestConcurrentRunsIntoOneLayout: two fmtconv processes writing different tags into one oci:
// layout at once both land, every time.
func TestConcurrentRunsIntoOneLayout(t *testing.T) {
	imgs, err := testimages.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var tags []string
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for k := 0; k < 4; k++ {
			tag := fmt.Sprintf("r%d-%d", round, k)
			tags = append(tags, tag)
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := fmtconvProcess("convert", imgs[k%len(imgs)].Ref, "oci:"+out+":"+tag, "--to", "zstd", "-q").CombinedOutput()
				if err != nil {
					errs[k] = fmt.Errorf("%s: %v: %s", tag, err, b)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	idx := readIndex(t, out)
	got := map[string]bool{}
	for _, d := range idx.Manifests {
		got[d.Annotations[ocispec.AnnotationRefName]] = true
	}
	for _, tag := range tags {
		if !got[tag] {
			t.Errorf("tag %s lost; index.json has %d entries", tag, len(idx.Manifests))
		}
	}
	if len(idx.Manifests) != len(tags) {
		t.Errorf("index.json has %d entries, want %d", len(idx.Manifests), len(tags))
	}
}

func readIndex(t *testing.T, dir string) ocispec.Index {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("index.json: %v\n%s", err, b)
	}
	return idx
}

// TestKillLeavesLayoutIntact kills conversions at increasing moments: index.json and oci-layout are
// always either byte-identical to before, or (once the commit happened) hold the new tag.
func TestKillLeavesLayoutIntact(t *testing.T) {
	src := bigImage(t, t.TempDir())
	out := t.TempDir()
	if code, _, stderr := fmtconv(t, "convert", src, "oci:"+out+":before", "--to", "gzip", "-q"); code != 0 {
		t.Fatal(stderr)
	}
	beforeIndex, _ := os.ReadFile(filepath.Join(out, "index.json"))
	beforeLayout, _ := os.ReadFile(filepath.Join(out, "oci-layout"))
	killedBefore, completed := 0, 0
	for delay := 20 * time.Millisecond; delay < 4*time.Second; delay = delay * 3 / 2 {
		tag := fmt.Sprintf("k%d", delay.Milliseconds())
		cmd := fmtconvProcess("convert", src, "oci:"+out+":"+tag, "--to", "zstd", "--force", "-q")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		idx, _ := os.ReadFile(filepath.Join(out, "index.json"))
		layout, _ := os.ReadFile(filepath.Join(out, "oci-layout"))
		if !bytes.Equal(layout, beforeLayout) {
			t.Fatalf("after a kill at %v oci-layout changed: %q", delay, layout)
		}
		if bytes.Equal(idx, beforeIndex) {
			killedBefore++
			continue
		}
		// The run got to its commit: the index is complete, valid, and holds the old and new tags.
		if err == nil {
			completed++
		}
		ix := readIndex(t, out)
		tags := map[string]bool{}
		for _, d := range ix.Manifests {
			tags[d.Annotations[ocispec.AnnotationRefName]] = true
		}
		if !tags["before"] || !tags[tag] {
			t.Fatalf("after a kill at %v index.json changed without a complete commit: %s", delay, idx)
		}
		beforeIndex = idx
		if code, stdout, _ := fmtconv(t, "verify", "oci:"+out+":"+tag); code != 0 {
			t.Fatalf("committed image %s does not verify: %s", tag, stdout)
		}
	}
	if killedBefore == 0 {
		t.Fatalf("no run was killed before its commit; the test proves nothing")
	}
	t.Logf("%d runs killed before the commit, %d completed", killedBefore, completed)
	// Temporary files of killed runs may remain in blobs/ (named .tmp-*), but no partial blob does.
	blobs, _ := filepath.Glob(filepath.Join(out, "blobs", "sha256", "*"))
	for _, b := range blobs {
		if filepath.Base(b)[0] == '.' {
			continue
		}
		data, _ := os.ReadFile(b)
		if got := fmt.Sprintf("%x", sha256sum(data)); got != filepath.Base(b) {
			t.Fatalf("blob %s is incomplete or corrupt", b)
		}
	}
}

func sha256sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestInterruptCleansUp: SIGINT or SIGTERM during a conversion stops it, removes its temporary
// files and leaves the oci: destination as it was.
func TestInterruptCleansUp(t *testing.T) {
	src := bigImage(t, t.TempDir())
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		out := t.TempDir()
		if code, _, stderr := fmtconv(t, "convert", src, "oci:"+out+":before", "--to", "gzip", "-q"); code != 0 {
			t.Fatal(stderr)
		}
		before := testenv.DirContents(t, out)
		tmp := t.TempDir()
		cmd := fmtconvProcess("convert", src, "oci:"+out+":new", "--to", "zstd:chunked", "-q", "--tmpdir", tmp)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(sig)
		err := cmd.Wait()
		if err == nil {
			t.Skipf("%v: the conversion finished before the signal; machine too fast for this test", sig)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Fatalf("%v: temporary files left: %v", sig, left)
		}
		after := testenv.DirContents(t, out)
		for name, content := range before {
			if after[name] != content {
				t.Fatalf("%v: %s changed", sig, name)
			}
		}
		for name := range after {
			if _, ok := before[name]; !ok && !isCompleteBlob(name, after[name]) {
				t.Fatalf("%v: the interrupted run left %s, which is not a complete blob", sig, name)
			}
		}
		// The run ends through its own error path (exit 2, saying why), not killed by the signal.
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), "canceled") {
			t.Fatalf("%v: exit %d, stderr %q", sig, code, stderr.String())
		}
	}
}

// isCompleteBlob: a file under blobs/sha256 named by the digest of its content.
func isCompleteBlob(name, content string) bool {
	if !strings.HasPrefix(name, "/blobs/sha256/") {
		return false
	}
	return fmt.Sprintf("%x", sha256.Sum256([]byte(content))) == filepath.Base(name)
}

// TestScaleWithinMemoryBound: a 60-layer image and a layer of 100,000 files convert with the
// process's peak RSS under the 256 MiB bound.
func TestScaleWithinMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test skipped with -short")
	}
	dir := t.TempDir()
	// 60 layers of a few files each.
	var layers []testimages.LayerBlob
	for i := 0; i < 60; i++ {
		tar := testimages.MustBuildTar([]testimages.Entry{
			testimages.Dir(fmt.Sprintf("l%02d", i), 0o755),
			testimages.File(fmt.Sprintf("l%02d/data", i), 0o644, testimages.Random(uint64(i), 64<<10)),
		}, testimages.Ending{Kind: testimages.EndEOF})
		layers = append(layers, testimages.LayerBlob{Tar: tar, Compression: testimages.Gzip})
	}
	if _, err := testimages.WriteOCILayout(filepath.Join(dir, "many"), "x", testimages.ImageSpec{Layers: layers}); err != nil {
		t.Fatal(err)
	}
	// One layer of 100,000 files, streamed into gzip (never a whole tar in memory).
	var gz bytes.Buffer
	h := sha256.New()
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(io.MultiWriter(zw, h))
	for d := 0; d < 100; d++ {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%03d/", d), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1700000000, 0)})
		for f := 0; f < 1000; f++ {
			body := []byte(fmt.Sprintf("%d/%d\n", d, f))
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%03d/f%04d", d, f), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)})
			tw.Write(body)
		}
	}
	tw.Close()
	zw.Close()
	diffID := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
	if _, err := testimages.WriteOCILayout(filepath.Join(dir, "wide"), "x", testimages.ImageSpec{Layers: []testimages.LayerBlob{{
		Blob: gz.Bytes(), DiffID: diffID, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}}}); err != nil {
		t.Fatal(err)
	}
	// The real binary, not this test binary (whose own heap and code would be counted).
	bin := filepath.Join(t.TempDir(), "fmtconv")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building fmtconv: %v\n%s", err, out)
	}
	testenv.RequireTool(t, "time")
	const bound = 256 << 20
	for _, c := range []struct{ src, to string }{
		{"many", "zstd:chunked"}, {"many", "estargz"}, {"wide", "zstd:chunked"}, {"wide", "estargz"}, {"wide", "zstd"},
	} {
		// /usr/bin/time measures the conversion's own peak RSS; rusage seen from this (large) test
		// process would include what the child inherited before exec.
		cmd := exec.Command("/usr/bin/time", "-f", "MAXRSS_KB=%M", bin, "convert", "oci:"+filepath.Join(dir, c.src)+":x", "oci:"+filepath.Join(dir, "out")+":"+c.src+strings.ReplaceAll(c.to, ":", "-"), "--to", c.to, "-q")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s to %s: %v\n%s", c.src, c.to, err, out)
		}
		m := regexp.MustCompile(`MAXRSS_KB=(\d+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no peak RSS in %s", out)
		}
		kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
		rss := kb * 1024
		t.Logf("%s to %s: peak RSS %d MiB", c.src, c.to, rss>>20)
		if rss > bound {
			t.Errorf("%s to %s: peak RSS %d MiB, over the %d MiB bound", c.src, c.to, rss>>20, bound>>20)
		}
		if code, stdout, _ := fmtconv(t, "verify", "oci:"+filepath.Join(dir, "out")+":"+c.src+strings.ReplaceAll(c.to, ":", "-")); code != 0 {
			t.Fatalf("%s to %s does not verify:\n%s", c.src, c.to, stdout)
		}
	}
}

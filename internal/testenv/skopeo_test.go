package testenv

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSkopeoCopyToRegistry copies a hand-made OCI layout into the registry
// with skopeo and reads it back over HTTP.
func TestSkopeoCopyToRegistry(t *testing.T) {
	RequireTool(t, "skopeo")
	reg := StartRegistry(t)
	img := buildTinyImage(t, map[string]string{"etc/hello.txt": "hello\n", "bin/tool": "#!/bin/sh\n"}, "")
	layout := filepath.Join(t.TempDir(), "layout")
	writeOCILayout(t, layout, "v1", img)

	hostCache := filepath.Join(systemBlobInfoCacheDir, "blob-info-cache-v1.boltdb")
	before, beforeErr := os.Stat(hostCache)

	res := runSkopeo(t, []string{"copy", "--dest-tls-verify=false", "oci:" + layout + ":v1", reg.Ref("skopeo/tiny", "v1")})
	if res.err != nil {
		t.Fatalf("skopeo copy: %v\n%s", res.err, res.stderr)
	}
	t.Logf("cache isolation: %s, cache dir %s", res.isolation, res.cacheDir)

	// Same blobs, same manifest: skopeo copies an OCI gzip image unchanged.
	status, body, _ := get(t, reg, http.MethodGet, "/v2/skopeo/tiny/manifests/v1", "application/vnd.oci.image.manifest.v1+json")
	if status != http.StatusOK || !bytes.Equal(body, img.manifest) {
		t.Fatalf("manifest after skopeo copy: status %d\n%s\nwant\n%s", status, body, img.manifest)
	}
	if status, body, _ := get(t, reg, http.MethodGet, "/v2/skopeo/tiny/blobs/"+img.layerDigest, ""); status != http.StatusOK || !bytes.Equal(body, img.layer) {
		t.Fatalf("layer after skopeo copy: status %d", status)
	}
	var manifestPuts int
	for _, q := range reg.RequestLog() {
		if q.Method == http.MethodPut && q.IsManifest() {
			manifestPuts++
		}
	}
	if manifestPuts != 1 {
		t.Errorf("%d manifest PUTs, want 1", manifestPuts)
	}

	// skopeo used the private blob-info cache, not the machine's.
	if _, err := os.Stat(filepath.Join(res.cacheDir, "blob-info-cache-v1.boltdb")); err != nil {
		t.Errorf("private blob-info cache not used: %v", err)
	}
	after, afterErr := os.Stat(hostCache)
	switch {
	case beforeErr != nil && afterErr == nil:
		t.Errorf("skopeo created the machine's blob-info cache %s", hostCache)
	case beforeErr == nil && afterErr == nil && !after.ModTime().Equal(before.ModTime()):
		t.Errorf("skopeo modified the machine's blob-info cache %s", hostCache)
	}

	// Skopeo (the fatal variant) reads it back; the registries.conf marks
	// the registry insecure, so no --src-tls-verify flag is needed.
	out := Skopeo(t, "inspect", "--raw", reg.Ref("skopeo/tiny", "v1"))
	if !bytes.Equal([]byte(out), img.manifest) {
		t.Errorf("skopeo inspect --raw = %s", out)
	}
}

// TestSkopeoCacheIsolationFallbacks runs the other isolation methods and
// checks that the cache lands in the private directory.
func TestSkopeoCacheIsolationFallbacks(t *testing.T) {
	RequireTool(t, "skopeo")
	img := buildTinyImage(t, map[string]string{"a": "a"}, "")
	layout := filepath.Join(t.TempDir(), "layout")
	writeOCILayout(t, layout, "v1", img)
	methods := []string{skopeoCacheRootlessUIDEnv}
	if os.Geteuid() != 0 {
		methods = []string{skopeoCacheXDG}
	}
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			forceSkopeoCacheIsolation = method
			defer func() { forceSkopeoCacheIsolation = "" }()
			res := runSkopeo(t, []string{"copy", "oci:" + layout + ":v1", "dir:" + filepath.Join(t.TempDir(), "out")})
			if res.err != nil {
				t.Fatalf("skopeo copy: %v\n%s", res.err, res.stderr)
			}
			if _, err := os.Stat(filepath.Join(res.cacheDir, "blob-info-cache-v1.boltdb")); err != nil {
				t.Errorf("private blob-info cache not used: %v", err)
			}
		})
	}
}

// TestSkopeoFailureReportsStderr checks RunSkopeo's error path.
func TestSkopeoFailureReportsStderr(t *testing.T) {
	RequireTool(t, "skopeo")
	reg := StartRegistry(t, WithInMemoryStorage())
	_, stderr, err := RunSkopeo(t, "inspect", "--raw", reg.Ref("missing/repo", "v1"))
	if err == nil {
		t.Fatal("inspecting a missing image succeeded")
	}
	if !strings.Contains(stderr, "manifest unknown") {
		t.Errorf("stderr does not explain the failure: %q", stderr)
	}
}

func TestSkopeoRegistriesConf(t *testing.T) {
	conf := skopeoRegistriesConf([]string{"127.0.0.1:1", "127.0.0.1:2"})
	for _, want := range []string{"unqualified-search-registries = []", `location = "127.0.0.1:1"`, `location = "127.0.0.1:2"`, "insecure = true"} {
		if !strings.Contains(conf, want) {
			t.Errorf("registries.conf lacks %q:\n%s", want, conf)
		}
	}
}

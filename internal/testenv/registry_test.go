package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
)

// get fetches path from reg and returns status, body and headers.
func get(t *testing.T, reg *Registry, method, path, accept string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, reg.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := registryClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, body, resp.Header
}

func TestRegistryPushAndFetch(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []RegistryOption
	}{
		{"filesystem", nil},
		{"inmemory", []RegistryOption{WithInMemoryStorage()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := StartRegistry(t, tc.opts...)
			if !strings.HasPrefix(reg.Host, "127.0.0.1:") || reg.URL != "http://"+reg.Host {
				t.Fatalf("Host %q URL %q", reg.Host, reg.URL)
			}
			if got, want := reg.Ref("a/b", "v1"), "docker://"+reg.Host+"/a/b:v1"; got != want {
				t.Errorf("Ref = %q, want %q", got, want)
			}
			if got, want := reg.ImageName("a/b", "sha256:00"), reg.Host+"/a/b@sha256:00"; got != want {
				t.Errorf("ImageName = %q, want %q", got, want)
			}

			status, body, hdr := get(t, reg, http.MethodGet, "/v2/", "")
			if status != http.StatusOK || hdr.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
				t.Fatalf("GET /v2/: %d %q %v", status, body, hdr)
			}

			img := buildTinyImage(t, map[string]string{"hello.txt": "hello\n"}, "")
			pushTinyImage(t, reg, "test/tiny", "v1", img)

			status, body, _ = get(t, reg, http.MethodGet, "/v2/test/tiny/blobs/"+img.layerDigest, "")
			if status != http.StatusOK || !bytes.Equal(body, img.layer) {
				t.Fatalf("GET layer: status %d, %d bytes, want %d", status, len(body), len(img.layer))
			}
			status, body, hdr = get(t, reg, http.MethodGet, "/v2/test/tiny/manifests/v1", "application/vnd.oci.image.manifest.v1+json")
			if status != http.StatusOK || !bytes.Equal(body, img.manifest) {
				t.Fatalf("GET manifest: status %d body %q", status, body)
			}
			if got := hdr.Get("Docker-Content-Digest"); got != img.manifestDigest {
				t.Errorf("manifest digest header %q, want %q", got, img.manifestDigest)
			}
			status, _, _ = get(t, reg, http.MethodGet, "/v2/test/tiny/manifests/"+img.manifestDigest, "application/vnd.oci.image.manifest.v1+json")
			if status != http.StatusOK {
				t.Errorf("GET manifest by digest: %d", status)
			}

			// Deletes are enabled.
			req, _ := http.NewRequest(http.MethodDelete, reg.URL+"/v2/test/tiny/manifests/"+img.manifestDigest, nil)
			resp, err := registryClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("DELETE manifest: %s", resp.Status)
			}
			if status, _, _ := get(t, reg, http.MethodGet, "/v2/test/tiny/manifests/v1", ""); status != http.StatusNotFound {
				t.Errorf("GET deleted manifest: %d, want 404", status)
			}

			if tc.name == "filesystem" {
				if _, err := os.Stat(filepath.Join(reg.StorageDir, "docker", "registry", "v2", "repositories", "test", "tiny")); err != nil {
					t.Errorf("repository not stored under StorageDir: %v", err)
				}
			} else if reg.StorageDir != "" {
				t.Errorf("StorageDir = %q for in-memory storage", reg.StorageDir)
			}
		})
	}
}

func TestRegistryRequestLog(t *testing.T) {
	reg := StartRegistry(t)
	img := buildTinyImage(t, map[string]string{"a": "a"}, "")
	pushTinyImage(t, reg, "log/img", "t", img)
	get(t, reg, http.MethodGet, "/v2/log/img/blobs/"+img.layerDigest, "")

	log := reg.RequestLog()
	var lines []string
	for _, q := range log {
		lines = append(lines, q.String())
	}
	t.Logf("request log:\n%s", strings.Join(lines, "\n"))
	if len(log) != 6 {
		t.Fatalf("got %d requests, want 6 (2 x POST+PUT blob, PUT manifest, GET blob)", len(log))
	}
	if q := log[0]; q.Method != http.MethodPost || q.Path != "/v2/log/img/blobs/uploads/" || q.Status != http.StatusAccepted || !q.IsBlobUpload() {
		t.Errorf("first request %v", q)
	}
	if q := log[1]; q.Method != http.MethodPut || !q.IsBlobUpload() || q.Status != http.StatusCreated ||
		q.BytesRead != int64(len(img.layer)) || !strings.Contains(q.RawQuery, "digest=") {
		t.Errorf("layer upload %v, want PUT ... 201 reading %d bytes", q, len(img.layer))
	}
	if q := log[4]; q.Method != http.MethodPut || !q.IsManifest() || q.Status != http.StatusCreated || q.BytesRead != int64(len(img.manifest)) {
		t.Errorf("manifest PUT %v", q)
	}
	if q := log[5]; q.Method != http.MethodGet || !q.IsBlob() || q.Status != http.StatusOK || q.BytesWritten != int64(len(img.layer)) {
		t.Errorf("blob GET %v, want 200 writing %d bytes", q, len(img.layer))
	}

	reg.ResetRequestLog()
	req, _ := http.NewRequest(http.MethodGet, reg.URL+"/v2/log/img/blobs/"+img.layerDigest, nil)
	req.Header.Set("Range", "bytes=0-9")
	resp, err := registryClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	log = reg.RequestLog()
	if len(log) != 1 || log[0].Status != http.StatusPartialContent || log[0].BytesWritten != 10 || log[0].Range != "bytes=0-9" {
		t.Errorf("range request log %v, want one 206 of 10 bytes", log)
	}
}

// TestRegistryHandlerWrapper interposes a fault injector that refuses
// manifest PUTs, and checks the client sees it and nothing was stored.
func TestRegistryHandlerWrapper(t *testing.T) {
	var calls int
	var mu sync.Mutex
	reg := StartRegistry(t, WithHandlerWrapper(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls++
			mu.Unlock()
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
				http.Error(w, "injected fault", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	img := buildTinyImage(t, map[string]string{"a": "a"}, "")
	reg.PushBlob(t, "fault/img", img.layer)
	reg.PushBlob(t, "fault/img", img.config)
	resp, body, err := reg.do(t, http.MethodPut, "/v2/fault/img/manifests/t", "application/vnd.oci.image.manifest.v1+json", img.manifest)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "injected fault") {
		t.Fatalf("manifest PUT through the wrapper: %s %q", resp.Status, body)
	}
	if status, _, _ := get(t, reg, http.MethodGet, "/v2/fault/img/manifests/t", ""); status != http.StatusNotFound {
		t.Errorf("manifest exists after refused PUT: %d", status)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 6 {
		t.Errorf("wrapper saw %d requests, want 6", calls)
	}
	log := reg.RequestLog()
	if q := log[4]; !q.IsManifest() || q.Method != http.MethodPut || q.Status != http.StatusServiceUnavailable {
		t.Errorf("log records %v for the refused PUT, want 503 (what the client saw)", q)
	}
}

// captureTB records Logf lines (and otherwise behaves as the test).
type captureTB struct {
	testing.TB
	mu    sync.Mutex
	lines []string
}

func (c *captureTB) Logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, fmt.Sprintf(format, args...))
}

// TestRegistryLogging checks that the registry writes nothing to the logrus
// output, routes its errors to t.Log, and leaves other logrus users alone.
func TestRegistryLogging(t *testing.T) {
	capture := &captureTB{TB: t}
	reg := StartRegistry(capture)

	std := logrus.StandardLogger()
	var out bytes.Buffer
	oldOut := std.Out
	std.SetOutput(&out)
	defer std.SetOutput(oldOut)

	for i := 0; i < 3; i++ {
		get(t, reg, http.MethodGet, "/v2/", "")
	}
	if status, _, _ := get(t, reg, http.MethodGet, "/v2/nope/manifests/latest", ""); status != http.StatusNotFound {
		t.Fatalf("GET unknown manifest: %d", status)
	}
	// A manifest whose blobs were never pushed: 400 MANIFEST_BLOB_UNKNOWN.
	img := buildTinyImage(t, map[string]string{"a": "a"}, "")
	resp, body, err := reg.do(t, http.MethodPut, "/v2/logs/img/manifests/t", "application/vnd.oci.image.manifest.v1+json", img.manifest)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT manifest without blobs: %s %s", resp.Status, body)
	}
	if out.Len() != 0 {
		t.Errorf("registry wrote to the logrus output:\n%s", out.String())
	}
	capture.mu.Lock()
	lines := strings.Join(capture.lines, "\n")
	capture.mu.Unlock()
	if !strings.Contains(lines, "blob unknown") || !strings.Contains(lines, "http.response.status=400") {
		t.Errorf("registry error not routed to t.Log; got:\n%s", lines)
	}
	if strings.Contains(lines, "status=404") {
		t.Errorf("routine 404 logged:\n%s", lines)
	}
	logrus.WithField("component", "other").Warn("not from the registry")
	if !strings.Contains(out.String(), "not from the registry") {
		t.Errorf("other logrus entries are suppressed: %q", out.String())
	}
}

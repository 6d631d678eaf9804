package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // registers the "filesystem" storage driver
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"   // registers the "inmemory" storage driver
)

// Registry is a real OCI distribution registry (distribution/v3's own
// handlers, in-process) serving plain HTTP on a random loopback port. It is
// started by StartRegistry and shut down in t.Cleanup.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of an image reference.
	Host string
	// URL is "http://127.0.0.1:PORT", the base URL of the HTTP API.
	URL string
	// StorageDir is the filesystem driver's root directory (inside
	// t.TempDir()), or "" when the registry stores everything in memory.
	// Tests may tamper with stored blobs there.
	StorageDir string

	tb     testing.TB
	app    *handlers.App
	server *http.Server

	mu       sync.Mutex
	requests []RegistryRequest
	closed   bool
}

// RegistryRequest is one HTTP request served by a Registry, as the client
// saw it: after any handler wrapper (WithHandlerWrapper) had its say.
type RegistryRequest struct {
	Method   string // "GET", "HEAD", "PUT", ...
	Path     string // URL path, e.g. "/v2/repo/blobs/sha256:..."
	RawQuery string // URL query without "?", e.g. "digest=sha256:..."
	Range    string // the Range request header, "" if none
	Status   int    // response status code (200 if the handler never set one)
	// BytesRead is the number of request body bytes the handler consumed.
	BytesRead int64
	// BytesWritten is the number of response body bytes written.
	BytesWritten int64
}

// String formats the request as "PUT /v2/r/manifests/t -> 201 (read 512 B, wrote 0 B)".
func (q RegistryRequest) String() string {
	target := q.Path
	if q.RawQuery != "" {
		target += "?" + q.RawQuery
	}
	s := fmt.Sprintf("%s %s -> %d (read %d B, wrote %d B)", q.Method, target, q.Status, q.BytesRead, q.BytesWritten)
	if q.Range != "" {
		s += " Range: " + q.Range
	}
	return s
}

// IsManifest reports whether the request addressed a manifest (/v2/<name>/manifests/<reference>).
func (q RegistryRequest) IsManifest() bool { return strings.Contains(q.Path, "/manifests/") }

// IsBlob reports whether the request addressed a stored blob (/v2/<name>/blobs/<digest>).
func (q RegistryRequest) IsBlob() bool {
	return strings.Contains(q.Path, "/blobs/") && !strings.Contains(q.Path, "/blobs/uploads/")
}

// IsBlobUpload reports whether the request was part of a blob upload (/v2/<name>/blobs/uploads/...).
func (q RegistryRequest) IsBlobUpload() bool { return strings.Contains(q.Path, "/blobs/uploads/") }

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	inMemory bool
	wrappers []func(http.Handler) http.Handler
}

// WithInMemoryStorage keeps the registry's content in memory instead of in a
// filesystem directory under t.TempDir().
func WithInMemoryStorage() RegistryOption {
	return func(c *registryConfig) { c.inMemory = true }
}

// WithHandlerWrapper interposes wrap between the network and the registry
// handler, e.g. to inject faults (fail, truncate or delay chosen requests).
// Several wrappers nest in the order given: the last one is the outermost.
// The request log (RequestLog) records what the client saw, i.e. it sits
// outside every wrapper.
func WithHandlerWrapper(wrap func(http.Handler) http.Handler) RegistryOption {
	return func(c *registryConfig) { c.wrappers = append(c.wrappers, wrap) }
}

// StartRegistry starts a registry on 127.0.0.1 with a random port: plain
// HTTP, no authentication, deletes enabled, storage in t.TempDir() (or in
// memory with WithInMemoryStorage). The registry's log lines never reach
// stdout/stderr: warnings and errors go to t.Log, the rest is discarded. It
// is shut down in t.Cleanup.
func StartRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	var cfg registryConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	installRegistryLogFilter()

	r := &Registry{tb: t}
	storage := configuration.Storage{
		"delete": configuration.Parameters{"enabled": true},
		// No background purger goroutine (it would only log).
		"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
	}
	if cfg.inMemory {
		storage["inmemory"] = configuration.Parameters{}
	} else {
		r.StorageDir = t.TempDir()
		storage["filesystem"] = configuration.Parameters{"rootdirectory": r.StorageDir}
	}
	config := &configuration.Configuration{Storage: storage}
	config.Log.Level = "warn"
	config.HTTP.Secret = randomSecret(t)

	app, err := newRegistryApp(config)
	if err != nil {
		t.Fatalf("starting registry: %v", err)
	}
	r.app = app

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = app.Shutdown()
		t.Fatalf("starting registry: listening on loopback: %v", err)
	}
	r.Host = ln.Addr().String()
	r.URL = "http://" + r.Host

	var handler http.Handler = app
	for _, wrap := range cfg.wrappers {
		handler = wrap(handler)
	}
	r.server = &http.Server{
		Handler:           r.recordRequests(handler),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(logWriter{r}, "", 0),
	}
	registerLiveRegistry(r)
	go func() {
		if err := r.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.logf("registry %s: serve: %v", r.Host, err)
		}
	}()

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.server.Shutdown(ctx); err != nil {
			_ = r.server.Close()
		}
		_ = r.app.Shutdown()
		unregisterLiveRegistry(r)
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
	})
	return r
}

// newRegistryApp builds the registry handler, turning NewApp's panics on bad
// configuration into errors.
func newRegistryApp(config *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("distribution handlers.NewApp: %v", p)
		}
	}()
	return handlers.NewApp(context.Background(), config), nil
}

// randomSecret returns a fresh HTTP secret (upload state signing key), so
// that the registry does not warn about generating one.
func randomSecret(t testing.TB) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("generating registry secret: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// Ref returns the skopeo / containers-image reference of repo:tag in this
// registry: "docker://127.0.0.1:PORT/repo:tag". A tag of the form
// "sha256:..." is a digest and gives "docker://127.0.0.1:PORT/repo@sha256:...".
func (r *Registry) Ref(repo, tag string) string {
	return "docker://" + r.ImageName(repo, tag)
}

// ImageName returns repo:tag in this registry without a transport prefix,
// "127.0.0.1:PORT/repo:tag", as ctr and podman expect it. A tag of the form
// "sha256:..." is a digest and gives "127.0.0.1:PORT/repo@sha256:...".
func (r *Registry) ImageName(repo, tag string) string {
	sep := ":"
	if strings.HasPrefix(tag, "sha256:") {
		sep = "@"
	}
	return r.Host + "/" + repo + sep + tag
}

// RequestLog returns a copy of the requests served so far, in the order
// they completed.
func (r *Registry) RequestLog() []RegistryRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RegistryRequest(nil), r.requests...)
}

// ResetRequestLog forgets the requests served so far, e.g. after a test has
// seeded the registry and before it runs the operation under test.
func (r *Registry) ResetRequestLog() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

// PushBlob uploads data to repo as one blob with a monolithic upload (POST
// /v2/<repo>/blobs/uploads/, then PUT <location>?digest=...) using plain
// net/http, and returns its digest "sha256:...". It fails the test on error.
func (r *Registry) PushBlob(t testing.TB, repo string, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	resp, body, err := r.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatalf("pushing blob %s to %s: starting upload: %v", digest, repo, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("pushing blob %s to %s: starting upload: status %s: %s", digest, repo, resp.Status, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("pushing blob %s to %s: bad upload location %q: %v", digest, repo, resp.Header.Get("Location"), err)
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	resp, body, err = r.do(t, http.MethodPut, loc.String(), "application/octet-stream", data)
	if err != nil {
		t.Fatalf("pushing blob %s to %s: completing upload: %v", digest, repo, err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing blob %s to %s: completing upload: status %s: %s", digest, repo, resp.Status, body)
	}
	return digest
}

// PushManifest stores manifest in repo under reference (a tag, or the
// manifest's digest) with the given Content-Type media type, using plain
// net/http, and returns the manifest digest the registry reports. It fails
// the test on error.
func (r *Registry) PushManifest(t testing.TB, repo, reference, mediaType string, manifest []byte) string {
	t.Helper()
	resp, body, err := r.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+reference, mediaType, manifest)
	if err != nil {
		t.Fatalf("pushing manifest %s:%s: %v", repo, reference, err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing manifest %s:%s: status %s: %s", repo, reference, resp.Status, body)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// registryClient talks to loopback registries; it never uses a proxy.
var registryClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableCompression: true},
	Timeout:   2 * time.Minute,
}

// do sends one request to the registry; target is a path or a URL relative
// to r.URL. It returns the response (body consumed) and the body.
func (r *Registry) do(t testing.TB, method, target, contentType string, body []byte) (*http.Response, []byte, error) {
	base, err := url.Parse(r.URL + "/")
	if err != nil {
		return nil, nil, fmt.Errorf("parsing registry URL: %w", err)
	}
	u, err := base.Parse(target)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing request target %q: %w", target, err)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("building %s %s: %w", method, u, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := registryClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, respBody, fmt.Errorf("%s %s: reading response: %w", method, u, err)
	}
	return resp, respBody, nil
}

// logf writes to the owning test's log while the registry is running; log
// lines arriving after shutdown are dropped (t.Log would panic then).
func (r *Registry) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.tb.Logf(format, args...)
	}
}

// logWriter adapts Registry.logf for http.Server.ErrorLog.
type logWriter struct{ r *Registry }

func (w logWriter) Write(p []byte) (int, error) {
	w.r.logf("registry %s: http server: %s", w.r.Host, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// recordRequests wraps next so that every request lands in the request log.
func (r *Registry) recordRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body := &countingReader{ReadCloser: req.Body}
		req.Body = body
		rw := &recordingWriter{ResponseWriter: w}
		defer func() {
			status := rw.status
			if status == 0 {
				status = http.StatusOK
			}
			r.mu.Lock()
			r.requests = append(r.requests, RegistryRequest{
				Method:       req.Method,
				Path:         req.URL.Path,
				RawQuery:     req.URL.RawQuery,
				Range:        req.Header.Get("Range"),
				Status:       status,
				BytesRead:    body.n,
				BytesWritten: rw.written,
			})
			r.mu.Unlock()
		}()
		next.ServeHTTP(rw, req)
	})
}

// countingReader counts the request body bytes a handler reads.
type countingReader struct {
	io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// recordingWriter records the status code and the body bytes written.
type recordingWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// Flush passes flushes through (streaming responses).
func (w *recordingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// liveRegistries tracks the running registries by Host, for log routing and
// for Skopeo's registries.conf.
var liveRegistries = struct {
	sync.Mutex
	byHost map[string]*Registry
}{byHost: map[string]*Registry{}}

func registerLiveRegistry(r *Registry) {
	liveRegistries.Lock()
	defer liveRegistries.Unlock()
	liveRegistries.byHost[r.Host] = r
}

func unregisterLiveRegistry(r *Registry) {
	liveRegistries.Lock()
	defer liveRegistries.Unlock()
	if liveRegistries.byHost[r.Host] == r {
		delete(liveRegistries.byHost, r.Host)
	}
}

// liveRegistryHosts returns the Host of every running registry, sorted.
func liveRegistryHosts() []string {
	liveRegistries.Lock()
	defer liveRegistries.Unlock()
	hosts := make([]string, 0, len(liveRegistries.byHost))
	for h := range liveRegistries.byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	return hosts
}

// liveRegistry returns the running registry serving host, or nil.
func liveRegistry(host string) *Registry {
	liveRegistries.Lock()
	defer liveRegistries.Unlock()
	return liveRegistries.byHost[host]
}

package convert_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/convert"
	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/layerformat"
)

// faults is a fault-injecting wrapper around the real registry handler.
type faults struct {
	mu sync.Mutex
	// fail5xx answers this many matching requests with 503 before letting them through.
	fail5xx map[string]int
	// cutAfter cuts the connection of this many blob GETs after 1 KiB of body.
	cutGets atomic.Int32
	// slow delays every response by this much.
	slow time.Duration
	// down makes every request fail with 502 (a registry restarting).
	down atomic.Bool
	// failPings answers this many version checks (GET /v2/, a client's first contact) with 502.
	failPings atomic.Int32
}

func (f *faults) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.slow > 0 {
			time.Sleep(f.slow)
		}
		if f.down.Load() || r.URL.Path == "/v2/" && f.failPings.Add(-1) >= 0 {
			http.Error(w, "restarting", http.StatusBadGateway)
			return
		}
		f.mu.Lock()
		for k, n := range f.fail5xx {
			if n > 0 && strings.Contains(r.Method+" "+r.URL.Path, k) {
				f.fail5xx[k] = n - 1
				f.mu.Unlock()
				http.Error(w, "injected", http.StatusServiceUnavailable)
				return
			}
		}
		f.mu.Unlock()
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") && f.cutGets.Load() > 0 {
			f.cutGets.Add(-1)
			h.ServeHTTP(&cuttingWriter{ResponseWriter: w, left: 1024}, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// cuttingWriter closes the underlying connection after `left` body bytes.
type cuttingWriter struct {
	http.ResponseWriter
	left int
	cut  bool
}

func (c *cuttingWriter) Write(p []byte) (int, error) {
	if c.cut {
		return 0, net.ErrClosed
	}
	if len(p) > c.left {
		n, _ := c.ResponseWriter.Write(p[:c.left])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		c.cut = true
		if hj, ok := c.ResponseWriter.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return n, net.ErrClosed
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

func (c *cuttingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// TestRegistryFaults: 5xx answers, connections cut mid-blob, slow answers and a registry that is
// down for a while are retried; no manifest is pushed before all its blobs; the result verifies.
func TestRegistryFaults(t *testing.T) {
	f := &faults{fail5xx: map[string]int{}}
	reg := testenv.StartRegistry(t, testenv.WithHandlerWrapper(f.wrap))
	img := generated(t)["index"]
	push := opts(layerformat.Gzip)
	push.Dst = plainHTTP()
	mustConvert(t, img.Ref, reg.Ref("faults/src", "1"), push)

	o := opts(layerformat.ZstdChunked)
	o.Src, o.Dst = plainHTTP(), plainHTTP()
	o.Retry = convert.Retry{Times: 5, Delay: 50 * time.Millisecond}

	f.mu.Lock()
	f.fail5xx["PUT /v2/faults/dst/blobs/uploads"] = 2 // two blob uploads fail
	f.fail5xx["PUT /v2/faults/dst/manifests"] = 1     // and one manifest push
	f.mu.Unlock()
	f.cutGets.Store(2) // two source blob downloads are cut mid-stream
	reg.ResetRequestLog()
	rep, err := convert.Convert(context.Background(), reg.Ref("faults/src", "1"), reg.Ref("faults/dst", "1"), o)
	if err != nil {
		t.Fatalf("with faults: %v", err)
	}
	// Every injected fault happened: the three 5xx answers were retried by fmtconv; the cut
	// downloads were resumed (containers/image re-requests the rest with a Range header) or retried.
	if len(rep.Retries) < 3 || f.cutGets.Load() != 0 {
		t.Fatalf("faults not all exercised: retries %v, cuts left %d", rep.Retries, f.cutGets.Load())
	}
	f.mu.Lock()
	for k, n := range f.fail5xx {
		if n != 0 {
			t.Fatalf("fault %q was not exercised", k)
		}
	}
	f.mu.Unlock()
	assertBlobsBeforeManifests(t, reg.RequestLog())
	mustVerifyOpts(t, reg.Ref("faults/dst", "1"))

	// Slow answers are only slow.
	f.slow = 20 * time.Millisecond
	mustConvert(t, reg.Ref("faults/src", "1"), reg.Ref("faults/slow", "1"), o)
	f.slow = 0

	// A registry that is down for a while (restarting) mid-run: the run waits it out.
	go func() {
		time.Sleep(30 * time.Millisecond)
		f.down.Store(true)
		time.Sleep(300 * time.Millisecond)
		f.down.Store(false)
	}()
	o2 := o
	o2.Force = true
	o2.Level = 1 // new blobs, so there is something to upload while it is down
	if _, err := convert.Convert(context.Background(), reg.Ref("faults/src", "1"), reg.Ref("faults/restart", "1"), o2); err != nil {
		t.Fatalf("registry restart mid-run: %v", err)
	}
	mustVerifyOpts(t, reg.Ref("faults/restart", "1"))
}

// TestRerunReusesPushedBlobs: a run that fails after pushing some blobs pushes no manifest; the
// rerun uploads none of the blobs already there.
func TestRerunReusesPushedBlobs(t *testing.T) {
	f := &faults{fail5xx: map[string]int{}}
	reg := testenv.StartRegistry(t, testenv.WithHandlerWrapper(f.wrap))
	img := generated(t)["multi-format"]
	o := opts(layerformat.Zstd)
	o.Dst = plainHTTP()
	o.Jobs = 1
	o.Retry = convert.Retry{Times: 0, Delay: time.Millisecond}
	f.fail5xx["PUT /v2/rerun/app/manifests"] = 1000 // the manifest push always fails
	reg.ResetRequestLog()
	if _, err := convert.Convert(context.Background(), img.Ref, reg.Ref("rerun/app", "1"), o); err == nil {
		t.Fatal("the run should have failed")
	}
	uploaded := map[string]bool{}
	for _, q := range reg.RequestLog() {
		if q.IsManifest() && q.Method == http.MethodPut && q.Status < 300 {
			t.Fatalf("a manifest was stored by the failed run: %s", q)
		}
		if q.IsBlobUpload() && q.Method == http.MethodPut && q.Status < 300 {
			uploaded[q.RawQuery] = true
		}
	}
	if len(uploaded) == 0 {
		t.Fatal("the failed run uploaded nothing; the test proves nothing")
	}
	f.mu.Lock()
	f.fail5xx = map[string]int{}
	f.mu.Unlock()
	reg.ResetRequestLog()
	mustConvert(t, img.Ref, reg.Ref("rerun/app", "1"), o)
	for _, q := range reg.RequestLog() {
		if q.IsBlobUpload() && q.Method == http.MethodPut {
			t.Fatalf("the rerun uploaded a blob again: %s", q)
		}
	}
	mustVerifyOpts(t, reg.Ref("rerun/app", "1"))
}

// TestRegistryDownAtFirstContact: containers/image pings a registry once per client and keeps a
// failed answer; a destination registry that is restarting when fmtconv first contacts it must
// not fail every retry after it is back.
func TestRegistryDownAtFirstContact(t *testing.T) {
	f := &faults{fail5xx: map[string]int{}}
	reg := testenv.StartRegistry(t, testenv.WithHandlerWrapper(f.wrap))
	o := opts(layerformat.Zstd)
	o.Dst = plainHTTP()
	o.Retry = convert.Retry{Times: 3, Delay: 10 * time.Millisecond}
	f.failPings.Store(2) // both schemes of the first ping (https, then http)
	rep, err := convert.Convert(context.Background(), generated(t)["gzip-single"].Ref, reg.Ref("down/first", "1"), o)
	if err != nil {
		t.Fatalf("registry down at the first contact: %v", err)
	}
	if f.failPings.Load() > 0 || len(rep.Retries) == 0 {
		t.Fatalf("the failed ping was not exercised: %d left, retries %v", f.failPings.Load(), rep.Retries)
	}
	mustVerifyOpts(t, reg.Ref("down/first", "1"))

	// The same for a source registry: opening it is retried.
	o.Src = plainHTTP()
	f.failPings.Store(2)
	if rep, err = convert.Convert(context.Background(), reg.Ref("down/first", "1"), reg.Ref("down/second", "1"), o); err != nil {
		t.Fatalf("source registry down at the first contact: %v", err)
	}
	if f.failPings.Load() > 0 || !strings.Contains(strings.Join(rep.Retries, "\n"), "opening source") {
		t.Fatalf("the failed source ping was not exercised: %d left, retries %v", f.failPings.Load(), rep.Retries)
	}
}

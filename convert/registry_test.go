package convert_test

import (
	"fmt"
	"net/http"
	"os/exec"
	"testing"

	"github.com/fmtconv/fmtconv/convert"
	"github.com/fmtconv/fmtconv/internal/testenv"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/transport"
)

func plainHTTP() transport.Options {
	f := false
	return transport.Options{TLSVerify: &f}
}

// TestRegistryToRegistry pushes test images to a real distribution registry on loopback, converts
// docker:// to docker:// for each target, pulls each result back through oci: and compares the
// uncompressed layer digests with the original diff_ids. Peers read the results too: skopeo copies
// each to an oci: layout (checked by fmtconv verify) and containerd pulls and unpacks it, which
// verifies every diff_id itself.
func TestRegistryToRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t)
	imgs := generated(t)
	var ctrd *testenv.Containerd
	if have("ctr", "containerd") || testenv.InCI() {
		testenv.RequireTool(t, "containerd", "ctr")
		ctrd = testenv.StartContainerd(t)
	}
	for _, name := range []string{"gzip-single", "index", "multi-format"} {
		img := imgs[name]
		orig := mustVerify(t, img.Ref)
		// Push the image as it is: gzip layers stay, the others become gzip (diff_ids unchanged).
		src := reg.Ref("src/"+name, "1")
		push := opts(layerformat.Gzip)
		push.Dst = plainHTTP()
		mustConvert(t, img.Ref, src, push)
		for _, to := range lossless {
			t.Run(name+"/"+tagOf(to), func(t *testing.T) {
				dst := reg.Ref("dst/"+name, tagOf(to))
				o := opts(to)
				o.Src, o.Dst = plainHTTP(), plainHTTP()
				reg.ResetRequestLog()
				mustConvert(t, src, dst, o)
				assertBlobsBeforeManifests(t, reg.RequestLog())

				back := fmt.Sprintf("oci:%s:x", t.TempDir())
				pull := opts(to)
				pull.Src = plainHTTP()
				rep := mustConvert(t, dst, back, pull)
				for _, l := range rep.Layers {
					if l.Action != "reused" {
						t.Errorf("pulling back: layer %d was %s, not reused", l.Index, l.Action)
					}
				}
				got := mustVerify(t, back)
				if fmt.Sprint(got.uncomp) != fmt.Sprint(orig.diffIDs) || fmt.Sprint(got.configs) != fmt.Sprint(orig.configs) {
					t.Fatalf("pulled back: layers %v configs %v, want %v %v", got.uncomp, got.configs, orig.diffIDs, orig.configs)
				}

				// Peers.
				if have("skopeo") || testenv.InCI() {
					testenv.RequireTool(t, "skopeo")
					layout := t.TempDir()
					testenv.Skopeo(t, "copy", "--all", "--src-tls-verify=false", dst, "oci:"+layout+":x")
					if s := mustVerify(t, "oci:"+layout+":x"); fmt.Sprint(s.uncomp) != fmt.Sprint(orig.diffIDs) {
						t.Fatalf("skopeo's copy: layers %v, want %v", s.uncomp, orig.diffIDs)
					}
				} else {
					testenv.RequireTool(t, "skopeo") // skips loudly
				}
				if ctrd != nil {
					if err := ctrd.PullAndUnpack(t, reg.ImageName("dst/"+name, tagOf(to))); err != nil {
						t.Fatalf("containerd: %v", err)
					}
				}
			})
		}
	}
}

// assertBlobsBeforeManifests checks in a registry's request log that no manifest was written while
// a blob upload of the same run was still to come.
func assertBlobsBeforeManifests(t *testing.T, log []testenv.RegistryRequest) {
	t.Helper()
	lastUpload, firstManifest := -1, -1
	for i, q := range log {
		if q.IsBlobUpload() && q.Method == http.MethodPut {
			lastUpload = i
		}
		if q.IsManifest() && q.Method == http.MethodPut && firstManifest < 0 {
			firstManifest = i
		}
	}
	if firstManifest >= 0 && lastUpload > firstManifest {
		t.Fatalf("a manifest was pushed (request %d: %s) before the last blob upload (request %d: %s)",
			firstManifest, log[firstManifest], lastUpload, log[lastUpload])
	}
}

var _ = convert.Options{}

// have reports whether all the named tools are installed.
func have(names ...string) bool {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return false
		}
	}
	return true
}

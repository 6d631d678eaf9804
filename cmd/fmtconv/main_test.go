package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/verify"
	"github.com/urfave/cli/v2"
)

func fmtconv(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"fmtconv"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestPermuteArgs(t *testing.T) {
	flags := convertCommand().Flags
	for _, tc := range []struct{ in, want string }{
		{"SRC DST --to zstd", "--to zstd -- SRC DST"},
		{"--to zstd SRC DST", "--to zstd -- SRC DST"},
		{"SRC --to=zstd DST -q", "--to=zstd -q -- SRC DST"},
		{"SRC DST --platform linux/amd64 --platform linux/arm64 --force", "--platform linux/amd64 --platform linux/arm64 --force -- SRC DST"},
		{"SRC -- --odd-name", "-- SRC --odd-name"},
	} {
		if got := strings.Join(permuteArgs(flags, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("permuteArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Every command's flags are permuted, not only convert's.
	app := newApp(nil, nil)
	got := permuteCommandLine(app, strings.Fields("fmtconv verify IMG --json"))
	if strings.Join(got, " ") != "fmtconv verify --json -- IMG" {
		t.Errorf("verify: %q", got)
	}
	var _ cli.Flag = flags[0]
}

func TestCLIEndToEnd(t *testing.T) {
	dir := t.TempDir()
	imgs, err := testimages.Generate(filepath.Join(dir, "in"))
	if err != nil {
		t.Fatal(err)
	}
	src := imgs[0].Ref // gzip-single
	for _, i := range imgs {
		if i.Name == "gzip-single" {
			src = i.Ref
		}
	}
	dst := "oci:" + filepath.Join(dir, "out") + ":z"
	digestFile := filepath.Join(dir, "digest")
	code, stdout, stderr := fmtconv(t, "convert", src, dst, "--to", "zstd", "--report", "-", "--digestfile", digestFile, "-q")
	if code != 0 {
		t.Fatalf("convert exit %d: %s", code, stderr)
	}
	var rep struct {
		Digest string `json:"digest"`
		Layers []struct {
			Action string                  `json:"action"`
			Target struct{ Format string } `json:"target"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--report - is not JSON: %v\n%s", err, stdout)
	}
	if len(rep.Layers) != 1 || rep.Layers[0].Target.Format != "zstd" || rep.Layers[0].Action != "converted" {
		t.Fatalf("report layers: %+v", rep.Layers)
	}
	if b, _ := os.ReadFile(digestFile); string(b) != rep.Digest || rep.Digest == "" {
		t.Fatalf("--digestfile %q, report digest %q", b, rep.Digest)
	}

	code, stdout, _ = fmtconv(t, "verify", dst, "--json")
	var res verify.Result
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || !res.Valid {
		t.Fatalf("verify exit %d: %s", code, stdout)
	}
	// Without --report, convert ends with a one-line summary, in the singular for one.
	dst2 := "oci:" + filepath.Join(dir, "out2") + ":z"
	code, stdout, stderr = fmtconv(t, "convert", src, dst2, "--to", "zstd")
	if summary := "(zstd level 3, 1 manifest, 1 layer, "; code != 0 || !strings.Contains(stdout+stderr, "wrote "+dst2+" sha256:") || !strings.Contains(stdout+stderr, summary) {
		t.Fatalf("convert exit %d, want a summary with %q:\n%s%s", code, summary, stdout, stderr)
	}
	// The text summary counts errors and warnings apart, in the singular for one.
	code, stdout, _ = fmtconv(t, "verify", dst)
	warnings := 0
	for _, f := range res.Findings {
		if f.Severity == "warning" {
			warnings++
		}
	}
	if want := fmt.Sprintf("%s: valid (1 manifest, 1 layer; 0 errors, %s)\n", dst, count(warnings, "warning")); code != 0 || !strings.HasSuffix(stdout, want) || len(res.Manifests[0].Layers) != 1 || warnings < 2 {
		t.Fatalf("verify text exit %d: %q, want it to end %q", code, stdout, want)
	}
	code, stdout, _ = fmtconv(t, "inspect", dst)
	if code != 0 || !strings.Contains(stdout, "zstd") {
		t.Fatalf("inspect exit %d: %s", code, stdout)
	}

	// A refusal exits 3 and names its code; a usage error exits 2.
	code, _, stderr = fmtconv(t, "convert", src, "docker-archive:"+filepath.Join(dir, "a.tar"), "--to", "zstd:chunked", "-q")
	if code != exitRefused || !strings.Contains(stderr, "DEST_SCHEMA2_NO_ZSTD") {
		t.Fatalf("refusal: exit %d, %s", code, stderr)
	}
	if code, _, _ = fmtconv(t, "convert", src, dst, "--to", "lz4"); code != exitFailure {
		t.Fatalf("bad --to: exit %d", code)
	}
	if code, _, _ = fmtconv(t, "convert", src, "--to", "zstd"); code != exitFailure {
		t.Fatalf("missing DST: exit %d", code)
	}
	if code, _, _ = fmtconv(t, "verify", "oci:"+filepath.Join(dir, "nonexistent")+":x"); code != exitFailure {
		t.Fatalf("verify of a missing image: exit %d", code)
	}

	// Corrupt the layer blob: verify exits 1.
	blobs, _ := filepath.Glob(filepath.Join(dir, "out", "blobs", "sha256", "*"))
	for _, b := range blobs {
		data, _ := os.ReadFile(b)
		if len(data) > 100000 { // the layer
			data[len(data)/2] ^= 0xff
			os.WriteFile(b, data, 0o644)
		}
	}
	if code, stdout, _ = fmtconv(t, "verify", dst); code != exitInvalid || !strings.Contains(stdout, "blob.digest") {
		t.Fatalf("verify of a corrupt image: exit %d: %s", code, stdout)
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, stdout, _ := fmtconv(t, "--version")
	if code != 0 || !strings.Contains(stdout, version) {
		t.Fatalf("--version: %d %q", code, stdout)
	}
	code, stdout, _ = fmtconv(t, "convert", "--help")
	if code != 0 || !strings.Contains(stdout, "fmtconv convert oci:./app:1.0 oci:./out:1.0 --to zstd:chunked") {
		t.Fatalf("convert --help lacks examples: %d %q", code, stdout)
	}
}

// TestDryRunJSON: --dry-run with --report - prints the plan as JSON and writes nothing.
func TestDryRunJSON(t *testing.T) {
	dir := t.TempDir()
	imgs, err := testimages.Generate(filepath.Join(dir, "in"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := fmtconv(t, "convert", imgs[0].Ref, "oci:"+out+":x", "--to", "zstd:chunked", "--dry-run", "--report", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		DryRun bool `json:"dryRun"`
		Plan   struct {
			Manifests []struct {
				Layers []struct {
					Action string `json:"action"`
					Reason string `json:"reason"`
				} `json:"layers"`
			} `json:"manifests"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || !rep.DryRun || len(rep.Plan.Manifests) == 0 || len(rep.Plan.Manifests[0].Layers) == 0 {
		t.Fatalf("dry-run JSON: %v\n%s", err, stdout)
	}
	if l := rep.Plan.Manifests[0].Layers[0]; l.Action != "convert" || l.Reason == "" {
		t.Fatalf("layer plan %+v", l)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("--dry-run wrote %s", out)
	}
	code, _, stderr = fmtconv(t, "convert", imgs[0].Ref, "oci:"+out+":x", "--to", "estargz", "--format", "v2s2", "-q")
	if code != exitRefused || !strings.Contains(stderr, "DEST_SCHEMA2_NO_ANNOTATIONS") {
		t.Fatalf("--to estargz --format v2s2: exit %d %s", code, stderr)
	}
}

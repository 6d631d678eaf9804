// Command bench measures fmtconv against its peers and the codec floors on
// one realistic layer and prints one Markdown table, the machine, the corpus,
// output checks and a PASS/FAIL verdict per target. `make bench` builds
// bin/fmtconv and runs it:
//
//	go run ./internal/bench [flags]
//
// The corpus is a deterministic tar of $(go env GOROOT) without bin/
// (lexical order, fixed mtimes, uid/gid 0, normalised modes; about 230 MB
// for Go 1.26), gzipped with `gzip -6 -n` into a one-layer OCI layout with
// the right diff_id. It is built once (no network) and cached in the work
// directory, keyed by Go version, GOROOT and generator version.
//
// Cases, one table row each: the codec floors `gzip -dc LAYER | zstd -3 -T2
// > /dev/null` and `gzip -dc LAYER | sha256sum`; fmtconv convert oci: to
// oci: --to zstd:chunked and zstd (level 3), estargz (levels 6 and 9) and
// nydus (its defaults: zstd chunks of 1 MiB), and fmtconv verify; the
// peers compressor.ZstdCompressor level 3 (go.podman.io/storage, on the
// gunzipped stream), estargz.Build levels 6 and 9 (4 MiB chunks, parallelism
// 2), skopeo copy --dest-compress-format zstd:chunked and zstd at level 3
// (private blob-info cache) and ctr-remote image convert --estargz level 6
// (when a private containerd starts). After the table come the target
// verdicts and the checks, one PASS, FAIL or n/a line for every target of
// issue 8 (a case left out by -only, or the 2 GiB layer without -big, is
// n/a) and a count of them: zstd:chunked ≥ 2.5× compressor.ZstdCompressor and
// ≤ 1.3× the floor, byte-identical to the compressor's; eStargz L6 ≥ 4×
// estargz.Build, accepted by the upstream reader and within 3% of its size;
// zstd ≤ 1.3× and Nydus ≤ 1.5× the zstd floor; verify ≤ 1.3× its floor;
// identical outputs under GOMAXPROCS=1 and 2 (every conversion, Nydus
// included); peak RSS ≤ 256 MiB and peak temporary disk ≤ one layer.
//
// Every case runs as its own process, so its peak RSS is the child's
// ru_maxrss (for a shell pipeline: its largest process). Library peers
// without a command line here (compressor.ZstdCompressor, estargz.Build) run
// in a child of this binary started with a hidden first argument. Cases
// alternate round-robin for -reps repetitions; the table shows the median
// wall time, the largest peak RSS and the last output. Case outputs and
// temporary directories live under <work>/runs and are removed at the end.
//
// Flags:
//
//	-work DIR      work directory (default $TMPDIR/fmtconv-bench)
//	-reps N        timed repetitions of every case (default 5)
//	-fmtconv PATH  the fmtconv binary (default bin/fmtconv)
//	-quick         small corpus (GOROOT's src/archive, src/crypto, src/net) for smoke tests
//	-main          measure every case on the GOROOT (or -quick) corpus (default true;
//	               -main=false -big measures only the large layer)
//	-big           also build a 2 GiB layer (pseudo-random words, streamed, never held in
//	               memory) and report fmtconv's peak RSS converting it to zstd:chunked, zstd
//	               and nydus (with the zstd floor and compressor.ZstdCompressor for comparison)
//	-big-size N    size of the -big tar in bytes (default 2 GiB)
//	-containerd    start a private containerd for the ctr-remote eStargz peer (default true)
//	-only REGEXP   run only the cases whose names match REGEXP (and the floors)
//	-regen         rebuild the cached corpora
//	-keep          keep <work>/runs (the last repetition's outputs)
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	roleFloor   = "floor"
	roleFmtconv = "fmtconv"
	rolePeer    = "peer"

	mib          = 1 << 20
	rssTargetMiB = 256
)

type options struct {
	work, fmtconv                       string
	reps                                int
	main, quick, big, ctrd, regen, keep bool
	bigSize                             int64
	self, goroot, goversion, runs       string
	gzipCmd                             []string
	bigGzipCmd                          []string
	loadStart                           string // /proc/loadavg when the bench started
	only                                string // -only
}

func main() {
	if runChild(os.Args[1:]) {
		return
	}
	var o options
	flag.StringVar(&o.work, "work", filepath.Join(os.TempDir(), "fmtconv-bench"), "work directory")
	flag.IntVar(&o.reps, "reps", 5, "timed repetitions of every case")
	flag.StringVar(&o.fmtconv, "fmtconv", "bin/fmtconv", "fmtconv binary")
	flag.BoolVar(&o.quick, "quick", false, "small corpus, for smoke tests")
	flag.BoolVar(&o.main, "main", true, "measure every case on the GOROOT (or -quick) corpus")
	flag.BoolVar(&o.big, "big", false, "also measure fmtconv's peak RSS on a 2 GiB layer")
	flag.Int64Var(&o.bigSize, "big-size", 2<<30, "size of the -big tar in bytes")
	flag.BoolVar(&o.ctrd, "containerd", true, "start a private containerd for the ctr-remote peer")
	flag.StringVar(&o.only, "only", "", "run only the cases whose names match this regular expression (and the floors)")
	flag.BoolVar(&o.regen, "regen", false, "rebuild the cached corpora")
	flag.BoolVar(&o.keep, "keep", false, "keep <work>/runs")
	flag.Parse()
	if err := run(&o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o *options) error {
	var err error
	o.loadStart = loadAvg()
	if o.reps < 1 {
		return fmt.Errorf("-reps must be at least 1")
	}
	if o.fmtconv, err = filepath.Abs(o.fmtconv); err != nil {
		return err
	}
	if _, err := os.Stat(o.fmtconv); err != nil {
		return fmt.Errorf("%v (run `make build` first)", err)
	}
	if o.self, err = os.Executable(); err != nil {
		return err
	}
	if o.work, err = filepath.Abs(o.work); err != nil {
		return err
	}
	o.runs = filepath.Join(o.work, "runs")
	if err := os.RemoveAll(o.runs); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(o.runs)
	}
	out, err := exec.Command("go", "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		return fmt.Errorf("go env: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return fmt.Errorf("go env GOROOT GOVERSION: %q", out)
	}
	o.goroot, o.goversion = f[0], f[1]
	o.gzipCmd = []string{"gzip", "-6", "-n", "-c"}
	o.bigGzipCmd = o.gzipCmd
	if _, err := exec.LookPath("pigz"); err == nil {
		o.bigGzipCmd = []string{"pigz", "-6", "-n", "-c", "-p", strconv.Itoa(runtime.NumCPU())}
	}

	var reports []*report
	if o.main {
		r, err := runMain(o)
		if err != nil {
			return err
		}
		reports = append(reports, r)
	}
	if o.big {
		r, err := runBig(o)
		if err != nil {
			return err
		}
		reports = append(reports, r)
	}
	printHeader(os.Stdout, o)
	for _, r := range reports {
		r.print(os.Stdout)
	}
	return nil
}

// runMain measures every case on the GOROOT (or -quick) corpus.
func runMain(o *options) (*report, error) {
	var err error
	// The corpus.
	var c *corpus
	if o.quick {
		subdirs := []string{"src/archive", "src/crypto", "src/net"}
		logf("corpus: building or loading the quick corpus (%s of %s)", strings.Join(subdirs, ", "), o.goroot)
		c, err = loadOrBuildCorpus(filepath.Join(o.work, "corpus-quick"),
			fmt.Sprintf("%s of GOROOT %s (%s)", strings.Join(subdirs, ", "), o.goroot, o.goversion),
			o.gzipCmd, treeTar(o.goroot, subdirs, nil), o.regen)
	} else {
		logf("corpus: building or loading the GOROOT corpus (%s)", o.goroot)
		c, err = loadOrBuildCorpus(filepath.Join(o.work, "corpus-goroot"),
			fmt.Sprintf("GOROOT %s (%s) without bin/", o.goroot, o.goversion),
			o.gzipCmd, treeTar(o.goroot, nil, []string{"bin"}), o.regen)
	}
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	logf("corpus: tar %d B, %d entries, diff_id %s; layer %d B %s", c.TarSize, c.Entries, c.DiffID, c.LayerSize, c.LayerDigest)

	// Warm the page cache once: the input and every binary.
	for _, p := range []string{c.LayerPath(), o.fmtconv, o.self} {
		if err := warm(p); err != nil {
			return nil, err
		}
	}

	// containerd for ctr-remote, when it can be started.
	var ctrd *containerd
	ctrdNote := "not started (-containerd=false)"
	if o.ctrd {
		if ctrd, err = startContainerd(); err != nil {
			ctrdNote = "could not start containerd: " + err.Error()
			ctrd = nil
		} else if err := ctrd.importLayout(c.Dir, "bench.local/in"); err != nil {
			ctrdNote = "could not import the corpus into containerd: " + err.Error()
			ctrd.stop()
			ctrd = nil
		} else {
			ctrdNote = ""
		}
	}
	if ctrd != nil {
		defer ctrd.stop()
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-sigs
			ctrd.stop()
			os.Exit(130)
		}()
	}

	cases := mainCases(o, c, ctrd, ctrdNote)
	if o.only != "" {
		re, err := regexp.Compile(o.only)
		if err != nil {
			return nil, fmt.Errorf("-only: %w", err)
		}
		cases = find(cases, func(bc *benchCase) bool { return bc.role == roleFloor || re.MatchString(bc.name) })
	}
	runRounds(o, cases, o.reps)
	rep := &report{o: o, c: c, cases: cases}
	rep.checks()

	return rep, nil
}

// runBig measures fmtconv's peak RSS on the -big layer.
func runBig(o *options) (*report, error) {
	logf("big: building or loading the %d-byte corpus", o.bigSize)
	bc, err := loadOrBuildCorpus(filepath.Join(o.work, "corpus-big"),
		fmt.Sprintf("%d bytes of pseudo-random words", o.bigSize), o.bigGzipCmd, bigTar(o.bigSize), o.regen)
	if err != nil {
		return nil, fmt.Errorf("big corpus: %w", err)
	}
	if err := warm(bc.LayerPath()); err != nil {
		return nil, err
	}
	bcases := []*benchCase{
		floorCase("floor: gzip -dc | zstd -3 -T2 > /dev/null", "zstd", bc),
		fmtconvCase(o, bc, "fmtconv zstd:chunked L3", "zstd:chunked", "zstd:chunked", 3),
		libCase(o, bc, "compressor.ZstdCompressor L3 (storage v1.65, in-process)", "zstd:chunked", subCompressor, 3),
		fmtconvCase(o, bc, "fmtconv zstd L3", "zstd", "zstd", 3),
		fmtconvCase(o, bc, "fmtconv estargz L6", "estargz", "estargz", 6),
		fmtconvCase(o, bc, "fmtconv nydus", "nydus", "nydus", -1),
	}
	runRounds(o, bcases, 1)
	brep := &report{o: o, c: bc, cases: bcases, big: true}
	brep.checks()
	return brep, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// ---- cases ----

// output is what one run of a case wrote.
type output struct {
	manifest  string        // manifest digest, for image outputs
	layer     v1.Descriptor // the (first) layer blob
	blob      string        // its file, while the run's directory exists
	totalSize int64         // bytes of all its layers
	message   string
}

type benchCase struct {
	name  string
	group string // what it converts to; cases of one group are compared
	role  string // roleFloor, roleFmtconv or rolePeer
	note  string // a footnote
	slug  string // its directory under <work>/runs

	// cmd returns the command of one run in the fresh, existing directory dir.
	cmd func(dir string) (*exec.Cmd, error)
	// output reads what the run wrote; nil for floors.
	output func(dir string, m *measurement) (output, error)
	// notImplementedOK: a first run failing with NOT_IMPLEMENTED makes the case n/a.
	notImplementedOK bool

	runs []*measurement
	outs []output
	na   string // why the case has no numbers
}

func (bc *benchCase) ok() bool { return bc != nil && bc.na == "" && len(bc.runs) > 0 }

func (bc *benchCase) median() float64 {
	return medianOf(bc.runs, func(m *measurement) float64 { return m.secs })
}

// medianCPU is the median of the user + system CPU seconds.
func (bc *benchCase) medianCPU() float64 {
	return medianOf(bc.runs, func(m *measurement) float64 { return m.cpu })
}

func medianOf(runs []*measurement, f func(*measurement) float64) float64 {
	t := make([]float64, len(runs))
	for i, m := range runs {
		t[i] = f(m)
	}
	sort.Float64s(t)
	if n := len(t); n%2 == 1 {
		return t[n/2]
	} else {
		return (t[n/2-1] + t[n/2]) / 2
	}
}

func (bc *benchCase) maxRSSMiB() float64 {
	var m int64
	for _, r := range bc.runs {
		m = max(m, r.rssKiB)
	}
	return float64(m) / 1024
}

func (bc *benchCase) maxTmp() int64 {
	var m int64
	for _, r := range bc.runs {
		m = max(m, r.tmpPeak)
	}
	return m
}

func (bc *benchCase) last() output { return bc.outs[len(bc.outs)-1] }

func mainCases(o *options, c *corpus, ctrd *containerd, ctrdNote string) []*benchCase {
	cases := []*benchCase{
		floorCase("floor: gzip -dc | zstd -3 -T2 > /dev/null", "zstd", c),
		floorCase("floor: gzip -dc | sha256sum", "sha256", c),
		fmtconvCase(o, c, "fmtconv zstd:chunked L3", "zstd:chunked", "zstd:chunked", 3),
		libCase(o, c, "compressor.ZstdCompressor L3 (storage v1.65, in-process)", "zstd:chunked", subCompressor, 3),
		skopeoCase(c, "skopeo 1.9 zstd:chunked L3", "zstd:chunked", "zstd:chunked"),
		fmtconvCase(o, c, "fmtconv zstd L3", "zstd", "zstd", 3),
		skopeoCase(c, "skopeo 1.9 zstd L3", "zstd", "zstd"),
		fmtconvCase(o, c, "fmtconv estargz L6", "estargz-6", "estargz", 6),
		libCase(o, c, "estargz.Build L6 4 MiB chunks, parallelism 2 (v0.19.1, in-process)", "estargz-6", subEstargzBuild, 6),
		ctrRemoteCase(ctrd, ctrdNote, "ctr-remote 0.12 estargz L6 4 MiB chunks", "estargz-6", 6),
		fmtconvCase(o, c, "fmtconv estargz L9", "estargz-9", "estargz", 9),
		libCase(o, c, "estargz.Build L9 4 MiB chunks, parallelism 2 (v0.19.1, in-process)", "estargz-9", subEstargzBuild, 9),
		fmtconvCase(o, c, "fmtconv nydus", "nydus", "nydus", -1),
		verifyCase(o, c),
	}
	return cases
}

func slugOf(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// tmpEnv is the environment of a child whose temporary files go to dir/tmp.
func tmpEnv(dir string, extra ...string) []string {
	return environ([]string{"TMPDIR", "GOMAXPROCS"}, append([]string{"TMPDIR=" + filepath.Join(dir, "tmp")}, extra...)...)
}

func floorCase(name, group string, c *corpus) *benchCase {
	script := `gzip -dc "$1" | zstd -3 -T2 > /dev/null`
	var check func(dir string, m *measurement) (output, error)
	if group == "sha256" {
		script = `gzip -dc "$1" | sha256sum`
		check = func(dir string, m *measurement) (output, error) {
			if got := "sha256:" + strings.Fields(string(m.stdout) + " x")[0]; got != c.DiffID {
				return output{}, fmt.Errorf("gzip -dc | sha256sum gave %s, the diff_id is %s", got, c.DiffID)
			}
			return output{}, nil
		}
	}
	return &benchCase{name: name, group: group, role: roleFloor, slug: slugOf(name), output: check,
		cmd: func(dir string) (*exec.Cmd, error) {
			return exec.Command("/bin/sh", "-c", script, "sh", c.LayerPath()), nil
		}}
}

func fmtconvCase(o *options, c *corpus, name, group, to string, level int) *benchCase {
	return &benchCase{name: name, group: group, role: roleFmtconv, slug: slugOf(name), notImplementedOK: to == "estargz" || to == "nydus",
		cmd: func(dir string) (*exec.Cmd, error) {
			if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
				return nil, err
			}
			args := []string{"convert", c.Ref(), "oci:" + filepath.Join(dir, "img") + ":" + refName, "--to", to, "-q", "--tmpdir", filepath.Join(dir, "tmp")}
			if level >= 0 {
				args = append(args, "--compression-level", strconv.Itoa(level))
			}
			cmd := exec.Command(o.fmtconv, args...)
			cmd.Env = tmpEnv(dir)
			return cmd, nil
		},
		output: layoutOutput,
	}
}

func layoutOutput(dir string, _ *measurement) (output, error) {
	man, layers, err := layerOf(filepath.Join(dir, "img"))
	if err != nil {
		return output{}, err
	}
	return output{manifest: man, layer: layers[0], blob: blobPath(filepath.Join(dir, "img"), layers[0]), totalSize: sumSizes(layers)}, nil
}

func verifyCase(o *options, c *corpus) *benchCase {
	return &benchCase{name: "fmtconv verify (gzip image)", group: "verify", role: roleFmtconv, slug: "fmtconv-verify",
		cmd: func(dir string) (*exec.Cmd, error) {
			if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
				return nil, err
			}
			cmd := exec.Command(o.fmtconv, "verify", c.Ref())
			cmd.Env = tmpEnv(dir)
			return cmd, nil
		},
		output: func(_ string, m *measurement) (output, error) {
			return output{message: lastLine(string(m.stdout))}, nil
		},
	}
}

func libCase(o *options, c *corpus, name, group, sub string, level int) *benchCase {
	return &benchCase{name: name, group: group, role: rolePeer, slug: slugOf(name),
		cmd: func(dir string) (*exec.Cmd, error) {
			if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
				return nil, err
			}
			cmd := exec.Command(o.self, sub, strconv.Itoa(level), c.LayerPath(), filepath.Join(dir, "blob"))
			cmd.Env = tmpEnv(dir)
			return cmd, nil
		},
		output: func(dir string, m *measurement) (output, error) {
			var r childResult
			if err := jsonUnmarshal(m.stdout, &r); err != nil {
				return output{}, err
			}
			return output{layer: v1.Descriptor{Digest: digestOf(r.Digest), Size: r.Size, Annotations: r.Annotations}, blob: filepath.Join(dir, "blob"), totalSize: r.Size}, nil
		},
	}
}

func skopeoCase(c *corpus, name, group, format string) *benchCase {
	bc := &benchCase{name: name, group: group, role: rolePeer, slug: slugOf(name), output: layoutOutput,
		note: "skopeo copies the whole image (oci: to oci:) with a fresh, private blob-info cache"}
	if format == "zstd:chunked" {
		bc.note += "; it writes the older containers/storage 1.43 zstd:chunked (oracles.md §3.2)"
	}
	bc.cmd = func(dir string) (*exec.Cmd, error) {
		return skopeoCmd(dir, "copy", "-q", "--dest-compress-format", format, "--dest-compress-level", "3",
			c.Ref(), "oci:"+filepath.Join(dir, "img")+":"+refName)
	}
	if _, err := exec.LookPath("skopeo"); err != nil {
		bc.na = "n/a (skopeo not installed)"
	}
	return bc
}

func ctrRemoteCase(ctrd *containerd, why, name, group string, level int) *benchCase {
	dst := fmt.Sprintf("bench.local/out:esgz%d", level)
	bc := &benchCase{name: name, group: group, role: rolePeer, slug: slugOf(name),
		note: "ctr-remote converts in its own process against a private containerd 1.6 (content store over gRPC); peak RSS is ctr-remote's, not the daemon's"}
	if ctrd == nil {
		bc.na = "n/a (" + why + ")"
		return bc
	}
	bc.cmd = func(dir string) (*exec.Cmd, error) {
		if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
			return nil, err
		}
		cmd := ctrd.cmdFor("ctr-remote", "image", "convert", "--oci", "--estargz",
			"--estargz-compression-level", strconv.Itoa(level), "--estargz-chunk-size", strconv.Itoa(4<<20),
			"bench.local/in:"+refName, dst)
		cmd.Env = append(cmd.Env, "TMPDIR="+filepath.Join(dir, "tmp"))
		return cmd, nil
	}
	bc.output = func(string, *measurement) (output, error) {
		man, layers, err := ctrd.manifestLayer(dst)
		if err != nil {
			return output{}, err
		}
		// Untimed: remove the result (and its blobs) for the next repetition.
		if _, err := ctrd.run(nil, "ctr", "image", "rm", "--sync", dst); err != nil {
			return output{}, err
		}
		return output{manifest: man, layer: layers[0], totalSize: sumSizes(layers)}, nil
	}
	return bc
}

// runRounds runs every case reps times, alternating cases round-robin. A
// case failing in its first repetition is not run again.
func runRounds(o *options, cases []*benchCase, reps int) {
	for rep := 1; rep <= reps; rep++ {
		for _, bc := range cases {
			if bc.na != "" {
				continue
			}
			dir := filepath.Join(o.runs, bc.slug)
			m, out, err := runCase(bc, dir, nil)
			if err != nil {
				notImpl := strings.Contains(err.Error(), "NOT_IMPLEMENTED") || strings.Contains(strings.ToLower(err.Error()), "not implemented")
				switch {
				case bc.notImplementedOK && notImpl && len(bc.runs) == 0:
					bc.na = "n/a (not implemented)"
				default:
					bc.na = "FAILED: " + err.Error()
				}
				logf("rep %d/%d %-70s %s", rep, reps, bc.name, bc.na)
				continue
			}
			bc.runs = append(bc.runs, m)
			bc.outs = append(bc.outs, out)
			logf("rep %d/%d %-70s %7.2f s %6.0f MiB", rep, reps, bc.name, m.secs, float64(m.rssKiB)/1024)
		}
	}
}

// runCase runs one case once in a fresh dir; env is added to its environment.
func runCase(bc *benchCase, dir string, env []string) (*measurement, output, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, output{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, output{}, err
	}
	cmd, err := bc.cmd(dir)
	if err != nil {
		return nil, output{}, err
	}
	if env != nil {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, env...)
	}
	m, err := measure(cmd, filepath.Join(dir, "tmp"))
	if err != nil {
		return m, output{}, err
	}
	var out output
	if bc.output != nil {
		if out, err = bc.output(dir, m); err != nil {
			return m, out, err
		}
	}
	return m, out, nil
}

func find(cases []*benchCase, pred func(*benchCase) bool) []*benchCase {
	var r []*benchCase
	for _, bc := range cases {
		if pred(bc) {
			r = append(r, bc)
		}
	}
	return r
}

func byName(cases []*benchCase, prefix string) *benchCase {
	i := slices.IndexFunc(cases, func(bc *benchCase) bool { return strings.HasPrefix(bc.name, prefix) })
	if i < 0 {
		return nil
	}
	return cases[i]
}

func sumSizes(layers []v1.Descriptor) int64 {
	var n int64
	for _, l := range layers {
		n += l.Size
	}
	return n
}

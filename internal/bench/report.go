package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// report turns measured cases into the table, the checks and the verdicts.
type report struct {
	o     *options
	c     *corpus
	cases []*benchCase
	big   bool

	checkLines []string // Markdown list items
}

func (r *report) add(format string, args ...any) {
	r.checkLines = append(r.checkLines, "- "+fmt.Sprintf(format, args...))
}

// verdict adds a PASS/FAIL line.
func (r *report) verdict(ok bool, format string, args ...any) {
	word := "**FAIL**"
	if ok {
		word = "**PASS**"
	}
	r.add(word+" "+format, args...)
}

func (r *report) byName(prefix string) *benchCase { return byName(r.cases, prefix) }

// floorOf is the floor a case is divided by.
func (r *report) floorOf(bc *benchCase) *benchCase {
	if bc.group == "verify" || bc.group == "sha256" {
		return r.byName("floor: gzip -dc | sha256sum")
	}
	return r.byName("floor: gzip -dc | zstd")
}

// bestPeer is the fastest peer of bc's group.
func (r *report) bestPeer(bc *benchCase) *benchCase {
	var best *benchCase
	for _, p := range find(r.cases, func(p *benchCase) bool { return p.role == rolePeer && p.group == bc.group && p.ok() }) {
		if best == nil || p.median() < best.median() {
			best = p
		}
	}
	return best
}

func ratio(a, b *benchCase) (float64, bool) {
	if a == nil || b == nil || !a.ok() || !b.ok() || b.median() == 0 {
		return 0, false
	}
	return a.median() / b.median(), true
}

// checks runs the extra checks (GOMAXPROCS, upstream reader) and computes
// every target verdict.
func (r *report) checks() {
	zfloor := r.byName("floor: gzip -dc | zstd")
	for _, bc := range r.cases {
		if bc.role == roleFloor && !bc.ok() {
			r.add("**FAIL** %s: %s (no ratios to the floor)", bc.name, bc.na)
		}
	}
	if r.big {
		r.byteIdentity()
	} else {
		r.mainTargets(zfloor)
	}

	// Peak RSS and temporary disk of every fmtconv case.
	for _, bc := range find(r.cases, func(bc *benchCase) bool { return bc.role == roleFmtconv && bc.ok() }) {
		r.verdict(bc.maxRSSMiB() <= rssTargetMiB, "peak RSS, %s: %.0f MiB (target ≤ %d MiB; %s tar)", bc.name, bc.maxRSSMiB(), rssTargetMiB, mbString(r.c.TarSize))
	}
	if !r.big && !r.o.big {
		r.add("n/a peak RSS ≤ %d MiB whatever the layer size: the %s layer is measured with -big", rssTargetMiB, mbString(r.o.bigSize))
	}
	for _, bc := range find(r.cases, func(bc *benchCase) bool { return bc.role == roleFmtconv && bc.ok() }) {
		layer := max(r.c.LayerSize, bc.last().size())
		r.verdict(bc.maxTmp() <= layer+mib, "temporary disk, %s: peak %s under its --tmpdir/TMPDIR, sampled every 20 ms (target ≤ one layer, here %s)",
			bc.name, mbString(bc.maxTmp()), mbString(layer))
	}
	// Same output in every repetition.
	for _, bc := range find(r.cases, func(bc *benchCase) bool { return bc.role != roleFloor && bc.ok() && bc.outs[0].layer.Digest != "" }) {
		same := true
		for _, o := range bc.outs {
			same = same && o.layer.Digest == bc.outs[0].layer.Digest
		}
		if !same {
			r.add("note: %s wrote different layer digests in different repetitions", bc.name)
		}
	}
}

// notRun says that a target's case was left out by -only.
func (r *report) notRun(what string) {
	r.add("n/a %s: not measured (case left out by -only %q)", what, r.o.only)
}

func (r *report) mainTargets(zfloor *benchCase) {
	shaFloor := r.byName("floor: gzip -dc | sha256sum")
	floorTarget := func(bc, floor *benchCase, limit float64, what string) {
		if bc == nil || floor == nil {
			r.notRun(what)
			return
		}
		switch x, ok := ratio(bc, floor); {
		case bc.na != "":
			r.add("%s %s: %s", naWord(bc), what, bc.na)
		case ok:
			r.verdict(x <= limit, "%s: %.2f× the floor (%.2f s vs %.2f s; target ≤ %.1f×; CPU seconds %.2f vs %.2f)",
				what, x, bc.median(), floor.median(), limit, bc.medianCPU(), floor.medianCPU())
		}
	}
	speedTarget := func(bc, peer *benchCase, limit float64, what string) {
		if bc == nil || peer == nil {
			r.notRun(what)
			return
		}
		switch x, ok := ratio(peer, bc); {
		case bc.na != "":
			r.add("%s %s: %s", naWord(bc), what, bc.na)
		case peer.na != "":
			r.add("n/a %s: the peer %s", what, peer.na)
		case ok:
			r.verdict(x >= limit, "%s: %.2f× faster (%.2f s vs %.2f s; target ≥ %.1f×; CPU seconds %.2f vs %.2f)",
				what, x, bc.median(), peer.median(), limit, bc.medianCPU(), peer.medianCPU())
		}
	}

	zc, comp := r.byName("fmtconv zstd:chunked"), r.byName("compressor.ZstdCompressor")
	speedTarget(zc, comp, 2.5, "gzip→zstd:chunked L3 vs compressor.ZstdCompressor L3")
	floorTarget(zc, zfloor, 1.3, "gzip→zstd:chunked L3")
	r.byteIdentity()

	es6, build6 := r.byName("fmtconv estargz L6"), r.byName("estargz.Build L6")
	speedTarget(es6, build6, 4, "gzip→eStargz L6 vs estargz.Build L6 (4 MiB chunks, parallelism 2)")
	for _, es := range []*benchCase{es6, r.byName("fmtconv estargz L9")} {
		if !es.ok() {
			continue
		}
		tocDigest := es.last().layer.Annotations["containerd.io/snapshot/stargz/toc.digest"]
		out, err := exec.Command(r.o.self, subEstargzCheck, es.last().blob, tocDigest).CombinedOutput()
		msg := strings.TrimSpace(string(out))
		var cr childResult
		if err == nil && json.Unmarshal(out, &cr) == nil {
			msg = cr.Message
		}
		r.verdict(err == nil && tocDigest != "", "%s accepted by the upstream reader (estargz v0.19.1 Open, VerifyTOC(toc.digest annotation %q), every chunk verified): %s", es.name, tocDigest, msg)
	}
	if es6.ok() && build6.ok() {
		a, b := es6.last().size(), build6.last().size()
		d := float64(a-b) / float64(b)
		r.verdict(math.Abs(d) <= 0.03, "eStargz L6 size: fmtconv %d B vs estargz.Build %d B (%+.2f%%; target within ±3%%)", a, b, 100*d)
	}
	if es9, b9 := r.byName("fmtconv estargz L9"), r.byName("estargz.Build L9"); es9.ok() && b9.ok() {
		x, _ := ratio(b9, es9)
		r.add("reported: gzip→eStargz L9: %.2f× faster than estargz.Build L9 (%.2f s vs %.2f s), size %d B vs %d B",
			x, es9.median(), b9.median(), es9.last().size(), b9.last().size())
	}
	floorTarget(r.byName("fmtconv zstd L3"), zfloor, 1.3, "gzip→zstd L3")
	floorTarget(r.byName("fmtconv nydus"), zfloor, 1.5, "gzip→Nydus (zstd chunks, 1 MiB)")
	floorTarget(r.byName("fmtconv verify"), shaFloor, 1.3, "verify of the gzip image")

	// Identical outputs with GOMAXPROCS=1 and 2.
	for _, bc := range find(r.cases, func(bc *benchCase) bool { return bc.role == roleFmtconv && bc.group != "verify" }) {
		if !bc.ok() {
			r.add("%s GOMAXPROCS=1 vs 2, %s: %s", naWord(bc), bc.name, bc.na)
			continue
		}
		var got []output
		var errs []string
		for _, n := range []int{1, 2} {
			logf("determinism: %s with GOMAXPROCS=%d", bc.name, n)
			_, out, err := runCase(bc, filepath.Join(r.o.runs, fmt.Sprintf("%s-gomaxprocs%d", bc.slug, n)), []string{fmt.Sprintf("GOMAXPROCS=%d", n)})
			if err != nil {
				errs = append(errs, err.Error())
			}
			got = append(got, out)
		}
		if len(errs) > 0 {
			r.verdict(false, "GOMAXPROCS=1 vs 2, %s: %s", bc.name, strings.Join(errs, "; "))
			continue
		}
		same := got[0].manifest == got[1].manifest && got[0].layer.Digest == got[1].layer.Digest
		r.verdict(same, "identical output with GOMAXPROCS=1 and 2, %s: manifest %s / %s, layer %s / %s (table runs, GOMAXPROCS unset on %d cores: layer %s)",
			bc.name, short(got[0].manifest), short(got[1].manifest), short(got[0].layer.Digest.String()), short(got[1].layer.Digest.String()),
			runtime.NumCPU(), short(bc.last().layer.Digest.String()))
	}
}

// byteIdentity compares fmtconv's zstd:chunked blob and annotations with
// compressor.ZstdCompressor's.
func (r *report) byteIdentity() {
	const what = "zstd:chunked blob byte-identical to compressor.ZstdCompressor's"
	zc, comp := r.byName("fmtconv zstd:chunked"), r.byName("compressor.ZstdCompressor")
	switch {
	case zc == nil || comp == nil:
		r.notRun(what)
		return
	case !zc.ok():
		r.add("%s %s: %s", naWord(zc), what, zc.na)
		return
	case !comp.ok():
		r.add("n/a %s: the reference %s", what, comp.na)
		return
	}
	a, b := zc.last().layer, comp.last().layer
	same := a.Digest == b.Digest && a.Size == b.Size
	var diff []string
	for k, v := range b.Annotations {
		if a.Annotations[k] != v {
			diff = append(diff, k)
		}
	}
	r.verdict(same && len(diff) == 0, "zstd:chunked blob byte-identical to compressor.ZstdCompressor's: fmtconv %s (%d B), compressor %s (%d B); annotations differing: %v",
		a.Digest, a.Size, b.Digest, b.Size, diff)
}

// summary counts the verdicts.
func (r *report) summary() string {
	var pass, fail, na int
	for _, l := range r.checkLines {
		switch {
		case strings.HasPrefix(l, "- **PASS**"):
			pass++
		case strings.HasPrefix(l, "- **FAIL**"):
			fail++
		case strings.HasPrefix(l, "- n/a"):
			na++
		}
	}
	return fmt.Sprintf("%d PASS, %d FAIL, %d n/a (the other lines are reported figures and notes).", pass, fail, na)
}

func naWord(bc *benchCase) string {
	if strings.HasPrefix(bc.na, "FAILED") {
		return "**FAIL**"
	}
	return "n/a"
}

func short(d string) string {
	if len(d) > 7+16 {
		return d[:7+16]
	}
	return d
}

func mbString(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/mib) }

// size is the total of the output's layers.
func (o output) size() int64 { return o.totalSize }

// printHeader writes the title, the machine and the peers' versions.
func printHeader(w io.Writer, o *options) {
	fmt.Fprintf(w, "\n# fmtconv bench\n\n")
	fmt.Fprintf(w, "Machine: %s, %d cores, Linux %s, %s, %s; load average %s at the start, %s at the end  \n",
		cpuModel(), runtime.NumCPU(), kernel(), runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"), o.loadStart, loadAvg())
	fmt.Fprintf(w, "Peers: %s\n", peerVersions())
}

// print writes the Markdown report.
func (r *report) print(w io.Writer) {
	title := "Conversions of one layer"
	if r.big {
		title = fmt.Sprintf("Large layer (%s tar): peak RSS", mbString(r.c.TarSize))
	}
	fmt.Fprintf(w, "\n## %s\n\n", title)
	fmt.Fprintf(w, "Corpus: %s; tar %d B (%s), %d entries, diff_id %s; layer `%s` (%s) %d B %s  \n",
		r.c.Source, r.c.TarSize, mbString(r.c.TarSize), r.c.Entries, r.c.DiffID, r.c.Gzip, firstLine(r.c.Gzip), r.c.LayerSize, r.c.LayerDigest)
	reps := 0
	for _, bc := range r.cases {
		reps = max(reps, len(bc.runs))
	}
	fmt.Fprintf(w, "Repetitions: %d per case, alternating round-robin; median wall time; peak RSS = largest ru_maxrss; MB/s of the uncompressed tar\n\n", reps)

	fmt.Fprintln(w, "| case | median s | MB/s | peak RSS MiB | output bytes | × floor | × best peer |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	var notes []string
	for _, bc := range r.cases {
		name := bc.name
		if bc.note != "" {
			notes = append(notes, bc.note)
			name += fmt.Sprintf(" [%d]", len(notes))
		}
		if !bc.ok() {
			fmt.Fprintf(w, "| %s | %s | | | | | |\n", cell(name), cell(bc.na))
			continue
		}
		outBytes := "—"
		if bc.role != roleFloor && bc.last().size() > 0 {
			outBytes = fmt.Sprint(bc.last().size())
		}
		xFloor := "—"
		if x, ok := ratio(bc, r.floorOf(bc)); ok {
			xFloor = fmt.Sprintf("%.2f", x)
		}
		xPeer := "—"
		if bc.role != roleFloor {
			if x, ok := ratio(bc, r.bestPeer(bc)); ok {
				xPeer = fmt.Sprintf("%.2f", x)
			}
		}
		fmt.Fprintf(w, "| %s | %.2f | %.0f | %.0f | %s | %s | %s |\n", cell(name), bc.median(), float64(r.c.TarSize)/1e6/bc.median(), bc.maxRSSMiB(), outBytes, xFloor, xPeer)
	}
	fmt.Fprintln(w)
	for i, n := range notes {
		fmt.Fprintf(w, "[%d] %s  \n", i+1, n)
	}
	fmt.Fprintln(w, "× floor: median / median of the floor (`gzip -dc | zstd -3 -T2` for conversions, `gzip -dc | sha256sum` for verify). × best peer: median / median of the fastest peer writing the same format (below 1 = faster).")
	fmt.Fprintf(w, "\n### Targets and checks\n\n%s\n\n%s\n", r.summary(), strings.Join(r.checkLines, "\n"))
	fmt.Fprintf(w, "\n### Wall (CPU user+sys) seconds per repetition\n\n")
	for _, bc := range r.cases {
		if len(bc.runs) == 0 {
			continue
		}
		var t []string
		for _, m := range bc.runs {
			t = append(t, fmt.Sprintf("%.2f (%.2f)", m.secs, m.cpu))
		}
		fmt.Fprintf(w, "- %s: %s\n", bc.name, strings.Join(t, " "))
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// cell escapes a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// loadAvg is the 1-, 5- and 15-minute load average.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// peerVersions lists the Debian package versions of the peer tools.
func peerVersions() string {
	var v []string
	for _, p := range []string{"gzip", "zstd", "pigz", "skopeo", "containerd", "stargz-snapshotter"} {
		out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", p).Output()
		if err == nil && len(out) > 0 {
			v = append(v, p+" "+strings.TrimSpace(string(out)))
		}
	}
	return strings.Join(v, ", ") + "; Go libraries: go.podman.io/storage v1.65.0, github.com/containerd/stargz-snapshotter/estargz v0.19.1"
}

// firstLine is the version line of a compression command.
func firstLine(cmdline string) string {
	tool := strings.Fields(cmdline)[0]
	out, _ := exec.Command(tool, "--version").CombinedOutput()
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading the child's result %q: %w", b, err)
	}
	return nil
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }

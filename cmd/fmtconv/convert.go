package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fmtconv/fmtconv/convert"
	"github.com/fmtconv/fmtconv/layerformat"
	"github.com/fmtconv/fmtconv/transport"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func transportFlags(prefix, side string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: prefix + "-authfile", Usage: "auth file for the " + side + " (default: the standard containers auth files)"},
		&cli.StringFlag{Name: prefix + "-creds", Usage: "USER[:PASSWORD] for the " + side + " registry"},
		&cli.BoolFlag{Name: prefix + "-tls-verify", Value: true, Usage: "verify TLS for the " + side + " registry"},
		&cli.StringFlag{Name: prefix + "-cert-dir", Usage: "directory of certificates for the " + side + " registry"},
	}
}

func transportOptions(c *cli.Context, prefix string) transport.Options {
	o := transport.Options{AuthFile: c.String(prefix + "-authfile"), Creds: c.String(prefix + "-creds"), CertDir: c.String(prefix + "-cert-dir")}
	if c.IsSet(prefix + "-tls-verify") {
		v := c.Bool(prefix + "-tls-verify")
		o.TLSVerify = &v
	}
	return o
}

func convertCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "to", Required: true, Usage: "target layer format: uncompressed, gzip, zstd, zstd:chunked, estargz, nydus"},
		&cli.IntFlag{Name: "compression-level", Value: -1, DefaultText: "gzip 5 and zstd 3 as containers/image, zstd:chunked 3, estargz 6", Usage: "compression level"},
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "manifest type: oci or v2s2 (default: keep the source's where the target allows)"},
		&cli.StringSliceFlag{Name: "platform", Usage: "convert only this os/arch[/variant] of an index (repeatable)"},
		&cli.BoolFlag{Name: "force", Usage: "re-encode layers that are already in the target format"},
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 2, Usage: "layers converted at once, as far as the memory limit allows"},
		&cli.StringFlag{Name: "digestfile", Usage: "write the digest of the top-level output manifest or index to `FILE`"},
		&cli.StringFlag{Name: "report", Usage: "write a JSON report, one entry per layer, to `FILE` (- for stdout)"},
		&cli.StringFlag{Name: "tmpdir", Usage: "directory for temporary layer files (default $TMPDIR)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print the plan (per manifest and layer: action and reason) and write nothing"},
		&cli.BoolFlag{Name: "remove-signatures", Usage: "convert a signed source; its signatures are not copied (they would no longer match)"},
		&cli.IntFlag{Name: "estargz-level", Value: -1, DefaultText: "6", Usage: "gzip level of eStargz output (overrides --compression-level)"},
		&cli.IntFlag{Name: "estargz-chunk-size", Usage: "largest payload of one eStargz gzip member (default 4 MiB)"},
		&cli.IntFlag{Name: "estargz-min-chunk-size", Usage: "let small files share one eStargz gzip member up to this many uncompressed bytes"},
		&cli.StringFlag{Name: "estargz-prioritized-files", Usage: "`FILE` listing paths to put first in eStargz layers (one per line), followed by .prefetch.landmark"},
		&cli.StringFlag{Name: "nydus-compressor", Value: "zstd", Usage: "Nydus chunk compressor: zstd, lz4_block or none"},
		&cli.UintFlag{Name: "nydus-chunk-size", Value: 1 << 20, Usage: "Nydus chunk size (a power of two, 4 KiB to 16 MiB)"},
		&cli.StringFlag{Name: "nydus-prefetch-patterns", Usage: "`FILE` of absolute paths (one per line) Nydus prefetches (default: everything)"},
		&cli.BoolFlag{Name: "nydus-merge-platform", Usage: "write an OCI index holding, per platform, the OCI manifest (an empty layer prepended) and then the Nydus manifest, as nydusify --merge-platform"},
		&cli.Int64Flag{Name: "max-layer-size", Usage: "refuse a layer that decompresses to more than this many bytes (default 256 GiB)"},
		&cli.IntFlag{Name: "retry-times", Value: 3, Usage: "retry a failed registry or I/O step this many times"},
		&cli.DurationFlag{Name: "retry-delay", Value: time.Second, Usage: "delay before the first retry (it doubles every time)"},
		&cli.BoolFlag{Name: "keep-estargz-files", Usage: "keep stargz.index.json and the landmark files when a layer leaves eStargz"},
	}
	flags = append(flags, transportFlags("src", "source")...)
	flags = append(flags, transportFlags("dest", "destination")...)
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert an image or index to another layer format",
		ArgsUsage: "SRC DST",
		Description: `Reads SRC, converts every layer to the --to format and writes DST. Flags may come before or after SRC and DST.

Examples:
   fmtconv convert oci:./app:1.0 oci:./out:1.0 --to zstd:chunked
   fmtconv convert docker://registry.example/app:1.0 docker://registry.example/app:1.0-zstd --to zstd
   fmtconv convert dir:./img docker-archive:./img.tar:app:1.0 --to gzip --format v2s2
   fmtconv convert docker://registry.example/multi:1 oci:./amd64:1 --to zstd --platform linux/amd64 --report -`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError("convert needs SRC and DST, got %d arguments", c.NArg())
			}
			target, err := layerformat.ParseTarget(c.String("to"))
			if err != nil {
				return usageError("--to: %v", err)
			}
			var platforms []convert.Platform
			for _, s := range c.StringSlice("platform") {
				p, err := convert.ParsePlatform(s)
				if err != nil {
					return usageError("--platform: %v", err)
				}
				platforms = append(platforms, p)
			}
			opts := convert.Options{
				Target:              target,
				Level:               c.Int("compression-level"),
				ManifestFormat:      c.String("format"),
				Platforms:           platforms,
				Force:               c.Bool("force"),
				Jobs:                c.Int("jobs"),
				Src:                 transportOptions(c, "src"),
				Dst:                 transportOptions(c, "dest"),
				TempDir:             c.String("tmpdir"),
				DryRun:              c.Bool("dry-run"),
				RemoveSignatures:    c.Bool("remove-signatures"),
				KeepEstargzFiles:    c.Bool("keep-estargz-files"),
				MaxLayerSize:        c.Int64("max-layer-size"),
				NydusCompressor:     c.String("nydus-compressor"),
				NydusChunkSize:      uint32(c.Uint("nydus-chunk-size")),
				NydusMergePlatform:  c.Bool("nydus-merge-platform"),
				Retry:               convert.Retry{Times: c.Int("retry-times"), Delay: c.Duration("retry-delay")},
				EstargzChunkSize:    c.Int("estargz-chunk-size"),
				EstargzMinChunkSize: c.Int("estargz-min-chunk-size"),
			}
			if opts.NydusMergePlatform && target != layerformat.Nydus {
				return usageError("--nydus-merge-platform needs --to nydus")
			}
			if target == layerformat.Estargz && c.Int("estargz-level") >= 0 {
				opts.Level = c.Int("estargz-level")
			}
			if p := c.String("nydus-prefetch-patterns"); p != "" {
				lines, err := readLines(p)
				if err != nil {
					return usageError("--nydus-prefetch-patterns: %v", err)
				}
				opts.NydusPrefetchPatterns = lines
			}
			if p := c.String("estargz-prioritized-files"); p != "" {
				lines, err := readLines(p)
				if err != nil {
					return usageError("--estargz-prioritized-files: %v", err)
				}
				opts.EstargzPrioritizedFiles = lines
			}
			var bars *progressBars
			if !c.Bool("quiet") && term.IsTerminal(int(os.Stderr.Fd())) {
				bars = newProgressBars(c.App.ErrWriter)
				opts.Progress = bars
			}
			rep, err := convert.Convert(c.Context, c.Args().Get(0), c.Args().Get(1), opts)
			if bars != nil {
				bars.Wait()
			}
			if opts.DryRun && rep != nil && rep.Plan != nil {
				if p := c.String("report"); p != "" {
					if err := writeJSON(p, c.App.Writer, rep); err != nil {
						return fmt.Errorf("--report: %w", err)
					}
				}
				if c.String("report") != "-" {
					rep.WritePlan(c.App.Writer)
				}
			}
			if errors.Is(err, convert.ErrNotImplemented) {
				return &exitError{code: exitFailure, err: err}
			}
			if err != nil || opts.DryRun {
				return err
			}
			if p := c.String("digestfile"); p != "" {
				if err := os.WriteFile(p, []byte(rep.Digest.String()), 0o644); err != nil {
					return fmt.Errorf("--digestfile: %w", err)
				}
			}
			if p := c.String("report"); p != "" {
				if err := writeJSON(p, c.App.Writer, rep); err != nil {
					return fmt.Errorf("--report: %w", err)
				}
			}
			for _, w := range rep.Warnings {
				fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
			}
			if !c.Bool("quiet") && c.String("report") != "-" {
				printReportTable(c.App.ErrWriter, rep)
			}
			return nil
		},
	}
}

// printReportTable prints one row per layer: what it was, what it became, and how long it took.
func printReportTable(w io.Writer, rep *convert.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tSOURCE FORMAT\tSOURCE SIZE\tTARGET FORMAT\tTARGET SIZE\tACTION\tSECONDS\tTARGET DIGEST")
	for _, l := range rep.Layers {
		fmt.Fprintf(tw, "%s/%d\t%s\t%d\t%s\t%d\t%s\t%.2f\t%s\n", short(l.Manifest), l.Index, l.Source.Format, l.Source.Size,
			l.Target.Format, l.Target.Size, l.Action, l.Seconds, short(l.Target.Digest))
	}
	tw.Flush()
	fmt.Fprintf(w, "wrote %s %s (%s, %s, %s, %.2fs)\n", rep.Destination, rep.Digest, rep.TargetDescription(), count(len(rep.Manifests), "manifest"), count(len(rep.Layers), "layer"), rep.Seconds)
}

func short(d fmt.Stringer) string {
	s := d.String()
	if i := len("sha256:"); len(s) > i+12 {
		return s[i : i+12]
	}
	return s
}

// readLines reads a file of one entry per line, skipping blank lines and # comments.
func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, nil
}

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/fmtconv/fmtconv/check"
	"github.com/fmtconv/fmtconv/estargz"
	"github.com/fmtconv/fmtconv/verify"
	"github.com/urfave/cli/v2"
)

func verifyCommand() *cli.Command {
	flags := append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}}, transportFlags("src", "image")...)
	return &cli.Command{
		Name:      "verify",
		Usage:     "check that an image is what its manifests claim",
		ArgsUsage: "IMAGE",
		Description: `Checks every manifest, config and blob digest and size, each layer's format against its media type
and annotations, and each layer's uncompressed digest against its diff_id.
Exit status: 0 valid, 1 invalid, 2 could not check.

Examples:
   fmtconv verify oci:./out:1.0
   fmtconv verify docker://registry.example/app:1.0 --json`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("verify needs one IMAGE, got %d arguments", c.NArg())
			}
			res, err := verify.Verify(c.Context, c.Args().First(), verify.Options{Src: transportOptions(c, "src")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := writeJSON("-", c.App.Writer, res); err != nil {
					return err
				}
			} else {
				printVerify(c.App.Writer, res)
			}
			if !res.Valid {
				return &exitError{code: exitInvalid}
			}
			return nil
		},
	}
}

func printVerify(w io.Writer, res *verify.Result) {
	layers := 0
	for _, m := range res.Manifests {
		layers += len(m.Layers)
	}
	for _, f := range res.Findings {
		loc := string(f.Manifest)
		if f.Layer != nil {
			loc += fmt.Sprintf(" layer %d", *f.Layer)
		}
		if f.Path != "" {
			loc += " " + f.Path
		}
		fmt.Fprintf(w, "%-7s %-24s %s: %s\n", f.Severity, f.Check, loc, f.Message)
	}
	status := "valid"
	if !res.Valid {
		status = "INVALID"
	}
	errs := 0
	for _, f := range res.Findings {
		if f.Severity == check.Error {
			errs++
		}
	}
	fmt.Fprintf(w, "%s: %s (%s, %s; %s, %s)\n", res.Image, status, count(len(res.Manifests), "manifest"), count(layers, "layer"),
		count(errs, "error"), count(len(res.Findings)-errs, "warning"))
}

// count is "1 layer", "2 layers".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func inspectCommand() *cli.Command {
	flags := append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}}, transportFlags("src", "image")...)
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show each manifest and layer with its detected format",
		ArgsUsage: "IMAGE",
		Description: `Examples:
   fmtconv inspect oci:./out:1.0
   fmtconv inspect docker://registry.example/app:1.0 --json`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("inspect needs one IMAGE, got %d arguments", c.NArg())
			}
			res, err := verify.Inspect(c.Context, c.Args().First(), verify.Options{Src: transportOptions(c, "src")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON("-", c.App.Writer, res)
			}
			printInspect(c.App.Writer, res)
			for _, f := range res.Findings {
				fmt.Fprintf(c.App.Writer, "%s %s: %s\n", f.Severity, f.Check, f.Message)
			}
			return nil
		},
	}
}

// printInspect prints each manifest, then each layer: format and dialect, sizes, TOC digest,
// diff_id, and which lazy-pull runtimes can use it as it is (with the reason when none can).
func printInspect(w io.Writer, res *verify.Result) {
	defer printNydus(w, res)
	fmt.Fprintf(w, "%s\n  %s %s\n", res.Image, res.MediaType, res.Digest)
	for _, m := range res.Manifests {
		plat := m.Platform
		if plat == "" {
			plat = "-"
		}
		fmt.Fprintf(w, "manifest %s (%s) %s\n  config %s\n", m.Digest, plat, m.MediaType, m.Config)
		for _, l := range m.Layers {
			fmt.Fprintf(w, "  layer %d: %s, %d bytes, %s\n", l.Index, l.Format, l.Size, l.Digest)
			if l.DiffID != "" {
				fmt.Fprintf(w, "    diff_id    %s\n", l.DiffID)
			}
			if l.TOCDigest != "" {
				fmt.Fprintf(w, "    toc digest %s\n", l.TOCDigest)
			}
			if c := l.Chunked; c != nil {
				fmt.Fprintf(w, "    toc        %d entries, %d chunks", c.Entries, c.Chunks)
				if in, ok := c.Details.(*estargz.Info); ok {
					fmt.Fprintf(w, ", landmark %s", in.Landmark)
					if len(in.PrioritizedFiles) > 0 {
						fmt.Fprintf(w, ", prioritized %s", strings.Join(in.PrioritizedFiles, " "))
					}
				}
				if s, ok := c.Details.(string); ok {
					fmt.Fprintf(w, " (%s)", s)
				}
				fmt.Fprintln(w)
			}
			var lazy []string
			for _, r := range l.Runtimes {
				if r.Lazy {
					lazy = append(lazy, r.Runtime)
				}
			}
			switch {
			case len(lazy) > 0:
				fmt.Fprintf(w, "    lazy pull  %s\n", strings.Join(lazy, "; "))
			case len(l.Runtimes) > 0:
				fmt.Fprintf(w, "    lazy pull  none: %s\n", l.Runtimes[0].Reason)
			}
		}
	}
}

// printNydus prints what each Nydus manifest's merged bootstrap says.
func printNydus(w io.Writer, res *verify.Result) {
	for _, n := range res.Nydus {
		in := n.Info
		fmt.Fprintf(w, "nydus bootstrap of %s: RAFS v%d, compressor %s, digester %s, chunk size %d, %d chunks (%d chunk references)\n",
			n.Manifest, in.FSVersion, in.Compressor, in.Digester, in.ChunkSize, in.ChunkTableEntries, in.ChunkRefs)
		var types []string
		for _, k := range []string{"reg", "dir", "symlink", "char", "block", "fifo", "socket"} {
			if c := in.InodesByType[k]; c > 0 {
				types = append(types, fmt.Sprintf("%s %d", k, c))
			}
		}
		fmt.Fprintf(w, "  inodes: %d (%s), %d names, %d hard links\n", in.Inodes, strings.Join(types, ", "), in.Names, in.Hardlinks)
		for _, b := range in.Blobs {
			fmt.Fprintf(w, "  blob %d: %s, %d chunks, %d bytes compressed, %d uncompressed\n", b.Index, b.ID, b.ChunkCount, b.CompressedSize, b.UncompressedSize)
		}
	}
}

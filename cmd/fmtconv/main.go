// Command fmtconv converts container images between layer formats and verifies them.
// It is a thin shell over the library packages: convert, verify, manifestedit, transport.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/fmtconv/fmtconv/convert"
	"github.com/urfave/cli/v2"
)

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitInvalid = 1 // verify found an invalid image
	exitFailure = 2 // usage or runtime failure, or a check that could not run
	exitRefused = 3 // convert refused
)

var version = "0.1.0-dev"

// softMemoryLimit keeps the garbage collector's slack inside the memory bound fmtconv promises
// (256 MiB peak RSS whatever the layer size): live memory is bounded by design (streams, bounded
// windows), and without a limit Go lets the heap grow to twice the live size between collections.
// GOMEMLIMIT, when set, wins.
const softMemoryLimit = 160 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
	if path := os.Getenv("FMTCONV_CPUPROFILE"); path != "" {
		// For measuring fmtconv itself (make bench's figures); not a user-facing flag.
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			code := run(os.Args, os.Stdout, os.Stderr)
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, permuteCommandLine(app, argv))
	return exitCode(err, stderr)
}

// exitError carries a chosen exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.err == nil {
		return ee.code
	}
	fmt.Fprintf(stderr, "fmtconv: %v\n", err)
	if errors.As(err, &ee) {
		return ee.code
	}
	if _, ok := convert.IsRefusal(err); ok {
		return exitRefused
	}
	return exitFailure
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:    "fmtconv",
		Usage:   "convert container images between layer formats, and verify them",
		Version: version,
		Description: `Formats: uncompressed, gzip, zstd, zstd:chunked.
Transports: docker://, oci:, oci-archive:, docker-archive:, dir:.

Examples:
   fmtconv convert oci:./app:1.0 oci:./out:1.0 --to zstd:chunked
   fmtconv convert docker://registry.example/app:1.0 docker://registry.example/app:1.0-zstd --to zstd
   fmtconv inspect oci:./out:1.0
   fmtconv verify docker://registry.example/app:1.0-zstd

Exit status: 0 ok; 1 verify found the image invalid; 2 usage or runtime failure; 3 convert refused.`,
		Writer:                 stdout,
		ErrWriter:              stderr,
		UseShortOptionHandling: true,
		ExitErrHandler:         func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: exitFailure, err: err}
		},
		Commands: []*cli.Command{convertCommand(), verifyCommand(), inspectCommand()},
	}
}

func usageError(format string, a ...any) error {
	return &exitError{code: exitFailure, err: fmt.Errorf(format, a...)}
}

// writeJSON writes v to path, or to stdout when path is "-".
func writeJSON(path string, stdout io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// permuteArgs moves a command's flags in front of its positional arguments, so that
// `fmtconv convert SRC DST --to zstd` parses like `fmtconv convert --to zstd SRC DST`.
// urfave/cli/v2 stops at the first positional argument; this is solved once, here, for every
// command. args starts after the command name; "--" ends flag parsing as usual.
func permuteArgs(flags []cli.Flag, args []string) []string {
	takesValue := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flagArgs, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flagArgs = append(flagArgs, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue[name] && i+1 < len(args) {
			flagArgs = append(flagArgs, args[i+1])
			i++
		}
	}
	if len(positional) == 0 {
		return flagArgs
	}
	return append(append(flagArgs, "--"), positional...)
}

// permuteCommandLine applies permuteArgs to the command named in argv (argv[0] is the program).
func permuteCommandLine(app *cli.App, argv []string) []string {
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if strings.HasPrefix(a, "-") {
			continue // global flags such as --debug
		}
		cmd := app.Command(a)
		if cmd == nil {
			return argv
		}
		out := append([]string{}, argv[:i+1]...)
		return append(out, permuteArgs(cmd.Flags, argv[i+1:])...)
	}
	return argv
}

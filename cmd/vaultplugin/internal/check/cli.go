package check

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// Exit codes of `vaultplugin check`.
const (
	ExitPass   = 0 // every check passed (or was skipped, or is information)
	ExitFail   = 1 // a check failed, or the run could not finish
	ExitUsage  = 2 // a bad flag or argument
	usageTitle = "usage: vaultplugin check [-args ARG]... [-env KEY=VALUE]... [-json] BINARY"
)

// Usage is the check command's help text.
const Usage = usageTitle + `

Starts the Vault plugin BINARY the ways Vault does and prints one line per
check, ✓ or ✗; each ✗ comes with the fix. A line marked · is information,
one marked - a check that could not run here.

  -args ARG       an argument for the plugin, as vault plugin register -args
                  passes it; repeat for more
  -env KEY=VALUE  an environment entry for the plugin, as vault plugin
                  register -env sets it; repeat for more
  -json           print the report as JSON, for CI

Exit codes: 0 every check passed, 1 a check failed, 2 bad usage.
`

// Main runs `vaultplugin check` with args (what follows "check") and
// returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	c, asJSON, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, Usage)
		return ExitPass
	}
	if err != nil {
		fmt.Fprintf(stderr, "vaultplugin check: %v\n%s\n", err, usageTitle)
		return ExitUsage
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "vaultplugin check: locating vaultplugin itself: %v\n", err)
		return ExitFail
	}
	c.Self = self

	// Ctrl-C stops the checks, and with them every process they started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "vaultplugin check: %v\n", err)
		return ExitFail
	}
	if asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vaultplugin check: writing the report: %v\n", err)
		return ExitFail
	}
	if !rep.Passed {
		return ExitFail
	}
	return ExitPass
}

// parseArgs parses the command line: flags may come before and after
// BINARY, as in `vaultplugin check ./plugin -json`.
func parseArgs(args []string) (c Config, asJSON bool, err error) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var pluginArgs, env listFlag
	fs.Var(&pluginArgs, "args", "")
	fs.Var(&env, "env", "")
	fs.BoolVar(&asJSON, "json", false, "")
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return c, false, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch len(positional) {
	case 0:
		return c, false, errors.New("no BINARY to check")
	case 1:
	default:
		return c, false, fmt.Errorf("one BINARY at a time, got %s", strings.Join(positional, " "))
	}
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return c, false, fmt.Errorf("-env %q: want KEY=VALUE", e)
		}
	}
	bin, err := filepath.Abs(positional[0])
	if err != nil {
		return c, false, fmt.Errorf("resolving %s: %w", positional[0], err)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return c, false, fmt.Errorf("BINARY: %w", err)
	}
	if fi.IsDir() {
		return c, false, fmt.Errorf("BINARY %s is a directory: build the plugin first (go build -o PLUGIN ./cmd/PLUGIN)", bin)
	}
	return Config{Binary: bin, Args: pluginArgs, Env: env}, asJSON, nil
}

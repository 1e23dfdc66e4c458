package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/check"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/dev"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/newplugin"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/release"
)

// A command is one of vaultplugin's subcommands, in the shape of cmd/go's
// base.Command: its help, written once, and what runs it.
type command struct {
	Name      string
	UsageLine string // the synopsis, from "vaultplugin"
	Short     string // one line in vaultplugin's list of commands
	// Long is the rest of the command's help, in Go doc comment syntax,
	// so that doc.go can be made from it: paragraphs, and tab-indented
	// blocks kept as they are. It describes every flag: the flag sets
	// carry no usage strings.
	Long string
	// Flags defines the command's flags on fs and returns what runs it
	// once they are parsed.
	Flags func(fs *flag.FlagSet) cli.Run
}

// commands are vaultplugin's subcommands, in the order help lists them.
var commands = []*command{
	{
		Name:      "new",
		UsageLine: "vaultplugin new [-type secret|auth|database] [-replace DIR] MODULE [DIR]",
		Short:     "write a new plugin module that builds, tests and runs at once",
		Long:      newHelp,
		Flags:     newplugin.Flags,
	},
	{
		Name:      "check",
		UsageLine: "vaultplugin check [-args ARG]... [-env KEY=VALUE]... [-json] BINARY",
		Short:     "start a plugin binary the ways Vault does and say what to fix",
		Long:      checkHelp,
		Flags:     check.Flags,
	},
	{
		Name:      "dev",
		UsageLine: "vaultplugin dev [-vault BIN] [-path MOUNT] [-type secret|auth|database] [-plugin-dir DIR] [PACKAGE]",
		Short:     "serve a plugin package from a dev Vault, reloading it on each change",
		Long:      devHelp,
		Flags:     dev.DevFlags,
	},
	{
		Name:      "register",
		UsageLine: "vaultplugin register [-name NAME] [-version V] [-type T [-force]] [-plugin-dir DIR] [-reload [-scope global]] BINARY",
		Short:     "register a plugin binary, its sha256 and version, in a Vault",
		Long:      registerHelp,
		Flags:     dev.RegisterFlags,
	},
	{
		Name:      "release",
		UsageLine: "vaultplugin release -version VERSION -o DIR [-platforms LIST] [-name NAME] [-type TYPE] [-push REF] [-image REPO] [-source URL] [-tags TAGS] [-strip=false] [-allow-dirty] [-allow-nonsemver] [-dry-run] [-json] [PACKAGE]",
		Short:     "build a plugin for release: binaries, SHA256SUMS, OCI images, registration",
		Long:      releaseHelp,
		Flags:     release.Flags,
	},
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// run parses the command's flags and runs it. -help prints its help on
// stdout and exits 0; a mistake on the command line prints what is wrong
// and the usage line on stderr and exits 2; a failure prints its error
// on stderr and exits 1.
func (c *command) run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	// The flag package would print its own usage on an error; ours
	// follows the error below.
	fs.SetOutput(io.Discard)
	run := c.Flags(fs)
	rest, err := cli.ParseFlags(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, c.help())
		return cli.ExitOK
	case err != nil:
		err = &cli.UsageError{Err: err}
	default:
		err = run(rest, stdout, stderr)
	}
	var usage *cli.UsageError
	switch {
	case err == nil:
		return cli.ExitOK
	case errors.Is(err, cli.ErrFailed):
		return cli.ExitFailed
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "vaultplugin %s: %v\n%s", c.Name, err, c.usage())
		return cli.ExitUsage
	}
	fmt.Fprintf(stderr, "vaultplugin %s: %v\n", c.Name, err)
	return cli.ExitFailed
}

// usage is what follows a mistake on the command line.
func (c *command) usage() string {
	return fmt.Sprintf("usage: %s\nRun 'vaultplugin help %s' for details.\n", c.UsageLine, c.Name)
}

// help is the command's help: vaultplugin help NAME, NAME -help.
func (c *command) help() string {
	return "usage: " + c.UsageLine + "\n\n" + c.Long
}

// mainHelp is vaultplugin's own help: what it is and its commands.
func mainHelp() string {
	var b strings.Builder
	b.WriteString(overview)
	b.WriteString("\nUsage:\n\n\tvaultplugin COMMAND [arguments]\n\nThe commands are:\n\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c.Name))
	}
	for _, c := range commands {
		fmt.Fprintf(&b, "\t%-*s  %s\n", width, c.Name, c.Short)
	}
	b.WriteString("\n" + helpFooter)
	return b.String()
}

// documentation is doc.go's package comment, before the comment markers:
// vaultplugin's help and then each command's, under a heading.
func documentation() string {
	var b strings.Builder
	b.WriteString(mainHelp())
	for _, c := range commands {
		fmt.Fprintf(&b, "\n# vaultplugin %s\n\n%s", c.Name, c.help())
	}
	return b.String()
}

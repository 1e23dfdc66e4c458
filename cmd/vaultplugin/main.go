package main

import (
	"fmt"
	"io"
	"os"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/check"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// doc.go is the help text, as pkg.go.dev and go doc show it.
//go:generate go test -run=^TestDocs$ -fixdocs

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run runs the command line args and returns the exit code. Every
// command's help, usage errors and exit codes are decided here.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainHelp())
		return cli.ExitUsage
	}
	name, args := args[0], args[1:]
	switch name {
	case check.HostCommand:
		// Not a person's command, so not in the table: the check that
		// starts it reads its one JSON line on stdout, errors included.
		return check.Host(args, stdin, stdout)
	case "help", "-h", "-help", "--help":
		return help(args, stdout, stderr)
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "vaultplugin: unknown command %q\n\n%s", name, mainHelp())
		return cli.ExitUsage
	}
	return cmd.run(args, stdout, stderr)
}

// help is `vaultplugin help [COMMAND]`.
func help(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		fmt.Fprint(stdout, mainHelp())
		return cli.ExitOK
	case 1:
		if cmd := lookup(args[0]); cmd != nil {
			fmt.Fprint(stdout, cmd.help())
			return cli.ExitOK
		}
		fmt.Fprintf(stderr, "vaultplugin help: unknown command %q\n\n%s", args[0], mainHelp())
		return cli.ExitUsage
	}
	fmt.Fprintf(stderr, "vaultplugin help: one COMMAND at a time\nusage: vaultplugin help [COMMAND]\n")
	return cli.ExitUsage
}

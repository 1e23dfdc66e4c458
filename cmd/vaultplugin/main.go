package main

import (
	"fmt"
	"io"
	"os"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/check"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/dev"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

const usage = `usage: vaultplugin COMMAND [arguments]

Commands:
  check     start a Vault plugin binary the ways Vault does and report what to fix
  dev       build a plugin package, serve it from a Vault dev server, and rebuild and
            reload it on every change
  register  register a plugin binary with its sha256 and version in the Vault at VAULT_ADDR

Run vaultplugin COMMAND -help for a command's flags.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return check.ExitUsage
	}
	switch args[0] {
	case "check":
		return check.Main(args[1:], stdout, stderr)
	case "dev":
		return dev.Dev(args[1:], stdout, stderr)
	case "register":
		return dev.Register(args[1:], stdout, stderr)
	case check.HostCommand:
		return check.Host(args[1:], stdin, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vaultplugin: unknown command %q\n\n%s", args[0], usage)
	return check.ExitUsage
}

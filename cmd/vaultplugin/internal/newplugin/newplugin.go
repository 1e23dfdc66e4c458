// Package newplugin is vaultplugin's new command: it writes a plugin
// module that builds, passes its tests and runs in a Vault at once, with
// the newest released SDK the module proxy serves.
package newplugin

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// LibraryModule is this module's path: the library the new plugin serves
// itself with.
const LibraryModule = "github.com/plugkit/vaultplugin"

// newest are the modules asked for at @latest: what a new plugin links
// of HashiCorp's, resolved when it is made rather than written here, so
// that a plugin made next year starts on next year's releases.
var newest = []string{
	"github.com/hashicorp/vault/sdk",
	"github.com/hashicorp/vault/api",
	"github.com/hashicorp/go-plugin",
}

// Flags defines new's flags on fs and returns what runs `vaultplugin new`
// once they are parsed. The flags' help is the command's help text, in
// package main.
func Flags(fs *flag.FlagSet) cli.Run {
	o := options{typ: "secret"}
	fs.StringVar(&o.typ, "type", o.typ, "")
	fs.StringVar(&o.replace, "replace", "", "")
	return o.run
}

// options are new's flags.
type options struct {
	typ, replace string
}

func (o *options) run(args []string, stdout, stderr io.Writer) error {
	start := time.Now()
	p, dir, err := o.parse(args)
	if err != nil {
		return err
	}
	lib := libraryVersion(debug.ReadBuildInfo)
	g := &generator{out: stdout, goOut: stderr, dir: dir, p: p}
	if err := g.run(lib, o.replace); err != nil {
		return err
	}
	g.report(time.Since(start))
	return nil
}

// parse checks the command line: the type, the module path, the
// directory and -replace, all before anything is written.
func (o *options) parse(args []string) (Params, string, error) {
	switch len(args) {
	case 0:
		return Params{}, "", cli.Usagef("no MODULE: give the new plugin's module path, e.g. github.com/you/vault-plugin-secrets-foo")
	case 1, 2:
	default:
		return Params{}, "", cli.Usagef("want MODULE [DIR], got %s", strings.Join(args, " "))
	}
	if !slices.Contains(Types, o.typ) {
		return Params{}, "", cli.Usagef("-type %q: want %s", o.typ, strings.Join(Types, ", "))
	}
	module := args[0]
	if err := checkModulePath(module); err != nil {
		return Params{}, "", &cli.UsageError{Err: err}
	}
	name, err := PluginName(module)
	if err != nil {
		return Params{}, "", &cli.UsageError{Err: err}
	}
	dir := name
	if len(args) == 2 {
		dir = args[1]
	}
	if err := checkDir(dir); err != nil {
		return Params{}, "", &cli.UsageError{Err: err}
	}
	if o.replace != "" {
		abs, err := checkReplace(o.replace)
		if err != nil {
			return Params{}, "", &cli.UsageError{Err: err}
		}
		o.replace = abs
	}
	return Params{Module: module, Name: name, Type: o.typ}, dir, nil
}

// checkDir refuses a DIR that exists and holds anything but a .git
// directory (what `git init` leaves), or that is not a directory: new
// never writes over a file.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("DIR: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("DIR %s exists and is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("DIR: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != ".git" {
			names = append(names, e.Name())
		}
	}
	if len(names) > 0 {
		if len(names) > 3 {
			names = append(names[:3], "…")
		}
		return fmt.Errorf("DIR %s is not empty (%s): new writes only into an empty or new directory", dir, strings.Join(names, ", "))
	}
	return nil
}

// checkReplace checks that dir is a checkout of this module and returns
// its absolute path, which go.mod's replace line needs: a relative one
// would be relative to the new module, not to where new was run.
func checkReplace(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("-replace: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("-replace %s: want a checkout of %s: %w", dir, LibraryModule, err)
	}
	if got := modulePath(b); got != LibraryModule {
		return "", fmt.Errorf("-replace %s: its go.mod is module %q, want %s", dir, got, LibraryModule)
	}
	return abs, nil
}

// modulePath returns the path on go.mod's module line.
func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`+"`")
		}
	}
	return ""
}

// libraryVersion is the version of this module that the new plugin
// requires: the one this vaultplugin binary was built from when that is a
// release the module proxy can serve, and otherwise "latest". A binary
// that `go install …@v1.2.3` (or `go run …@v1.2.3`) built from the module
// cache carries that version and no VCS information; one built in a
// checkout carries "(devel)", or, with VCS stamping, a pseudo-version of
// a commit that may never have been pushed (and "+dirty" for uncommitted
// edits), so its build settings name vcs.revision: neither is a version
// to put in someone's go.mod.
func libraryVersion(read func() (*debug.BuildInfo, bool)) string {
	bi, ok := read()
	if !ok || bi.Main.Path != LibraryModule {
		return "latest"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" || strings.Contains(v, "+") {
		return "latest"
	}
	for _, s := range bi.Settings {
		if strings.HasPrefix(s.Key, "vcs.") {
			return "latest"
		}
	}
	return v
}

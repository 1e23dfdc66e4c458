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

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// Flags defines check's flags on fs and returns what runs the checks once
// they are parsed. The flags' help is the command's help text, in package
// main; fs's usage strings stay empty.
func Flags(fs *flag.FlagSet) cli.Run { return newOptions(fs).run }

// options are check's flags.
type options struct {
	args, env listFlag
	json      bool
}

func newOptions(fs *flag.FlagSet) *options {
	o := new(options)
	fs.Var(&o.args, "args", "")
	fs.Var(&o.env, "env", "")
	fs.BoolVar(&o.json, "json", false, "")
	return o
}

// run runs the checks on the BINARY args names.
func (o *options) run(args []string, stdout, _ io.Writer) error {
	c, err := o.config(args)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating vaultplugin itself: %w", err)
	}
	c.Self = self

	// Ctrl-C stops the checks, and with them every process they started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, c)
	if err != nil {
		return err
	}
	if o.json {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if !rep.Passed {
		return cli.ErrFailed
	}
	return nil
}

// config is what to check: the one BINARY among the positional
// arguments, which must be a file, with the plugin's arguments and
// environment.
func (o *options) config(positional []string) (Config, error) {
	switch len(positional) {
	case 0:
		return Config{}, errors.New("no BINARY to check")
	case 1:
	default:
		return Config{}, fmt.Errorf("one BINARY at a time, got %s", strings.Join(positional, " "))
	}
	for _, e := range o.env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return Config{}, fmt.Errorf("-env %q: want KEY=VALUE", e)
		}
	}
	bin, err := filepath.Abs(positional[0])
	if err != nil {
		return Config{}, fmt.Errorf("resolving %s: %w", positional[0], err)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return Config{}, fmt.Errorf("BINARY: %w", err)
	}
	if fi.IsDir() {
		return Config{}, fmt.Errorf("BINARY %s is a directory: build the plugin first (go build -o PLUGIN ./cmd/PLUGIN)", bin)
	}
	return Config{Binary: bin, Args: o.args, Env: o.env}, nil
}

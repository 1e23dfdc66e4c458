package check

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// Flags may follow BINARY, and -args keeps commas inside one argument.
func TestParseArgs(t *testing.T) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := newOptions(fs)
	rest, err := cli.ParseFlags(fs, []string{"-env", "A=1", "parse_test.go", "-json", "-args", "-x=1", "-args", "y,z"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := o.config(rest)
	if err != nil {
		t.Fatal(err)
	}
	if !o.json || !strings.HasSuffix(c.Binary, "parse_test.go") || strings.Join(c.Args, " ") != "-x=1 y,z" || strings.Join(c.Env, " ") != "A=1" {
		t.Errorf("config = %+v, json %v", c, o.json)
	}
}

package server

import (
	"flag"
	"slices"
	"strings"
	"testing"
)

// withFlags is serve.WithFlags as an opt.
func withFlags(define func(*flag.FlagSet)) opt {
	return optFunc(func(c *Config) error { return c.AddFlags(define) })
}

// Options that conflict with each other are reported with every other
// problem, in one line, whatever their order: a flag that two WithFlags
// define, or that one WithFlags takes from the library.
func TestOptionConflictsReportedAtOnce(t *testing.T) {
	greeting := func(fs *flag.FlagSet) { fs.String("greeting", "hello", "") }
	caCert := func(fs *flag.FlagSet) { fs.String("ca-cert", "", "") }
	badVersion := optFunc(func(c *Config) error { return c.SetVersion("bad") })
	opts := []opt{withFlags(greeting), badVersion, withFlags(caCert), withFlags(greeting)}
	for _, order := range [][]opt{opts, reversed(opts)} {
		c := NewConfig()
		c.Name = "p"
		err := ApplyOptions(c, order, opt.apply)
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		for _, want := range []string{
			"invalid options: ",
			`WithVersion("bad")`,
			"WithFlags: p flag redefined: ca-cert",
			"WithFlags: p flag redefined: greeting",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q lacks %q", msg, want)
			}
		}
		if strings.Count(msg, "; ") != 2 || strings.Contains(msg, "\n") {
			t.Errorf("%q: want three problems on one line", msg)
		}
	}
}

// Flags defined once each, by several WithFlags, are no conflict.
func TestDistinctFlagsAreNoConflict(t *testing.T) {
	c := NewConfig()
	err := ApplyOptions(c, []opt{
		withFlags(func(fs *flag.FlagSet) { fs.String("a", "", "") }),
		withFlags(func(fs *flag.FlagSet) { fs.String("b", "", "") }),
	}, opt.apply)
	if err != nil {
		t.Fatal(err)
	}
}

func reversed(opts []opt) []opt {
	r := slices.Clone(opts)
	slices.Reverse(r)
	return r
}

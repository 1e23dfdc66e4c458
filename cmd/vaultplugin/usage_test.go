package main

import (
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/check"
)

// A mistake on the command line exits 2 with one line naming it and the
// usage; -help exits 0 with the usage on stdout.
func TestUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no command", nil, 2, "", "usage: vaultplugin COMMAND"},
		{"unknown command", []string{"frob"}, 2, "", `unknown command "frob"`},
		{"help", []string{"help"}, 0, "usage: vaultplugin COMMAND", ""},
		{"check -help", []string{"check", "-help"}, 0, "-env KEY=VALUE", ""},
		{"no binary", []string{"check"}, 2, "", "no BINARY to check"},
		{"unknown flag", []string{"check", "-frob", "x"}, 2, "", "flag provided but not defined: -frob"},
		{"missing binary", []string{"check", "/no/such/plugin"}, 2, "", "BINARY: "},
		{"directory", []string{"check", dir}, 2, "", "is a directory"},
		{"two binaries", []string{"check", dir, dir}, 2, "", "one BINARY at a time"},
		{"bad -env", []string{"check", "-env", "NOEQUALS", dir}, 2, "", `-env "NOEQUALS": want KEY=VALUE`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := vaultplugin(t, c.args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d", r.code, c.code)
			}
			if !strings.Contains(r.stdout, c.stdout) || c.stdout == "" && r.stdout != "" {
				t.Errorf("stdout %q, want %q", r.stdout, c.stdout)
			}
			if !strings.Contains(r.stderr, c.stderr) || c.stderr == "" && r.stderr != "" {
				t.Errorf("stderr %q, want %q", r.stderr, c.stderr)
			}
		})
	}
	if check.ExitUsage != 2 {
		t.Errorf("ExitUsage = %d", check.ExitUsage)
	}
}

// A file that is no executable fails the platform check, and nothing is
// started.
func TestNotAnExecutable(t *testing.T) {
	t.Parallel()
	r := vaultplugin(t, "check", "usage_test.go")
	if r.code != check.ExitFail {
		t.Errorf("exit %d, want 1", r.code)
	}
	assertLines(t, r.stdout, map[string]expect{
		"platform": {mark: "✗", detail: "not an ELF, Mach-O or PE executable", fix: "check the compiled plugin binary"},
		"type":     {mark: "-", detail: "cannot run it on this machine"},
	})
}

package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/check"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// Every command's help, from every way to ask for it, is its usage line
// and its Long text on stdout with exit 0; a bad flag, before or after an
// argument, is the error and the usage line on stderr with exit 2.
func TestCommandHelpAndBadFlags(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		help := "usage: " + c.UsageLine + "\n\n" + c.Long
		badFlag := "vaultplugin " + c.Name + ": flag provided but not defined: -no-such-flag\n" +
			"usage: " + c.UsageLine + "\nRun 'vaultplugin help " + c.Name + "' for details.\n"
		for _, tc := range []struct {
			args           []string
			code           int
			stdout, stderr string
		}{
			{[]string{c.Name, "-help"}, 0, help, ""},
			{[]string{c.Name, "-h"}, 0, help, ""},
			{[]string{c.Name, "--help"}, 0, help, ""},
			{[]string{c.Name, "ARG", "-help"}, 0, help, ""},
			{[]string{"help", c.Name}, 0, help, ""},
			{[]string{c.Name, "-no-such-flag"}, 2, "", badFlag},
			{[]string{c.Name, "ARG", "-no-such-flag"}, 2, "", badFlag},
		} {
			t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
				t.Parallel()
				assertRun(t, vaultplugin(t, tc.args...), tc.code, tc.stdout, tc.stderr)
			})
		}
	}
}

// vaultplugin's own help lists the commands, and the hidden host command
// stays hidden.
func TestMainHelp(t *testing.T) {
	t.Parallel()
	usage := mainHelp()
	for _, c := range commands {
		if !strings.Contains(usage, "\t"+c.Name+" ") || !strings.Contains(usage, c.Short+"\n") {
			t.Errorf("the command list lacks %s: %s", c.Name, c.Short)
		}
	}
	if strings.Contains(usage, check.HostCommand) {
		t.Errorf("the command list shows the hidden %s", check.HostCommand)
	}
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"no command", nil, 2, "", usage},
		{"help", []string{"help"}, 0, usage, ""},
		{"-h", []string{"-h"}, 0, usage, ""},
		{"-help", []string{"-help"}, 0, usage, ""},
		{"--help", []string{"--help"}, 0, usage, ""},
		{"unknown command", []string{"frob"}, 2, "", "vaultplugin: unknown command \"frob\"\n\n" + usage},
		{"help for an unknown command", []string{"help", "frob"}, 2, "", "vaultplugin help: unknown command \"frob\"\n\n" + usage},
		{"help for the hidden command", []string{"help", check.HostCommand}, 2, "", "vaultplugin help: unknown command \"" + check.HostCommand + "\"\n\n" + usage},
		{"help for two commands", []string{"help", "check", "dev"}, 2, "", "vaultplugin help: one COMMAND at a time\nusage: vaultplugin help [COMMAND]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertRun(t, vaultplugin(t, tc.args...), tc.code, tc.stdout, tc.stderr)
		})
	}
}

// A mistake in check's arguments exits 2 with one line naming it and the
// usage line.
func TestCheckUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	usage := lookup("check").usage()
	for _, c := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no binary", nil, "vaultplugin check: no BINARY to check\n"},
		{"missing binary", []string{"/no/such/plugin"}, "vaultplugin check: BINARY: stat /no/such/plugin: no such file or directory\n"},
		{"directory", []string{dir}, "vaultplugin check: BINARY " + dir + " is a directory: build the plugin first (go build -o PLUGIN ./cmd/PLUGIN)\n"},
		{"two binaries", []string{dir, dir}, "vaultplugin check: one BINARY at a time, got " + dir + " " + dir + "\n"},
		{"bad -env", []string{"-env", "NOEQUALS", dir}, "vaultplugin check: -env \"NOEQUALS\": want KEY=VALUE\n"},
		{"bad -json", []string{"-json=maybe", dir}, "vaultplugin check: invalid boolean value \"maybe\" for -json: parse error\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			assertRun(t, vaultplugin(t, append([]string{"check"}, c.args...)...), cli.ExitUsage, "", c.stderr+usage)
		})
	}
}

// The help describes every flag, since the flag sets carry no usage
// strings, and check's lists every check.
func TestHelpNamesEveryFlag(t *testing.T) {
	for _, c := range commands {
		fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
		c.Flags(fs)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(c.Long, "\t-"+f.Name+" ") {
				t.Errorf("%s's help does not describe -%s", c.Name, f.Name)
			}
			// A required flag stands in the line without brackets.
			if !strings.Contains(c.UsageLine, "[-"+f.Name) && !strings.Contains(c.UsageLine, " -"+f.Name+" ") {
				t.Errorf("%s's usage line lacks -%s", c.Name, f.Name)
			}
			if f.Usage != "" {
				t.Errorf("%s -%s has a usage string of its own: %q", c.Name, f.Name, f.Usage)
			}
		})
	}
	for _, id := range check.IDs() {
		if !strings.Contains(checkHelp, "\n\t"+id+" ") {
			t.Errorf("check's help does not describe the %s check", id)
		}
	}
}

// assertRun checks a run's exit code and both streams, exactly.
func assertRun(t *testing.T, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d", r.code, code)
	}
	if r.stdout != stdout {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, stdout)
	}
	if r.stderr != stderr {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, stderr)
	}
}

// A file that is no executable fails the platform check, and nothing is
// started.
func TestNotAnExecutable(t *testing.T) {
	t.Parallel()
	r := vaultplugin(t, "check", "usage_test.go")
	if r.code != cli.ExitFailed {
		t.Errorf("exit %d, want 1", r.code)
	}
	assertLines(t, r.stdout, map[string]expect{
		"platform": {mark: "✗", detail: "not an ELF, Mach-O or PE executable", fix: "check the compiled plugin binary"},
		"type":     {mark: "-", detail: "cannot run it on this machine"},
	})
}

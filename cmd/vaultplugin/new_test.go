package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// A mistake in new's arguments exits 2 with one line naming it and the
// usage line, and writes nothing.
func TestNewUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(filepath.Join(full, "main.go"), 0o755); err != nil {
		t.Fatal(err)
	}
	usage := lookup("new").usage()
	fresh := filepath.Join(dir, "fresh")
	// After the parallel subtests: nothing was written.
	t.Cleanup(func() {
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			t.Errorf("a refused new left %s behind (%v)", fresh, err)
		}
	})
	for _, c := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no module", nil, "vaultplugin new: no MODULE: give the new plugin's module path, e.g. github.com/you/vault-plugin-secrets-foo\n"},
		{"unknown type", []string{"-type", "kv", "example.com/x", fresh}, "vaultplugin new: -type \"kv\": want secret, auth, database\n"},
		{"invalid module path", []string{"example.com/x y", fresh}, "vaultplugin new: MODULE \"example.com/x y\": malformed module path \"example.com/x y\": invalid char ' '\n"},
		{"non-empty DIR", []string{"example.com/x", full}, "vaultplugin new: DIR " + full + " is not empty (main.go): new writes only into an empty or new directory\n"},
		{"three arguments", []string{"example.com/x", fresh, "more"}, "vaultplugin new: want MODULE [DIR], got example.com/x " + fresh + " more\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			assertRun(t, vaultplugin(t, append([]string{"new"}, c.args...)...), cli.ExitUsage, "", c.stderr+usage)
		})
	}
}

// When resolving the dependencies fails (here: no module proxy), new
// exits 1 after the go command's own error, and removes what it wrote:
// the directory it created, or the files in the empty one it was given,
// so that the same command runs again once the cause is fixed.
func TestNewFailureRemovesWhatItWrote(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	given := filepath.Join(dir, "given")
	if err := os.Mkdir(given, 0o755); err != nil {
		t.Fatal(err)
	}
	offline := func(cmd *exec.Cmd) {
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	}
	for _, c := range []struct {
		name, dir string
		remains   bool
	}{
		{"a directory new creates", filepath.Join(dir, "created"), false},
		{"an empty directory given", given, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := vaultpluginWith(t, offline, "new", "-type", "auth", "-replace", root, "example.com/vault-plugin-auth-x", c.dir)
			if r.code != cli.ExitFailed {
				t.Errorf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "$ go get github.com/hashicorp/vault/sdk@latest") {
				t.Errorf("stdout does not show the go get step:\n%s", r.stdout)
			}
			if !strings.Contains(r.stderr, "vaultplugin new: go get: exit status 1") || !strings.Contains(r.stderr, "removed what it had written") {
				t.Errorf("stderr:\n%s", r.stderr)
			}
			entries, err := os.ReadDir(c.dir)
			switch {
			case !c.remains && !os.IsNotExist(err):
				t.Errorf("%s is left behind (%v, %d entries)", c.dir, err, len(entries))
			case c.remains && (err != nil || len(entries) != 0):
				t.Errorf("%s: %v, %d entries left, want it empty", c.dir, err, len(entries))
			}
		})
	}
}

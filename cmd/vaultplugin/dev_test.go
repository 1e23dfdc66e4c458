package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// withoutVault is the test's environment without a Vault to use, so that
// dev starts its own.
func withoutVault(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "VAULT_ADDR=") && !strings.HasPrefix(e, "VAULT_TOKEN=") {
			out = append(out, e)
		}
	}
	return out
}

// A work directory dev cannot create is a failure that names it, and
// nothing is left running.
func TestDevCannotCreateWorkDir(t *testing.T) {
	t.Parallel()
	notDir := t.TempDir() + "/file"
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := vaultpluginWith(t, func(cmd *exec.Cmd) {
		cmd.Env = append(withoutVault(os.Environ()), "TMPDIR="+notDir)
	}, "dev", "./internal/testplugins/stdout")
	want := "vaultplugin dev: creating the work directory: mkdir " + notDir + "/vaultplugin-dev-"
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, want) || !strings.HasSuffix(r.stderr, ": not a directory\n") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q…: not a directory", r.code, r.stdout, r.stderr, want)
	}
}

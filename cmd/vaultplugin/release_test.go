package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// The example release tests build from: a main served by serve.Run.
const releasePkg = "../../example/secrets/cmd/vault-plugin-secrets-example"

// A mistake on release's command line exits 2 with the reason and the
// usage line, before anything is built.
func TestReleaseUsage(t *testing.T) {
	t.Parallel()
	full := filepath.Join(t.TempDir(), "full")
	if err := os.MkdirAll(filepath.Join(full, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	usage := lookup("release").usage()
	for _, c := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no version", []string{"-o", "dist"}, "-version is required: the version to stamp, e.g. -version v1.2.3"},
		{"not semver", []string{"-version", "nightly", "-o", "dist"}, `-version "nightly" is not a semantic version MAJOR.MINOR.PATCH (e.g. v1.2.3, v1.2.3-rc.1): Vault's catalog and OpenBao compare the version a plugin reports with the registered one, and accept only those; give -allow-nonsemver to release under another name, unstamped`},
		{"short semver", []string{"-version", "1.2", "-o", "dist"}, `-version "1.2" is not a semantic version MAJOR.MINOR.PATCH`},
		{"no output", []string{"-version", "v1.0.0"}, "-o DIR is required: the directory to write the release into"},
		{"bad platform", []string{"-version", "v1.0.0", "-o", "dist", "-platforms", "linux/amd64,plan9/386"}, "-platforms: plan9/386 is not one of linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64"},
		{"bad type", []string{"-version", "v1.0.0", "-o", "dist", "-type", "kms"}, `-type "kms": want secret, auth or database`},
		{"push tag", []string{"-version", "v1.0.0", "-o", "dist", "-push", "127.0.0.1:5000/plugin:latest"}, `-push "127.0.0.1:5000/plugin:latest": the tag must be the version v1.0.0 (OpenBao pulls IMAGE:VERSION), or none`},
		{"image and push", []string{"-version", "v1.0.0", "-o", "dist", "-push", "127.0.0.1:5000/plugin", "-image", "ghcr.io/x/p"}, "-image ghcr.io/x/p and -push 127.0.0.1:5000/plugin name different images"},
		{"output not empty", []string{"-version", "v1.0.0", "-o", full}, "-o " + full + " is not empty: a release writes into a new or empty directory, so that no older file passes for this release's"},
		{"two packages", []string{"-version", "v1.0.0", "-o", "dist", "./a", "./b"}, "one PACKAGE at a time, got ./a ./b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := vaultplugin(t, append([]string{"release"}, c.args...)...)
			if r.code != cli.ExitUsage || r.stdout != "" || !strings.HasPrefix(r.stderr, "vaultplugin release: "+c.stderr) || !strings.HasSuffix(r.stderr, "\n"+usage) {
				t.Errorf("exit %d\nstdout: %q\nstderr: %q\nwant exit 2 and stderr %q…%q", r.code, r.stdout, r.stderr, c.stderr, usage)
			}
		})
	}
}

// -dry-run says what would be built and written, as text and as JSON,
// and writes nothing.
func TestReleaseDryRun(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "dist")
	args := []string{"release", "-dry-run", "-allow-dirty", "-version", "1.4.0", "-o", out, "-platforms", "linux/amd64,windows/arm64", "-push", "127.0.0.1:5000/example", releasePkg}
	r := vaultplugin(t, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"would build vault-plugin-secrets-example (github.com/plugkit/vaultplugin/example/secrets/cmd/vault-plugin-secrets-example) v1.4.0 for 2 platforms",
		"CGO_ENABLED=0 go build -trimpath -buildvcs=true -ldflags=-s -w -X github.com/plugkit/vaultplugin/internal/server.releaseVersion=vaultplugin-release(v1.4.0)",
		"and write into " + out + ":\n  SHA256SUMS\n  oci/\n  openbao_linux_amd64.hcl\n  registration.txt\n  release.json\n  vault-plugin-secrets-example_v1.4.0_linux_amd64\n  vault-plugin-secrets-example_v1.4.0_windows_arm64.exe\n",
		"with OCI images for linux/amd64 and their index, named 127.0.0.1:5000/example:v1.4.0",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the plan lacks %q:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("-dry-run wrote %s (%v)", out, err)
	}

	r = vaultplugin(t, append(args, "-json")...)
	var s struct {
		Schema   int  `json:"schema"`
		DryRun   bool `json:"dry_run"`
		Version  string
		Binaries []struct{ File, OS, Arch, SHA256 string }
		Images   struct{ Image, Tag string }
		Files    []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || r.code != 0 {
		t.Fatalf("-json: exit %d, %v:\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if s.Schema != 1 || !s.DryRun || s.Version != "v1.4.0" || len(s.Binaries) != 2 || s.Binaries[1].File != "vault-plugin-secrets-example_v1.4.0_windows_arm64.exe" ||
		s.Binaries[0].SHA256 != "" || s.Images.Image != "127.0.0.1:5000/example" || s.Images.Tag != "v1.4.0" || len(s.Files) != 7 {
		t.Errorf("-dry-run -json = %+v", s)
	}
}

// A checkout with uncommitted changes is refused, saying which and why;
// the same checkout once clean is not. The checkout is a clone of this
// repository's commit, so that the test's own tree may be dirty.
func TestReleaseRefusesDirtyTree(t *testing.T) {
	t.Parallel()
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout (git rev-parse: %v): nothing to clone", err)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", "--no-hardlinks", strings.TrimSpace(string(root)), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	pkg := "./example/secrets/cmd/vault-plugin-secrets-example"
	run := func(extra ...string) result {
		return vaultpluginWith(t, func(cmd *exec.Cmd) { cmd.Dir = clone },
			append([]string{"release", "-dry-run", "-version", "v1.0.0", "-o", filepath.Join(t.TempDir(), "dist"), pkg}, extra...)...)
	}
	if r := run(); r.code != 0 {
		t.Errorf("a clean clone: exit %d, %s", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(clone, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	assertRun(t, run(), cli.ExitFailed, "", "vaultplugin release: the checkout has uncommitted changes (?? notes.txt), so its commit does not say what this release was built from and a rebuild would differ: commit or stash them, or give -allow-dirty\n")
	if r := run("-allow-dirty"); r.code != 0 {
		t.Errorf("-allow-dirty: exit %d, %s", r.code, r.stderr)
	}
}

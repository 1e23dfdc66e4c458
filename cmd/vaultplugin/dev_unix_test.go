//go:build unix

package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
)

// A work directory dev cannot write in (here made so by a umask that
// takes the owner's write bit) is a failure that says why: dev cannot
// create its plugin directory there. It runs as nobody when the test runs
// as root, for whom every directory is writable.
func TestDevPluginDirNotWritable(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	// Everything the command touches is reachable by nobody: the test's
	// directories are made 0700.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mod, tmp, cache := filepath.Join(dir, "mod"), filepath.Join(dir, "tmp"), filepath.Join(dir, "cache")
	for _, d := range []string{mod, tmp, cache} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		"go.mod":  "module example.com/noperm\n\ngo 1.24\n",
		"main.go": "package main\n\nfunc main() {}\n",
	} {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	built, err := vaultpluginBin()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vaultplugin")
	copyExecutable(t, built, bin)

	// As the command runs: as nobody when the test is root, in mod.
	asUser := func(cmd *exec.Cmd) {
		cmd.Dir = mod
		cmd.Env = []string{
			"PATH=" + filepath.Dir(goBin) + ":/usr/bin:/bin",
			"HOME=" + tmp, "TMPDIR=" + tmp, "GOCACHE=" + cache, "GOPATH=" + filepath.Join(tmp, "go"),
			"GOTOOLCHAIN=local", "GOFLAGS=-mod=mod",
		}
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
	}
	// dev's go list, first with the usual umask: under 0277 go could not
	// fill its cache, and would fail before dev gets to its directories.
	warm := exec.Command(goBin, "list", "-deps", ".")
	asUser(warm)
	if out, err := warm.CombinedOutput(); err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}

	r := vaultpluginWith(t, func(cmd *exec.Cmd) {
		asUser(cmd)
		cmd.Path = "/bin/sh"
		cmd.Args = append([]string{"sh", "-c", `umask 0277 && exec "$0" "$@"`, bin}, cmd.Args[1:]...)
	}, "dev", ".")
	want := regexp.MustCompile(`^vaultplugin dev: creating the plugin directory: mkdir ` + regexp.QuoteMeta(tmp) + `/vaultplugin-dev-\d+/plugins: permission denied\n$`)
	if r.code != 1 || !want.MatchString(r.stderr) {
		t.Errorf("exit %d, stderr %q; want exit 1 and stderr matching %s", r.code, r.stderr, want)
	}
	if !regexp.MustCompile(`^work dir: ` + regexp.QuoteMeta(tmp) + `/vaultplugin-dev-\d+\n$`).MatchString(r.stdout) {
		t.Errorf("stdout %q", r.stdout)
	}
	// The work directory is removed.
	if left, err := filepath.Glob(filepath.Join(tmp, "vaultplugin-dev-*")); err != nil || len(left) > 0 {
		t.Errorf("left behind: %v (%v)", left, err)
	}
}

// copyExecutable copies the file src to dst, executable by everyone.
func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

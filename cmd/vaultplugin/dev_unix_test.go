//go:build unix

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
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

// dev -vault BIN starts BIN even when the shell holds a stale VAULT_ADDR,
// says which Vault it starts (its path, the version it prints and its
// address), and hands the server none of the shell's address variables.
// The vault here is a script that prints a version and, as a server,
// writes its environment to its log and exits, so dev fails and shows the
// log; the stale Vault hears nothing. e2e's TestDevLoop runs a real one.
func TestDevVaultWinsOverVaultAddr(t *testing.T) {
	t.Parallel()
	var stale atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stale.Add(1) }))
	defer srv.Close()
	fake := filepath.Join(t.TempDir(), "vault")
	script := "#!/bin/sh\nif [ \"$1\" = version ]; then echo 'Vault v0.0.0-fake (test), built now'; exit 0; fi\n" +
		"echo \"fake vault $*\"; env | grep '^VAULT_' | sort; echo end of env; exit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := vaultpluginWith(t, func(cmd *exec.Cmd) {
		cmd.Env = append(withoutVault(os.Environ()), "VAULT_ADDR="+srv.URL, "VAULT_TOKEN=stale", "VAULT_API_ADDR="+srv.URL, "VAULT_LOG_FORMAT=json")
	}, "dev", "-vault", fake, "./internal/testplugins/stdout")
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	lines := regexp.MustCompile(`(?m)^work dir: \S+\n` +
		`ignoring VAULT_ADDR=` + regexp.QuoteMeta(srv.URL) + `: -vault starts a dev server of its own\n` +
		`vault dev server ` + regexp.QuoteMeta(fake) + ` \(Vault v0\.0\.0-fake \(test\), built now\) on http://127\.0\.0\.1:\d+ \(log: \S+/vault\.log\)\n$`)
	if !lines.MatchString(r.stdout) {
		t.Errorf("stdout:\n%s\nwant it to match %s", r.stdout, lines)
	}
	// The server's log, its environment: VAULT_LOG_FORMAT passes, the
	// address variables do not.
	if !strings.Contains(r.stderr, "fake vault server -dev -dev-root-token-id=") || !strings.Contains(r.stderr, "VAULT_LOG_FORMAT=json\nend of env") {
		t.Errorf("stderr:\n%s\nwant the fake server's log, with VAULT_LOG_FORMAT alone", r.stderr)
	}
	if n := stale.Load(); n > 0 {
		t.Errorf("the Vault at the stale VAULT_ADDR got %d requests", n)
	}
}

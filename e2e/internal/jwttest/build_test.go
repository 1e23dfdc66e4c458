package jwttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The plugin under test: HashiCorp's JWT/OIDC auth method, built from its
// own main package.
const (
	jwtModule = "github.com/hashicorp/vault-plugin-auth-jwt"
	jwtMain   = jwtModule + "/cmd/vault-plugin-auth-jwt"
	jwtName   = "vault-plugin-auth-jwt"
)

// jwtVersions are tried in order: the newest the module proxy serves, then
// the one found in this machine's module cache when the proxy is down.
var jwtVersions = []string{"v0.26.1", "v0.25.0"}

// binEnv names a plugin binary to test instead of building one.
const binEnv = "JWTTEST_PLUGIN_BIN"

// plugin is the binary under test, or why there is none. TestMain sets it
// once, before any test runs, and nothing changes it after: it is package
// state only because TestMain has no other way to hand tests a value.
var plugin struct {
	bin, version string
	skip         string // why the tests cannot run; "" when they can
}

func TestMain(m *testing.M) {
	if err := resolvePlugin(); err != nil {
		fmt.Fprintln(os.Stderr, "jwttest:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// pluginBin returns the plugin binary, or skips t with the reason there is
// none (the module proxy was unreachable): never a silent pass.
func pluginBin(t *testing.T) string {
	t.Helper()
	if plugin.skip != "" {
		t.Skip(plugin.skip)
	}
	return plugin.bin
}

// resolvePlugin takes the binary binEnv names, or builds the plugin. It
// returns an error (the test binary then exits 1) for anything but an
// unreachable module proxy, which sets plugin.skip.
func resolvePlugin() error {
	if bin := os.Getenv(binEnv); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", binEnv, bin, err)
		}
		v, err := mainModuleVersion(abs)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", binEnv, bin, err)
		}
		plugin.bin, plugin.version = abs, v
		return nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	var tried []string
	for _, v := range jwtVersions {
		bin, out, err := install(filepath.Join(cache, "vaultplugin-jwttest", v), v)
		if err == nil {
			plugin.bin, plugin.version = bin, v
			return nil
		}
		if !unreachable(out) {
			return fmt.Errorf("go install %s@%s: %w\n%s", jwtMain, v, err, lastLines(out, 30))
		}
		tried = append(tried, fmt.Sprintf("%s@%s: %v: %s", jwtMain, v, err, lastLines(out, 3)))
	}
	plugin.skip = "skipped: " + jwtName + " cannot be built: its module cannot be fetched (no Go module proxy?):\n" + strings.Join(tried, "\n")
	return nil
}

// install builds the plugin's own main at version v with `go install
// pkg@version`, which uses the plugin module's go.mod and go.sum as its
// author released them, into dir. It returns the binary and the go
// command's output. A lock in dir makes a second test process wait for the
// first one's install instead of rewriting the binary under it.
func install(dir, v string) (bin, out string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("jwttest: plugin cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", "", fmt.Errorf("jwttest: plugin cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", "", fmt.Errorf("jwttest: plugin cache lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", jwtMain+"@"+v)
	// Outside any module and workspace: pkg@version ignores the current
	// module, but a go.work or GOFLAGS=-mod would still be refused.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=")
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", string(b), err
	}
	bin = filepath.Join(dir, jwtName)
	if _, err := os.Stat(bin); err != nil {
		return "", string(b), fmt.Errorf("jwttest: go install left no binary: %w", err)
	}
	return bin, string(b), nil
}

// mainModuleVersion reads the version of the module bin's main package
// belongs to from its build info (`go version -m`), and checks that the
// main package is the plugin's own.
func mainModuleVersion(bin string) (string, error) {
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go version -m: %w\n%s", err, out)
	}
	var path, mod, ver string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "path":
			path = f[1]
		case len(f) >= 3 && f[0] == "mod":
			mod, ver = f[1], f[2]
		}
	}
	if path != jwtMain || mod != jwtModule {
		return "", fmt.Errorf("%s is %s of module %s, not %s's own main %s", bin, path, mod, jwtModule, jwtMain)
	}
	return ver, nil
}

// unreachable reports whether the go command failed because modules could
// not be fetched at all, rather than for a reason to report as a failure.
func unreachable(out string) bool {
	for _, s := range []string{
		"dial tcp", "no such host", "connection refused", "network is unreachable",
		"i/o timeout", "TLS handshake timeout", "proxyconnect",
		"GOPROXY=off", "module lookup disabled", "403 Forbidden",
	} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestBinary checks the premise: the binary is the plugin's own main,
// unchanged, at the version the tests name, not something this
// repository wrapped.
func TestBinary(t *testing.T) {
	bin := pluginBin(t)
	v, err := mainModuleVersion(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: main package %s, module %s %s", bin, jwtMain, jwtModule, v)
	if v != plugin.version {
		t.Errorf("the binary is %s %s, want %s", jwtModule, v, plugin.version)
	}
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "github.com/plugkit/vaultplugin") {
		t.Errorf("the plugin links this repository; it must be built from its own main:\n%s", out)
	}
	var exitErr *exec.ExitError
	// Run by hand, without the host's cookie, go-plugin refuses.
	if out, err := exec.Command(bin).CombinedOutput(); !errors.As(err, &exitErr) || !strings.Contains(string(out), "This binary is a plugin") {
		t.Errorf("run by hand: %v\n%s", err, out)
	}
}

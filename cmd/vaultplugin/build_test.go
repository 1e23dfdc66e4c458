package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests run the vaultplugin command as a subprocess against real
// plugin binaries, all built once per test process into buildDir.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vaultplugin-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// exe names a binary as the OS wants it.
func exe(name string) string {
	if runtime.GOOS == "windows" {
		return name + ".exe"
	}
	return name
}

// goBuild runs go build in dir with extra environment entries.
func goBuild(dir string, env []string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// vaultpluginBin builds the command, with -race when the tests have it.
var vaultpluginBin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(buildDir, exe("vaultplugin"))
	args := []string{"-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	return out, goBuild(".", nil, append(args, ".")...)
})

// releaseFlags build a plugin as a release is built: without the C
// library and without debug information (which also halves the link).
var releaseFlags = []string{"-ldflags=-s -w"}

// plugins builds the plugins the tests check, as releases are: the
// examples, where every check passes (the modules check warns of this
// module's floor), and the test plugins under internal/testplugins, in one
// go build; and beside them
// the bare SDK main of testdata/bare, a module of its own with the newest
// SDK, and the same main built with testdata/bare/floor.mod, at the root
// module's floor: vault/api v1.5.0 ("bare-floor"). It maps each main's directory name to
// its binary.
var plugins = sync.OnceValues(func() (map[string]string, error) {
	pluginMains := []string{
		"../../example/secrets/cmd/vault-plugin-secrets-example",
		"../../example/auth/cmd/vault-plugin-auth-example",
		"../../example/database/cmd/vault-plugin-database-htpasswd",
		"./internal/testplugins/stdout",
		"./internal/testplugins/panic",
		"./internal/testplugins/cookie",
		"./internal/testplugins/nomux",
		"./internal/testplugins/versioned",
	}
	dir := filepath.Join(buildDir, "plugins") + string(filepath.Separator)
	errs := make(chan error, 3)
	go func() {
		args := append(append([]string{"-o", dir}, releaseFlags...), pluginMains...)
		errs <- goBuild(".", []string{"CGO_ENABLED=0"}, args...)
	}()
	go func() {
		args := append(append([]string{"-o", filepath.Join(dir, exe("bare"))}, releaseFlags...), ".")
		errs <- goBuild("testdata/bare", []string{"CGO_ENABLED=0"}, args...)
	}()
	go func() {
		// floor.mod pins the root module's floor, and stays there under
		// .ci/newest, which upgrades only the root module's go.mod.
		args := append(append([]string{"-modfile=floor.mod", "-o", filepath.Join(dir, exe("bare-floor"))}, releaseFlags...), ".")
		errs <- goBuild("testdata/bare", []string{"CGO_ENABLED=0"}, args...)
	}()
	for range 3 {
		if err := <-errs; err != nil {
			return nil, err
		}
	}
	bins := map[string]string{"bare": filepath.Join(dir, exe("bare")), "bare-floor": filepath.Join(dir, exe("bare-floor"))}
	for _, m := range pluginMains {
		bins[filepath.Base(m)] = filepath.Join(dir, exe(filepath.Base(m)))
	}
	return bins, nil
})

// plugin returns the path of a plugin that plugins built, by its main's
// directory name ("bare" for the bare SDK main).
func plugin(t *testing.T, name string) string {
	t.Helper()
	bins, err := plugins()
	if err != nil {
		t.Fatal(err)
	}
	bin, ok := bins[name]
	if !ok {
		t.Fatalf("no plugin %q", name)
	}
	return bin
}

// result is one run of vaultplugin.
type result struct {
	stdout, stderr string
	code           int
}

// vaultplugin runs the command with args.
func vaultplugin(t *testing.T, args ...string) result {
	t.Helper()
	return vaultpluginWith(t, nil, args...)
}

// vaultpluginWith runs the command with args after setup, if any, has
// changed how it is run (its environment, its user).
func vaultpluginWith(t *testing.T, setup func(*exec.Cmd), args ...string) result {
	t.Helper()
	bin, err := vaultpluginBin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if setup != nil {
		setup(cmd)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatalf("running vaultplugin %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		t.Errorf("vaultplugin %s: data race:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r
}

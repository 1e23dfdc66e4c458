package servetest

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// builds caches Build's results for the life of the test process.
var builds sync.Map // key string -> *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// Build compiles the main package pkg ("./cmd/my-plugin", relative to the
// test's directory, or an import path) once per test process and returns
// the binary's path; it fails t if go build fails. When the test binary is
// built with -race, so is the plugin, so the race detector covers the
// plugin side too. When the test binary is built with coverage (go test
// -cover, -coverprofile or -coverpkg: testing.CoverMode() is not ""), the
// plugin is built with -cover and the same -covermode, and the processes
// servetest starts get GOCOVERDIR set to the test binary's own
// -test.gocoverdir, so the plugin side's counters are written next to the
// test's (read them with go tool covdata; go test's own percentage counts
// the test binary only). On Windows the binary's name ends in .exe. Binaries are kept in the user's cache directory, keyed
// by package, so repeated runs relink instead of leaving copies behind.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("servetest: %v", err)
	}
	key := wd + "\x00" + pkg
	v, _ := builds.LoadOrStore(key, &buildResult{})
	r := v.(*buildResult)
	r.once.Do(func() { r.path, r.err = build(wd, pkg) })
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

func build(wd, pkg string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	flags := buildFlags()
	key := fmt.Sprintf("%s\x00%s\x00race=%v", wd, pkg, raceEnabled)
	if mode := testing.CoverMode(); mode != "" {
		key += "\x00cover=" + mode
	}
	sum := sha256.Sum256([]byte(key))
	dir := filepath.Join(cache, "vaultplugin-servetest", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	final := filepath.Join(dir, filepath.Base(filepath.Clean(pkg)))
	if runtime.GOOS == "windows" {
		// CreateProcess appends .exe to a name without an extension.
		final += ".exe"
	}
	// Link to a name of this process's own, then rename: parallel test
	// processes building the same package never see a half-written binary.
	tmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := append([]string{"build", "-o", tmp.Name()}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = wd
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("servetest: go build %s: %w\n%s", pkg, err, out)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	return final, nil
}

// buildFlags are the go build flags that follow the test binary's own:
// -race, and coverage.
func buildFlags() []string {
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	if mode := testing.CoverMode(); mode != "" {
		flags = append(flags, "-cover", "-covermode="+mode)
	}
	return flags
}

// coverDir is the GOCOVERDIR to give a plugin built with coverage: the
// directory the test binary writes its own counters to (its
// -test.gocoverdir flag, which go test sets), or "" when the test binary
// has no coverage or no such directory (the plugin then inherits the
// environment's GOCOVERDIR, if any).
func coverDir() string {
	if testing.CoverMode() == "" {
		return ""
	}
	if f := flag.Lookup("test.gocoverdir"); f != nil {
		return f.Value.String()
	}
	return ""
}

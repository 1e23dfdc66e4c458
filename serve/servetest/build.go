package servetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// plugin side too. Binaries are kept in the user's cache directory, keyed
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
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00race=%v", wd, pkg, raceEnabled)))
	dir := filepath.Join(cache, "vaultplugin-servetest", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	final := filepath.Join(dir, filepath.Base(filepath.Clean(pkg)))
	// Link to a name of this process's own, then rename: parallel test
	// processes building the same package never see a half-written binary.
	tmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"build", "-o", tmp.Name()}
	if raceEnabled {
		args = append(args, "-race")
	}
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

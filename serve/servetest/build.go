package servetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// builds caches Compile's results for the life of the test process, one
// entry per working directory and package.
var builds sync.Map // key string -> *buildResult

// buildResult is one package's build: the first caller builds it while
// the others wait (sem is held while building), and the result is kept
// unless the build was cut short by its caller's context.
type buildResult struct {
	sem  chan struct{} // capacity 1: held by the caller building
	done bool
	path string
	err  error
}

// Build compiles the main package pkg ("./cmd/my-plugin", relative to the
// test's directory, or an import path) once per test process and returns
// the binary's path; it fails t if go build fails. It is Compile for
// tests.
//
// pkg may also name a main package at a module version, as go install
// takes it ("example.com/my-plugin/cmd/my-plugin@v1.4.2", or @latest): the
// release a user runs today, to upgrade from (Plugin.Upgrade). It is
// fetched as go install fetches it (through GOPROXY, and checked against
// the checksum database) and built as go install builds it, outside the
// test's module, so that the binary's build info carries the module's
// version, which serve.Run reports to Vault. A module whose go.mod has
// replace directives cannot be built that way, as with go install.
//
// When the test binary is built with -race, so is the plugin, so the race
// detector covers the plugin side too. When the test binary is built with
// coverage (go test -cover, -coverprofile or -coverpkg: testing.CoverMode()
// is not ""), the plugin is built with -cover and the same -covermode, and
// the processes servetest starts get GOCOVERDIR set to the test binary's
// own -test.gocoverdir, so the plugin side's counters are written next to
// the test's (read them with go tool covdata; go test's own percentage
// counts the test binary only). On Windows the binary's name ends in .exe.
//
// The binary is kept in a cache, so that the next run relinks it in place
// (go build's own cache keeps the compiled packages) instead of leaving a
// copy behind: in vaultplugin-servetest/KEY/ under os.UserCacheDir()
// (~/.cache on Linux, ~/Library/Caches on macOS, %LocalAppData% on
// Windows; the system's temporary directory if there is none), where KEY
// is a hash of the test's working directory (not for a module version),
// pkg, and whether -race and which -covermode apply. Each build relinks the binary, which marks the
// entry used. Entries unused for a week are removed, and beyond the newest
// 16 those unused for an hour; this pruning runs at most once an hour
// across all test processes, so that a checkout's many test binaries do
// not each repeat it. Removing the vaultplugin-servetest directory clears
// the cache at any time no test is running.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	path, err := Compile(context.Background(), pkg)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Compile is Build for code without a testing.TB (an Example, a benchmark's
// setup, a command): it returns go build's failure as an error, holding
// the compiler's output, instead of failing a test. ctx bounds the build;
// a build that ctx cut short is not remembered, so a later call builds
// again. Builds are shared with Build: a package is compiled once per
// process, whichever of the two asks first, and a failure to compile is
// returned again to every later caller.
func Compile(ctx context.Context, pkg string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("servetest: go build %s: %w", pkg, err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	key := wd + "\x00" + pkg
	if isModuleVersion(pkg) {
		// The same wherever the test runs.
		key = pkg
	}
	v, _ := builds.LoadOrStore(key, &buildResult{sem: make(chan struct{}, 1)})
	r := v.(*buildResult)
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("servetest: go build %s: %w", pkg, ctx.Err())
	}
	defer func() { <-r.sem }()
	if r.done {
		return r.path, r.err
	}
	path, err := build(ctx, cacheRoot(), wd, pkg)
	if ctx.Err() == nil {
		r.done, r.path, r.err = true, path, err
	}
	return path, err
}

// cacheRoot is the directory Build keeps its binaries in.
func cacheRoot() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "vaultplugin-servetest")
}

// build builds pkg as seen from wd into its entry in the cache at root,
// after pruning the cache. Another process's pruning may remove the entry
// while this one builds in it (a week-old entry, in a window of
// microseconds; see pruneCache): then the build is tried once more.
func build(ctx context.Context, root, wd, pkg string) (string, error) {
	pruneCache(root, time.Now())
	key := fmt.Sprintf("%s\x00%s\x00race=%v", wd, pkg, raceEnabled)
	if isModuleVersion(pkg) {
		key = fmt.Sprintf("%s\x00race=%v", pkg, raceEnabled)
	}
	if mode := testing.CoverMode(); mode != "" {
		key += "\x00cover=" + mode
	}
	sum := sha256.Sum256([]byte(key))
	dir := filepath.Join(root, hex.EncodeToString(sum[:8]))
	path, err := buildIn(ctx, dir, wd, pkg)
	if _, statErr := os.Stat(dir); err != nil && ctx.Err() == nil && errors.Is(statErr, fs.ErrNotExist) {
		path, err = buildIn(ctx, dir, wd, pkg)
	}
	return path, err
}

// isModuleVersion reports whether pkg names a package at a module version
// ("example.com/m/cmd/x@v1.2.3"), which go install builds, rather than a
// package of the test's module or a directory.
func isModuleVersion(pkg string) bool {
	if strings.HasPrefix(pkg, ".") || filepath.IsAbs(pkg) {
		return false
	}
	path, version, ok := strings.Cut(pkg, "@")
	return ok && path != "" && version != ""
}

// buildIn builds pkg as seen from wd into the cache entry dir.
func buildIn(ctx context.Context, dir, wd, pkg string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	if isModuleVersion(pkg) {
		return installIn(ctx, dir, wd, pkg)
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
	args := append([]string{"build", "-o", tmp.Name()}, buildFlags()...)
	if err := runGo(ctx, wd, pkg, append(args, pkg)); err != nil {
		return "", err
	}
	return finish(tmp.Name(), final)
}

// installIn builds the package at a module version pkg into the cache
// entry dir with go install, which alone builds a module version as its
// main module: into a directory of this process's own (GOBIN), whose one
// binary is then renamed into place.
func installIn(ctx context.Context, dir, wd, pkg string) (string, error) {
	gobin, err := os.MkdirTemp(dir, ".build-*")
	if err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	defer os.RemoveAll(gobin)
	args := append([]string{"install"}, buildFlags()...)
	if err := runGo(ctx, wd, pkg, append(args, pkg), "GOBIN="+gobin); err != nil {
		return "", err
	}
	// go install names the binary after the package's last element
	// (the one before a major version's /vN), with .exe on Windows.
	des, err := os.ReadDir(gobin)
	if err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	if len(des) != 1 {
		return "", fmt.Errorf("servetest: go install %s wrote %d files, want one binary", pkg, len(des))
	}
	return finish(filepath.Join(gobin, des[0].Name()), filepath.Join(dir, des[0].Name()))
}

// runGo runs the go command with args in wd, with env added, for pkg.
func runGo(ctx context.Context, wd, pkg string, args []string, env ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = wd
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			// The kill's "signal: killed" would hide why.
			err = ctx.Err()
		}
		return fmt.Errorf("servetest: go %s %s: %w\n%s", args[0], pkg, err, out)
	}
	return nil
}

// finish renames the binary built at tmp to final, its place in the
// cache entry, and marks the entry used.
func finish(tmp, final string) (string, error) {
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("servetest: %w", err)
	}
	// The binary's time is when the entry was last used, which pruneCache
	// reads; go build may keep the time of an output it found up to date.
	now := time.Now()
	_ = os.Chtimes(final, now, now)
	return final, nil
}

// The cache's bounds. An entry costs a link to rebuild (go build's own
// cache keeps the compiled packages), but takes 20 to 60 MB (a plugin
// built with -race is the larger); a checkout in a new directory, a
// different package, or -race or -cover toggled each make a new one, and
// one day of sessions here left 106 entries, 3.8 GB.
const (
	// cacheMaxAge: an entry unused this long is removed. A week spans a
	// working week's pause, after which relinking costs seconds.
	cacheMaxAge = 7 * 24 * time.Hour
	// cacheKeep: beyond the newest this many, entries are removed once
	// they are cacheMinAge old, bounding the cache near 1 GB (16 at the
	// largest 60 MB) while covering a few checkouts' plugins with and
	// without -race.
	cacheKeep = 16
	// cacheMinAge: an entry used this recently is never removed, however
	// many there are, as a test process may still start its binary (Build
	// returns the path once; the test may start it much later). An hour
	// is six times go test's default -timeout of ten minutes.
	cacheMinAge = time.Hour
	// pruneEvery: the cache is pruned at most this often, whatever the
	// number of test processes, so that pruning (reading each entry's
	// times) is not repeated by every package's test binary of a go test
	// ./... run. A stamp file's time records the last time.
	pruneEvery = time.Hour
)

// pruneStamp is the file in the cache's root whose time is the last
// pruning's.
const pruneStamp = ".pruned"

// pruneCache removes entries from the cache at root (the directories
// Build made, named by 16 hex digits; nothing else is touched) by the
// bounds above, as of now. An entry's last use is the newest time among
// the directory and its files, so one another process is building in (its
// temporary .build-* file is new) counts as used now and is kept; each
// entry's time is read again just before removing it. It runs at most
// once per pruneEvery (so at most once in a test process): the stamp is
// written before the work, so parallel processes mostly skip it, and two
// that race both only remove what either may. It is best-effort:
// failures are ignored (on Windows, a binary that is running cannot be
// removed, and is tried again next time).
func pruneCache(root string, now time.Time) {
	stamp := filepath.Join(root, pruneStamp)
	if fi, err := os.Stat(stamp); err == nil && now.Sub(fi.ModTime()) < pruneEvery {
		return
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return
	}
	if err := os.WriteFile(stamp, nil, 0o644); err != nil {
		return
	}
	_ = os.Chtimes(stamp, now, now)
	dirs, err := os.ReadDir(root)
	if err != nil {
		return
	}
	type entry struct {
		path string
		used time.Time
	}
	var entries []entry
	for _, d := range dirs {
		if !d.IsDir() || !isEntryName(d.Name()) {
			continue
		}
		path := filepath.Join(root, d.Name())
		if used, ok := lastUsed(path); ok {
			entries = append(entries, entry{path, used})
		}
	}
	// Newest first: the first cacheKeep are kept by count.
	slices.SortFunc(entries, func(a, b entry) int { return b.used.Compare(a.used) })
	for i, e := range entries {
		if age := now.Sub(e.used); age <= cacheMaxAge && (i < cacheKeep || age <= cacheMinAge) {
			continue
		}
		if used, ok := lastUsed(e.path); ok && used.Equal(e.used) {
			_ = os.RemoveAll(e.path)
		}
	}
}

// isEntryName reports whether name is a cache entry's: 16 hex digits.
func isEntryName(name string) bool {
	if len(name) != 16 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// lastUsed is the newest modification time of dir and the files in it.
func lastUsed(dir string) (time.Time, bool) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return time.Time{}, false
	}
	newest := fi.ModTime()
	files, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}, false
	}
	for _, f := range files {
		if info, err := f.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
	}
	return newest, true
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

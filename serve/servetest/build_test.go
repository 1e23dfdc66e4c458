package servetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// entryAt makes a cache entry in root named by n, with a binary, whose
// last use is now-age.
func entryAt(t *testing.T, root string, n int, age time.Duration, now time.Time) string {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("%016x", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "plugin")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	setTime(t, now.Add(-age), bin, dir)
	return dir
}

func setTime(t *testing.T, at time.Time, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
}

// remaining lists the names in root, but the stamp.
func remaining(t *testing.T, root string) []string {
	t.Helper()
	des, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		if d.Name() != pruneStamp {
			names = append(names, d.Name())
		}
	}
	return names
}

func TestPruneCache(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	want := map[string]bool{} // name -> kept

	// Used within the hour: kept however many there are.
	for i := range 3 {
		want[filepath.Base(entryAt(t, root, i, time.Duration(i+1)*time.Minute, now))] = true
	}
	// An old entry another process is building in right now: its
	// temporary output is new, so it counts as used now.
	building := entryAt(t, root, 100, 30*24*time.Hour, now)
	tmp := filepath.Join(building, ".build-123")
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	setTime(t, now, tmp)
	setTime(t, now.Add(-30*24*time.Hour), building)
	want[filepath.Base(building)] = true
	// Older than an hour: the newest up to cacheKeep in all are kept.
	for i := range 20 {
		name := filepath.Base(entryAt(t, root, 200+i, 2*time.Hour+time.Duration(i)*time.Minute, now))
		want[name] = 4+i < cacheKeep
	}
	// Unused for more than a week: removed.
	want[filepath.Base(entryAt(t, root, 300, cacheMaxAge+time.Minute, now))] = false
	// Not Build's: left alone, however old.
	for _, name := range []string{"notes", "0123"} {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		setTime(t, now.Add(-365*24*time.Hour), dir)
		want[name] = true
	}

	pruneCache(root, now)
	var wantNames []string
	for name, kept := range want {
		if kept {
			wantNames = append(wantNames, name)
		}
	}
	slices.Sort(wantNames)
	if got := remaining(t, root); !slices.Equal(got, wantNames) {
		t.Errorf("after pruning:\n\t%v\nwant\n\t%v", got, wantNames)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("the build in progress lost its file: %v", err)
	}

	// Within pruneEvery nothing more is pruned, even what is due; after
	// it, it is.
	late := entryAt(t, root, 400, cacheMaxAge+time.Hour, now)
	pruneCache(root, now.Add(pruneEvery/2))
	if _, err := os.Stat(late); err != nil {
		t.Errorf("pruned again within %s: %v", pruneEvery, err)
	}
	pruneCache(root, now.Add(pruneEvery+time.Minute))
	if _, err := os.Stat(late); !os.IsNotExist(err) {
		t.Errorf("not pruned after %s: %v", pruneEvery, err)
	}
}

// build puts the binary in its entry under the cache root and marks the
// entry used each time.
func TestBuildMarksUse(t *testing.T) {
	root := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := build(context.Background(), root, wd, "../internal/testplugin")
	if err != nil {
		t.Fatal(err)
	}
	if dir := filepath.Dir(bin); filepath.Dir(dir) != root || !isEntryName(filepath.Base(dir)) {
		t.Fatalf("binary at %s, want in an entry directly under %s", bin, root)
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	setTime(t, old, bin, filepath.Dir(bin))
	// A stamp as if pruned just now, so that this build reuses the entry
	// rather than having it pruned first.
	if err := os.WriteFile(filepath.Join(root, pruneStamp), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := build(context.Background(), root, wd, "../internal/testplugin")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(again)
	if err != nil {
		t.Fatal(err)
	}
	if again != bin || time.Since(fi.ModTime()) > time.Minute {
		t.Errorf("second build: %s modified %s, want %s modified now", again, fi.ModTime(), bin)
	}
}

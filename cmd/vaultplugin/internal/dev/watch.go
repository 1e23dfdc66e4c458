package dev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pollInterval is how often dev looks at the package's Go files for a
// change: often enough that a save feels noticed at once, rarely enough
// that stat-ing a package's files costs nothing.
const pollInterval = 300 * time.Millisecond

// settleTime is how long the files must stay unchanged before a rebuild,
// so that an editor saving several files, or a formatter rewriting one
// after the save, gives one build rather than two.
const settleTime = 200 * time.Millisecond

// watch runs a cycle whenever the Go files in dirs change from before,
// until ctx ends or the dev server exits.
func (s *session) watch(ctx context.Context, dirs []string, before string) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(s.out, "stopping")
			return nil
		case <-s.serverEnd:
			return errors.New("the Vault dev server exited; its log: " + filepath.Join(s.work, "vault.log"))
		case <-tick.C:
		}
		now := snapshot(dirs)
		if now == before {
			continue
		}
		// Let the editor finish.
		for {
			time.Sleep(settleTime)
			if again := snapshot(dirs); again != now {
				now = again
				continue
			}
			break
		}
		before = now
		s.cycle(ctx)
	}
}

// snapshot fingerprints the Go files in dirs (names, sizes, times), so
// that a change to any of them changes it.
func snapshot(dirs []string) string {
	var b strings.Builder
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			fmt.Fprintf(&b, "%s/%s %d %d\n", d, e.Name(), info.Size(), info.ModTime().UnixNano())
		}
	}
	return b.String()
}

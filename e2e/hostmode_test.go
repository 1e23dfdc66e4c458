package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// hostModeArgs are the go test arguments of the project's own servetest
// tests: servetest's suite and every example's tests. Test functions only
// (-run '^Test'): an Example's output is the emulation's, and an Example
// cannot skip (servetest's doc, "On a real host").
var hostModeArgs = []string{"-run", "^Test", "./serve/servetest/", "./example/..."}

// TestServetestOnHost runs the project's servetest tests unchanged against
// each real host, as an author sets VAULTPLUGIN_TEST_HOST: each passes, or
// is skipped naming the emulation-only feature it needs (listed in the
// log). The emulation's run is the README's test command, earlier in CI.
func TestServetestOnHost(t *testing.T) {
	const group = "servetest suite + examples on the host"
	eachHost(t, group, nil, func(t *testing.T, h *host) {
		r := runGoTestIn(t, repoRoot, hostModeArgs, hostEnv+"="+h.bin)
		summary.detail(group, h, "h"+r.counts())
		for _, name := range r.skipped {
			t.Logf("skipped on %s: %s: %s", h.name(), name, r.skips[name])
		}
		t.Logf("go test %s with %s=%s: %s, %s passed/skipped/failed in %s",
			strings.Join(hostModeArgs, " "), hostEnv, h.bin, r.result(), r.counts(), r.took.Round(time.Second))
		summary.note(fmt.Sprintf("%s on %s: %s h%s (passed/skipped/failed; skips name the emulation-only feature, in the log), go test %s",
			group, h.name(), r.result(), r.counts(), r.took.Round(time.Second)))
		switch r.result() {
		case "FAIL":
			t.Errorf("on %s: %v; failed: %q\n%s", h.name(), r.err, r.failed, lastLines(r.output, 40))
		case "skip":
			t.Errorf("on %s every test skipped (%s): the suite did not run on the host", h.name(), r.why())
		}
	})
}

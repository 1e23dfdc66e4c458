package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"testing"
	"time"
)

// A third-party plugin's own servetest tests, run as its author would run
// them: e2e/internal/jwttest tests HashiCorp's JWT auth method, built from
// its own main, with servetest's API alone. This group runs that package
// with `go test` in the emulation, once, and with the real host variable
// on each host, and shows both runs' counts in the host's cell.

const (
	jwtGroup = "third-party jwt auth: its servetest tests"
	jwtPkg   = "./internal/jwttest"
	// hostEnv is servetest's variable naming a real host binary.
	hostEnv = "VAULTPLUGIN_TEST_HOST"
)

// goTestRun is one `go test -json` run of a package: its tests' outcomes.
type goTestRun struct {
	passed, skipped, failed []string // leaf tests (no subtests of their own)
	skips                   map[string]string
	output                  string        // the non-JSON output: build errors, TestMain's
	err                     error         // go test's own exit
	took                    time.Duration // go test's, the build included
	elapsed                 time.Duration // the test binary's, as go test reports it
}

// counts is "passed/skipped/failed", of leaf tests.
func (r *goTestRun) counts() string {
	return fmt.Sprintf("%d/%d/%d", len(r.passed), len(r.skipped), len(r.failed))
}

// result is the run as a table cell's word: FAIL if go test failed (a test,
// the build, or TestMain), skip if every test skipped, else pass.
func (r *goTestRun) result() string {
	switch {
	case r.err != nil || len(r.failed) > 0:
		return "FAIL"
	case len(r.passed) == 0:
		return "skip"
	}
	return "pass"
}

// why is the first skip reason, for a run in which every test skipped.
func (r *goTestRun) why() string {
	for _, name := range r.skipped {
		if s := r.skips[name]; s != "" {
			return s
		}
	}
	return ""
}

// runGoTest runs `go test -json -race -count=1 pkg` in the e2e module
// with env added: runGoTestIn for one package of this module.
func runGoTest(t *testing.T, pkg string, env ...string) *goTestRun {
	t.Helper()
	return runGoTestIn(t, "", []string{pkg}, env...)
}

// runGoTestIn runs `go test -json -race -count=1 args…` in dir ("" for
// the e2e module) with env added, and parses its events. Counts are of
// leaf tests, so every table case counts once and a parent's pass does
// not count again; a test is named by its package's last element and its
// name when args hold more than one package pattern.
func runGoTestIn(t *testing.T, dir string, args []string, env ...string) *goTestRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"test", "-json", "-race", "-count=1"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(withoutEnv(os.Environ(), hostEnv), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	r := &goTestRun{err: cmd.Run(), took: time.Since(start), skips: map[string]string{}}

	final := map[string]string{} // test → pass, fail, skip
	outputs := map[string][]string{}
	var other []string
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Action, Package, Test, Output string
			Elapsed                       float64
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			other = append(other, sc.Text())
			continue
		}
		switch {
		case ev.Test == "" && ev.Action == "output":
			other = append(other, strings.TrimRight(ev.Output, "\n"))
		case ev.Test == "" && (ev.Action == "pass" || ev.Action == "fail"):
			r.elapsed = time.Duration(ev.Elapsed * float64(time.Second))
		case ev.Test == "":
		case len(args) > 1 && (ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip"):
			final[path.Base(ev.Package)+"."+ev.Test] = ev.Action
		case len(args) > 1 && ev.Action == "output":
			outputs[path.Base(ev.Package)+"."+ev.Test] = append(outputs[path.Base(ev.Package)+"."+ev.Test], ev.Output)
		case ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip":
			final[ev.Test] = ev.Action
		case ev.Action == "output":
			outputs[ev.Test] = append(outputs[ev.Test], ev.Output)
		}
	}
	var names []string
	for name := range final {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		if i+1 < len(names) && strings.HasPrefix(names[i+1], name+"/") {
			continue // a parent: its subtests count
		}
		switch final[name] {
		case "pass":
			r.passed = append(r.passed, name)
		case "skip":
			r.skipped = append(r.skipped, name)
			r.skips[name] = skipReason(outputs[name])
		case "fail":
			r.failed = append(r.failed, name)
			t.Logf("%s failed:\n%s", name, strings.Join(outputs[name], ""))
		}
	}
	r.output = strings.TrimSpace(strings.Join(other, "\n") + "\n" + stderr.String())
	return r
}

// skipReason is the message of t.Skip in a skipped test's output: the
// lines after "--- SKIP".
func skipReason(out []string) string {
	var why []string
	for _, l := range out {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		why = append(why, l)
	}
	return strings.Join(why, " ")
}

// withoutEnv drops the variable name from env.
func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestThirdPartyServetest runs e2e/internal/jwttest in the emulation (once,
// first: it needs no host) and on each host with servetest's host
// variable; each host's cell shows both runs' counts of leaf tests,
// passed/skipped/failed.
func TestThirdPartyServetest(t *testing.T) {
	var emu *goTestRun
	t.Run("emulation", func(t *testing.T) {
		emu = runGoTest(t, jwtPkg)
		t.Logf("go test %s in the emulation: %s, %s passed/skipped/failed; tests %s (go test %s)",
			jwtPkg, emu.result(), emu.counts(), emu.elapsed.Round(100*time.Millisecond), emu.took.Round(100*time.Millisecond))
		summary.note(fmt.Sprintf("%s: run once in the emulation (e in each host's cell; h: on that host; counts passed/skipped/failed): %s e%s, tests %s",
			jwtGroup, emu.result(), emu.counts(), emu.elapsed.Round(100*time.Millisecond)))
		checkRun(t, "the emulation", emu)
	})

	eachHost(t, jwtGroup, nil, func(t *testing.T, h *host) {
		detail := "e" + emu.counts() + " h"
		defer func() { summary.detail(jwtGroup, h, detail) }()
		if emu.result() != "pass" {
			detail += "-"
			t.Skipf("not run on %s: the emulation's run did not pass (%s)", h.name(), emu.result())
		}
		r := runGoTest(t, jwtPkg, hostEnv+"="+h.bin)
		detail += r.counts()
		t.Logf("go test %s with %s=%s: %s, %s passed/skipped/failed; tests %s (go test %s), in the emulation %s",
			jwtPkg, hostEnv, h.bin, r.result(), r.counts(), r.elapsed.Round(100*time.Millisecond), r.took.Round(100*time.Millisecond), emu.elapsed.Round(100*time.Millisecond))
		summary.note(fmt.Sprintf("%s on %s: %s h%s, tests %s (emulation %s)", jwtGroup, h.name(), r.result(), r.counts(),
			r.elapsed.Round(100*time.Millisecond), emu.elapsed.Round(100*time.Millisecond)))
		checkRun(t, h.name(), r)
	})
}

// checkRun fails t for a run that failed and skips it for a run in which
// every test skipped, with the reason: never a silent pass.
func checkRun(t *testing.T, where string, r *goTestRun) {
	t.Helper()
	switch r.result() {
	case "FAIL":
		t.Errorf("go test %s on %s: %v; failed: %q\n%s", jwtPkg, where, r.err, r.failed, lastLines(r.output, 40))
	case "skip":
		t.Skipf("go test %s on %s: every test skipped: %s", jwtPkg, where, r.why())
	}
	if len(r.skipped) > 0 {
		t.Logf("skipped on %s: %q: %s", where, r.skipped, r.why())
	}
}

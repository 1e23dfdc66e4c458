package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/check"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// line is one check's line of the text report: its mark, its detail and,
// under a ✗, the fix.
type line struct{ mark, detail, fix string }

// parseText reads a text report into its lines by check ID, failing t
// unless every check has exactly one line.
func parseText(t *testing.T, out string) map[string]line {
	t.Helper()
	lines := map[string]line{}
	last := ""
	for _, l := range strings.Split(out, "\n") {
		if fix, ok := strings.CutPrefix(strings.TrimSpace(l), "fix: "); ok && last != "" {
			r := lines[last]
			r.fix = fix
			lines[last] = r
			continue
		}
		mark, rest, ok := strings.Cut(l, " ")
		if !ok || !slices.Contains([]string{"✓", "✗", "·", "-"}, mark) {
			continue
		}
		id, detail, _ := strings.Cut(strings.TrimSpace(rest), " ")
		lines[id] = line{mark: mark, detail: strings.TrimSpace(detail)}
		last = id
	}
	for _, id := range check.IDs() {
		if _, ok := lines[id]; !ok {
			t.Errorf("no line for %s in:\n%s", id, out)
		}
	}
	return lines
}

// expect is what a test wants of one check's line: its mark and words its
// detail and fix hold.
type expect struct {
	mark        string
	detail, fix string
}

// assertLines checks the lines named in want; every ✗ must have a fix and
// every other mark none.
func assertLines(t *testing.T, out string, want map[string]expect) {
	t.Helper()
	lines := parseText(t, out)
	for id, w := range want {
		got := lines[id]
		if got.mark != w.mark {
			t.Errorf("%s: %s %s, want %s", id, got.mark, got.detail, w.mark)
		}
		if !strings.Contains(got.detail, w.detail) {
			t.Errorf("%s: detail %q, want it to hold %q", id, got.detail, w.detail)
		}
		if !strings.Contains(got.fix, w.fix) {
			t.Errorf("%s: fix %q, want it to hold %q", id, got.fix, w.fix)
		}
	}
	for id, l := range lines {
		if (l.mark == "✗") != (l.fix != "") {
			t.Errorf("%s: %s with fix %q: every ✗, and only a ✗, has a fix", id, l.mark, l.fix)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", out)
	}
}

// onUnix is mark on Unix, and "-" (skipped) on Windows, where there are
// no signals to send.
func onUnix(mark string) string {
	if runtime.GOOS == "windows" {
		return "-"
	}
	return mark
}

// passing is what a plugin served by serve.Run gets for every check.
func passing() map[string]expect {
	want := map[string]expect{}
	for _, id := range check.IDs() {
		want[id] = expect{mark: "✓"}
	}
	if runtime.GOOS != "linux" {
		want["static"] = expect{mark: "-", detail: "always link"}
	}
	want["sigint"] = expect{mark: onUnix("✓")}
	want["sigterm"] = expect{mark: onUnix("✓")}
	return want
}

// The examples and a versioned plugin, all served by serve.Run and built
// with CGO_ENABLED=0, pass every check.
func TestServeRunPasses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		plugin string
		typ    string
		detail map[string]string
	}{
		{"vault-plugin-secrets-example", "a secrets engine", map[string]string{
			"version": "this build has no version", "request": `read "info"`}},
		{"vault-plugin-auth-example", "an auth method", nil},
		{"vault-plugin-database-htpasswd", `a database plugin (Type: "htpasswd")`, map[string]string{
			"protocol": "serves protocol 5, 6; multiplexed: two connections, one process"}},
		{"versioned", "a secrets engine", map[string]string{
			"version": "reports v1.2.3 to the host; -version prints the same"}},
	} {
		t.Run(c.plugin, func(t *testing.T) {
			t.Parallel()
			r := vaultplugin(t, "check", plugin(t, c.plugin))
			if r.code != cli.ExitOK {
				t.Errorf("exit %d, want 0; stderr: %s", r.code, r.stderr)
			}
			want := passing()
			want["type"] = expect{mark: "✓", detail: c.typ}
			for id, d := range c.detail {
				w := want[id]
				w.detail = d
				want[id] = w
			}
			assertLines(t, r.stdout, want)
			if !strings.HasSuffix(strings.TrimSpace(r.stdout), "passed") || strings.Contains(r.stdout, "failed") {
				t.Errorf("summary: %q", r.stdout[strings.LastIndex(strings.TrimSpace(r.stdout), "\n")+1:])
			}
		})
	}
}

// The bare SDK main of Vault's documentation serves, but is orphaned when
// its host dies, reports no version, and greets a person with go-plugin's
// generic text; SIGTERM kills it without cleanup.
func TestBareSDK(t *testing.T) {
	t.Parallel()
	r := vaultplugin(t, "check", plugin(t, "bare"))
	if r.code != cli.ExitFailed {
		t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
	}
	want := passing()
	want["host-death"] = expect{mark: "✗", detail: "still running 5s after its host was killed",
		fix: "use serve.Run: it watches its parent and exits when its host dies"}
	want["version"] = expect{mark: "✗", detail: "reports no version to the host, and -version does not answer",
		fix: "use serve.Run"}
	want["by-hand"] = expect{mark: "✗", detail: "go-plugin's generic text", fix: "use serve.Run"}
	want["sigterm"] = expect{mark: onUnix("✗"), fix: onUnixText("use serve.Run: it stops on SIGTERM")}
	// Whether mlockall works without CAP_IPC_LOCK depends on this
	// machine's RLIMIT_MEMLOCK; when it fails, the bare main does not say
	// why.
	delete(want, "mlock")
	assertLines(t, r.stdout, want)
}

func onUnixText(s string) string {
	if runtime.GOOS == "windows" {
		return ""
	}
	return s
}

// Deliberately broken binaries fail the checks that find their fault,
// each with its fix, and the checks that need what they lack are skipped.
func TestBrokenPlugins(t *testing.T) {
	t.Parallel()
	skipped := func(ids ...string) map[string]expect {
		m := map[string]expect{}
		for _, id := range ids {
			m[id] = expect{mark: "-"}
		}
		return m
	}
	for _, c := range []struct {
		name  string
		build func(t *testing.T) string
		want  map[string]expect
	}{{
		name:  "output before the handshake",
		build: func(t *testing.T) string { return plugin(t, "stdout") },
		want: merge(skipped("protocol", "metadata", "version", "request", "sigint", "sigterm", "host-death", "mlock"), map[string]expect{
			"type":   {mark: "✓", detail: "answers the backend cookie"},
			"stdout": {mark: "✗", detail: `1 line before the handshake line, the first: "starting the stdout test plugin"`, fix: "write nothing to stdout"},
			"handshake": {mark: "✗", detail: `Vault refuses it: "Unrecognized remote plugin message: starting the stdout test plugin"`,
				fix: "write nothing to stdout before serving"},
			"by-hand": {mark: "✓", detail: "is a Vault secrets engine plugin"},
		}),
	}, {
		name:  "panic in the factory",
		build: func(t *testing.T) string { return plugin(t, "panic") },
		want: merge(skipped("protocol", "metadata", "version", "request"), map[string]expect{
			"handshake": {mark: "✓"},
			"type": {mark: "✗", detail: `a mount's Setup crashed the plugin: "panic: the factory is broken"`,
				fix: "fix the panic in the factory"},
		}),
	}, {
		name:  "wrong cookie",
		build: func(t *testing.T) string { return plugin(t, "cookie") },
		want: merge(skipped("stdout", "handshake", "protocol", "metadata", "version", "request", "sigint", "sigterm", "host-death", "mlock"), map[string]expect{
			"type": {mark: "✗", detail: "answers neither of Vault's handshake cookies",
				fix: "serve with Vault's handshake cookie"},
			"by-hand": {mark: "✗", detail: "This binary is a plugin", fix: "use serve.Run"},
		}),
	}, {
		name:  "CGO build",
		build: cgoBuild,
		want: map[string]expect{
			"platform": {mark: "✓"},
			"static": {mark: "✗", detail: "dynamically linked (interpreter ",
				fix: "a CGO binary fails on the Alpine-based Vault image; build with CGO_ENABLED=0"},
			"handshake": {mark: "✓"},
			"request":   {mark: "✓"},
		},
	}, {
		name:  "another architecture",
		build: otherArchBuild,
		want: merge(skipped("type", "stdout", "handshake", "protocol", "metadata", "version", "request", "sigint", "sigterm", "host-death", "by-hand", "mlock"), map[string]expect{
			"platform": {mark: "✗", detail: "but this machine is " + runtime.GOOS + "/" + runtime.GOARCH,
				fix: "build it with GOOS=" + runtime.GOOS + " GOARCH=" + runtime.GOARCH},
		}),
	}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := vaultplugin(t, "check", c.build(t))
			if r.code != cli.ExitFailed {
				t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
			}
			assertLines(t, r.stdout, c.want)
		})
	}
}

func merge(a, b map[string]expect) map[string]expect {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// cgoBuild builds the secrets example with cgo, which links the C library
// dynamically, or skips t when there is no C compiler.
func cgoBuild(t *testing.T) string {
	if runtime.GOOS != "linux" {
		t.Skip("only a Linux binary can be statically linked, and only there does the check look")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc: cannot build a CGO binary")
	}
	out := filepath.Join(t.TempDir(), "cgo")
	args := append(append([]string{"-o", out}, releaseFlags...), "../../example/secrets/cmd/vault-plugin-secrets-example")
	if err := goBuild(".", []string{"CGO_ENABLED=1"}, args...); err != nil {
		t.Fatal(err)
	}
	return out
}

// otherArchBuild builds a plugin for an architecture this machine is not:
// the smallest of the test plugins, since only its header is read.
func otherArchBuild(t *testing.T) string {
	arch := "arm64"
	if runtime.GOARCH == "arm64" {
		arch = "amd64"
	}
	out := filepath.Join(t.TempDir(), exe("other-arch"))
	args := append(append([]string{"-o", out}, releaseFlags...), "./internal/testplugins/cookie")
	if err := goBuild(".", []string{"CGO_ENABLED=0", "GOARCH=" + arch}, args...); err != nil {
		t.Fatal(err)
	}
	return out
}

// -json gives the same report as JSON, here for a plugin that passes some
// checks, fails some and has one informational line; flags may follow
// BINARY.
func TestJSONReport(t *testing.T) {
	t.Parallel()
	bin := plugin(t, "nomux")
	r := vaultplugin(t, "check", bin, "-json")
	if r.code != cli.ExitFailed {
		t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
	}
	var rep struct {
		Schema int            `json:"schema"`
		Binary string         `json:"binary"`
		Kind   string         `json:"kind"`
		Type   string         `json:"type"`
		Passed bool           `json:"passed"`
		Counts map[string]int `json:"counts"`
		Checks []struct {
			ID, Status, Detail, Fix string
			Millis                  *int64 `json:"duration_ms"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if rep.Schema != 1 || rep.Binary != bin || rep.Kind != "backend" || rep.Type != "secret" || rep.Passed {
		t.Errorf("schema %d, binary %q, kind %q, type %q, passed %v", rep.Schema, rep.Binary, rep.Kind, rep.Type, rep.Passed)
	}
	var ids []string
	status := map[string]string{}
	total := 0
	for _, c := range rep.Checks {
		ids = append(ids, c.ID)
		status[c.ID] = c.Status
		if (c.Status == "fail") != (c.Fix != "") || c.Detail == "" || c.Millis == nil {
			t.Errorf("%s: status %s, detail %q, fix %q, duration %v", c.ID, c.Status, c.Detail, c.Fix, c.Millis)
		}
	}
	for _, n := range rep.Counts {
		total += n
	}
	if !slices.Equal(ids, check.IDs()) || total != len(ids) {
		t.Errorf("checks %v (counted %d), want %v", ids, total, check.IDs())
	}
	for id, want := range map[string]string{"protocol": "info", "version": "fail", "host-death": "fail", "request": "pass", "handshake": "pass"} {
		if status[id] != want {
			t.Errorf("%s: %s, want %s", id, status[id], want)
		}
	}
	for _, c := range rep.Checks {
		if c.ID == "version" && !strings.Contains(c.Detail, "reports v1.0.0 to the host, but -version prints v2.0.0") {
			t.Errorf("version: %s", c.Detail)
		}
	}
}

// The operator's -args and -env reach the plugin: a flag it does not know,
// and a setting it refuses, fail its start as they would under Vault, and
// the report quotes the plugin's own cause line.
func TestOperatorSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		args   []string
		detail string
	}{
		{"args", []string{"-args", "-no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{"env", []string{"-env", "VAULTPLUGIN_HTTP_ADDR=192.0.2.1:9"}, `VAULTPLUGIN_HTTP_ADDR: \"192.0.2.1:9\" is not a loopback address`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"check"}, c.args...), plugin(t, "vault-plugin-secrets-example"))
			r := vaultplugin(t, args...)
			if r.code != cli.ExitFailed {
				t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
			}
			assertLines(t, r.stdout, map[string]expect{
				"type": {mark: "✗", detail: "answers the backend cookie VAULT_BACKEND_PLUGIN, but exited before its handshake",
					fix: "Unrecognized remote plugin message"},
				"handshake": {mark: "-"},
				"by-hand":   {mark: "✓"},
			})
			if d := parseText(t, r.stdout)["type"].detail; !strings.Contains(d, c.detail) {
				t.Errorf("type: %q does not name the cause %q", d, c.detail)
			}
		})
	}
}

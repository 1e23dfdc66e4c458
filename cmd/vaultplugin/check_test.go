package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	goversion "github.com/hashicorp/go-version"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/check"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// line is one check's line of the text report: its mark, its detail and,
// under a ✗ or a !, the fix.
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
		if !ok || !slices.Contains([]string{"✓", "✗", "!", "·", "-"}, mark) {
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

// assertLines checks the lines named in want; every ✗ and ! must have a
// fix and every other mark none.
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
		if (l.mark == "✗" || l.mark == "!") != (l.fix != "") {
			t.Errorf("%s: %s with fix %q: every ✗ and !, and only those, have a fix", id, l.mark, l.fix)
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

// modulesLine is the modules line of a plugin built in this module: at
// go.mod's floor (the README's test command) it links an SDK older than
// Vault's and warns; under .ci/newest, which upgrades every requirement,
// it passes.
var modulesLine = sync.OnceValue(func() expect {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/hashicorp/vault/sdk").Output()
	sdk := strings.TrimSpace(string(out))
	if v, verr := goversion.NewVersion(sdk); err == nil && verr == nil && !v.LessThan(goversion.Must(goversion.NewVersion("v0.20.0"))) {
		return expect{mark: "✓", detail: "none older than Vault 1.21.0 links"}
	}
	return expect{mark: "!", detail: "older than Vault 1.21.0 links: vault/sdk " + sdk + " < v0.20.0",
		fix: "go get github.com/hashicorp/vault/sdk@v0.20.0"}
})

// passing is what a plugin served by serve.Run gets for every check: a
// pass, but for the modules warning of this module's floor.
func passing() map[string]expect {
	want := map[string]expect{}
	for _, id := range check.IDs() {
		want[id] = expect{mark: "✓"}
	}
	want["modules"] = modulesLine()
	if runtime.GOOS != "linux" {
		want["static"] = expect{mark: "-", detail: "always link"}
	}
	want["sigint"] = expect{mark: onUnix("✓")}
	want["sigterm"] = expect{mark: onUnix("✓")}
	return want
}

// The examples and a versioned plugin, all served by serve.Run and built
// with CGO_ENABLED=0, pass every check, and only warn that this module's
// floor links an older SDK than Vault.
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
			summary := "passed" // under .ci/newest: the modules line passes too
			if modulesLine().mark == "!" {
				summary = "passed, 1 warning"
			}
			if !strings.HasSuffix(strings.TrimSpace(r.stdout), summary) || strings.Contains(r.stdout, "failed") {
				t.Errorf("summary: %q", r.stdout[strings.LastIndex(strings.TrimSpace(r.stdout), "\n")+1:])
			}
		})
	}
}

// The bare SDK main of Vault's documentation, with the newest SDK, serves:
// it fails for losing processes and cleanup, being orphaned when its host
// dies and killed by SIGTERM, and warns for what Vault accepts, reporting
// no version and greeting a person with go-plugin's generic text. Each fix
// names the bare SDK's remedy and serve.Run.
func TestBareSDK(t *testing.T) {
	t.Parallel()
	r := vaultplugin(t, "check", plugin(t, "bare"))
	if r.code != cli.ExitFailed {
		t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
	}
	want := passing()
	want["modules"] = expect{mark: "✓", detail: "none older than Vault 1.21.0 links"}
	want["host-death"] = expect{mark: "✗", detail: "still running 5s after its host was killed",
		fix: "use serve.Run: it watches its parent and exits when its host dies; go-plugin does not, so a bare SDK main must itself exit when os.Getppid() changes"}
	want["version"] = expect{mark: "!", detail: "reports no version to the host, and -version does not answer",
		fix: "a bare SDK backend sets framework.Backend's RunningVersion"}
	want["by-hand"] = expect{mark: "!", detail: "go-plugin's generic text", fix: "a bare SDK main can check that VAULT_BACKEND_PLUGIN is unset"}
	want["sigterm"] = expect{mark: onUnix("✗"), fix: onUnixText("go-plugin handles no SIGTERM (it only ignores SIGINT), so a bare SDK main dies mid-request: catch it with signal.Notify")}
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
// each with its fix, and the checks that need what they lack are skipped;
// a CGO build, which Vault serves where its C library is, only warns.
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
		code  int
		want  map[string]expect
	}{{
		name:  "output before the handshake",
		code:  cli.ExitFailed,
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
		code:  cli.ExitFailed,
		want: merge(skipped("protocol", "metadata", "version", "request"), map[string]expect{
			"handshake": {mark: "✓"},
			"type": {mark: "✗", detail: `a mount's Setup crashed the plugin: "panic: the factory is broken"`,
				fix: "fix the panic in the factory"},
			"by-hand": {mark: "!", detail: "go-plugin's generic text"},
		}),
	}, {
		name:  "wrong cookie",
		build: func(t *testing.T) string { return plugin(t, "cookie") },
		code:  cli.ExitFailed,
		want: merge(skipped("stdout", "handshake", "protocol", "metadata", "version", "request", "sigint", "sigterm", "host-death", "mlock"), map[string]expect{
			"type": {mark: "✗", detail: "answers neither of Vault's handshake cookies",
				fix: "serve with Vault's handshake cookie"},
			"by-hand": {mark: "!", detail: "This binary is a plugin", fix: "serve.Run names the plugin"},
		}),
	}, {
		name:  "CGO build",
		build: cgoBuild,
		code:  cli.ExitOK,
		want: merge(passing(), map[string]expect{
			"static": {mark: "!", detail: "dynamically linked (interpreter ",
				fix: "build with CGO_ENABLED=0"},
		}),
	}, {
		name:  "another architecture",
		build: otherArchBuild,
		code:  cli.ExitFailed,
		want: merge(skipped("type", "stdout", "handshake", "protocol", "metadata", "version", "request", "sigint", "sigterm", "host-death", "by-hand", "mlock"), map[string]expect{
			"platform": {mark: "✗", detail: "but this machine is " + runtime.GOOS + "/" + runtime.GOARCH,
				fix: "build it with GOOS=" + runtime.GOOS + " GOARCH=" + runtime.GOARCH},
		}),
	}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := vaultplugin(t, "check", c.build(t))
			if r.code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, c.code, r.stderr)
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

// jsonReport is check's -json report as the tests read it.
type jsonReport struct {
	Schema int            `json:"schema"`
	Binary string         `json:"binary"`
	Kind   string         `json:"kind"`
	Type   string         `json:"type"`
	TLS    *string        `json:"tls"`
	Passed bool           `json:"passed"`
	Counts map[string]int `json:"counts"`
	Checks []struct {
		ID, Status, Detail, Fix string
		Millis                  *int64 `json:"duration_ms"`
	} `json:"checks"`
}

// parseJSON reads a -json report, failing t unless every check is there
// once, in order, counted, with a detail and a fix exactly when it fails
// or warns.
func parseJSON(t *testing.T, out string) (jsonReport, map[string]string) {
	t.Helper()
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var ids []string
	status := map[string]string{}
	total := 0
	for _, c := range rep.Checks {
		ids = append(ids, c.ID)
		status[c.ID] = c.Status
		if (c.Status == "fail" || c.Status == "warn") != (c.Fix != "") || c.Detail == "" || c.Millis == nil {
			t.Errorf("%s: status %s, detail %q, fix %q, duration %v", c.ID, c.Status, c.Detail, c.Fix, c.Millis)
		}
	}
	for _, n := range rep.Counts {
		total += n
	}
	if !slices.Equal(ids, check.IDs()) || total != len(ids) {
		t.Errorf("checks %v (counted %d), want %v", ids, total, check.IDs())
	}
	if rep.TLS == nil {
		t.Error(`no "tls" field`)
	}
	return rep, status
}

// -json gives the same report as JSON, here for a plugin that passes some
// checks, fails some, warns on some and has one informational line; flags
// may follow BINARY.
func TestJSONReport(t *testing.T) {
	t.Parallel()
	bin := plugin(t, "nomux")
	r := vaultplugin(t, "check", bin, "-json")
	if r.code != cli.ExitFailed {
		t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
	}
	rep, status := parseJSON(t, r.stdout)
	if rep.Schema != 1 || rep.Binary != bin || rep.Kind != "backend" || rep.Type != "secret" || *rep.TLS != "automtls" || rep.Passed {
		t.Errorf("schema %d, binary %q, kind %q, type %q, tls %q, passed %v", rep.Schema, rep.Binary, rep.Kind, rep.Type, *rep.TLS, rep.Passed)
	}
	modules := map[string]string{"!": "warn", "✓": "pass"}[modulesLine().mark]
	for id, want := range map[string]string{"protocol": "info", "version": "warn", "modules": modules, "host-death": "fail", "request": "pass", "handshake": "pass"} {
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

// -json names the cookie a plugin took for its own also when it then fails
// to start, here under an argument it does not know: "kind" is "backend",
// "type" and "tls" are empty, and the type check says that Vault's
// fallback, the legacy TLS path, failed too.
func TestJSONKindOfAFailedStart(t *testing.T) {
	t.Parallel()
	r := vaultplugin(t, "check", "-json", "-args", "-no-such-flag", plugin(t, "vault-plugin-secrets-example"))
	if r.code != cli.ExitFailed {
		t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
	}
	rep, status := parseJSON(t, r.stdout)
	if rep.Kind != "backend" || rep.Type != "" || *rep.TLS != "" || rep.Passed || status["type"] != "fail" || status["handshake"] != "skip" {
		t.Errorf("kind %q, type %q, tls %q, passed %v, type check %s, handshake %s", rep.Kind, rep.Type, *rep.TLS, rep.Passed, status["type"], status["handshake"])
	}
	for _, c := range rep.Checks {
		if c.ID == "type" && !strings.Contains(c.Detail, "on the legacy TLS path, Vault's fallback, the same") {
			t.Errorf("type: %s", c.Detail)
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

// The docs' bare SDK main linked with vault/api v1.5.0 (the root module's
// floor, testdata/bare/floor.mod) fails its AutoMTLS start: its TLS provider unwraps a token the host never
// sent, and exits. Vault then serves it on the legacy TLS path, and so
// does check: it warns at handshake, with the api upgrade as the fix, and
// runs every other check on that path. What fails is what the bare SDK
// loses there too: its process when the host dies, its cleanup on SIGTERM.
func TestLegacyTLSPath(t *testing.T) {
	t.Parallel()
	r := vaultplugin(t, "check", "-json", plugin(t, "bare-floor"))
	if r.code != cli.ExitFailed {
		t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
	}
	rep, status := parseJSON(t, r.stdout)
	if rep.Kind != "backend" || rep.Type != "secret" || *rep.TLS != "legacy" {
		t.Errorf("kind %q, type %q, tls %q; want backend, secret, legacy", rep.Kind, rep.Type, *rep.TLS)
	}
	want := map[string]struct{ status, detail, fix string }{
		"modules": {"warn", "vault/api v1.5.0 < v1.22.0", "github.com/hashicorp/vault/api@v1.22.0"},
		"type":    {"pass", "a secrets engine", ""},
		"stdout":  {"pass", "nothing before the handshake line 1|4|", ""},
		"handshake": {"warn", "serves, but only over the legacy TLS path (a wrapping token, protocol 4, one process per mount), to which Vault falls back: " +
			"under AutoMTLS it exited: plugin tls init: error parsing wrapping token", "upgrade github.com/hashicorp/vault/api to ≥ v1.8.0"},
		"protocol":   {"info", "serves protocol 3, 4, 5; on the legacy TLS path Vault offers 3 and 4", ""},
		"metadata":   {"pass", "starts in metadata mode", ""},
		"version":    {"warn", "reports no version to the host, and -version does not answer", "framework.Backend's RunningVersion"},
		"request":    {"pass", "on a fresh mount answered", ""},
		"host-death": {"fail", "still running 5s after its host was killed", "go-plugin does not"},
		"by-hand":    {"warn", "go-plugin's generic text", "serve.Run"},
	}
	if runtime.GOOS != "windows" {
		want["sigint"] = struct{ status, detail, fix string }{"pass", "still serving", ""}
		want["sigterm"] = struct{ status, detail, fix string }{"fail", "SIGTERM killed it", "signal.Notify(ch, syscall.SIGTERM)"}
	}
	for _, c := range rep.Checks {
		w, ok := want[c.ID]
		if ok && (c.Status != w.status || !strings.Contains(c.Detail, w.detail) || !strings.Contains(c.Fix, w.fix)) {
			t.Errorf("%s: %s %q, fix %q; want %s %q…, fix …%q…", c.ID, c.Status, c.Detail, c.Fix, w.status, w.detail, w.fix)
		}
	}
	if t.Failed() {
		t.Logf("statuses %v", status)
	}
}

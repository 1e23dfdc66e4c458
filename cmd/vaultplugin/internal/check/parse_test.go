package check

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestParseHandshake(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		app  int
	}{
		{"1|5|unix|/tmp/plugin1|grpc|MIIB", true, 5},
		{"1|4|tcp|127.0.0.1:10000|grpc", true, 4},
		{"1|3|tcp|127.0.0.1:10000", true, 3},
		{"starting my plugin", false, 0},
		{"2|5|unix|/tmp/p|grpc", false, 0},
		{"1|x|unix|/tmp/p|grpc", false, 0},
		{"1|5|unix", false, 0},
	} {
		hs, ok := parseHandshake(c.line)
		if ok != c.ok || hs.app != c.app {
			t.Errorf("parseHandshake(%q) = %+v, %v; want app %d, %v", c.line, hs, ok, c.app, c.ok)
		}
	}
}

func TestPickPath(t *testing.T) {
	doc := func(paths map[string]any) *logical.Response {
		return &logical.Response{Data: map[string]any{"openapi": map[string]any{"paths": paths}}}
	}
	get := map[string]any{"get": map[string]any{}}
	list := map[string]any{"get": map[string]any{"parameters": []any{map[string]any{"name": "list"}}}}
	post := map[string]any{"post": map[string]any{}}
	for _, c := range []struct {
		name string
		help *logical.Response
		path string
		op   logical.Operation
	}{
		{"no help", nil, "", logical.ReadOperation},
		{"no document", &logical.Response{Data: map[string]any{"help": "text"}}, "", logical.ReadOperation},
		{"a read before a list", doc(map[string]any{"/data": list, "/info": get, "/login": post}), "info", logical.ReadOperation},
		{"a list before a template", doc(map[string]any{"/users/": list, "/users/{name}": get}), "users/", logical.ListOperation},
		{"a template filled", doc(map[string]any{"/roles/{name}/creds/{id}": get}), "roles/vaultplugin-check/creds/vaultplugin-check", logical.ReadOperation},
		{"no GET", doc(map[string]any{"/login": post}), "", logical.ReadOperation},
	} {
		path, op := pickPath(c.help)
		if path != c.path || op != c.op {
			t.Errorf("%s: %s %q, want %s %q", c.name, op, path, c.op, c.path)
		}
	}
}

func TestCause(t *testing.T) {
	for _, c := range []struct {
		name           string
		stdout, stderr []string
		want           string
	}{
		{"stdout first", []string{"", "plugin: bad flag"}, []string{"[ERROR] x"}, "plugin: bad flag"},
		{"a panic", nil, []string{"goroutine 1", "panic: boom", "main.main()"}, "panic: boom"},
		{"a JSON error", nil, []string{`{"@level":"info","@message":"hi"}`, `{"@level":"error","@message":"failed","error":"no"}`}, "failed: no"},
		{"hclog text", nil, []string{"2026 [INFO] starting", "2026 [ERROR] plugin shutting down: error=x"}, "2026 [ERROR] plugin shutting down: error=x"},
		{"the first line", nil, []string{"", "This binary is a plugin.", "Please …"}, "This binary is a plugin."},
		{"nothing", nil, nil, ""},
	} {
		if got := cause(c.stdout, c.stderr); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestQuoteAround(t *testing.T) {
	long := strings.Repeat("a", 200) + " CAP_IPC_LOCK " + strings.Repeat("b", 200)
	q := quoteAround(long, "CAP_IPC_LOCK")
	if !strings.Contains(q, "CAP_IPC_LOCK") || !strings.HasPrefix(q, `"…`) || !strings.HasSuffix(q, `…"`) {
		t.Errorf("quoteAround = %s", q)
	}
	if n := utf8.RuneCountInString(q); n > quoteLimit+4 {
		t.Errorf("quoteAround is %d runes", n)
	}
	if q := quoteAround("short CAP_IPC_LOCK", "CAP_IPC_LOCK"); q != `"short CAP_IPC_LOCK"` {
		t.Errorf("quoteAround(short) = %s", q)
	}
}

func TestVersionWords(t *testing.T) {
	for _, v := range []string{"(unknown)", "(devel)", "unknown", ""} {
		if !unknownVersion(v) {
			t.Errorf("unknownVersion(%q) = false", v)
		}
	}
	if unknownVersion("v1.2.3") || !sameVersion("1.2.3", "v1.2.3") || sameVersion("v1.2.3", "v1.2.4") {
		t.Error("version words")
	}
}

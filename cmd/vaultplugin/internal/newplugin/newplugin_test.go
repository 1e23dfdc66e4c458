package newplugin

import (
	"bytes"
	"errors"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

func TestPluginName(t *testing.T) {
	for _, c := range []struct{ module, want string }{
		{"github.com/you/vault-plugin-secrets-foo", "vault-plugin-secrets-foo"},
		{"example.com/foo/v2", "foo"},
		{"example.com/Foo_Bar", "foo_bar"},
		{"example.com/a~b", "a-b"},
		{"example.com/x.go", "x.go"},
		{"myplugin", "myplugin"},
		{"v2", "v2"}, // a lone v2 is a name, not a suffix
		{"example.com/foo-", "foo"},
	} {
		if got, err := PluginName(c.module); err != nil || got != c.want {
			t.Errorf("PluginName(%q) = %q, %v; want %q", c.module, got, err, c.want)
		}
	}
	if got, err := PluginName("example.com/--"); err == nil {
		t.Errorf("PluginName(example.com/--) = %q, want an error", got)
	}
}

// The files each type gets: Go files gofmt leaves as they are, in the
// package their directory says, importing the module's own package; a
// README and a workflow that name the plugin and its three commands.
func TestRender(t *testing.T) {
	want := map[string][]string{
		"secret":   {"backend/backend.go", "backend/backend_test.go", "backend/path_config.go", "backend/path_creds.go", "backend/steps_test.go"},
		"auth":     {"backend/backend.go", "backend/backend_test.go", "backend/path_config.go", "backend/path_login.go", "backend/path_users.go", "backend/steps_test.go"},
		"database": {"database/database.go", "database/database_test.go"},
	}
	// Module paths that sort before and after github.com, so that an
	// import block that gofmt would reorder for one of them shows.
	for _, module := range []string{"aaa.example/x/vault-plugin-y", "zzz.example/vault-plugin-y/v3"} {
		for _, typ := range Types {
			t.Run(typ+" "+module, func(t *testing.T) {
				p := Params{Module: module, Name: "vault-plugin-y", Type: typ}
				files, err := Render(p)
				if err != nil {
					t.Fatal(err)
				}
				wantPaths := append([]string{".github/workflows/ci.yml", ".gitignore", "README.md", "cmd/vault-plugin-y/main.go"}, want[typ]...)
				slices.Sort(wantPaths)
				if got := sortedPaths(files); !slices.Equal(got, wantPaths) {
					t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantPaths, "\n"))
				}
				for name, body := range files {
					if bytes.Contains(body, []byte("[[")) || bytes.Contains(body, []byte("]]")) {
						t.Errorf("%s: a template action is left: %s", name, firstLineWith(body, "[["))
					}
					if strings.HasSuffix(name, ".go") {
						checkGo(t, name, body, p)
					}
				}
				readme, ci := string(files["README.md"]), string(files[".github/workflows/ci.yml"])
				for _, s := range []string{"go test -race ./...", "vaultplugin dev ./cmd/vault-plugin-y", "vaultplugin check ./vault-plugin-y", "CGO_ENABLED=0"} {
					if !strings.Contains(readme, s) {
						t.Errorf("README.md lacks %q", s)
					}
				}
				for _, s := range []string{"go test -race ./...", "vaultplugin dev ./cmd/vault-plugin-y", "CGO_ENABLED=0 go build -trimpath -o dist/vault-plugin-y ./cmd/vault-plugin-y", "vaultplugin check dist/vault-plugin-y", "cmd/vaultplugin@$(go list -m"} {
					if !strings.Contains(ci, s) {
						t.Errorf("ci.yml lacks %q", s)
					}
				}
				if strings.Contains(ci, "\t") {
					t.Error("ci.yml holds a tab, which YAML refuses")
				}
			})
		}
	}
}

// checkGo checks one rendered Go file: gofmt leaves it as it is, and it
// parses into the package its directory names.
func checkGo(t *testing.T, name string, body []byte, p Params) {
	t.Helper()
	formatted, err := format.Source(body)
	if err != nil {
		t.Errorf("%s does not parse: %v", name, err)
		return
	}
	if !bytes.Equal(formatted, body) {
		t.Errorf("%s is not gofmt-ed:\n%s", name, firstDiff(string(body), string(formatted)))
	}
	f, err := parser.ParseFile(token.NewFileSet(), name, body, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Base(filepath.Dir(name))
	switch {
	case strings.HasPrefix(name, "cmd/"):
		pkg = "main"
		if !slices.ContainsFunc(f.Imports, func(s *ast.ImportSpec) bool { return s.Path.Value == strconv.Quote(p.Module+"/"+p.Package()) }) {
			t.Errorf("%s does not import %s/%s", name, p.Module, p.Package())
		}
	case strings.HasSuffix(name, "_test.go"):
		pkg += "_test"
	}
	if f.Name.Name != pkg {
		t.Errorf("%s is package %s, want %s", name, f.Name.Name, pkg)
	}
}

func firstLineWith(b []byte, s string) string {
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n  " + al[i] + "\ngofmt:\n  " + bl[i]
		}
	}
	return "(lengths differ)"
}

// The rendered modules compile, tests included, with this module's own
// dependencies (its floor: vault/sdk v0.6.2), offline. new gives them the
// newest SDK; the e2e group TestNewPlugin builds and runs them there.
// The templates use no SDK API newer than the floor, so that this check
// runs without the module proxy; one that must would move this check
// there.
func TestRenderedModulesCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles three modules")
	}
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	_, requires, _ := strings.Cut(string(gomod), "\nrequire")
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range Types {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			p := Params{Module: "example.com/vault-plugin-" + typ + "-test", Name: "vault-plugin-" + typ + "-test", Type: typ}
			files, err := Render(p)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			files["go.mod"] = []byte("module " + p.Module + "\n\ngo " + goDirective + "\n\nrequire" + requires +
				"\nrequire " + LibraryModule + " " + zeroVersion + "\n\nreplace " + LibraryModule + " => " + strconv.Quote(root) + "\n")
			files["go.sum"] = sum
			for name, body := range files {
				path := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, body, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("go", "vet", "./...")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("go vet ./... in the rendered %s module: %v\n%s", typ, err, out)
			}
		})
	}
}

func TestLibraryVersion(t *testing.T) {
	info := func(path, version string, settings ...string) func() (*debug.BuildInfo, bool) {
		bi := &debug.BuildInfo{Main: debug.Module{Path: path, Version: version}}
		for _, s := range settings {
			k, v, _ := strings.Cut(s, "=")
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
		}
		return func() (*debug.BuildInfo, bool) { return bi, true }
	}
	for _, c := range []struct {
		name string
		read func() (*debug.BuildInfo, bool)
		want string
	}{
		{"go install @v1.2.3", info(LibraryModule, "v1.2.3", "CGO_ENABLED=0"), "v1.2.3"},
		{"go install @main: a pseudo-version from the proxy", info(LibraryModule, "v1.2.4-0.20260101000000-abcdefabcdef"), "v1.2.4-0.20260101000000-abcdefabcdef"},
		{"a checkout without VCS stamping", info(LibraryModule, "(devel)"), "latest"},
		{"a checkout with VCS stamping", info(LibraryModule, "v1.2.4-0.20260101000000-abcdefabcdef", "vcs=git", "vcs.revision=abcdef"), "latest"},
		{"uncommitted edits", info(LibraryModule, "v1.2.4-0.20260101000000-abcdefabcdef+dirty"), "latest"},
		{"built into another module", info("example.com/other", "v9.9.9"), "latest"},
		{"no build info", func() (*debug.BuildInfo, bool) { return nil, false }, "latest"},
	} {
		if got := libraryVersion(c.read); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// Every mistake on the command line is a UsageError (exit 2) that names
// it, found before anything is written.
func TestParseRefusals(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	gitOnly := filepath.Join(dir, "gitonly")
	file := filepath.Join(dir, "file")
	notLib := filepath.Join(dir, "notlib")
	for _, d := range []string{filepath.Join(full, "x"), filepath.Join(gitOnly, ".git"), notLib} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notLib, "go.mod"), []byte("module example.com/notlib\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		typ     string
		replace string
		args    []string
		want    string // "" for no error
	}{
		{"no MODULE", "secret", "", nil, "no MODULE"},
		{"three arguments", "secret", "", []string{"example.com/a", "b", "c"}, "want MODULE [DIR], got example.com/a b c"},
		{"unknown type", "kv", "", []string{"example.com/a"}, `-type "kv": want secret, auth, database`},
		{"invalid module path", "secret", "", []string{"example.com/a b", filepath.Join(dir, "new")}, `MODULE "example.com/a b": malformed module path "example.com/a b": invalid char ' '`},
		{"a /v1 suffix, without go mod init's advice", "secret", "", []string{"example.com/a/v1", filepath.Join(dir, "new")}, `invalid module path "example.com/a/v1": major version suffixes must be in the form of /vN and are only allowed for v2 or later`},
		{"a flag for a module", "secret", "", []string{"-x"}, "does not begin with '-'"},
		{"a directory with files", "secret", "", []string{"example.com/a", full}, "DIR " + full + " is not empty (x)"},
		{"a file", "secret", "", []string{"example.com/a", file}, "DIR " + file + " exists and is not a directory"},
		{"-replace without a go.mod", "secret", dir, []string{"example.com/a", filepath.Join(dir, "new")}, "-replace " + dir + ": want a checkout of github.com/plugkit/vaultplugin"},
		{"-replace of another module", "secret", notLib, []string{"example.com/a", filepath.Join(dir, "new")}, `its go.mod is module "example.com/notlib"`},
		{"a directory with only .git", "auth", "", []string{"example.com/a", gitOnly}, ""},
		{"a new directory", "database", "", []string{"example.com/a", filepath.Join(dir, "new")}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := &options{typ: c.typ, replace: c.replace}
			_, _, err := o.parse(c.args)
			var usage *cli.UsageError
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%v, want no error", err)
			case c.want != "" && (!errors.As(err, &usage) || !strings.Contains(err.Error(), c.want)):
				t.Errorf("%v, want a usage error with %q", err, c.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("%q: more than one line", err)
			}
		})
	}
}

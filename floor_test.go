package vaultplugin_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/go-version"
)

// securityFloors reads the security floors that go.mod's comment lists
// ("  - MODULE vX.Y.Z: what it fixes"), the one place they are written.
func securityFloors(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	floors := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^//   - (\S+) (v\S+):`).FindAllStringSubmatch(string(b), -1) {
		floors[m[1]] = m[2]
	}
	if len(floors) < 4 {
		t.Fatalf("go.mod lists %d security floors, want the comment block's bullets: %v", len(floors), floors)
	}
	return floors
}

// The README names every security floor go.mod holds, with its version.
func TestSecurityFloorsInREADME(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for mod, v := range securityFloors(t) {
		if !regexp.MustCompile("`" + regexp.QuoteMeta(mod) + "` +\\| +" + regexp.QuoteMeta(v) + " ").Match(readme) {
			t.Errorf("README's security floor table lacks the row `%s` | %s", mod, v)
		}
	}
}

// A new plugin module that requires only this library, as `go get
// github.com/plugkit/vaultplugin` and `go mod tidy` leave it, links the
// security floors (grpc with the HTTP/2 rapid-reset fix among them) while
// keeping vault/sdk and vault/api at the library's floor: existing plugins
// are not forced up, new ones do not start with known-vulnerable modules.
func TestNewModuleFloor(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/newplugin\n\ngo 1.24.0\n\nrequire github.com/plugkit/vaultplugin v1.0.0\n\nreplace github.com/plugkit/vaultplugin => " + root + "\n",
		"cmd/backend/main.go": `package main

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/plugkit/vaultplugin/serve"
)

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{BackendType: logical.TypeLogical}
	return b, b.Setup(ctx, conf)
}

func main() { serve.Run(factory) }
`,
		"cmd/database/main.go": `package main

import (
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/plugkit/vaultplugin/dbserve"
)

func main() { dbserve.Run(func() (any, error) { return dbplugin.Database(nil), nil }) }
`,
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gocmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}
	gocmd("mod", "tidy")
	linked := map[string]string{}
	for _, line := range strings.Split(gocmd("list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}", "./..."), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			linked[f[0]] = f[1]
		}
	}
	// The library's floors, as go.mod requires them (.ci/newest runs this
	// test again with every requirement at its newest).
	for _, mod := range []string{"github.com/hashicorp/vault/sdk", "github.com/hashicorp/vault/api"} {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod).Output()
		if err != nil {
			t.Fatalf("go list -m %s: %v", mod, err)
		}
		if want := strings.TrimSpace(string(out)); linked[mod] != want {
			t.Errorf("%s: the new module links %q, want the library's floor %s", mod, linked[mod], want)
		}
	}
	if linked["google.golang.org/grpc"] == "" {
		t.Fatal("the new module links no grpc: the test's plugins do not build what a plugin builds")
	}
	for mod, floor := range securityFloors(t) {
		got, ok := linked[mod]
		if !ok {
			continue // not linked by a plugin binary (a test or tool dependency)
		}
		gv, err := version.NewVersion(got)
		if err != nil {
			t.Errorf("%s: linked version %q: %v", mod, got, err)
			continue
		}
		if gv.LessThan(version.Must(version.NewVersion(floor))) {
			t.Errorf("%s: the new module links %s, below the security floor %s", mod, got, floor)
		} else {
			t.Logf("%s %s (floor %s)", mod, got, floor)
		}
	}
}

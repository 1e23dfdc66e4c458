package serve_test

import (
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// goListDeps returns the packages a main package links.
func goListDeps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	args := append([]string{"list", "-deps"}, strings.Fields(pkg)...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	return deps
}

// A secrets engine or auth method served by serve.Run links nothing of
// the database SDK (dbplugin/v5 lives in dbserve). And the same backend
// served by the docs' bare SDK main and by serve.Run (the benchmark's
// pair) differ only by this module's own packages and the standard
// library: no third-party module comes with the library.
func TestBackendBinaryDeps(t *testing.T) {
	for _, pkg := range []string{"../bench/internal/ours", "../example/secrets/cmd/vault-plugin-secrets-example", "../example/auth/cmd/vault-plugin-auth-example", "./internal/testplugin"} {
		for p := range goListDeps(t, pkg) {
			if strings.Contains(p, "/dbplugin/v5") {
				t.Errorf("%s links %s", pkg, p)
			}
		}
	}

	bare := goListDeps(t, "../bench/internal/bare")
	allowed := []string{"github.com/plugkit/vaultplugin/"}
	for _, pkg := range []string{"../bench/internal/ours"} {
		var extra []string
		for p := range goListDeps(t, pkg) {
			// The standard library's packages are the endpoint's
			// (net/http's server side, runtime/pprof): they cost size,
			// which the benchmark measures, not a dependency.
			if bare[p] || !strings.Contains(strings.Split(p, "/")[0], ".") {
				continue
			}
			ok := false
			for _, a := range allowed {
				ok = ok || strings.HasPrefix(p+"/", a)
			}
			if !ok {
				extra = append(extra, p)
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			t.Errorf("%s links packages the bare SDK main does not: %s", pkg, strings.Join(extra, " "))
		}
	}
}

// A database plugin served by dbserve.Run does not link the backend
// plugin SDK (sdk/plugin), as dbplugin.Serve's main does not; neither do
// dbserve's own tests and examples, so that no example shows an author
// an import that would.
func TestDatabaseBinaryDeps(t *testing.T) {
	for _, pkg := range []string{"../example/database/cmd/vault-plugin-database-htpasswd", "-test ../dbserve"} {
		for p := range goListDeps(t, pkg) {
			if p == "github.com/hashicorp/vault/sdk/plugin" || p == "github.com/plugkit/vaultplugin/serve" {
				t.Errorf("%s links %s", pkg, p)
			}
		}
	}
}

// A plugin built with -tags vaultplugin_noendpoint does not link the
// endpoint's HTTP server and profile handlers (the metrics package stays
// imported, but nothing calls its constructor, so the linker drops it),
// and refuses the operator's VAULTPLUGIN_HTTP_ADDR with the
// reason and the fix rather than ignoring it.
func TestWithoutEndpoint(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "testplugin-noendpoint")
	if out, err := exec.Command("go", "build", "-tags", "vaultplugin_noendpoint", "-o", bin, testPlugin).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "list", "-tags", "vaultplugin_noendpoint", "-deps", testPlugin).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "github.com/plugkit/vaultplugin/internal/opshttp" {
			t.Errorf("links %s", p)
		}
	}
	r := run(t, bin, hostEnv("VAULTPLUGIN_HTTP_ADDR=127.0.0.1:0"))
	assertStartupFailure(t, r, 1, "VAULTPLUGIN_HTTP_ADDR=127.0.0.1:0: this plugin was built with -tags vaultplugin_noendpoint")
	if !strings.Contains(r.stdout, "rebuild the plugin without that tag") {
		t.Errorf("no fix in the cause line: %q", r.stdout)
	}
}

// The library's packages, and so every plugin binary, link nothing of
// `vaultplugin release`: not its package and not its image library
// (go-containerregistry and what it brings). Only the command does.
func TestLibraryLinksNoReleaseCode(t *testing.T) {
	lib := "github.com/plugkit/vaultplugin ../serve/... ../dbserve/... ../compat/... ../logging/... ../internal/..."
	deps := goListDeps(t, "-test "+lib)
	// Newer SDKs link docker's and opencontainers' packages themselves
	// (pluginutil runs containerized plugins): those are the SDK's, not
	// the release's.
	sdk := goListDeps(t, "github.com/hashicorp/vault/sdk/plugin github.com/hashicorp/vault/sdk/database/dbplugin/v5")
	for p := range deps {
		if strings.Contains(p, "/cmd/vaultplugin/internal/release") || strings.HasPrefix(p, "github.com/google/go-containerregistry/") ||
			(strings.HasPrefix(p, "github.com/docker/") || strings.HasPrefix(p, "github.com/opencontainers/")) && !sdk[p] {
			t.Errorf("the library links %s", p)
		}
	}
	// The guard guards: the command does link them.
	cmd := goListDeps(t, "../cmd/vaultplugin")
	for _, p := range []string{"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/release", "github.com/google/go-containerregistry/pkg/v1/remote"} {
		if !cmd[p] {
			t.Errorf("cmd/vaultplugin does not link %s: the test above proves nothing", p)
		}
	}
}

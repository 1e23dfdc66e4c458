package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The third-party backend the suite serves unchanged: HashiCorp's
// Kubernetes auth method, whose Factory is an ordinary logical.Factory.
const (
	k8sModule = "github.com/hashicorp/vault-plugin-auth-kubernetes"
	k8sPlugin = "vault-plugin-auth-kubernetes"
)

// k8sVersions are tried in order: v0.23.1 (what plugin authors were
// reported to use) from the proxy, else v0.23.0 (in the module cache).
var k8sVersions = []string{"v0.23.1", "v0.23.0"}

// k8sMain is the whole main of a plugin that wraps a third-party backend.
const k8sMain = `package main

import (
	kubernetes "github.com/hashicorp/vault-plugin-auth-kubernetes"
	"github.com/plugkit/vaultplugin/serve"
)

func main() { serve.Run(kubernetes.Factory) }
`

// TestThirdPartyBackend builds a main that is only
// serve.Run(kubernetes.Factory), with no version of its own
// (-buildvcs=false, main module "(devel)"), and proves that it reports the
// version of the module that defines the factory, that the dev plugin
// directory registers it with that version, and that the backend works
// unchanged inside a real Vault.
func TestThirdPartyBackend(t *testing.T) {
	eachHost(t, "third-party backend: serve.Run(kubernetes.Factory)", nil, func(t *testing.T, h *host) {
		bin, ver, ok := thirdParty(t)
		if !ok {
			t.Skipf("%s could not be built: see the build subtest", k8sPlugin)
		}

		t.Run("version from the factory's module", func(t *testing.T) {
			out, err := exec.Command(bin, "-version").Output()
			if err != nil {
				t.Fatalf("-version: %v\n%s", err, out)
			}
			t.Logf("%s -version: %s", k8sPlugin, strings.TrimSpace(string(out)))
			if got := strings.TrimSpace(string(out)); got != ver {
				t.Errorf("-version = %q, want %q (the version of %s)", got, ver, k8sModule)
			}
			out, err = exec.Command(bin, "-describe").Output()
			if err != nil {
				t.Fatalf("-describe: %v\n%s", err, out)
			}
			var d struct {
				Name          string `json:"name"`
				Version       string `json:"version"`
				VersionSource string `json:"version_source"`
				Type          string `json:"type"`
				SDKVersion    string `json:"sdk_version"`
			}
			if err := json.Unmarshal(out, &d); err != nil {
				t.Fatalf("-describe is not JSON: %v\n%s", err, out)
			}
			t.Logf("%s -describe: version=%q version_source=%q type=%q sdk_version=%q", k8sPlugin, d.Version, d.VersionSource, d.Type, d.SDKVersion)
			if d.Version != ver || d.VersionSource != "factory's module" || d.Type != "auth" || d.Name != k8sPlugin {
				t.Errorf("-describe: name %q version %q version_source %q type %q; want %q %q %q %q\n%s",
					d.Name, d.Version, d.VersionSource, d.Type, k8sPlugin, ver, "factory's module", "auth", out)
			}
		})

		t.Run("in Vault", func(t *testing.T) {
			bins[k8sPlugin] = bin
			t.Cleanup(func() { delete(bins, k8sPlugin) })
			v := startVault(t, h, k8sPlugin)

			// -dev-plugin-dir registered the binary with the version it reports.
			var catalog struct {
				Details []struct {
					Name, Type, Version string
					Builtin             bool
				}
			}
			out := v.must("plugin", "list", "-detailed", "-format=json", "auth")
			if err := json.Unmarshal([]byte(out), &catalog); err != nil {
				t.Fatalf("plugin list: %v\n%s", err, out)
			}
			var registered []string
			for _, p := range catalog.Details {
				if p.Name == k8sPlugin && !p.Builtin {
					registered = append(registered, p.Version)
				}
			}
			t.Logf("vault plugin list -detailed auth: %s registered with versions %q", k8sPlugin, registered)
			if len(registered) != 1 || registered[0] != ver {
				t.Fatalf("the dev plugin directory registered %s with versions %q, want [%q]", k8sPlugin, registered, ver)
			}

			v.must("auth", "enable", "-path=k8s", "-plugin-version="+ver, k8sPlugin)
			var mounts map[string]struct {
				Type                 string `json:"type"`
				PluginVersion        string `json:"plugin_version"`
				RunningPluginVersion string `json:"running_plugin_version"`
				RunningSHA256        string `json:"running_sha256"`
			}
			if err := json.Unmarshal([]byte(v.must("auth", "list", "-detailed", "-format=json")), &mounts); err != nil {
				t.Fatal(err)
			}
			m, ok := mounts["k8s/"]
			if !ok {
				t.Fatalf("auth list has no k8s/ mount: %v", mounts)
			}
			t.Logf("vault auth list -detailed: k8s/ type=%s plugin_version=%s running_plugin_version=%s running_sha256=%s",
				m.Type, m.PluginVersion, m.RunningPluginVersion, m.RunningSHA256)
			if m.Type != k8sPlugin || m.PluginVersion != ver || m.RunningPluginVersion != ver {
				t.Errorf("k8s/ mount: type %q plugin_version %q running_plugin_version %q, want %q %q %q",
					m.Type, m.PluginVersion, m.RunningPluginVersion, k8sPlugin, ver, ver)
			}
			if want := sha(t, bin); m.RunningSHA256 != want {
				t.Errorf("k8s/ mount runs sha256 %q, the built binary is %q", m.RunningSHA256, want)
			}
			// The process Vault started resolved the same version itself (its
			// debug record, relayed by Vault at -log-level=debug).
			if l := grep(v.log.String(), `version_source="factory's module"`); !strings.Contains(l, "version="+ver) {
				t.Errorf("Vault's log has no record of the plugin starting with version %s from the factory's module:\n%s", ver, l)
			} else {
				t.Logf("Vault's log: %s", strings.SplitN(l, "\n", 2)[0])
			}

			// Writing the config only stores it: nothing dials the host, and
			// the only host named is loopback. Outside a pod the method needs
			// disable_local_ca_jwt=true, or it fails reading the pod's CA file
			// (open /var/run/secrets/kubernetes.io/serviceaccount/ca.crt), as
			// Vault's builtin kubernetes method does too; it only stops that
			// file read.
			v.must("write", "auth/k8s/config", "kubernetes_host=https://127.0.0.1:1", "disable_local_ca_jwt=true")
			var cfg struct {
				Data struct {
					KubernetesHost    string `json:"kubernetes_host"`
					DisableLocalCAJwt bool   `json:"disable_local_ca_jwt"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(v.must("read", "-format=json", "auth/k8s/config")), &cfg); err != nil {
				t.Fatal(err)
			}
			t.Logf("vault read auth/k8s/config: kubernetes_host=%s disable_local_ca_jwt=%t", cfg.Data.KubernetesHost, cfg.Data.DisableLocalCAJwt)
			if cfg.Data.KubernetesHost != "https://127.0.0.1:1" || !cfg.Data.DisableLocalCAJwt {
				t.Errorf("config read back: kubernetes_host %q disable_local_ca_jwt %t", cfg.Data.KubernetesHost, cfg.Data.DisableLocalCAJwt)
			}

			v.must("write", "auth/k8s/role/demo", "bound_service_account_names=default", "bound_service_account_namespaces=default")
			var role struct {
				Data struct {
					Names      []string `json:"bound_service_account_names"`
					Namespaces []string `json:"bound_service_account_namespaces"`
				} `json:"data"`
			}
			out = v.must("read", "-format=json", "auth/k8s/role/demo")
			if err := json.Unmarshal([]byte(out), &role); err != nil {
				t.Fatalf("role: %v\n%s", err, out)
			}
			t.Logf("vault read auth/k8s/role/demo: bound_service_account_names=%q bound_service_account_namespaces=%q",
				role.Data.Names, role.Data.Namespaces)
			if fmt.Sprint(role.Data.Names) != "[default]" || fmt.Sprint(role.Data.Namespaces) != "[default]" {
				t.Errorf("role read back: %s", out)
			}
			if list := v.must("list", "-format=json", "auth/k8s/role"); !strings.Contains(list, `"demo"`) {
				t.Errorf("role list = %s", list)
			}
		})
	})
}

// built is the third-party plugin, built once per run by the first group
// on the first host that needs it.
var built struct {
	sync.Mutex
	done     bool
	bin, ver string
}

// thirdParty returns the third-party plugin binary and its module's
// version, building it (in a subtest of the first caller) if no earlier
// caller did. ok is false when it could not be built; the build subtest
// says why (skipped: no module proxy; failed: anything else).
func thirdParty(t *testing.T) (bin, ver string, ok bool) {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if !built.done {
		built.done = true
		t.Run("build "+k8sPlugin, func(t *testing.T) {
			b, v := buildThirdParty(t)
			keep := filepath.Join(binDir, k8sPlugin)
			copyFile(t, b, keep)
			built.bin, built.ver = keep, v
		})
	}
	return built.bin, built.ver, built.bin != ""
}

// buildThirdParty writes a module whose main is k8sMain, requiring the
// Kubernetes auth method and this repository (by replace), and builds it
// the way a plugin author's CI might: -buildvcs=false, so the main module
// has no version ("(devel)"). It returns the binary and the version of
// the Kubernetes module it was built with. It skips the test only when that
// module or its dependencies cannot be fetched (no module proxy).
func buildThirdParty(t *testing.T) (bin, version string) {
	t.Helper()
	dir := t.TempDir()

	var tried []string
	for _, v := range k8sVersions {
		out, err := goCmd(dir, 5*time.Minute, "mod", "download", "-json", k8sModule+"@"+v)
		if err == nil {
			version = v
			break
		}
		tried = append(tried, fmt.Sprintf("%s@%s: %v: %s", k8sModule, v, err, goError(out)))
	}
	if version == "" {
		t.Skipf("skipped: %s cannot be resolved (no Go module proxy?):\n%s", k8sModule, strings.Join(tried, "\n"))
	}
	for _, s := range tried {
		t.Logf("not used: %s", s)
	}
	t.Logf("building with %s %s", k8sModule, version)

	gomod := fmt.Sprintf("module example.com/vault-plugin-auth-kubernetes\n\ngo 1.25.7\n\nrequire %s %s\n\nreplace github.com/plugkit/vaultplugin => %s\n",
		k8sModule, version, repoRoot)
	for name, body := range map[string]string{"go.mod": gomod, "main.go": k8sMain} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	out, err := goCmd(dir, 15*time.Minute, "mod", "tidy")
	tidy := time.Since(start)
	if err != nil {
		if unreachable(out) {
			t.Skipf("skipped: the dependencies of %s@%s cannot be resolved (no Go module proxy?): %v\n%s", k8sModule, version, err, firstLines(goError(out), 12))
		}
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}

	bin = filepath.Join(t.TempDir(), k8sPlugin)
	start = time.Now()
	if out, err := goCmd(dir, 15*time.Minute, "build", "-buildvcs=false", "-o", bin, "."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	build := time.Since(start)
	t.Logf("built %s: go mod tidy %s, go build %s", k8sPlugin, tidy.Round(100*time.Millisecond), build.Round(100*time.Millisecond))

	// The premise: the main module carries no version, so whatever the
	// binary reports comes from elsewhere.
	out, err = goCmd(dir, time.Minute, "version", "-m", bin)
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			t.Logf("build info: main module %s %s", f[1], f[2])
			if f[2] != "(devel)" {
				t.Fatalf("the main module has version %q, want (devel): the test proves nothing", f[2])
			}
		case len(f) >= 3 && f[0] == "dep" && (f[1] == k8sModule || f[1] == "github.com/hashicorp/vault/sdk"):
			t.Logf("build info: %s %s", f[1], f[2])
			if f[1] == k8sModule && f[2] != version {
				t.Fatalf("built with %s %s, want %s", k8sModule, f[2], version)
			}
		}
	}
	return bin, version
}

// goCmd runs the go command in dir as a plugin author would: module mode
// that may update go.mod, no workspace.
func goCmd(dir string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// goError drops the go command's progress lines.
func goError(out string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "go: downloading ") && !strings.HasPrefix(l, "go: finding ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// firstLines keeps the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("… (%d more lines)", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}

// unreachable reports whether the go command failed because modules could
// not be fetched at all, rather than for a reason the test should report.
func unreachable(out string) bool {
	for _, s := range []string{
		"dial tcp", "no such host", "connection refused", "network is unreachable",
		"i/o timeout", "TLS handshake timeout", "proxyconnect",
		"GOPROXY=off", "module lookup disabled",
	} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

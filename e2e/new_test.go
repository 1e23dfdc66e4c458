package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// newTypes are the plugin types vaultplugin new makes.
var newTypes = []string{"secret", "auth", "database"}

// newModule is a module vaultplugin new made, as TestNewPlugin's make
// step left it.
type newModule struct {
	typ, dir, name string
	bin            string   // its CGO_ENABLED=0 build, as the workflow makes it
	version        string   // what the binary reports
	steps          []ciStep // its .github/workflows/ci.yml
	took           time.Duration
}

// ciStep is one step of a GitHub Actions job.
type ciStep struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	Uses string `yaml:"uses"`
	Run  string `yaml:"run"`
}

// devStep reports whether s is the workflow's vaultplugin dev step, which
// needs a host; the others run once, in make.
func (s ciStep) devStep() bool { return strings.Contains(s.Run, "vaultplugin dev") }

// made holds the modules of this run, by type; make fills it.
var made = struct {
	sync.Mutex
	mods map[string]*newModule
	tool string // the vaultplugin binary
}{mods: map[string]*newModule{}}

// TestNewPlugin proves vaultplugin new as a plugin author meets it. For
// each type it makes a module (with -replace of this checkout, since the
// library is not on the module proxy, and the newest SDK the proxy
// serves), then runs the module's own CI workflow's steps: its tests with
// -race, the CGO_ENABLED=0 build and vaultplugin check on it, where every
// check must pass. Then on every host it registers that build with
// vaultplugin register, mounts it and sends it real requests (a lease
// issued, renewed and revoked; a login and a token renewal; database
// credentials), and runs the workflow's vaultplugin dev step with the
// host as its vault: the dev server serves the plugin and it answers.
func TestNewPlugin(t *testing.T) {
	t.Run("make", func(t *testing.T) {
		record(t, "vaultplugin new: made, go test -race, check all ✓")
		tool := filepath.Join(binDir, "vaultplugin")
		if out, err := goCmd(repoRoot, 5*time.Minute, "build", "-o", tool, "./cmd/vaultplugin"); err != nil {
			t.Fatalf("go build ./cmd/vaultplugin: %v\n%s", err, out)
		}
		made.tool = tool
		for _, typ := range newTypes {
			t.Run(typ, func(t *testing.T) { makeModule(t, tool, typ) })
		}
	})
	eachHost(t, "vaultplugin new: 3 types mounted, used; dev step", nil, func(t *testing.T, h *host) {
		for _, typ := range newTypes {
			t.Run(typ, func(t *testing.T) {
				made.Lock()
				m := made.mods[typ]
				made.Unlock()
				if m == nil {
					t.Skipf("skipped: the %s module was not made (see TestNewPlugin/make/%s)", typ, typ)
				}
				t.Run("registered and mounted", func(t *testing.T) { useNewPlugin(t, h, m) })
				t.Run("its CI's dev step", func(t *testing.T) { runDevStep(t, h, m) })
			})
		}
	})
}

// makeModule runs vaultplugin new for typ in an empty directory and the
// module's CI steps that need no host.
func makeModule(t *testing.T, tool, typ string) {
	parent, err := os.MkdirTemp(binDir, "new-"+typ+"-")
	if err != nil {
		t.Fatal(err)
	}
	m := &newModule{typ: typ, name: "vault-plugin-" + typ + "-e2e"}
	m.dir = filepath.Join(parent, m.name)
	start := time.Now()
	cmd := exec.Command(tool, "new", "-type", typ, "-replace", repoRoot, "example.com/"+m.name)
	cmd.Dir = parent
	cmd.Env = append(withoutVaultEnv(os.Environ()), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	m.took = time.Since(start)
	t.Logf("vaultplugin new -type %s (%s):\n%s", typ, m.took.Round(100*time.Millisecond), goError(string(out)))
	if err != nil {
		if unreachable(string(out)) {
			t.Skipf("skipped: the module proxy is unreachable: %v", err)
		}
		t.Fatalf("vaultplugin new: %v", err)
	}

	// go.mod holds the newest releases, as the proxy answers @latest now.
	for _, mod := range []string{"github.com/hashicorp/vault/sdk", "github.com/hashicorp/vault/api", "github.com/hashicorp/go-plugin"} {
		got, err := goCmd(m.dir, time.Minute, "list", "-m", "-f", "{{.Version}}", mod)
		if err != nil {
			t.Fatalf("go list -m %s: %v\n%s", mod, err, got)
		}
		latest, err := goCmd(m.dir, time.Minute, "list", "-m", "-f", "{{.Version}}", mod+"@latest")
		if err != nil {
			t.Fatalf("go list -m %s@latest: %v\n%s", mod, err, latest)
		}
		if strings.TrimSpace(got) != strings.TrimSpace(latest) {
			t.Errorf("%s: go.mod has %s, the proxy's latest is %s", mod, strings.TrimSpace(got), strings.TrimSpace(latest))
		}
		if !strings.Contains(string(out), mod+" "+strings.TrimSpace(latest)) {
			t.Errorf("new did not print the version it resolved for %s", mod)
		}
	}

	ci, err := os.ReadFile(filepath.Join(m.dir, ".github", "workflows", "ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Env   map[string]string `yaml:"env"`
			Steps []ciStep          `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(ci, &wf); err != nil {
		t.Fatalf("ci.yml: %v", err)
	}
	for _, j := range wf.Jobs {
		m.steps = j.Steps
	}
	// The steps a runner needs no host for, in order: the tests, the
	// release build, check. The install steps fetch what this run has
	// built (vaultplugin) or cached (the hosts).
	tools := t.TempDir()
	if err := os.Symlink(tool, filepath.Join(tools, "vaultplugin")); err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, s := range m.steps {
		if s.Run == "" || strings.HasPrefix(s.ID, "install-") || s.devStep() {
			continue
		}
		runStep(t, m, s, []string{tools})
		ran++
	}
	if ran < 3 || t.Failed() {
		t.Fatalf("ran %d of the workflow's steps (want the tests, the build and check)", ran)
	}

	m.bin = filepath.Join(m.dir, "dist", m.name)
	report, err := exec.Command(tool, "check", "-json", m.bin).Output()
	var r struct {
		Passed bool
		Checks []struct{ ID, Status, Detail string }
	}
	if jerr := json.Unmarshal(report, &r); jerr != nil {
		t.Fatalf("check -json: %v, %v\n%s", err, jerr, report)
	}
	for _, c := range r.Checks {
		if c.Status != "pass" {
			t.Errorf("check %s: %s: %s (every check must pass on a new plugin: fix the template)", c.ID, c.Status, c.Detail)
		}
	}
	if !r.Passed || len(r.Checks) == 0 {
		t.Errorf("check: passed %v, %d checks", r.Passed, len(r.Checks))
	}
	v, err := exec.Command(m.bin, "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	m.version = strings.TrimSpace(string(v))
	if !t.Failed() {
		made.Lock()
		made.mods[typ] = m
		made.Unlock()
	}
}

// runStep runs one workflow step in the module as a runner's bash does
// (-e, -o pipefail), with tools first on PATH, and returns its output.
func runStep(t *testing.T, m *newModule, s ciStep, tools []string) string {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s.Run)
	cmd.Dir = m.dir
	path := os.Getenv("PATH")
	if len(tools) > 0 {
		path = strings.Join(tools, string(os.PathListSeparator)) + string(os.PathListSeparator) + path
	}
	cmd.Env = append(withoutVaultEnv(os.Environ()), "PATH="+path, "GOWORK=off", "RUNNER_TEMP="+tmp, "GITHUB_PATH="+filepath.Join(tmp, "github_path"))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("step %q (%s)", s.Name, time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Errorf("step %q: %v\n%s", s.Name, err, goError(string(out)))
	}
	return string(out)
}

// useNewPlugin registers m's build on host h with vaultplugin register,
// mounts it and sends it the requests a user would.
func useNewPlugin(t *testing.T, h *host, m *newModule) {
	v := startVault(t, h)
	copyFile(t, m.bin, filepath.Join(v.pluginDir, m.name))
	reg := exec.Command(made.tool, "register", filepath.Join(v.pluginDir, m.name))
	reg.Env = append(withoutVaultEnv(os.Environ()), "VAULT_ADDR="+v.addr, "VAULT_TOKEN="+rootToken)
	out, err := reg.CombinedOutput()
	if err != nil {
		t.Fatalf("vaultplugin register: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("registered %s plugin %s %s", m.typ, m.name, m.version); !strings.Contains(string(out), want) {
		t.Errorf("vaultplugin register said %q, want %q", out, want)
	}
	switch m.typ {
	case "secret":
		v.must("secrets", "enable", "-path=s", "-plugin-version="+m.version, m.name)
		if code, _ := v.api("GET", "s/creds", rootToken, nil); code != 400 {
			t.Errorf("creds before config: HTTP %d, want 400", code)
		}
		v.must("write", "s/config", "ttl=1h", "max_ttl=24h")
		if out := v.must("read", "-field=ttl", "s/config"); strings.TrimSpace(out) != "3600" {
			t.Errorf("config's ttl = %q", out)
		}
		var creds struct {
			LeaseID       string `json:"lease_id"`
			LeaseDuration int    `json:"lease_duration"`
			Renewable     bool   `json:"renewable"`
			Data          struct{ ID, Token string }
		}
		if err := json.Unmarshal([]byte(v.must("read", "-format=json", "s/creds")), &creds); err != nil || creds.Data.Token == "" || !creds.Renewable || creds.LeaseDuration != 3600 {
			t.Fatalf("creds: %v %+v", err, creds)
		}
		if out := v.must("list", "-format=json", "s/tokens"); !strings.Contains(out, creds.Data.ID) {
			t.Errorf("tokens/ = %s, want %s", out, creds.Data.ID)
		}
		v.must("lease", "renew", creds.LeaseID)
		v.must("lease", "revoke", creds.LeaseID)
		eventually(t, 10*time.Second, func() error {
			if code, body := v.api("LIST", "s/tokens", rootToken, nil); code != 404 {
				return fmt.Errorf("tokens/ after the revocation: HTTP %d %v", code, body)
			}
			return nil
		})
	case "auth":
		v.must("auth", "enable", "-path=a", "-plugin-version="+m.version, m.name)
		v.must("write", "auth/a/config", "token_policies=reader", "token_ttl=10m", "token_max_ttl=1h")
		v.must("write", "auth/a/users/alice", "password=correct horse")
		if code, _ := v.api("PUT", "auth/a/login", "", map[string]any{"username": "alice", "password": "wrong"}); code != 400 {
			t.Errorf("a wrong password: HTTP %d, want 400", code)
		}
		code, resp := v.api("PUT", "auth/a/login", "", map[string]any{"username": "alice", "password": "correct horse"})
		auth, _ := resp["auth"].(map[string]any)
		token, _ := auth["client_token"].(string)
		if code != 200 || token == "" || auth["renewable"] != true || !strings.Contains(fmt.Sprint(auth["policies"]), "reader") {
			t.Fatalf("login: %d %v", code, resp)
		}
		if code, resp := v.api("PUT", "auth/token/renew-self", token, map[string]any{}); code != 200 {
			t.Errorf("renewing the login's token: %d %v", code, resp)
		}
		v.must("delete", "auth/a/users/alice")
		if code, _ := v.api("PUT", "auth/token/renew-self", token, map[string]any{}); code < 400 {
			t.Errorf("renewing after the user's deletion: HTTP %d, want a refusal", code)
		}
	case "database":
		v.must("secrets", "enable", "database")
		v.must("write", "database/config/c", "plugin_name="+m.name, "plugin_version="+m.version, "allowed_roles=*")
		v.must("write", "database/roles/r", "db_name=c", "default_ttl=1h", "max_ttl=2h")
		issue := func() (lease, user string) {
			var creds struct {
				LeaseID string `json:"lease_id"`
				Data    struct{ Username, Password string }
			}
			if err := json.Unmarshal([]byte(v.must("read", "-format=json", "database/creds/r")), &creds); err != nil || !strings.HasPrefix(creds.Data.Username, "v-") || creds.Data.Password == "" {
				t.Fatalf("creds: %v %+v", err, creds)
			}
			return creds.LeaseID, creds.Data.Username
		}
		revoked, gone := issue()
		_, kept := issue()
		v.must("lease", "renew", revoked)
		v.must("lease", "revoke", revoked)
		// What the plugin holds, seen through Vault: a static role
		// rotates its user's password at once (UpdateUser), which the
		// plugin refuses for a user it no longer has.
		v.must("write", "database/static-roles/kept", "db_name=c", "username="+kept, "rotation_period=1h")
		if out, err := v.cli("write", "database/static-roles/gone", "db_name=c", "username="+gone, "rotation_period=1h"); err == nil || !strings.Contains(out, "does not exist") {
			t.Errorf("a static role for the revoked user %s: %v\n%s", gone, err, out)
		}
	}
}

// runDevStep runs the module's CI step that serves it with vaultplugin
// dev and sends it a request, with h's binary as the vault on PATH, and
// logs how long dev took from its start to the plugin answering.
func runDevStep(t *testing.T, h *host, m *newModule) {
	i := slices.IndexFunc(m.steps, ciStep.devStep)
	if i < 0 {
		t.Fatal("the workflow has no vaultplugin dev step")
	}
	tools := t.TempDir()
	// OpenBao's CLI reads VAULT_ADDR and VAULT_TOKEN when its own are
	// unset, so it serves as the step's vault too.
	if err := os.Symlink(h.bin, filepath.Join(tools, "vault")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(made.tool, filepath.Join(tools, "vaultplugin")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := runStep(t, m, m.steps[i], []string{tools})
	took := time.Since(start)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "built in ") {
			t.Logf("new user, %s on %s: vaultplugin new took %s; the workflow's dev step (build, dev server, mount, a request, Ctrl-C) %s; dev said: %s",
				m.typ, h.name(), m.took.Round(100*time.Millisecond), took.Round(100*time.Millisecond), l)
		}
	}
	if t.Failed() {
		t.Logf("the step's output:\n%s", out)
	}
}

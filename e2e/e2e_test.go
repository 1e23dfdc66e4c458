// Package e2e proves the library inside real hosts, each group on every
// host (Vault 1.16, 1.19 and 1.21, OpenBao 2.6; hosts_test.go): the example
// plugins registered, mounted and used through the host's CLI and HTTP
// API, processes counted, faults injected, and what the host sets checked
// against package compat.
//
//	cd e2e && go test -count=1 -timeout 60m ./...
//
// The first run builds the hosts CI needs from the Go module proxy and the
// shared OpenBao sources (10-20 minutes each on 2 cores); later runs reuse
// the binaries cached outside the repository. README.md lists the
// variables that choose hosts or give your own binaries.
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExamplePlugins(t *testing.T) {
	eachHost(t, "examples: secrets, auth, database", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "vault-plugin-secrets-example", "vault-plugin-auth-example", "vault-plugin-database-htpasswd")

		t.Run("secrets", func(t *testing.T) {
			ver := binVersion(t, "vault-plugin-secrets-example")
			if out, err := v.register("secret", "kv-example", "vault-plugin-secrets-example", ver); err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			v.must("secrets", "enable", "-path=kv", "-plugin-version="+ver, "kv-example")
			v.must("write", "kv/data/app/db", "username=app", "password=s3cr3t")
			if out := v.must("read", "-field=username", "kv/data/app/db"); strings.TrimSpace(out) != "app" {
				t.Errorf("read = %q", out)
			}
			if out := v.must("list", "-format=json", "kv/data/app"); !strings.Contains(out, `"db"`) {
				t.Errorf("list = %q", out)
			}
			v.must("delete", "kv/data/app/db")
			if out, err := v.cli("read", "kv/data/app/db"); err == nil {
				t.Errorf("read after delete succeeded: %s", out)
			}
		})

		t.Run("auth", func(t *testing.T) {
			if out, err := v.register("auth", "userpass-example", "vault-plugin-auth-example", binVersion(t, "vault-plugin-auth-example")); err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			v.must("auth", "enable", "-path=example", "-plugin-version="+binVersion(t, "vault-plugin-auth-example"), "userpass-example")
			if code, resp := v.api("PUT", "sys/policies/acl/reader", rootToken, map[string]any{"policy": `path "kv/*" { capabilities = ["read"] }`}); code != 204 {
				t.Fatalf("writing a policy: %d %v", code, resp)
			}
			v.must("write", "auth/example/users/alice", "password=correct horse", "policies=reader", "ttl=10m")
			code, resp := v.api("PUT", "auth/example/login", "", map[string]any{"username": "alice", "password": "correct horse"})
			auth, _ := resp["auth"].(map[string]any)
			if code != 200 || auth == nil {
				t.Fatalf("login: %d %v", code, resp)
			}
			token, _ := auth["client_token"].(string)
			code, self := v.api("GET", "auth/token/lookup-self", token, nil)
			data, _ := self["data"].(map[string]any)
			if code != 200 || !strings.Contains(fmt.Sprint(data["policies"]), "reader") || fmt.Sprint(data["display_name"]) != "example-alice" {
				t.Errorf("request with the login token: %d %v", code, data)
			}
			if code, _ := v.api("PUT", "auth/example/login", "", map[string]any{"username": "alice", "password": "wrong"}); code != 400 && code != 403 {
				t.Errorf("wrong password: HTTP %d", code)
			}
		})

		t.Run("database", func(t *testing.T) {
			htpasswd := filepath.Join(t.TempDir(), "htpasswd")
			if out, err := v.register("database", "htpasswd", "vault-plugin-database-htpasswd", binVersion(t, "vault-plugin-database-htpasswd")); err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			v.must("secrets", "enable", "database")
			v.must("write", "database/config/web", "plugin_name=htpasswd", "plugin_version="+binVersion(t, "vault-plugin-database-htpasswd"), "htpasswd_file="+htpasswd, "allowed_roles=*")
			v.must("write", "database/roles/web", "db_name=web", "default_ttl=1h", "max_ttl=2h")
			var creds struct {
				LeaseID string `json:"lease_id"`
				Data    struct{ Username, Password string }
			}
			if err := json.Unmarshal([]byte(v.must("read", "-format=json", "database/creds/web")), &creds); err != nil || creds.Data.Username == "" {
				t.Fatalf("creds: %v %+v", err, creds)
			}
			b, _ := os.ReadFile(htpasswd)
			if !strings.Contains(string(b), creds.Data.Username+":$2") {
				t.Fatalf("user %s not in the htpasswd file:\n%s", creds.Data.Username, b)
			}
			v.must("lease", "revoke", creds.LeaseID)
			eventually(t, 5*time.Second, func() error {
				b, _ := os.ReadFile(htpasswd)
				if strings.Contains(string(b), creds.Data.Username) {
					return fmt.Errorf("user %s still in the file after revocation:\n%s", creds.Data.Username, b)
				}
				return nil
			})
		})
	})
}

func TestMultiplexing(t *testing.T) {
	eachHost(t, "multiplexing: 20 mounts, 1 process", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "vault-plugin-secrets-example", "testplugin")
		for i := range 20 {
			v.must("secrets", "enable", fmt.Sprintf("-path=kv%d", i), "vault-plugin-secrets-example")
		}
		for i := range 20 {
			v.must("write", fmt.Sprintf("kv%d/data/k", i), fmt.Sprintf("mount=%d", i))
		}
		if pids := pluginPIDs(v.pluginDir); len(pids) != 1 {
			t.Errorf("20 mounts run in %d processes %v, want 1", len(pids), pids)
		}
		if out := v.must("read", "-field=mount", "kv7/data/k"); strings.TrimSpace(out) != "7" {
			t.Errorf("kv7 = %q: mounts not isolated", out)
		}

		t.Run("WithoutMultiplexing", func(t *testing.T) {
			recordOn(t, h, "WithoutMultiplexing: 1 process per mount")
			if out, err := v.register("secret", "nomux", "testplugin", "", "-env=TESTPLUGIN_MODE=nomux"); err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			before := len(pluginPIDs(v.pluginDir))
			for i := range 5 {
				v.must("secrets", "enable", fmt.Sprintf("-path=nomux%d", i), "nomux")
				v.must("write", fmt.Sprintf("nomux%d/kv/k", i), "value=v")
			}
			if got := len(pluginPIDs(v.pluginDir)) - before; got != 5 {
				t.Errorf("5 mounts of a plugin served WithoutMultiplexing run in %d new processes, want 5", got)
			}
		})
	})
}

func TestVersions(t *testing.T) {
	eachHost(t, "versions: reported, shown, mismatch refused", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "vault-plugin-secrets-example", "testplugin")
		ver := binVersion(t, "vault-plugin-secrets-example")
		if ver == "(unknown)" || !strings.HasPrefix(ver, "v") {
			t.Fatalf("the binary reports %q; it is built with -buildvcs=true from a git checkout", ver)
		}
		if out, err := v.register("secret", "kv-versioned", "vault-plugin-secrets-example", ver); err != nil {
			t.Fatalf("register: %v\n%s", err, out)
		}
		if out := v.must("plugin", "info", "-format=json", "-version="+ver, "secret", "kv-versioned"); !strings.Contains(out, `"version": "`+ver+`"`) {
			t.Errorf("plugin info:\n%s", out)
		}
		v.must("secrets", "enable", "-path=kvv", "-plugin-version="+ver, "kv-versioned")
		var mounts map[string]struct {
			PluginVersion        string `json:"plugin_version"`
			RunningPluginVersion string `json:"running_plugin_version"`
		}
		if err := json.Unmarshal([]byte(v.must("secrets", "list", "-detailed", "-format=json")), &mounts); err != nil {
			t.Fatal(err)
		}
		if m := mounts["kvv/"]; m.RunningPluginVersion != ver || m.PluginVersion != ver {
			t.Errorf("secrets list: plugin_version %q running_plugin_version %q, want %q", m.PluginVersion, m.RunningPluginVersion, ver)
		}
		// A different -version than the binary reports: Vault starts the
		// plugin at registration and refuses the mismatch.
		out, err := v.register("secret", "wrong-version", "testplugin", "v9.9.9", "-env=TESTPLUGIN_MODE=version")
		if err == nil || !strings.Contains(out, "plugin version mismatch: wrong-version reported version (v1.2.3) did not match requested version (v9.9.9)") {
			t.Errorf("registering a mismatched version: %v\n%s", err, out)
		}
	})
}

func TestFaults(t *testing.T) {
	eachHost(t, "faults: plugin killed, reload, start failure", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "vault-plugin-secrets-example", "testplugin")
		v.must("secrets", "enable", "-path=kv", "vault-plugin-secrets-example")
		v.must("write", "kv/data/before", "value=kept")
		pids := pluginPIDs(v.pluginDir)
		if len(pids) != 1 {
			t.Fatalf("plugin processes %v", pids)
		}

		t.Run("plugin killed", func(t *testing.T) {
			if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// Vault restarts the plugin on the next request.
			eventually(t, 10*time.Second, func() error {
				out, err := v.cli("read", "-field=value", "kv/data/before")
				if err != nil || strings.TrimSpace(out) != "kept" {
					return fmt.Errorf("read after the kill: %v %s", err, out)
				}
				return nil
			})
			if now := pluginPIDs(v.pluginDir); len(now) != 1 || now[0] == pids[0] {
				t.Errorf("after the kill: processes %v (killed %d)", now, pids[0])
			}
		})

		t.Run("reload", func(t *testing.T) {
			before := pluginPIDs(v.pluginDir)
			v.must("plugin", "reload", "-plugin=vault-plugin-secrets-example")
			eventually(t, 10*time.Second, func() error {
				out, err := v.cli("read", "-field=value", "kv/data/before")
				if err != nil || strings.TrimSpace(out) != "kept" {
					return fmt.Errorf("read after reload: %v %s", err, out)
				}
				return nil
			})
			after := pluginPIDs(v.pluginDir)
			if len(after) != 1 || (len(before) == 1 && after[0] == before[0]) {
				t.Errorf("reload: processes before %v after %v", before, after)
			}
		})

		t.Run("start failure reaches the API error", func(t *testing.T) {
			if out, err := v.register("secret", "broken", "testplugin", "", "-env=TESTPLUGIN_MODE=badversion"); err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			out, err := v.cli("secrets", "enable", "broken")
			want := `Unrecognized remote plugin message: testplugin: invalid option: WithVersion("not-a-version")`
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("enable: %v\n%s\nwant %q", err, out, want)
			}
			if !strings.Contains(v.log.String(), `[ERROR] secrets.broken`) {
				t.Error("Vault did not log the plugin's error record at ERROR")
			}
		})
	})
}

func TestHostKilled(t *testing.T) {
	eachHost(t, "Vault SIGKILLed: no plugin left after 2 s", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "vault-plugin-secrets-example", "vault-plugin-database-htpasswd")
		v.must("secrets", "enable", "-path=a", "vault-plugin-secrets-example")
		v.must("write", "a/data/k", "v=1")
		v.must("secrets", "enable", "database")
		v.must("write", "database/config/web", "plugin_name=vault-plugin-database-htpasswd", "htpasswd_file="+filepath.Join(t.TempDir(), "h"), "allowed_roles=*")
		if pids := pluginPIDs(v.pluginDir); len(pids) != 2 {
			t.Fatalf("plugin processes before the kill: %v", pids)
		}
		if err := v.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-v.done
		start := time.Now()
		time.Sleep(2 * time.Second)
		if left := pluginPIDs(v.pluginDir); len(left) != 0 {
			t.Errorf("plugin processes %v still run 2 s after Vault was killed", left)
		}
		t.Logf("checked %s after the kill", time.Since(start).Round(time.Millisecond))
	})
}

func TestOperatorMistakes(t *testing.T) {
	eachHost(t, "operator mistakes: sha256, -args", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "vault-plugin-secrets-example")

		t.Run("wrong sha256", func(t *testing.T) {
			bad := strings.Repeat("0", 64)
			out, err := v.cli("plugin", "register", "-sha256="+bad, "-command=vault-plugin-secrets-example", "secret", "badsum")
			if err == nil {
				out, err = v.cli("secrets", "enable", "badsum")
			}
			if err == nil || !strings.Contains(out, "checksums did not match") {
				t.Errorf("a wrong sha256: %v\n%s", err, out)
			}
			// go-plugin checks the checksum before it starts the process.
			for _, l := range strings.Split(v.log.String(), "\n") {
				if strings.Contains(l, "badsum") && strings.Contains(l, "starting plugin") {
					t.Errorf("the plugin was started: %s", l)
				}
			}
		})

		t.Run("unknown -args", func(t *testing.T) {
			if out, err := v.register("secret", "badargs", "vault-plugin-secrets-example", "", "-args=-ca-certs=/etc/ca.pem"); err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			out, err := v.cli("secrets", "enable", "badargs")
			if err == nil || !strings.Contains(out, "flag provided but not defined: -ca-certs") {
				t.Errorf("enable with an unknown flag: %v\n%s", err, out)
			}
		})
	})
}

// TestPastedRegisterText runs the lines a person is shown when they run the
// binary by hand, as they would paste them.
func TestPastedRegisterText(t *testing.T) {
	eachHost(t, "run-by-a-person text, pasted", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "vault-plugin-secrets-example")
		bin := filepath.Join(v.pluginDir, "vault-plugin-secrets-example")
		cmd := exec.Command(bin)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("run by hand: %v\n%s", err, out)
		}
		var pasted int
		for _, l := range strings.Split(string(out), "\n") {
			l = strings.TrimSpace(l)
			if !strings.HasPrefix(l, "vault plugin register ") && !strings.HasPrefix(l, "vault secrets enable ") {
				continue
			}
			args := strings.Fields(l)[1:]
			if o, err := v.cli(args...); err != nil {
				t.Fatalf("pasted %q: %v\n%s", l, err, o)
			}
			pasted++
		}
		if pasted != 2 {
			t.Fatalf("pasted %d lines, want 2:\n%s", pasted, out)
		}
		v.must("write", "vault-plugin-secrets-example/data/hello", "who=world")
		if got := v.must("read", "-field=who", "vault-plugin-secrets-example/data/hello"); strings.TrimSpace(got) != "world" {
			t.Errorf("read = %q", got)
		}
	})
}

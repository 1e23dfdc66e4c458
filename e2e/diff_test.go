package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// The differential test runs one script of requests per plugin through a
// real Vault's HTTP API and through servetest's Mount, and compares what a
// client sees: the HTTP status, the data, the warnings, the error
// messages, and the auth a login returns. Every difference must be listed
// in knownDifferences with its reason (and in servetest's package doc);
// any other fails the test.

// step is one request of a script: op is read, write, list, delete or
// login (a write without a token), path is relative to the mount.
type step struct {
	op, path string
	data     map[string]any
	expect   int // when not 0, the status both must answer
}

// outcome is what a client sees of one request.
type outcome struct {
	Status   int
	Data     any      `json:",omitempty"`
	Warnings []string `json:",omitempty"`
	Errors   []string `json:",omitempty"`
	Auth     any      `json:",omitempty"`
}

// knownDifferences are the accepted differences, by plugin and step, with
// why servetest cannot or does not play Vault there. Empty: none known.
var knownDifferences = map[string]string{}

// hostDifferences are the accepted differences of one host from the Vault
// 1.21 that servetest plays, by host key and step: the host's own request
// handling, before any plugin sees the request.
var hostDifferences = map[string]map[string]string{
	"vault-1.16": {
		// Vault 1.16.3's go.mod says go 1.21, so its HTTP server keeps Go
		// 1.21's ServeMux (GODEBUG httpmuxgo121=1 by default), which
		// redirects an unclean path with 301; from 1.19 (go 1.24) it is Go
		// 1.22's, which answers 307. A release binary, built with Go
		// 1.22.2 from the same go.mod, does the same.
		"vault-plugin-secrets-example #11 write data/../escape": "Vault 1.16's HTTP server (Go 1.21 ServeMux) redirects an unclean path with 301, not 307; the plugin never sees the request",
	},
}

// script returns the steps for the plugin registered as name.
func script(name string) []step {
	switch name {
	case "testplugin":
		return []step{
			{op: "read", path: "echo/x"},
			{op: "write", path: "echo/new", data: map[string]any{"a": 1}},
			{op: "write", path: "echo/existing", data: map[string]any{"a": "b"}},
			{op: "list", path: "echo"},
			{op: "list", path: "echo/sub/"},
			{op: "delete", path: "echo/x"},
			{op: "login", path: "login", data: map[string]any{"password": "x"}},
			{op: "login", path: "echo/x"},
			{op: "read", path: "sysview"},
			{op: "write", path: "kv/k", data: map[string]any{"value": "v"}},
			{op: "read", path: "kv/k"},
			{op: "read", path: "kv/missing"},
			{op: "read", path: "no/such/path"},
			{op: "delete", path: "kv/k"},
			{op: "write", path: "kv/", data: map[string]any{"value": "v"}},
			{op: "write", path: "", data: map[string]any{"value": "v"}},
			{op: "write", path: "kv/k2", data: map[string]any{"value": map[string]any{"not": "a string"}}},
			{op: "write", path: "kv/k3", data: map[string]any{"value": "v", "unknown": "field"}},
			{op: "read", path: "panic"},
			{op: "write", path: "panic-exists"},
		}
	case "vault-plugin-secrets-example":
		return []step{
			{op: "write", path: "data/app/db", data: map[string]any{"username": "app", "password": "s3cr3t"}},
			{op: "read", path: "data/app/db"},
			{op: "write", path: "data/app/db", data: map[string]any{"username": "app2"}},
			{op: "read", path: "data/app/db"},
			{op: "write", path: "data/app/api", data: map[string]any{"key": 42}},
			{op: "list", path: "data/app"},
			{op: "list", path: "data"},
			{op: "list", path: "data/nothing-here"},
			{op: "write", path: "data/app/empty"},
			{op: "write", path: "data/app/", data: map[string]any{"k": "v"}},
			{op: "write", path: "data/../escape", data: map[string]any{"k": "v"}},
			{op: "delete", path: "data/app/db"},
			{op: "read", path: "data/app/db"},
			{op: "delete", path: "data/never-written"},
			{op: "read", path: "info"},
			{op: "write", path: "info", data: map[string]any{"k": "v"}},
			{op: "read", path: "nope"},
		}
	case "vault-plugin-auth-example":
		return []step{
			{op: "write", path: "users/alice", data: map[string]any{"password": "correct horse", "policies": "reader,writer", "ttl": "10m"}},
			{op: "write", path: "users/alice", data: map[string]any{"policies": "reader"}},
			{op: "write", path: "users/bob"},
			{op: "read", path: "users/alice"},
			{op: "list", path: "users"},
			{op: "login", path: "login", data: map[string]any{"username": "alice", "password": "correct horse"}},
			{op: "login", path: "login", data: map[string]any{"username": "Alice", "password": "correct horse"}},
			{op: "login", path: "login", data: map[string]any{"username": "alice", "password": "wrong"}},
			{op: "login", path: "login", data: map[string]any{"username": "mallory", "password": "x"}},
			{op: "login", path: "login", data: map[string]any{"username": "alice"}},
			{op: "login", path: "users/alice"},
			{op: "write", path: "users/carol", data: map[string]any{"password": "p", "ttl": "not-a-duration"}},
			{op: "delete", path: "users/alice"},
			{op: "login", path: "login", data: map[string]any{"username": "alice", "password": "correct horse"}},
			{op: "read", path: "users/alice"},
			{op: "list", path: "users"},
		}
	case k8sPlugin:
		return []step{
			{op: "write", path: "config", data: map[string]any{"kubernetes_host": "https://127.0.0.1:1", "disable_local_ca_jwt": true}},
			{op: "read", path: "config"},
			// The case servetest got wrong before it ran Vault's existence
			// check: a role written with a PUT is created.
			{op: "write", path: "role/demo", data: map[string]any{"bound_service_account_names": "default", "bound_service_account_namespaces": "default", "token_policies": "reader"}, expect: 200},
			{op: "read", path: "role/demo"},
			{op: "write", path: "role/demo", data: map[string]any{"token_ttl": "60"}},
			{op: "read", path: "role/demo"},
			{op: "list", path: "role"},
			{op: "write", path: "role/bad", data: map[string]any{"bound_service_account_names": "default"}},
			{op: "login", path: "login", data: map[string]any{"role": "demo", "jwt": "not-a-jwt"}},
			{op: "login", path: "login", data: map[string]any{"role": "missing", "jwt": "x"}},
			{op: "login", path: "login", data: map[string]any{}},
			{op: "delete", path: "role/demo"},
			{op: "read", path: "role/demo"},
			{op: "list", path: "role"},
		}
	}
	return nil
}

func TestDifferential(t *testing.T) {
	eachHost(t, "differential: servetest vs Vault, 4 plugins", nil, func(t *testing.T, h *host) {
		k8sBin, k8sVer, _ := thirdParty(t)
		names := []string{"testplugin", "vault-plugin-secrets-example", "vault-plugin-auth-example"}
		if k8sBin != "" {
			bins[k8sPlugin] = k8sBin
			t.Cleanup(func() { delete(bins, k8sPlugin) })
			names = append(names, k8sPlugin)
		}
		v := startVault(t, h, names...)

		var rows []string
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				typ, ver := "secret", binVersion(t, name)
				if name == k8sPlugin {
					ver = k8sVer
				}
				if strings.Contains(name, "auth") {
					typ = "auth"
				}
				// -dev-plugin-dir registered the binary; mount it under its
				// own name, as servetest does, so MountPoint matches.
				enable := []string{"secrets", "enable", "-path=" + name, "-plugin-version=" + ver, name}
				prefix := name + "/"
				if typ == "auth" {
					enable[0], prefix = "auth", "auth/"+name+"/"
				}
				if out, err := v.cli(enable...); err != nil {
					t.Fatalf("vault %s: %v\n%s", strings.Join(enable, " "), err, out)
				}
				// servetest plays this host's version, as the plugin sees it.
				p := servetest.Start(t, bins[name], servetest.WithPluginName(name), servetest.WithVaultVersion(h.actual))
				m := p.Mount(t, nil)
				if m.MountPoint != prefix {
					t.Fatalf("servetest mounted at %q, Vault at %q", m.MountPoint, prefix)
				}
				same, known := 0, 0
				for i, s := range script(name) {
					key := fmt.Sprintf("%s #%d %s %s", name, i+1, s.op, s.path)
					want := v.do(t, s, prefix)
					got := do(t, m, s)
					normalize(&want)
					normalize(&got)
					if s.expect != 0 && (want.Status != s.expect || got.Status != s.expect) {
						t.Errorf("%s: Vault answered %d, servetest %d, want %d", key, want.Status, got.Status, s.expect)
					}
					if reflect.DeepEqual(want, got) {
						same++
						rows = append(rows, fmt.Sprintf("| %s | %d | %d | same |", key, want.Status, got.Status))
						continue
					}
					w, _ := json.Marshal(want)
					g, _ := json.Marshal(got)
					why, ok := knownDifferences[key]
					if !ok {
						why, ok = hostDifferences[h.key][key]
					}
					if ok {
						known++
						rows = append(rows, fmt.Sprintf("| %s | %d | %d | known: %s |", key, want.Status, got.Status, why))
						t.Logf("known difference %s (%s):\n  vault:     %s\n  servetest: %s", key, why, w, g)
						continue
					}
					rows = append(rows, fmt.Sprintf("| %s | %d | %d | DIFFERENT |", key, want.Status, got.Status))
					t.Errorf("%s differs:\n  vault:     %s\n  servetest: %s", key, w, g)
				}
				t.Logf("%s: %d steps, %d the same, %d known differences", name, len(script(name)), same, known)
				if known > 0 {
					summary.note(fmt.Sprintf("differential on %s: %s: %d of %d steps the same, %d accepted differences (the test log says which and why)", h.name(), name, same, len(script(name)), known))
				}
			})
		}
		t.Logf("differences table:\n| step | Vault status | servetest status | result |\n|---|---|---|---|\n%s", strings.Join(rows, "\n"))
	})
}

// do runs s through Vault's HTTP API against the mount at prefix.
func (v *vault) do(t *testing.T, s step, prefix string) outcome {
	t.Helper()
	method, token := map[string]string{"read": "GET", "write": "PUT", "list": "LIST", "delete": "DELETE", "login": "PUT"}[s.op], rootToken
	if s.op == "login" {
		token = ""
	}
	var body io.Reader
	if s.data != nil {
		b, _ := json.Marshal(s.data)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, v.addr+"/v1/"+prefix+s.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	// Redirects are not followed, as Vault's own API client does not
	// follow them for writes: the status is what the server answered.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data     any      `json:"data"`
		Warnings []string `json:"warnings"`
		Errors   []string `json:"errors"`
		Auth     any      `json:"auth"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, s.path, err, raw)
		}
	}
	return outcome{Status: resp.StatusCode, Data: r.Data, Warnings: r.Warnings, Errors: r.Errors, Auth: r.Auth}
}

// do runs s through servetest's Mount and shows it as Vault's API would.
func do(t *testing.T, m *servetest.Mount, s step) outcome {
	t.Helper()
	ctx := context.Background()
	var resp *logical.Response
	var err error
	switch s.op {
	case "read":
		resp, err = m.Read(ctx, s.path)
	case "write":
		resp, err = m.Write(ctx, s.path, s.data)
	case "list":
		resp, err = m.List(ctx, s.path)
	case "delete":
		resp, err = m.Delete(ctx, s.path)
	case "login":
		resp, err = m.Login(ctx, s.path, s.data)
	}
	if err != nil {
		var re *servetest.ResponseError
		if !errors.As(err, &re) {
			t.Fatalf("%s %s: %v is not a *servetest.ResponseError", s.op, s.path, err)
		}
		// Vault's error answer holds only the errors.
		return outcome{Status: re.StatusCode, Errors: re.Errors}
	}
	if resp == nil {
		return outcome{Status: http.StatusNoContent}
	}
	o := outcome{Status: http.StatusOK, Warnings: resp.Warnings}
	if resp.Data != nil {
		o.Data = roundTrip(t, resp.Data)
	}
	if resp.Auth != nil {
		o.Auth = roundTrip(t, map[string]any{
			"policies": resp.Auth.Policies,
			"metadata": resp.Auth.Metadata,
		})
	}
	return o
}

func roundTrip(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	sha1Hex  = regexp.MustCompile(`^[0-9a-f]{40}$`)
	accessor = regexp.MustCompile(`_[0-9a-f]{8}$`)
)

// normalize replaces what differs between any two runs, not between Vault
// and servetest: salted tokens and accessors (random per mount and
// token), and of a login's auth what Vault adds when it issues the token.
func normalize(o *outcome) {
	if d, ok := o.Data.(map[string]any); ok {
		for k, v := range d {
			s, isString := v.(string)
			switch {
			case k == "client_token" && isString && sha1Hex.MatchString(s):
				d[k] = "<salted token>"
			case k == "client_token_accessor" && isString && s != "":
				d[k] = "<accessor>"
			case k == "mount_accessor" && isString:
				d[k] = accessor.ReplaceAllString(s, "_<random>")
			}
		}
	}
	if a, ok := o.Auth.(map[string]any); ok {
		// Of the token Vault issues, keep what the plugin decided: its
		// policies (without the "default" Vault adds) and metadata.
		var policies []string
		if ps, ok := a["policies"].([]any); ok {
			for _, p := range ps {
				if s, _ := p.(string); s != "default" {
					policies = append(policies, s)
				}
			}
		}
		sort.Strings(policies)
		md := a["metadata"]
		if m, ok := md.(map[string]any); ok && len(m) == 0 {
			md = nil
		}
		o.Auth = map[string]any{"policies": policies, "metadata": md}
	}
	if len(o.Warnings) == 0 {
		o.Warnings = nil
	}
	if len(o.Errors) == 0 {
		o.Errors = nil
	}
}

// TestDifferentialDatabase drives the htpasswd example through Vault's
// database engine and through servetest's Connection helpers, the same
// sequence on each, and compares what each leaves in its htpasswd file
// and what the credentials look like.
func TestDifferentialDatabase(t *testing.T) {
	eachHost(t, "differential: database engine vs servetest", nil, func(t *testing.T, h *host) {
		const name = "vault-plugin-database-htpasswd"
		v := startVault(t, h, name)
		ver := binVersion(t, name)
		vaultFile, testFile := filepath.Join(t.TempDir(), "vault.htpasswd"), filepath.Join(t.TempDir(), "servetest.htpasswd")

		// Through Vault.
		v.must("secrets", "enable", "database")
		_, badErr := v.cli("write", "database/config/bad", "plugin_name="+name, "plugin_version="+ver, "htpasswd_file=/nonexistent-dir/h")
		v.must("write", "database/config/web", "plugin_name="+name, "plugin_version="+ver, "htpasswd_file="+vaultFile, "allowed_roles=*")
		v.must("write", "database/roles/web", "db_name=web", "default_ttl=1h", "max_ttl=2h")
		var creds struct {
			LeaseID string `json:"lease_id"`
			Data    struct{ Username, Password string }
		}
		if err := json.Unmarshal([]byte(v.must("read", "-format=json", "database/creds/web")), &creds); err != nil {
			t.Fatal(err)
		}
		vaultIssued := fileOf(t, vaultFile)
		v.must("lease", "renew", creds.LeaseID)
		v.must("lease", "revoke", "-sync", creds.LeaseID)
		vaultRevoked := fileOf(t, vaultFile)

		// Through servetest.
		ctx := context.Background()
		conn := servetest.StartDatabase(t, bins[name]).Connect(t)
		_, testBadErr := conn.Configure(ctx, map[string]any{"htpasswd_file": "/nonexistent-dir/h"})
		if _, err := conn.Configure(ctx, map[string]any{"htpasswd_file": testFile}); err != nil {
			t.Fatal(err)
		}
		role := servetest.Role{Name: "web", TTL: time.Hour}
		tc, err := conn.NewCredentials(ctx, role)
		if err != nil {
			t.Fatal(err)
		}
		testIssued := fileOf(t, testFile)
		if err := conn.RenewCredentials(ctx, role, tc.Username, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := conn.Revoke(ctx, role, tc.Username); err != nil {
			t.Fatal(err)
		}
		testRevoked := fileOf(t, testFile)

		shape := func(user, password string) string {
			return fmt.Sprintf("user %s, password of %d characters matching %v", accessorLike.ReplaceAllString(user, "-<random>"), len(password), vaultPassword.MatchString(password))
		}
		for _, c := range []struct{ what, vault, servetest string }{
			{"a configuration that does not verify is refused", fmt.Sprint(badErr != nil), fmt.Sprint(testBadErr != nil)},
			{"credentials", shape(creds.Data.Username, creds.Data.Password), shape(tc.Username, tc.Password)},
			{"users in the file after issuing", fmt.Sprint(len(vaultIssued)), fmt.Sprint(len(testIssued))},
			{"users in the file after revoking", fmt.Sprint(len(vaultRevoked)), fmt.Sprint(len(testRevoked))},
		} {
			if c.vault != c.servetest {
				t.Errorf("%s: Vault %s, servetest %s", c.what, c.vault, c.servetest)
			} else {
				t.Logf("%s: %s on both", c.what, c.vault)
			}
		}
	})
}

var (
	accessorLike  = regexp.MustCompile(`-[A-Za-z0-9]{10}$`)
	vaultPassword = regexp.MustCompile(`^[A-Za-z0-9-]{20}$`)
)

// fileOf returns the users of an htpasswd file.
func fileOf(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var users []string
	for _, l := range strings.Split(string(b), "\n") {
		if u, _, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") {
			users = append(users, u)
		}
	}
	return users
}

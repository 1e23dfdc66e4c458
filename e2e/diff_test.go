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
	pathpkg "path"
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
// login (a write without a token), path is relative to the mount. The
// lease steps are renew, revoke and revoke-prefix (sys/leases) and
// token-renew (auth/token/renew): they act on the lease ID or client
// token an earlier step saved under lease, or, without one, on path (the
// mount's prefix added), for an ID that does not exist.
type step struct {
	op, path  string
	data      map[string]any
	expect    int    // when not 0, the status both must answer
	save      string // keeps the answer's lease ID or client token under this name
	lease     string // the saved lease ID or token the step acts on
	increment int    // seconds, for renew and token-renew
}

// outcome is what a client sees of one request: the HTTP status and the
// fields of Vault's JSON answer that the test compares, under their names.
type outcome struct {
	Status        int      `json:"status"`
	Data          any      `json:"data,omitempty"`
	Warnings      []string `json:"warnings,omitempty"`
	Errors        []string `json:"errors,omitempty"`
	Auth          any      `json:"auth,omitempty"`
	LeaseID       string   `json:"lease_id,omitempty"`
	Renewable     bool     `json:"renewable,omitempty"`
	LeaseDuration int      `json:"lease_duration,omitempty"`
}

// handles are the lease IDs and client tokens a script's steps saved, by
// name: each side (Vault, servetest) has its own.
type handles map[string]string

// target is what a lease step acts on: the saved lease ID or token, or
// the mount's prefix and the step's path.
func (s step) target(saved handles, prefix string) string {
	switch {
	case s.lease != "":
		return saved[s.lease]
	case s.path == "":
		return ""
	}
	return prefix + s.path
}

// keep saves o's lease ID or client token under s.save.
func (s step) keep(saved handles, leaseID, token string) {
	if s.save == "" {
		return
	}
	saved[s.save] = leaseID
	if token != "" {
		saved[s.save] = token
	}
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
			// Leases on an untuned mount: Vault's 768h default, and its
			// cap with the warning. The renewals are on the tuned mount
			// (testplugin-leases): here a renewal by the default TTL is
			// capped, or not, by whether a second passed since the issue.
			{op: "write", path: "lease/plain"},
			{op: "write", path: "lease/long", data: map[string]any{"ttl": "1000h"}},
			{op: "revoke-prefix", path: "lease"},
			{op: "read", path: "lease-log/plain"},
		}
	case "testplugin-leases":
		// The mount is tuned to default_lease_ttl=1h, max_lease_ttl=2h.
		return []step{
			{op: "write", path: "lease/web", save: "web"},
			{op: "write", path: "lease/capped", data: map[string]any{"ttl": "3h"}, save: "capped"},
			{op: "read", path: "lease-log/web"},
			{op: "renew", lease: "web"},
			{op: "renew", lease: "web", increment: 1800},
			{op: "read", path: "lease-log/web"},
			{op: "renew", lease: "capped", increment: 3 * 3600},
			{op: "revoke", lease: "web", expect: 204},
			{op: "read", path: "lease-log/web"},
			{op: "renew", lease: "web"},
			{op: "revoke", lease: "web"},
			{op: "revoke", path: "lease/web/AAAAAAAAAAAAAAAAAAAAAAAA"},
			{op: "renew", path: "lease/web/AAAAAAAAAAAAAAAAAAAAAAAA"},
			{op: "renew"},
			{op: "revoke"},
			{op: "write", path: "lease/fixed", data: map[string]any{"renewable": false}, save: "fixed"},
			{op: "renew", lease: "fixed"},
			{op: "write", path: "lease/badrenew", data: map[string]any{"fail": "renew"}, save: "badrenew"},
			{op: "renew", lease: "badrenew"},
			{op: "write", path: "lease/badrevoke", data: map[string]any{"fail": "revoke"}, save: "badrevoke"},
			{op: "revoke", lease: "badrevoke"},
			{op: "renew", lease: "badrevoke"},
			{op: "revoke-prefix", path: "lease/fixed"},
			{op: "renew", lease: "fixed"},
			{op: "revoke-prefix", path: "lease/"},
			{op: "renew", lease: "badrenew"},
			{op: "read", path: "lease-log/capped"},
			{op: "revoke-prefix", lease: "badrenew"},
			{op: "renew", lease: "badrenew"},
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
			// Token renewal (`vault token renew`) on a mount tuned to
			// default_lease_ttl=1h, max_lease_ttl=2h.
			{op: "write", path: "users/dave", data: map[string]any{"password": "pw", "policies": "ops", "ttl": "30m"}},
			{op: "login", path: "login", data: map[string]any{"username": "dave", "password": "pw"}, save: "dave"},
			{op: "token-renew", lease: "dave"},
			{op: "token-renew", lease: "dave", increment: 3600},
			{op: "token-renew", lease: "dave", increment: 3 * 3600},
			{op: "write", path: "users/dave", data: map[string]any{"policies": "ops,admin"}},
			{op: "token-renew", lease: "dave"},
			{op: "delete", path: "users/dave"},
			{op: "token-renew", lease: "dave"},
			{op: "token-renew", path: "no-such-token"},
			{op: "token-renew"},
			{op: "write", path: "users/erin", data: map[string]any{"password": "pw"}},
			{op: "login", path: "login", data: map[string]any{"username": "erin", "password": "pw"}, save: "erin"},
			{op: "token-renew", lease: "erin"},
			{op: "write", path: "users/frank", data: map[string]any{"password": "pw", "ttl": "3h"}},
			{op: "login", path: "login", data: map[string]any{"username": "frank", "password": "pw"}},
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

// diffMount is a mount the differential test compares: the plugin
// registered as bin, mounted at name on the host and in servetest, with
// its lease TTLs tuned when ttls is set (default, max).
type diffMount struct {
	name, bin string
	ttls      []time.Duration
}

func TestDifferential(t *testing.T) {
	eachHost(t, "differential: servetest vs Vault, 4 plugins", nil, func(t *testing.T, h *host) {
		k8sBin, k8sVer, _ := thirdParty(t)
		tuned := []time.Duration{time.Hour, 2 * time.Hour}
		mounts := []diffMount{
			{name: "testplugin", bin: "testplugin"},
			{name: "testplugin-leases", bin: "testplugin", ttls: tuned},
			{name: "vault-plugin-secrets-example", bin: "vault-plugin-secrets-example"},
			{name: "vault-plugin-auth-example", bin: "vault-plugin-auth-example", ttls: tuned},
		}
		registered := []string{"testplugin", "vault-plugin-secrets-example", "vault-plugin-auth-example"}
		if k8sBin != "" {
			bins[k8sPlugin] = k8sBin
			t.Cleanup(func() { delete(bins, k8sPlugin) })
			mounts = append(mounts, diffMount{name: k8sPlugin, bin: k8sPlugin})
			registered = append(registered, k8sPlugin)
		}
		v := startVault(t, h, registered...)

		var rows []string
		for _, mnt := range mounts {
			name := mnt.name
			t.Run(name, func(t *testing.T) {
				typ, ver := "secret", binVersion(t, mnt.bin)
				if mnt.bin == k8sPlugin {
					ver = k8sVer
				}
				if strings.Contains(mnt.bin, "auth") {
					typ = "auth"
				}
				// -dev-plugin-dir registered the binary; mount it under its
				// own name, as servetest does, so MountPoint matches.
				enable := []string{"secrets", "enable", "-path=" + name, "-plugin-version=" + ver}
				opts := []servetest.Option{servetest.WithPluginName(name), servetest.WithVaultVersion(h.actual)}
				if mnt.ttls != nil {
					enable = append(enable, "-default-lease-ttl="+mnt.ttls[0].String(), "-max-lease-ttl="+mnt.ttls[1].String())
					opts = append(opts, servetest.WithLeaseTTLs(mnt.ttls[0], mnt.ttls[1]))
				}
				enable = append(enable, mnt.bin)
				prefix := name + "/"
				if typ == "auth" {
					enable[0], prefix = "auth", "auth/"+name+"/"
				}
				if out, err := v.cli(enable...); err != nil {
					t.Fatalf("vault %s: %v\n%s", strings.Join(enable, " "), err, out)
				}
				// servetest plays this host's version, as the plugin sees it.
				p := servetest.Start(t, bins[mnt.bin], opts...)
				m := p.Mount(t, nil)
				if m.MountPoint != prefix {
					t.Fatalf("servetest mounted at %q, Vault at %q", m.MountPoint, prefix)
				}
				same, known := 0, 0
				vaultSaved, testSaved := handles{}, handles{}
				for i, s := range script(name) {
					key := fmt.Sprintf("%s #%d %s %s", name, i+1, s.op, s.path+s.lease)
					want := v.do(t, s, prefix, vaultSaved)
					got := do(t, m, s, testSaved)
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

// do runs s through Vault's HTTP API against the mount at prefix, as
// Vault's CLI and API client send it: a lease step to sys/leases or
// auth/token with the root token, its path cleaned as the API client
// cleans it.
func (v *vault) do(t *testing.T, s step, prefix string, saved handles) outcome {
	t.Helper()
	method, token, path, data := map[string]string{"read": "GET", "write": "PUT", "list": "LIST", "delete": "DELETE", "login": "PUT"}[s.op], rootToken, prefix+s.path, any(s.data)
	switch s.op {
	case "login":
		token = ""
	case "renew":
		method, path, data = "PUT", "sys/leases/renew", map[string]any{"lease_id": s.target(saved, prefix), "increment": s.increment}
	case "revoke":
		method, path, data = "PUT", "sys/leases/revoke", map[string]any{"lease_id": s.target(saved, prefix)}
	case "revoke-prefix":
		method, path, data = "PUT", pathpkg.Join("sys/leases/revoke-prefix", s.target(saved, prefix)), nil
	case "token-renew":
		method, path, data = "PUT", "auth/token/renew", map[string]any{"token": s.target(saved, prefix), "increment": s.increment}
	}
	var body io.Reader
	if s.data != nil || data != nil {
		b, _ := json.Marshal(data)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, v.addr+"/v1/"+path, body)
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
	var o outcome
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, s.path, err, raw)
		}
	}
	o.Status = resp.StatusCode
	var clientToken string
	if a, ok := o.Auth.(map[string]any); ok {
		clientToken, _ = a["client_token"].(string)
	}
	s.keep(saved, o.LeaseID, clientToken)
	return o
}

// do runs s through servetest's Mount and shows it as Vault's API would.
func do(t *testing.T, m *servetest.Mount, s step, saved handles) outcome {
	t.Helper()
	ctx := context.Background()
	var resp *logical.Response
	var err error
	inc := time.Duration(s.increment) * time.Second
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
	case "renew":
		resp, err = m.Renew(ctx, s.target(saved, m.MountPoint), inc)
	case "revoke":
		err = m.Revoke(ctx, s.target(saved, m.MountPoint))
	case "revoke-prefix":
		err = m.RevokePrefix(ctx, s.target(saved, m.MountPoint))
	case "token-renew":
		resp, err = m.RenewToken(ctx, s.target(saved, m.MountPoint), inc)
	default:
		t.Fatalf("unknown op %q", s.op)
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
	// The response as Vault's HTTP API writes it.
	h := logical.LogicalResponseToHTTPResponse(resp)
	o := outcome{Status: http.StatusOK, Warnings: h.Warnings, LeaseID: h.LeaseID, Renewable: h.Renewable, LeaseDuration: h.LeaseDuration}
	if h.Data != nil {
		o.Data = roundTrip(t, h.Data)
	}
	var clientToken string
	if h.Auth != nil {
		o.Auth = roundTrip(t, h.Auth)
		clientToken = h.Auth.ClientToken
	}
	s.keep(saved, h.LeaseID, clientToken)
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
	// leaseRand is the random end of a lease ID: 24 base62 characters.
	leaseRand = regexp.MustCompile(`/[A-Za-z0-9]{24}\b`)
	// cappedTo is the time left that Vault's TTL cap warning names.
	cappedTo = regexp.MustCompile(`(effective max_ttl of ")([^"]+)(")`)
)

// authFields are the fields of a login's or renewal's auth that the test
// compares: what the plugin decided and what Vault's token store adds to
// it that servetest plays. entity_id is left out: servetest has no
// identity store (a known limit).
var authFields = []string{"policies", "token_policies", "metadata", "lease_duration", "renewable", "token_type", "orphan", "client_token", "accessor", "num_uses"}

// normalize replaces what differs between any two runs, not between Vault
// and servetest: salted tokens and accessors (random per mount and
// token), lease IDs' random ends, and the seconds a host's clock moved
// between two requests (a TTL capped at what is left of a max TTL is
// rounded to the minute; servetest's clock stands still); and of a
// login's auth what Vault adds when it issues the token.
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
	o.LeaseID = leaseRand.ReplaceAllString(o.LeaseID, "/<random>")
	o.LeaseDuration = roundToMinute(o.LeaseDuration)
	for i, e := range o.Errors {
		o.Errors[i] = leaseRand.ReplaceAllString(e, "/<random>")
	}
	for i, w := range o.Warnings {
		o.Warnings[i] = cappedTo.ReplaceAllStringFunc(w, func(m string) string {
			p := cappedTo.FindStringSubmatch(m)
			d, err := time.ParseDuration(p[2])
			if err != nil {
				return m
			}
			return p[1] + d.Round(time.Minute).String() + p[3]
		})
	}
	if a, ok := o.Auth.(map[string]any); ok {
		// Of the token Vault issues, keep what the plugin decided and
		// what servetest plays: its policies (without the "default"
		// Vault adds: servetest leaves a login's Policies as the plugin
		// set them), its token's policies, lease and type.
		n := map[string]any{}
		for _, k := range authFields {
			n[k] = a[k]
		}
		var policies []string
		if ps, ok := a["policies"].([]any); ok {
			for _, p := range ps {
				if s, _ := p.(string); s != "default" {
					policies = append(policies, s)
				}
			}
		}
		sort.Strings(policies)
		n["policies"] = policies
		if tp, ok := a["token_policies"].([]any); ok {
			sort.Slice(tp, func(i, j int) bool { return fmt.Sprint(tp[i]) < fmt.Sprint(tp[j]) })
		}
		if m, ok := n["metadata"].(map[string]any); ok && len(m) == 0 {
			n["metadata"] = nil
		}
		if d, ok := n["lease_duration"].(float64); ok {
			n["lease_duration"] = roundToMinute(int(d))
		}
		for _, k := range []string{"client_token", "accessor"} {
			if s, _ := n[k].(string); s != "" {
				n[k] = "<" + k + ">"
			}
		}
		o.Auth = n
	}
	if len(o.Warnings) == 0 {
		o.Warnings = nil
	}
	if len(o.Errors) == 0 {
		o.Errors = nil
	}
}

// roundToMinute rounds seconds to the nearest minute: the TTLs the
// scripts set are whole minutes, and a real host's clock moves between
// an issue and a renewal.
func roundToMinute(seconds int) int {
	return int((time.Duration(seconds) * time.Second).Round(time.Minute) / time.Second)
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

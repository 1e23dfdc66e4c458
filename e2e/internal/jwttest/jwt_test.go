package jwttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// These tests are written as the JWT auth method's author could write them
// with servetest, with nothing but its public API, so that they run
// unchanged in the emulation and inside a real Vault or OpenBao. Where the
// two answer differently by design (servetest's known limits), the
// assertion holds for both and the comment says why.

// issuer is the bound_issuer the tests configure and put in their JWTs'
// iss claim. The plugin never dials it: keys come from jwks_url.
const issuer = "https://idp.jwttest.invalid"

// audience is the role's bound audience.
const audience = "vault-jwttest"

// idp is a test's identity provider and the mount configured to trust it.
type idp struct {
	m          *servetest.Mount
	keys       *jwks
	rsa, ec    *signer // published in the JWKS
	rsaForged  *signer // the RSA key's kid, another key: not published
	unknownKid *signer // a key whose kid the JWKS does not list
}

// setup starts the plugin, mounts it, serves a JWKS on 127.0.0.1 and
// configures the mount with it, and writes the role "demo": JWTs for
// audience, the user named by the email claim, team mapped into the
// token's metadata, policies dev and ops, tokens of 10m renewable up to 1h.
func setup(t *testing.T) *idp {
	t.Helper()
	bin := pluginBin(t)
	ctx := context.Background()
	p := servetest.Start(t, bin)
	e := &idp{
		m:          p.Mount(t, nil),
		rsa:        newRSA(t, "rsa-1"),
		ec:         newEC(t, "ec-1"),
		rsaForged:  newRSA(t, "rsa-1"),
		unknownKid: newRSA(t, "rsa-unknown"),
	}
	e.keys = serveJWKS(t, e.rsa, e.ec)
	if _, err := e.m.Write(ctx, "config", map[string]any{
		"jwks_url":     e.keys.keysURL(),
		"bound_issuer": issuer,
	}); err != nil {
		t.Fatalf("write config: %v", err)
	}
	if _, err := e.m.Write(ctx, "role/demo", demoRole()); err != nil {
		t.Fatalf("write role/demo: %v", err)
	}
	return e
}

// demoRole is the role "demo", as `vault write auth/jwt/role/demo …`.
func demoRole() map[string]any {
	return map[string]any{
		"role_type":       "jwt",
		"bound_audiences": []string{audience},
		"user_claim":      "email",
		"claim_mappings":  map[string]any{"team": "team"},
		"token_policies":  []string{"dev", "ops"},
		"token_ttl":       "10m",
		"token_max_ttl":   "1h",
	}
}

// claims are a valid JWT's claims for the role "demo", issued now for an
// hour; change returns a copy with some claims replaced (nil deletes).
func claims(change map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":   issuer,
		"sub":   "alice-0001",
		"aud":   []string{audience},
		"email": "alice@example.com",
		"team":  "platform",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// wantError checks that err is Vault's answer status with exactly the
// message want in its "errors" list.
func wantError(t *testing.T, err error, status int, want string) {
	t.Helper()
	var re *servetest.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v (%T), want a *servetest.ResponseError %d %q", err, err, status, want)
	}
	if re.StatusCode != status || !slices.Equal(re.Errors, []string{want}) {
		t.Errorf("answer: %d %q\nwant:   %d %q", re.StatusCode, re.Errors, status, []string{want})
	}
}

// str prints a response value the same whether it came through the
// plugin's gRPC boundary (float64 for numbers, []any for lists) or a host's
// JSON API (json.Number): "600", "[dev ops]".
func str(v any) string { return fmt.Sprint(v) }

func TestConfig(t *testing.T) {
	bin := pluginBin(t)
	ctx := context.Background()
	p := servetest.Start(t, bin)
	keys := serveJWKS(t, newRSA(t, "rsa-1"))

	// A port nothing listens on: taken, then closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String() + "/keys"
	l.Close()

	tests := []struct {
		name   string
		config map[string]any
		// status and msg are the failure Vault answers with; 0 for none.
		status int
		msg    string
	}{
		{
			name:   "jwks_url on 127.0.0.1",
			config: map[string]any{"jwks_url": keys.keysURL(), "bound_issuer": issuer, "jwt_supported_algs": []string{"RS256", "ES256"}},
		},
		{
			// The plugin checks the URL by fetching it before it stores
			// anything: the fetch fails, from inside the plugin process.
			name:   "jwks_url where nothing listens",
			config: map[string]any{"jwks_url": deadURL},
			status: 400, msg: "error checking jwks URL " + deadURL,
		},
		{
			name:   "no key source",
			config: map[string]any{"bound_issuer": issuer},
			status: 400, msg: "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set",
		},
		{
			name:   "two key sources",
			config: map[string]any{"jwks_url": keys.keysURL(), "oidc_discovery_url": issuer},
			status: 400, msg: "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := p.Mount(t, nil)
			// Nothing configured yet: the plugin answers nothing, which
			// Vault's API turns into a 404 with no message.
			_, err := m.Read(ctx, "config")
			var re *servetest.ResponseError
			if !errors.As(err, &re) || re.StatusCode != 404 || len(re.Errors) != 0 {
				t.Fatalf("read config before writing it: %v, want a 404 with no errors", err)
			}

			fetched := keys.fetches.Load()
			_, err = m.Write(ctx, "config", tc.config)
			if tc.status != 0 {
				wantError(t, err, tc.status, tc.msg)
				// Nothing stored: still a 404.
				if _, err := m.Read(ctx, "config"); !errors.As(err, &re) || re.StatusCode != 404 {
					t.Errorf("read config after a refused write: %v, want a 404", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("write config: %v", err)
			}
			if n := keys.fetches.Load() - fetched; n < 1 {
				t.Errorf("writing the config fetched the JWKS %d times, want at least once (the plugin checks the URL)", n)
			}
			resp, err := m.Read(ctx, "config")
			if err != nil {
				t.Fatalf("read config: %v", err)
			}
			t.Logf("read config: %v", resp.Data)
			for k, want := range map[string]string{
				"jwks_url":               keys.keysURL(),
				"bound_issuer":           issuer,
				"jwt_supported_algs":     "[RS256 ES256]",
				"oidc_discovery_url":     "",
				"jwt_validation_pubkeys": "[]",
				"default_role":           "",
				"namespace_in_state":     "true",
			} {
				if got := str(resp.Data[k]); got != want {
					t.Errorf("config %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestRoles(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	tests := []struct {
		name   string
		role   map[string]any
		status int
		msg    string
		// warning is the one warning a successful write answers with.
		warning string
	}{
		{name: "demo again, unchanged", role: demoRole()},
		{name: "bound by subject", role: map[string]any{"role_type": "jwt", "bound_subject": "alice-0001", "user_claim": "sub", "token_policies": "dev"}},
		{
			name:    "max TTL past the mount's",
			role:    map[string]any{"role_type": "jwt", "bound_audiences": audience, "user_claim": "sub", "token_max_ttl": "1000h"},
			warning: "token max ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated",
		},
		{
			name:   "no bound constraint",
			role:   map[string]any{"role_type": "jwt", "user_claim": "sub"},
			status: 400, msg: "must have at least one bound constraint when creating/updating a role",
		},
		{
			name:   "no user claim",
			role:   map[string]any{"role_type": "jwt", "bound_audiences": audience, "user_claim": ""},
			status: 400, msg: "a user claim must be defined on the role",
		},
		{
			name:   "TTL past max TTL",
			role:   map[string]any{"role_type": "jwt", "bound_audiences": audience, "user_claim": "sub", "token_ttl": "2h", "token_max_ttl": "1h"},
			status: 400, msg: "'token_ttl' cannot be greater than 'token_max_ttl'", // the SDK's tokenutil, before the plugin's own check
		},
		{
			name:   "reserved metadata key",
			role:   map[string]any{"role_type": "jwt", "bound_audiences": audience, "user_claim": "sub", "claim_mappings": map[string]any{"group": "role"}},
			status: 400, msg: `metadata key "role" is reserved and may not be a mapping destination`,
		},
		{
			name:   "oidc role without redirect URIs",
			role:   map[string]any{"user_claim": "sub"},
			status: 400, msg: "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
		},
	}
	var written []string
	for i, tc := range tests {
		name := fmt.Sprintf("r%d", i)
		if i == 0 {
			name = "demo"
		}
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.m.Write(ctx, "role/"+name, tc.role)
			if tc.status != 0 {
				wantError(t, err, tc.status, tc.msg)
				if _, err := e.m.Read(ctx, "role/"+name); err == nil {
					t.Errorf("role/%s was stored after a refused write", name)
				}
				return
			}
			if err != nil {
				t.Fatalf("write role/%s: %v", name, err)
			}
			written = append(written, name)
			var warnings []string
			if resp != nil {
				warnings = resp.Warnings
			}
			if want := []string{tc.warning}; tc.warning != "" && !slices.Equal(warnings, want) || tc.warning == "" && len(warnings) != 0 {
				t.Errorf("warnings = %q, want %q", warnings, tc.warning)
			}
		})
	}

	t.Run("read back", func(t *testing.T) {
		resp, err := e.m.Read(ctx, "role/demo")
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{
			"role_type":         "jwt",
			"bound_audiences":   "[" + audience + "]",
			"user_claim":        "email",
			"claim_mappings":    "map[team:team]",
			"token_policies":    "[dev ops]",
			"token_ttl":         "600",
			"token_max_ttl":     "3600",
			"token_type":        "default",
			"clock_skew_leeway": "0",
		} {
			if got := str(resp.Data[k]); got != want {
				t.Errorf("role/demo %s = %q, want %q", k, got, want)
			}
		}
		_, err = e.m.Read(ctx, "role/nosuch")
		var re *servetest.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 404 {
			t.Errorf("read role/nosuch: %v, want a 404", err)
		}
	})

	t.Run("list", func(t *testing.T) {
		resp, err := e.m.List(ctx, "role")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(written)
		if got := str(resp.Data["keys"]); got != str(written) {
			t.Errorf("list role = %s, want %s", got, written)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if _, err := e.m.Delete(ctx, "role/r1"); err != nil {
			t.Fatal(err)
		}
		resp, err := e.m.List(ctx, "role")
		if err != nil {
			t.Fatal(err)
		}
		if got := str(resp.Data["keys"]); strings.Contains(got, "r1") || !strings.Contains(got, "demo") {
			t.Errorf("list role after deleting r1 = %s", got)
		}
	})
}

func TestLogin(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	hour := time.Hour

	tests := []struct {
		name  string
		token func(t *testing.T) string
		role  string // "" for "demo"
		// status and msg are the failure Vault answers with; 0 for a
		// successful login.
		status int
		msg    string
	}{
		{name: "RS256", token: func(t *testing.T) string { return e.rsa.sign(t, claims(nil)) }},
		{name: "ES256", token: func(t *testing.T) string { return e.ec.sign(t, claims(nil)) }},
		{
			// aud may be one string (RFC 7519 section 4.1.3).
			name:  "audience as a string",
			token: func(t *testing.T) string { return e.rsa.sign(t, claims(map[string]any{"aud": audience})) },
		},
		{
			name: "wrong audience",
			token: func(t *testing.T) string {
				return e.rsa.sign(t, claims(map[string]any{"aud": []string{"someone-else"}}))
			},
			status: 400, msg: "error validating token: invalid audience (aud) claim: audience claim does not match any expected audience",
		},
		{
			name: "expired",
			token: func(t *testing.T) string {
				now := time.Now()
				return e.rsa.sign(t, claims(map[string]any{"iat": now.Add(-2 * hour).Unix(), "nbf": now.Add(-2 * hour).Unix(), "exp": now.Add(-hour).Unix()}))
			},
			status: 400, msg: "error validating token: invalid expiration time (exp) claim: token is expired",
		},
		{
			name: "not yet valid",
			token: func(t *testing.T) string {
				return e.rsa.sign(t, claims(map[string]any{"nbf": time.Now().Add(hour).Unix()}))
			},
			status: 400, msg: "error validating token: invalid not before (nbf) claim: token not yet valid",
		},
		{
			// The published kid, another key: the plugin refetches the
			// JWKS and still finds no key that verifies it.
			name:   "bad signature",
			token:  func(t *testing.T) string { return e.rsaForged.sign(t, claims(nil)) },
			status: 400, msg: "error validating token: error verifying token signature: failed to verify id token signature",
		},
		{
			name:   "key not in the JWKS",
			token:  func(t *testing.T) string { return e.unknownKid.sign(t, claims(nil)) },
			status: 400, msg: "error validating token: error verifying token signature: failed to verify id token signature",
		},
		{
			name: "signature of other claims",
			token: func(t *testing.T) string {
				// A valid JWT whose payload is swapped for another.
				good := strings.Split(e.rsa.sign(t, claims(nil)), ".")
				other := strings.Split(e.rsa.sign(t, claims(map[string]any{"email": "mallory@example.com"})), ".")
				return good[0] + "." + other[1] + "." + good[2]
			},
			status: 400, msg: "error validating token: error verifying token signature: failed to verify id token signature",
		},
		{
			name: "wrong issuer",
			token: func(t *testing.T) string {
				return e.rsa.sign(t, claims(map[string]any{"iss": "https://other.invalid"}))
			},
			status: 400, msg: "error validating token: invalid issuer (iss) claim",
		},
		{
			name:   "no user claim",
			token:  func(t *testing.T) string { return e.rsa.sign(t, claims(map[string]any{"email": nil})) },
			status: 400, msg: `claim "email" not found in token`,
		},
		{
			name:   "unknown role",
			token:  func(t *testing.T) string { return e.rsa.sign(t, claims(nil)) },
			role:   "nosuch",
			status: 400, msg: `role "nosuch" could not be found`,
		},
		{
			name:   "not a JWT",
			token:  func(*testing.T) string { return "not-a-jwt" },
			status: 400, msg: "error validating token: error verifying token signature: oidc: malformed jwt: go-jose/go-jose: compact JWS format must have three parts",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			role := tc.role
			if role == "" {
				role = "demo"
			}
			fetched := e.keys.fetches.Load()
			resp, err := e.m.Login(ctx, "login", map[string]any{"role": role, "jwt": tc.token(t)})
			if tc.status != 0 {
				wantError(t, err, tc.status, tc.msg)
				if resp != nil && resp.Auth != nil {
					t.Errorf("a refused login gave a token: %+v", resp.Auth)
				}
				// A signature no cached key verifies makes the plugin
				// fetch the JWKS again before it refuses: a round trip
				// from the plugin process to this test's server.
				if strings.HasSuffix(tc.msg, "failed to verify id token signature") && e.keys.fetches.Load() == fetched {
					t.Errorf("the plugin refused the signature without fetching the JWKS again")
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			checkLogin(t, resp)
			t.Logf("login: the JWKS was fetched %d times more (the validator caches the keys it fetched)", e.keys.fetches.Load()-fetched)
		})
	}
	if e.keys.fetches.Load() < 2 {
		t.Errorf("the JWKS was fetched %d times, want at least 2: the config's check and the first login's keys", e.keys.fetches.Load())
	}

	t.Run("no role and no default_role", func(t *testing.T) {
		_, err := e.m.Login(ctx, "login", map[string]any{"jwt": e.rsa.sign(t, claims(nil))})
		wantError(t, err, 400, "missing role")
	})
	t.Run("no token", func(t *testing.T) {
		_, err := e.m.Login(ctx, "login", map[string]any{"role": "demo"})
		wantError(t, err, 400, "missing token")
	})
}

// checkLogin checks the token a login to the role "demo" gave.
func checkLogin(t *testing.T, resp *logical.Response) {
	t.Helper()
	if resp == nil || resp.Auth == nil {
		t.Fatalf("login gave no auth: %+v", resp)
	}
	a := resp.Auth
	if a.ClientToken == "" || a.Accessor == "" {
		t.Errorf("login: client token %q, accessor %q: want both", a.ClientToken, a.Accessor)
	}
	// The token's policies always list Vault's "default". The Auth's
	// Policies are the plugin's in the emulation and the token's on a
	// real host (servetest's known limits): both, without "default", are
	// the role's.
	if got := slices.Sorted(slices.Values(a.TokenPolicies)); !slices.Equal(got, []string{"default", "dev", "ops"}) {
		t.Errorf("login: token policies %q, want [default dev ops]", a.TokenPolicies)
	}
	if got := slices.DeleteFunc(slices.Sorted(slices.Values(a.Policies)), func(p string) bool { return p == "default" }); !slices.Equal(got, []string{"dev", "ops"}) {
		t.Errorf("login: policies %q, want dev and ops", a.Policies)
	}
	if want := map[string]string{"role": "demo", "team": "platform"}; fmt.Sprint(a.Metadata) != fmt.Sprint(want) {
		t.Errorf("login: metadata %v, want %v", a.Metadata, want)
	}
	if a.TTL != 10*time.Minute || !a.Renewable {
		t.Errorf("login: TTL %s renewable %t, want the role's 10m0s, renewable", a.TTL, a.Renewable)
	}
}

func TestRenewToken(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	login := func(t *testing.T) string {
		t.Helper()
		resp, err := e.m.Login(ctx, "login", map[string]any{"role": "demo", "jwt": e.ec.sign(t, claims(nil))})
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		checkLogin(t, resp)
		return resp.Auth.ClientToken
	}

	tests := []struct {
		name      string
		increment time.Duration
		wantTTL   time.Duration
	}{
		// The plugin's renew handler sets the role's TTL and max TTL; the
		// increment asked for wins when it is shorter than the max TTL's
		// remainder.
		{name: "no increment", increment: 0, wantTTL: 10 * time.Minute},
		{name: "5m", increment: 5 * time.Minute, wantTTL: 5 * time.Minute},
		{name: "30m", increment: 30 * time.Minute, wantTTL: 30 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := login(t)
			resp, err := e.m.RenewToken(ctx, token, tc.increment)
			if err != nil {
				t.Fatalf("renew: %v", err)
			}
			a := resp.Auth
			if a == nil {
				t.Fatalf("renew gave no auth: %+v", resp)
			}
			t.Logf("renew -increment=%s: TTL %s, renewable %t, policies %q, warnings %q", tc.increment, a.TTL, a.Renewable, a.Policies, resp.Warnings)
			if a.ClientToken != token {
				t.Errorf("renew: client token %q, want the login's %q", a.ClientToken, token)
			}
			if a.TTL != tc.wantTTL || !a.Renewable {
				t.Errorf("renew: TTL %s renewable %t, want %s, renewable", a.TTL, a.Renewable, tc.wantTTL)
			}
			if got := slices.Sorted(slices.Values(a.Policies)); !slices.Equal(got, []string{"default", "dev", "ops"}) {
				t.Errorf("renew: policies %q, want the token's: [default dev ops]", a.Policies)
			}
		})
	}

	t.Run("role deleted", func(t *testing.T) {
		token := login(t)
		if _, err := e.m.Write(ctx, "role/gone", demoRole()); err != nil {
			t.Fatal(err)
		}
		resp, err := e.m.Login(ctx, "login", map[string]any{"role": "gone", "jwt": e.rsa.sign(t, claims(nil))})
		if err != nil {
			t.Fatalf("login to role gone: %v", err)
		}
		gone := resp.Auth.ClientToken
		if _, err := e.m.Delete(ctx, "role/gone"); err != nil {
			t.Fatal(err)
		}
		// The plugin refuses to renew a token of a role that no longer
		// exists: an error, not an error response, which Vault answers
		// with a 500.
		_, err = e.m.RenewToken(ctx, gone, 0)
		var re *servetest.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 500 || len(re.Errors) != 1 || !strings.Contains(re.Errors[0], "role gone does not exist during renewal") {
			t.Errorf("renew a token of a deleted role: %v, want a 500 naming the role", err)
		} else {
			t.Logf("renew a token of a deleted role: %d %q", re.StatusCode, re.Errors)
		}
		// The other role's token still renews.
		if _, err := e.m.RenewToken(ctx, token, 0); err != nil {
			t.Errorf("renew a token of role demo after deleting another role: %v", err)
		}
	})

	t.Run("unknown token", func(t *testing.T) {
		_, err := e.m.RenewToken(ctx, "hvs.not-a-token", 0)
		wantError(t, err, 400, "token not found")
	})
}

package servetest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// authPlugin is the example auth method, whose renew handler extends a
// token by its user's TTL while the user's policies are unchanged.
const authPlugin = "../../example/auth/cmd/vault-plugin-auth-example"

// leaseIDRE is a lease ID of testplugin's lease/NAME mounted at MOUNT:
// the request's full path and Vault's 24 random base62 characters.
func leaseIDRE(mount, name string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(mount+"lease/"+name) + `/[A-Za-z0-9]{24}$`)
}

// wantResponseError fails t unless err is a *ResponseError with status
// and the one message msg.
func wantResponseError(t *testing.T, what string, err error, status int, msg string) {
	t.Helper()
	var re *servetest.ResponseError
	if !errors.As(err, &re) {
		t.Errorf("%s: %v (%T), want a *ResponseError", what, err, err)
		return
	}
	if re.StatusCode != status || !reflect.DeepEqual(re.Errors, []string{msg}) {
		t.Errorf("%s: %d %q, want %d %q", what, re.StatusCode, re.Errors, status, msg)
	}
}

// leaseLog is what testplugin's handlers recorded for NAME's secrets.
func leaseLog(t *testing.T, m *servetest.Mount, name string) map[string]any {
	t.Helper()
	resp, err := m.Read(context.Background(), "lease-log/"+name)
	var re *servetest.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return resp.Data
}

// A secret's lease as Vault's expiration manager makes it: an ID of the
// request's path, the mount's default TTL for a secret without one, the
// mount's max TTL as a cap with Vault's warning, and no internal data in
// the response.
func TestLeaseIssue(t *testing.T) {
	ctx := context.Background()
	m := servetest.Start(t, servetest.Build(t, plugin), servetest.WithPluginName("secrets")).Mount(t, nil)

	resp, err := m.Write(ctx, "lease/web", nil)
	if err != nil {
		t.Fatal(err)
	}
	// m.MountPoint is "secrets/" in the emulation, "secrets-RANDOM/" on a
	// real host, whose mounts parallel tests share.
	if s := resp.Secret; !leaseIDRE(m.MountPoint, "web").MatchString(s.LeaseID) || s.TTL != servetest.DefaultLeaseTTL || !s.Renewable || s.InternalData != nil {
		t.Errorf("secret = %+v, want a lease ID of secrets/lease/web/, TTL 768h, renewable, no internal data", s)
	}
	if len(resp.Warnings) != 0 || resp.Data["username"] != "web-user" {
		t.Errorf("warnings %q, data %v", resp.Warnings, resp.Data)
	}

	resp, err = m.Write(ctx, "lease/long", map[string]any{"ttl": "1000h"})
	if err != nil {
		t.Fatal(err)
	}
	const capped = `TTL of "1000h" exceeded the effective max_ttl of "768h"; TTL value is capped accordingly`
	if resp.Secret.TTL != servetest.DefaultMaxTTL || !reflect.DeepEqual(resp.Warnings, []string{capped}) {
		t.Errorf("TTL %s, warnings %q; want 768h and %q", resp.Secret.TTL, resp.Warnings, capped)
	}

	// The secret's own max TTL caps it below the mount's.
	resp, err = m.Write(ctx, "lease/short", map[string]any{"ttl": "3h", "max_ttl": "2h"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Secret.TTL != 2*time.Hour || len(resp.Warnings) != 1 {
		t.Errorf("TTL %s, warnings %q; want 2h and one warning", resp.Secret.TTL, resp.Warnings)
	}

	// Two issues of the same path get different leases.
	again, err := m.Write(ctx, "lease/web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Secret.LeaseID == "" || again.Secret.LeaseID == resp.Secret.LeaseID {
		t.Errorf("lease IDs %q and %q", again.Secret.LeaseID, resp.Secret.LeaseID)
	}
}

// Renewal and revocation call the backend's handlers with the secret as
// Vault stored it, cap the TTL at the mount's max from the issue time,
// and answer as Vault's API does.
func TestLeaseRenewRevoke(t *testing.T) {
	servetest.SkipOnRealHost(t, "Plugin.Advance")
	ctx := context.Background()
	p := servetest.Start(t, servetest.Build(t, plugin), servetest.WithPluginName("secrets"), servetest.WithLeaseTTLs(time.Hour, 2*time.Hour))
	m := p.Mount(t, nil)
	resp, err := m.Write(ctx, "lease/web", nil)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Secret.LeaseID
	if resp.Secret.TTL != time.Hour {
		t.Errorf("issued with TTL %s, want the mount's default, 1h", resp.Secret.TTL)
	}

	renewed, err := m.Renew(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s := renewed.Secret; s.LeaseID != id || s.TTL != time.Hour || !s.Renewable || s.InternalData != nil || len(renewed.Warnings) != 0 {
		t.Errorf("renewal = %+v, warnings %q", s, renewed.Warnings)
	}
	want := map[string]any{
		"path": "lease/web", "mount_point": "secrets/", "secret_type": "lease", "internal_name": "web",
		"data_username": "web-user", "data_keys": []any{"username"}, "ttl": float64(3600), "max_ttl": float64(0), "renewable": true,
		"increment": float64(0), "has_issue_time": true, "has_lease_id": false, "has_client_token": true,
		"display_name": "", "mount_accessor": "", "has_id": false, "has_connection": false,
	}
	log := leaseLog(t, m, "web")
	if !reflect.DeepEqual(log["last_renew"], want) || log["renew_count"] != float64(1) {
		t.Errorf("the renew handler saw %v (%v times)\nwant %v", log["last_renew"], log["renew_count"], want)
	}

	// Half an hour on, an increment of 3h is capped at what is left of
	// the mount's 2h max, with Vault's warning.
	if err := p.Advance(ctx, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	renewed, err = m.Renew(ctx, id, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const capped = `TTL of "3h" exceeded the effective max_ttl of "1h30m"; TTL value is capped accordingly`
	if renewed.Secret.TTL != 90*time.Minute || !reflect.DeepEqual(renewed.Warnings, []string{capped}) {
		t.Errorf("renewal past the max: TTL %s, warnings %q; want 1h30m and %q", renewed.Secret.TTL, renewed.Warnings, capped)
	}
	if got := leaseLog(t, m, "web")["last_renew"].(map[string]any); got["increment"] != float64(10800) || got["data_username"] != nil {
		t.Errorf("the second renewal saw increment %v and username %v; want 10800 and none (the first renewal's response had no data)", got["increment"], got["data_username"])
	}

	if err := m.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	got := leaseLog(t, m, "web")["last_revoke"].(map[string]any)
	if got["secret_type"] != "lease" || got["internal_name"] != "web" || got["has_lease_id"] != true || got["ttl"] != float64(5400) {
		t.Errorf("the revoke handler saw %v", got)
	}
	_, err = m.Renew(ctx, id, 0)
	wantResponseError(t, "renewal of a revoked lease", err, http.StatusBadRequest, "lease not found")
	if err := m.Revoke(ctx, id); err != nil {
		t.Errorf("a second revocation: %v, want none (Vault answers 204)", err)
	}
	if err := m.Revoke(ctx, m.MountPoint+"lease/web/unknown"); err != nil {
		t.Errorf("revocation of an unknown lease: %v, want none (Vault answers 204)", err)
	}
	err = m.Revoke(ctx, "")
	wantResponseError(t, "revocation without an ID", err, http.StatusBadRequest, "lease_id must be specified")
	_, err = m.Renew(ctx, "", 0)
	wantResponseError(t, "renewal without an ID", err, http.StatusBadRequest, "lease_id must be specified")
	if n := leaseLog(t, m, "web")["revoke_count"]; n != float64(1) {
		t.Errorf("revoke handler called %v times, want once", n)
	}
}

// What Vault answers when a lease cannot be renewed or revoked.
func TestLeaseFailures(t *testing.T) {
	ctx := context.Background()
	m := servetest.Start(t, servetest.Build(t, plugin)).Mount(t, nil)
	issue := func(name string, data map[string]any) string {
		t.Helper()
		resp, err := m.Write(ctx, "lease/"+name, data)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Secret.LeaseID
	}

	fixed, badRenew := issue("fixed", map[string]any{"renewable": false}), issue("badrenew", map[string]any{"fail": "renew"})
	_, err := m.Renew(ctx, fixed, 0)
	wantResponseError(t, "renewal of a lease that is not renewable", err, http.StatusBadRequest, "lease is not renewable")

	_, err = m.Renew(ctx, badRenew, 0)
	wantResponseError(t, "a failing renewal", err, http.StatusBadRequest, "failed to renew entry: resp: (*logical.Response)(nil) err: the renewal was told to fail")

	id := issue("badrevoke", map[string]any{"fail": "revoke"})
	err = m.Revoke(ctx, id)
	wantResponseError(t, "a failing revocation", err, http.StatusBadRequest, "failed to revoke entry: resp: (*logical.Response)(nil) err: the revocation was told to fail")
	if _, err := m.Renew(ctx, id, 0); err != nil {
		t.Errorf("the lease whose revocation failed is gone: %v", err)
	}
	// Vault walks the lease store's paths from the last back: fixed's
	// lease is revoked, then badrevoke's fails, and badrenew's stays.
	err = m.RevokePrefix(ctx, m.MountPoint+"lease")
	wantResponseError(t, "a prefix with a failing revocation", err, http.StatusBadRequest,
		`failed to revoke "`+id+`" (2 / 3): failed to revoke entry: resp: (*logical.Response)(nil) err: the revocation was told to fail`)
	_, err = m.Renew(ctx, fixed, 0)
	wantResponseError(t, "the lease revoked before the failure", err, http.StatusBadRequest, "lease not found")
	_, err = m.Renew(ctx, badRenew, 0)
	wantResponseError(t, "the lease after the failure", err, http.StatusBadRequest, "failed to renew entry: resp: (*logical.Response)(nil) err: the renewal was told to fail")
}

// Advance moves the host's clock; a lease whose TTL ran out is revoked
// through the backend as the expiration manager's timer would, and one
// whose revocation failed stays, expired, until an Advance succeeds.
func TestLeaseExpiry(t *testing.T) {
	servetest.SkipOnRealHost(t, "Plugin.Advance")
	ctx := context.Background()
	p := servetest.Start(t, servetest.Build(t, plugin))
	m := p.Mount(t, nil)
	resp, err := m.Write(ctx, "lease/web", map[string]any{"ttl": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Secret.LeaseID
	bad, err := m.Write(ctx, "lease/bad", map[string]any{"ttl": "10m", "fail": "revoke"})
	if err != nil {
		t.Fatal(err)
	}

	if err := p.Advance(ctx, 9*time.Minute); err != nil {
		t.Fatal(err)
	}
	if log := leaseLog(t, m, "web"); log != nil {
		t.Fatalf("revoked before its TTL ran out: %v", log)
	}
	err = p.Advance(ctx, time.Minute)
	if err == nil {
		t.Fatal("the failing revocation at expiry was not reported")
	}
	if n := leaseLog(t, m, "web")["revoke_count"]; n != float64(1) {
		t.Errorf("at expiry, revoke handler called %v times, want once", n)
	}
	_, err = m.Renew(ctx, id, 0)
	wantResponseError(t, "renewal of an expired lease", err, http.StatusBadRequest, "lease not found")
	_, err = m.Renew(ctx, bad.Secret.LeaseID, 0)
	wantResponseError(t, "renewal of an expired lease not yet revoked", err, http.StatusBadRequest, "lease expired")
	if err := p.Advance(ctx, 0); err == nil {
		t.Error("the failing revocation was not tried again")
	}
	if n := leaseLog(t, m, "bad")["revoke_count"]; n != float64(2) {
		t.Errorf("the failing revocation was tried %v times, want 2", n)
	}
	if err := p.Advance(ctx, -time.Second); err == nil {
		t.Error("the clock went back")
	}
}

// RevokePrefix takes a path as lease IDs begin, across the Plugin's
// mounts, as sys/leases/revoke-prefix does.
func TestLeaseRevokePrefix(t *testing.T) {
	ctx := context.Background()
	p := servetest.Start(t, servetest.Build(t, plugin))
	m, m2 := p.Mount(t, nil), p.Mount(t, nil)
	ids := map[string]string{}
	for _, name := range []string{"web", "web2", "db"} {
		resp, err := m.Write(ctx, "lease/"+name, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = resp.Secret.LeaseID
	}
	other, err := m2.Write(ctx, "lease/web", nil)
	if err != nil {
		t.Fatal(err)
	}

	// A path, not a string prefix: lease/web does not take lease/web2.
	if err := m.RevokePrefix(ctx, m.MountPoint+"lease/web"); err != nil {
		t.Fatal(err)
	}
	for name, wantGone := range map[string]bool{"web": true, "web2": false, "db": false} {
		_, err := m.Renew(ctx, ids[name], 0)
		if gone := err != nil; gone != wantGone {
			t.Errorf("%s: revoked %v, want %v (%v)", name, gone, wantGone, err)
		}
	}
	// The exact lease ID, and then the whole mount (a trailing slash is
	// cleaned away as Vault's API client cleans it); the other mount's
	// lease stays, and m reaches it, as sys/leases would.
	if err := m.RevokePrefix(ctx, ids["db"]); err != nil {
		t.Fatal(err)
	}
	if err := m.RevokePrefix(ctx, m.MountPoint); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Renew(ctx, ids["web2"], 0); err == nil {
		t.Error("web2 survived the mount's prefix")
	}
	if _, err := m.Renew(ctx, other.Secret.LeaseID, 0); err != nil {
		t.Errorf("the other mount's lease: %v", err)
	}
	err = m.RevokePrefix(ctx, "")
	wantResponseError(t, "an empty prefix", err, http.StatusNotFound, "1 error occurred:\n\t* unsupported path\n\n")

	// Cleaning a mount up drops its leases without revoking them.
	m2.Cleanup(ctx)
	_, err = m.Renew(ctx, other.Secret.LeaseID, 0)
	wantResponseError(t, "a lease of a cleaned-up mount", err, http.StatusBadRequest, "lease not found")
}

// A login gets a token as Vault's token store makes one, and RenewToken
// renews it through the auth method's renew handler, as
// `vault token renew` does.
func TestTokenRenew(t *testing.T) {
	servetest.SkipOnRealHost(t, "Plugin.Advance")
	ctx := context.Background()
	p := servetest.Start(t, servetest.Build(t, authPlugin), servetest.WithLeaseTTLs(time.Hour, 2*time.Hour))
	m := p.Mount(t, nil)
	user := func(name string, data map[string]any) {
		t.Helper()
		if _, err := m.Write(ctx, "users/"+name, data); err != nil {
			t.Fatal(err)
		}
	}
	login := func(name string) *logical.Response {
		t.Helper()
		resp, err := m.Login(ctx, "login", map[string]any{"username": name, "password": "pw"})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	user("alice", map[string]any{"password": "pw", "policies": "dev", "ttl": "30m"})
	resp := login("alice")
	a := resp.Auth
	if !regexp.MustCompile(`^hvs\.[A-Za-z0-9]{24}$`).MatchString(a.ClientToken) || len(a.Accessor) != 24 || a.TTL != 30*time.Minute || !a.Renewable ||
		!reflect.DeepEqual(a.Policies, []string{"dev"}) || !reflect.DeepEqual(a.TokenPolicies, []string{"default", "dev"}) ||
		a.TokenType != logical.TokenTypeService || !a.Orphan || a.InternalData != nil || a.Alias.MountAccessor != m.MountAccessor {
		t.Errorf("login auth = %+v", a)
	}
	token := a.ClientToken

	renewed, err := m.RenewToken(ctx, token, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := renewed.Auth
	if r.ClientToken != token || r.Accessor != a.Accessor || r.TTL != 30*time.Minute || !reflect.DeepEqual(r.Policies, []string{"default", "dev"}) || r.InternalData != nil || len(renewed.Warnings) != 0 {
		t.Errorf("renewal = %+v, warnings %q", r, renewed.Warnings)
	}
	if renewed, err = m.RenewToken(ctx, token, 90*time.Minute); err != nil || renewed.Auth.TTL != 90*time.Minute {
		t.Fatalf("renewal by 90m: %+v, %v", renewed, err)
	}
	if err := p.Advance(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	renewed, err = m.RenewToken(ctx, token, 90*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const capped = `TTL of "1h30m" exceeded the effective max_ttl of "1h"; TTL value is capped accordingly`
	if renewed.Auth.TTL != time.Hour || !reflect.DeepEqual(renewed.Warnings, []string{capped}) {
		t.Errorf("renewal past the max: TTL %s, warnings %q", renewed.Auth.TTL, renewed.Warnings)
	}

	// The auth method's own refusal, as Vault shows it.
	user("alice", map[string]any{"policies": "dev,admin"})
	_, err = m.RenewToken(ctx, token, 0)
	wantResponseError(t, "renewal after a policy change", err, http.StatusBadRequest, `the policies of user "alice" have changed: log in again`)

	_, err = m.RenewToken(ctx, "hvs.unknown", 0)
	wantResponseError(t, "an unknown token", err, http.StatusBadRequest, "token not found")
	_, err = m.RenewToken(ctx, "", 0)
	wantResponseError(t, "no token", err, http.StatusBadRequest, "missing token ID")

	// A TTL of 0 is the mount's default; one past the mount's max is
	// capped with the warning; a token past its TTL is gone.
	user("bob", map[string]any{"password": "pw"})
	if a := login("bob").Auth; a.TTL != time.Hour {
		t.Errorf("bob's TTL %s, want the mount's default, 1h", a.TTL)
	}
	user("carol", map[string]any{"password": "pw", "ttl": "3h"})
	resp = login("carol")
	if resp.Auth.TTL != 2*time.Hour || len(resp.Warnings) != 1 {
		t.Errorf("carol's TTL %s, warnings %q; want the mount's max, 2h, and a warning", resp.Auth.TTL, resp.Warnings)
	}
	if err := p.Advance(ctx, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err = m.RenewToken(ctx, resp.Auth.ClientToken, 0)
	wantResponseError(t, "an expired token", err, http.StatusBadRequest, "token not found")
}

// Leases renewed, revoked and expired from several goroutines at once, as
// parallel subtests would: each lease is revoked once, whoever comes first,
// and the race detector finds nothing.
func TestLeaseConcurrency(t *testing.T) {
	servetest.SkipOnRealHost(t, "Plugin.Advance")
	ctx := context.Background()
	p := servetest.Start(t, servetest.Build(t, plugin))
	m := p.Mount(t, nil)
	const n = 8
	ids := make([]string, n)
	for i := range ids {
		resp, err := m.Write(ctx, fmt.Sprintf("lease/l%d", i), map[string]any{"ttl": "1h"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = resp.Secret.LeaseID
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(3)
		go func() {
			defer wg.Done()
			_, _ = m.Renew(ctx, id, time.Minute)
		}()
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_ = m.Revoke(ctx, id)
			} else {
				_ = p.Advance(ctx, 10*time.Minute)
			}
		}()
		go func() {
			defer wg.Done()
			_ = m.RevokePrefix(ctx, id)
		}()
	}
	wg.Wait()
	if err := p.Advance(ctx, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if _, err := m.Renew(ctx, id, 0); err == nil {
			t.Errorf("lease %d survived", i)
		}
		if n := leaseLog(t, m, fmt.Sprintf("l%d", i))["revoke_count"]; n != float64(1) {
			t.Errorf("lease %d revoked %v times, want once", i, n)
		}
	}
}

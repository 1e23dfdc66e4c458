package servetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	pathpkg "path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/hashicorp/vault/sdk/helper/policyutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// This file plays Vault's expiration manager and the part of its token
// store that a login's token meets: the lease a response's secret gets,
// the token a login's auth gets, their TTLs, renewal, revocation and
// expiry. What it mirrors is cited from Vault v1.21.0
// (vault/expiration.go, vault/request_handling.go, vault/token_store.go,
// vault/logical_system.go, vault/router.go) and sdk v0.20.0
// (framework/lease.go).

// expiration holds the leases of one Plugin's mounts, as Vault's one
// expiration manager holds every mount's, and the host's clock.
type expiration struct {
	mu     sync.Mutex
	clock  time.Time            // the host's time: moves only by Advance
	leases map[string]*lease    // by lease ID: secrets' and tokens'
	tokens map[string]*lease    // service tokens' leases, by client token
	batch  map[string]time.Time // batch tokens, which have no lease, and when they expire
}

// lease is a lease entry (expiration.go leaseEntry): a secret's, or a
// service token's.
type lease struct {
	// mu is held while the lease is renewed or revoked, as Vault's lock
	// per lease ID is. expires is written holding both mu and the
	// expiration's mu, so either is enough to read it.
	mu      sync.Mutex
	id      string
	mount   *Mount
	path    string // the request's path, relative to the mount
	data    map[string]any
	secret  *logical.Secret // with its InternalData, as the lease store keeps it
	auth    *logical.Auth   // with its InternalData
	token   string          // the client token, for a token's lease
	issued  time.Time
	expires time.Time
}

func newExpiration() *expiration {
	return &expiration{
		clock:  time.Now(),
		leases: map[string]*lease{},
		tokens: map[string]*lease{},
		batch:  map[string]time.Time{},
	}
}

// now is the host's time.
func (e *expiration) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clock
}

// add records l.
func (e *expiration) add(l *lease) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leases[l.id] = l
	if l.token != "" {
		e.tokens[l.token] = l
	}
}

// remove forgets l, which the caller holds locked.
func (e *expiration) remove(l *lease) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.leases, l.id)
	if l.token != "" {
		delete(e.tokens, l.token)
	}
}

// locked returns the lease with id, locked, or nil when there is none.
func (e *expiration) locked(id string) *lease {
	e.mu.Lock()
	l := e.leases[id]
	e.mu.Unlock()
	return e.lockLive(l)
}

// lockLive locks l and returns it, unless it is gone (revoked, or its
// mount cleaned up) by the time it is locked.
func (e *expiration) lockLive(l *lease) *lease {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	e.mu.Lock()
	live := e.leases[l.id] == l
	e.mu.Unlock()
	if !live {
		l.mu.Unlock()
		return nil
	}
	return l
}

// setExpires sets when l, which the caller holds locked, expires.
func (e *expiration) setExpires(l *lease, t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l.expires = t
}

// forget drops every lease of m without calling its backend: m is being
// cleaned up, and Vault leaves no lease of an unmounted mount behind.
func (e *expiration) forget(m *Mount) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, l := range e.leases {
		if l.mount == m {
			delete(e.leases, id)
			delete(e.tokens, l.token)
		}
	}
}

// matching returns the IDs of the leases under prefix, which ends in
// "/", in the order Vault's revoke-prefix finds them: logical.ScanView's
// walk of the lease store under prefix, which lists a path's leases in
// order, then walks its sub-paths from the last one back.
func (e *expiration) matching(prefix string) []string {
	e.mu.Lock()
	var rel []string
	for id := range e.leases {
		if r, ok := strings.CutPrefix(id, prefix); ok {
			rel = append(rel, r)
		}
	}
	e.mu.Unlock()
	var ids []string
	frontier := []string{""}
	for len(frontier) > 0 {
		current := frontier[len(frontier)-1]
		frontier = frontier[:len(frontier)-1]
		// What listing current gives: its leases and its sub-paths,
		// ending in "/", in order.
		entries := map[string]bool{}
		for _, r := range rel {
			rest, ok := strings.CutPrefix(r, current)
			if !ok || rest == "" {
				continue
			}
			if i := strings.Index(rest, "/"); i >= 0 {
				rest = rest[:i+1]
			}
			entries[rest] = true
		}
		names := make([]string, 0, len(entries))
		for name := range entries {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if strings.HasSuffix(name, "/") {
				frontier = append(frontier, current+name)
			} else {
				ids = append(ids, prefix+current+name)
			}
		}
	}
	return ids
}

// renewable is leaseEntry.renewable: why the lease cannot be renewed, or
// nil. l may be nil.
func (l *lease) renewable(now time.Time) error {
	switch {
	case l == nil:
		return errors.New("lease not found")
	case l.expires.IsZero():
		return errors.New("lease is not renewable")
	case expired(l.expires, now):
		return errors.New("lease expired")
	case l.secret != nil && !l.secret.Renewable:
		return errors.New("lease is not renewable")
	case l.auth != nil && !l.auth.Renewable:
		return errors.New("lease is not renewable")
	}
	return nil
}

// expired reports whether a lease or token that expires at expires (zero:
// never) has expired at now. Vault checks that its expiry is before now,
// but its clock has always moved on by the time anything looks: on the
// host's clock, which stands still, the instant of expiry counts as
// expired, so a lease that Advance reached is expired for a renewal too.
func expired(expires, now time.Time) bool {
	return !expires.IsZero() && !expires.After(now)
}

// leaseIDLength is the length of the random part of a lease ID, Vault's
// TokenLength.
const leaseIDLength = 24

// base62Chars are the characters of go-secure-stdlib's base62.Random,
// which Vault makes lease IDs, token IDs and accessors of.
const base62Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomBase62 is base62.Random(n).
func randomBase62(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(base62Chars)))
	for i := range b {
		c, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("servetest: generating an id: %w", err)
		}
		b[i] = base62Chars[c.Int64()]
	}
	return string(b), nil
}

// clone copies v as Vault's lease store does when it persists an entry
// and loads it back: through JSON, numbers decoded as json.Number
// (jsonutil.DecodeJSON). What a backend later gets in a renewal or
// revocation is therefore what it would get from Vault, and the test's
// copy of a response stays its own.
func clone[T any](v T) (T, error) {
	var out T
	b, err := json.Marshal(v)
	if err != nil {
		return out, fmt.Errorf("servetest: storing the lease: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return out, fmt.Errorf("servetest: storing the lease: %w", err)
	}
	return out, nil
}

// registerSecret is what handleRequest does with a response holding a
// secret (request_handling.go, "we must register it with the expiration
// manager"): the TTL calculated against the mount's, with its warnings,
// then ExpirationManager.Register: a lease ID of the request's full path
// and 24 random characters, the secret and the response's data stored as
// the lease, and the TTL reported as the time left, rounded to seconds.
func (m *Mount) registerSecret(resp *logical.Response, path string) error {
	e := m.exp
	now := e.now()
	ttl, warnings, err := calculateTTL(now, m.defaultTTL, m.maxTTL, 0, resp.Secret.TTL, 0, resp.Secret.MaxTTL, 0, time.Time{})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		resp.AddWarning(w)
	}
	resp.Secret.TTL = ttl
	if err := resp.Secret.Validate(); err != nil {
		return err
	}
	suffix, err := randomBase62(leaseIDLength)
	if err != nil {
		return err
	}
	expires := expirationTime(now, ttl)
	l := &lease{id: pathpkg.Join(m.MountPoint+path, suffix), mount: m, path: path, issued: now, expires: expires}
	// Stored before Vault sets the LeaseID on the response: a revocation
	// before any renewal gets a secret without it.
	if l.secret, err = clone(resp.Secret); err != nil {
		return err
	}
	if l.data, err = clone(resp.Data); err != nil {
		return err
	}
	e.add(l)
	resp.Secret.TTL = expires.Sub(e.now()).Round(time.Second)
	resp.Secret.LeaseID = l.id
	return nil
}

// expirationTime is LeaseOptions.ExpirationTime on the host's clock: no
// expiry for a TTL that is not positive.
func expirationTime(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// Vault's internal policies, which an auth method may not give a token
// (policy_store.go nonAssignablePolicies).
var nonAssignablePolicies = []string{"response-wrapping", "control-group"}

// createToken is what handleLoginRequest and LoginCreateToken do with a
// login's auth: the router's token type, the display name prefixed with
// the mount, the TTL calculated against the mount's, with its warnings,
// the token's policies (the auth's, sanitized, with "default" unless
// NoDefaultPolicy), and then RegisterAuth: a client token, an accessor,
// and for a service token a lease. The caller's auth gets what the
// response shows (ClientToken, Accessor, TTL, TokenPolicies, TokenType,
// Orphan); its Policies stay the plugin's (see the package doc). A
// refused policy gives an error response and logical.ErrInvalidRequest,
// as Vault answers it.
func (m *Mount) createToken(resp *logical.Response, path string) (*logical.Response, error) {
	e := m.exp
	auth := resp.Auth
	auth.TokenType = mountTokenType(auth.TokenType)
	if auth.Alias != nil {
		auth.Alias.MountType = m.MountType
		auth.Alias.MountAccessor = m.MountAccessor
	}
	now := e.now()
	ttl, warnings, err := calculateTTL(now, m.defaultTTL, m.maxTTL, 0, auth.TTL, auth.Period, auth.MaxTTL, auth.ExplicitMaxTTL, time.Time{})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		resp.AddWarning(w)
	}
	auth.TokenPolicies = policyutil.SanitizePolicies(append([]string(nil), auth.Policies...), !auth.NoDefaultPolicy)
	for _, p := range auth.TokenPolicies {
		if p == "root" {
			return logical.ErrorResponse("auth methods cannot create root tokens"), logical.ErrInvalidRequest
		}
		for _, na := range nonAssignablePolicies {
			if p == na {
				return logical.ErrorResponse(fmt.Sprintf("cannot assign policy %q", p)), logical.ErrInvalidRequest
			}
		}
	}

	// RegisterAuth.
	prefix := "hvs."
	if auth.TokenType == logical.TokenTypeBatch {
		prefix = "hvb."
	}
	id, err := randomBase62(leaseIDLength)
	if err != nil {
		return nil, err
	}
	accessor, err := randomBase62(leaseIDLength)
	if err != nil {
		return nil, err
	}
	auth.ClientToken, auth.Accessor, auth.TTL, auth.Orphan = prefix+id, accessor, ttl, true
	if auth.TokenType == logical.TokenTypeBatch {
		auth.Renewable = false
		e.mu.Lock()
		e.batch[auth.ClientToken] = expirationTime(now, ttl)
		e.mu.Unlock()
		return resp, nil
	}
	stored, err := clone(auth)
	if err != nil {
		return nil, err
	}
	// LoginCreateToken: the token's display name is the mount's path,
	// dashed, before the plugin's.
	source := strings.ReplaceAll(strings.TrimPrefix(m.MountPoint, "auth/"), "/", "-")
	stored.DisplayName = strings.TrimSuffix(source+auth.DisplayName, "-")
	full := m.MountPoint + path
	e.add(&lease{
		// RegisterAuth: the token's path and its salted ID.
		id:    pathpkg.Join(full, saltID("token-store", auth.ClientToken)),
		mount: m, path: path, auth: stored, token: auth.ClientToken,
		issued: now, expires: expirationTime(now, ttl),
	})
	return resp, nil
}

// mountTokenType is the token type the router gives an auth response
// from a mount whose token_type is Vault's default, "default-service":
// batch if the plugin asked for one, service otherwise.
func mountTokenType(t logical.TokenType) logical.TokenType {
	switch t {
	case logical.TokenTypeBatch, logical.TokenTypeDefaultBatch:
		return logical.TokenTypeBatch
	}
	return logical.TokenTypeService
}

// Renew renews the lease leaseID by increment, as `vault lease renew
// -increment=N LEASE_ID` does (sys/leases/renew): the backend's renew
// handler for the secret's type gets a logical.RenewOperation on the
// path that issued it, with req.Secret as Vault stored it (InternalData
// with the framework's "secret_type", the TTL, MaxTTL and Renewable it
// was issued with, IssueTime, Increment) and req.Data as the last
// response's data: after a renewal that is the renewal's response data,
// usually none, as in Vault. The TTL it answers with is then capped as
// Vault caps it: the increment if positive, else the backend's TTL, else
// the mount's default, never past the issue time plus the mount's (or the
// secret's) max TTL, with Vault's warning when capped.
//
// The response is what Vault's API answers: Secret.LeaseID, TTL
// (lease_duration) and Renewable, the backend's Data and the warnings;
// the secret's InternalData is not in it. The increment is whole seconds,
// as the API takes it. leaseID may name a lease of any of the Plugin's
// mounts, as sys/leases does.
//
// A failure is a *ResponseError with Vault's status and message: 400
// "lease not found" for an unknown or revoked lease, "lease is not
// renewable", "lease expired" (a lease whose revocation at expiry
// failed), or "failed to renew entry: …" when the backend's handler
// fails.
func (m *Mount) Renew(ctx context.Context, leaseID string, increment time.Duration) (*logical.Response, error) {
	if m.host != nil {
		return m.renewOnHost(ctx, leaseID, increment)
	}
	resp, err := m.exp.renew(ctx, leaseID, increment.Truncate(time.Second))
	if err != nil {
		return nil, sysError(resp, err)
	}
	if resp != nil {
		setMountType(resp, "system")
		resp.Secret.InternalData = nil
	}
	return resp, nil
}

// renew is handleRenew and ExpirationManager.Renew. An error response
// comes with logical.ErrInvalidRequest, as handleErrorNoReadOnlyForward
// makes it.
func (e *expiration) renew(ctx context.Context, leaseID string, increment time.Duration) (*logical.Response, error) {
	if leaseID == "" {
		return logical.ErrorResponse("lease_id must be specified"), logical.ErrInvalidRequest
	}
	l := e.locked(leaseID)
	if l != nil {
		defer l.mu.Unlock()
	}
	if err := l.renewable(e.now()); err != nil {
		return logical.ErrorResponse(err.Error()), logical.ErrInvalidRequest
	}
	if l.secret == nil {
		return logical.ErrorResponse("tokens cannot be renewed through this endpoint"), logical.ErrInvalidRequest
	}

	// renewEntry.
	secret, err := clone(l.secret)
	if err != nil {
		return nil, err
	}
	data, err := clone(l.data)
	if err != nil {
		return nil, err
	}
	secret.IssueTime, secret.Increment, secret.LeaseID = l.issued, increment, ""
	req := &logical.Request{Operation: logical.RenewOperation, Path: l.path, Secret: secret, Data: data}
	resp, err := l.mount.expirationRequest(ctx, req, nil)
	if err != nil || (resp != nil && resp.IsError()) {
		err = fmt.Errorf("failed to renew entry: resp: %#v err: %w", resp, err)
		return logical.ErrorResponse(err.Error()), &wrappedErr{shown: logical.ErrInvalidRequest, cause: err}
	}
	if resp == nil || resp.Secret == nil {
		return nil, nil
	}

	now := e.now()
	ttl, warnings, err := calculateTTL(now, l.mount.defaultTTL, l.mount.maxTTL, increment, resp.Secret.TTL, 0, resp.Secret.MaxTTL, 0, l.issued)
	if err != nil {
		return logical.ErrorResponse(err.Error()), logical.ErrInvalidRequest
	}
	for _, w := range warnings {
		resp.AddWarning(w)
	}
	resp.Secret.TTL = ttl
	resp.Secret.LeaseID = leaseID
	if l.data, err = clone(resp.Data); err != nil {
		return nil, err
	}
	if l.secret, err = clone(resp.Secret); err != nil {
		return nil, err
	}
	e.setExpires(l, expirationTime(now, ttl))
	return resp, nil
}

// Revoke revokes the lease leaseID, as `vault lease revoke -sync
// LEASE_ID` does (sys/leases/revoke): the backend's revoke handler for
// the secret's type gets a logical.RevokeOperation on the path that
// issued it, with req.Secret and req.Data as Vault stored them (see
// Renew), and the lease is gone once it succeeded. A token's lease
// revokes the token, without calling the backend, as Vault's token store
// does. leaseID may name a lease of any of the Plugin's mounts.
//
// As in Vault, revoking a lease that does not exist, or no longer does,
// succeeds (the API answers 204). A failure is a *ResponseError: 400
// "failed to revoke entry: …" when the backend's handler fails, and the
// lease stays. Without -sync, Vault's CLI only queues the revocation and
// answers 202; servetest always revokes before it returns.
func (m *Mount) Revoke(ctx context.Context, leaseID string) error {
	if m.host != nil {
		return m.revokeOnHost(ctx, leaseID)
	}
	if leaseID == "" {
		return sysError(logical.ErrorResponse("lease_id must be specified"), logical.ErrInvalidRequest)
	}
	if err := m.exp.revoke(ctx, leaseID); err != nil {
		return sysError(nil, err)
	}
	return nil
}

// RevokePrefix revokes every lease whose ID starts with prefix, as
// `vault lease revoke -sync -prefix PREFIX` does
// (sys/leases/revoke-prefix/PREFIX): prefix is a path as lease IDs begin,
// such as m.MountPoint+"creds/" or m.MountPoint, for the leases of any of
// the Plugin's mounts. It is cleaned as Vault's API client cleans a
// request's path, so a trailing "/" makes no difference. As in Vault, a
// prefix that is itself a lease's ID revokes that lease, and any other is
// taken as a path: "secrets/creds/web" revokes "secrets/creds/web/…" and
// not "secrets/creds/web2/…". Each lease is revoked as Revoke does, in
// the order Vault walks its lease store (a path's own leases in order,
// then its sub-paths from the last back); the first failure stops it, as
// a *ResponseError (400) naming the lease. An empty prefix is Vault's 404
// for sys/leases/revoke-prefix without one.
func (m *Mount) RevokePrefix(ctx context.Context, prefix string) error {
	if m.host != nil {
		return m.revokePrefixOnHost(ctx, prefix)
	}
	prefix = strings.TrimPrefix(pathpkg.Clean("/"+prefix), "/")
	if prefix == "" {
		return responseError(&logical.Request{Operation: logical.UpdateOperation}, nil, multierror.Append(nil, logical.ErrUnsupportedPath))
	}
	if err := m.exp.revokePrefix(ctx, prefix); err != nil {
		return sysError(nil, err)
	}
	return nil
}

// revokePrefix is revokePrefixCommon with sync set.
func (e *expiration) revokePrefix(ctx context.Context, prefix string) error {
	if l := e.locked(prefix); l != nil {
		l.mu.Unlock()
		if err := e.revoke(ctx, prefix); err != nil {
			return fmt.Errorf("failed to revoke %q: %w", prefix, err)
		}
		return nil
	}
	prefix += "/"
	ids := e.matching(prefix)
	for i, id := range ids {
		if err := e.revoke(ctx, id); err != nil {
			return fmt.Errorf("failed to revoke %q (%d / %d): %w", id, i+1, len(ids), err)
		}
	}
	return nil
}

// revoke is revokeCommon: nothing for an unknown lease; otherwise the
// revocation (revokeEntry) and then the lease's removal.
func (e *expiration) revoke(ctx context.Context, leaseID string) error {
	l := e.locked(leaseID)
	if l == nil {
		return nil
	}
	defer l.mu.Unlock()
	if err := e.revokeEntry(ctx, l); err != nil {
		return err
	}
	e.remove(l)
	return nil
}

// revokeEntry calls the backend's revoke handler for a secret's lease;
// a token's needs none.
func (e *expiration) revokeEntry(ctx context.Context, l *lease) error {
	if l.auth != nil {
		return nil
	}
	secret, err := clone(l.secret)
	if err != nil {
		return err
	}
	data, err := clone(l.data)
	if err != nil {
		return err
	}
	secret.IssueTime = l.issued
	req := &logical.Request{Operation: logical.RevokeOperation, Path: l.path, Secret: secret, Data: data}
	resp, err := l.mount.expirationRequest(ctx, req, nil)
	if err != nil || (resp != nil && resp.IsError()) {
		return fmt.Errorf("failed to revoke entry: resp: %#v err: %w", resp, err)
	}
	return nil
}

// RenewToken renews the token that a login to an auth method gave, as
// `vault token renew -increment=N TOKEN` does (auth/token/renew): the
// auth method's renew handler gets a logical.RenewOperation on the login
// path, with req.Auth as Vault stored it at login (the plugin's
// InternalData, Metadata and Policies; TokenPolicies with "default";
// TTL, IssueTime, Increment; the display name prefixed with the mount's
// path; no ClientToken, as Vault hands it to auth methods other than its
// own). The TTL it answers with is capped as Renew caps a secret's, with
// the auth's Period and ExplicitMaxTTL also applied as Vault applies
// them. token is resp.Auth.ClientToken of Login (or Do); it may come from
// any of the Plugin's mounts.
//
// The response is what Vault's API answers: its Auth with ClientToken,
// Accessor, TTL (lease_duration), Renewable, Policies (the token's,
// "default" included) and TokenPolicies, without InternalData; and the
// warnings. A failure is a *ResponseError: 400 "token not found" for a
// token that is unknown, revoked or past its TTL, "lease is not
// renewable", "batch tokens cannot be renewed", the backend's own error
// response (such as the framework's "this auth type doesn't support
// renew"), or 500 "failed to renew entry: …" when the handler fails.
func (m *Mount) RenewToken(ctx context.Context, token string, increment time.Duration) (*logical.Response, error) {
	if m.host != nil {
		return m.renewTokenOnHost(ctx, token, increment)
	}
	resp, err := m.exp.renewToken(ctx, token, increment.Truncate(time.Second))
	if err != nil || (resp != nil && resp.IsError()) {
		// handleRequest appends the token store's error to a multierror.
		if err != nil && !errors.Is(err, logical.ErrInvalidRequest) {
			err = multierror.Append(nil, err)
		}
		return nil, responseError(&logical.Request{Operation: logical.UpdateOperation}, resp, err)
	}
	if resp == nil {
		return nil, nil
	}
	setMountType(resp, "token")
	// request_handling.go: a renewal's policies are the token's.
	resp.Auth.Policies = policyutil.SanitizePolicies(append([]string(nil), resp.Auth.TokenPolicies...), policyutil.DoNotAddDefaultPolicy)
	resp.Auth.InternalData = nil
	return resp, nil
}

// renewToken is the token store's handleRenew and
// ExpirationManager.RenewToken.
func (e *expiration) renewToken(ctx context.Context, token string, increment time.Duration) (*logical.Response, error) {
	if token == "" {
		return logical.ErrorResponse("missing token ID"), logical.ErrInvalidRequest
	}
	e.mu.Lock()
	l := e.tokens[token]
	batchExpires, batch := e.batch[token]
	now := e.clock
	e.mu.Unlock()
	if batch && !expired(batchExpires, now) {
		return logical.ErrorResponse("batch tokens cannot be renewed"), nil
	}
	// The token store's lookup finds no token past its lease's
	// expiry, even before the expiration manager revoked it.
	if l = e.lockLive(l); l == nil || expired(l.expires, now) {
		if l != nil {
			l.mu.Unlock()
		}
		return logical.ErrorResponse("token not found"), logical.ErrInvalidRequest
	}
	defer l.mu.Unlock()
	if err := l.renewable(now); err != nil {
		return logical.ErrorResponse(err.Error()), logical.ErrInvalidRequest
	}

	// renewAuthEntry.
	auth, err := clone(l.auth)
	if err != nil {
		return nil, err
	}
	auth.IssueTime, auth.Increment, auth.ClientToken = l.issued, increment, ""
	req := &logical.Request{Operation: logical.RenewOperation, Path: l.path, Auth: auth}
	resp, err := l.mount.expirationRequest(ctx, req, &logical.Connection{RemoteAddr: "127.0.0.1", RemotePort: 50000})
	if err != nil {
		return nil, fmt.Errorf("failed to renew entry: %w", err)
	}
	if resp == nil {
		return nil, nil
	}
	if resp.IsError() {
		return &logical.Response{Data: resp.Data}, nil
	}
	if resp.Auth == nil {
		return nil, nil
	}
	now = e.now()
	ttl, warnings, err := calculateTTL(now, l.mount.defaultTTL, l.mount.maxTTL, increment, resp.Auth.TTL, resp.Auth.Period, resp.Auth.MaxTTL, resp.Auth.ExplicitMaxTTL, l.issued)
	if err != nil {
		return nil, err
	}
	out := &logical.Response{}
	for _, w := range warnings {
		out.AddWarning(w)
	}
	resp.Auth.TTL = ttl
	resp.Auth.ClientToken = token
	if l.auth, err = clone(resp.Auth); err != nil {
		return nil, err
	}
	e.setExpires(l, expirationTime(now, ttl))
	out.Auth = resp.Auth
	return out, nil
}

// expirationRequest sends req, which the expiration manager made for a
// lease of m, as Vault's router sends it: with the fields routeCommon
// sets, but without the request id and connection of a client's request
// (a renewal of a token carries the renewal request's connection, conn);
// and treats the response's auth as the router does.
func (m *Mount) expirationRequest(ctx context.Context, req *logical.Request, conn *logical.Connection) (*logical.Response, error) {
	m.route(req, req.Path, "")
	req.ID = ""
	req.Connection = conn
	var resp *logical.Response
	err := m.call(ctx, func(be logical.Backend) (err error) {
		resp, err = be.HandleRequest(ctx, req)
		return err
	})
	if resp != nil {
		resp.Headers = nil
		if resp.Auth != nil {
			if resp.Auth.Alias != nil {
				resp.Auth.Alias.MountAccessor = m.MountAccessor
			}
			resp.Auth.TokenType = mountTokenType(resp.Auth.TokenType)
		}
	}
	return resp, err
}

// Advance moves the host's clock forward by d, and then revokes every
// lease whose TTL has run out by then, in the order they expire, as
// Vault's expiration manager does when a lease's timer fires: a secret's
// through its backend's revoke handler (see Revoke), a token by removing
// it. It returns once each is revoked, with the errors of those that
// failed; a lease whose revocation failed stays, expired, and the next
// Advance (Advance(ctx, 0) does) tries it again, as Vault retries.
//
// The host's clock is the Plugin's, for all its mounts: it starts at the
// time New ran and moves only when Advance moves it, so a lease never
// expires while a test is not looking, and TTLs, caps and warnings are
// the same on every run. It is the host's clock only: the plugin's own
// time.Now does not move. A real host's clock cannot be moved: there
// Advance returns an error wrapping ErrEmulationOnly.
func (p *Plugin) Advance(ctx context.Context, d time.Duration) error {
	if p.host != nil {
		return emulationOnly("Plugin.Advance", "a real host's clock cannot be moved; use a short TTL and wait")
	}
	if d < 0 {
		return fmt.Errorf("servetest: Advance(%s): the clock does not go back", d)
	}
	e := p.exp
	e.mu.Lock()
	e.clock = e.clock.Add(d)
	now := e.clock
	type dueLease struct {
		l  *lease
		at time.Time
	}
	var due []dueLease
	for _, l := range e.leases {
		if expired(l.expires, now) {
			due = append(due, dueLease{l, l.expires})
		}
	}
	e.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if !due[i].at.Equal(due[j].at) {
			return due[i].at.Before(due[j].at)
		}
		return due[i].l.id < due[j].l.id
	})
	var errs *multierror.Error
	for _, d := range due {
		if err := e.expire(ctx, d.l); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("servetest: revoking the expired lease %s: %w", d.l.id, err))
		}
	}
	return errs.ErrorOrNil()
}

// expire revokes l if it is still there and still expired: a renewal may
// have come first.
func (e *expiration) expire(ctx context.Context, l *lease) error {
	if l = e.lockLive(l); l == nil {
		return nil
	}
	defer l.mu.Unlock()
	if !expired(l.expires, e.now()) {
		return nil
	}
	if err := e.revokeEntry(ctx, l); err != nil {
		return err
	}
	e.remove(l)
	return nil
}

// sysError is the *ResponseError Vault's API answers a request to a sys
// or token store endpoint with, whose handler returned (resp, err): an
// error response with logical.ErrInvalidRequest is a 400 with its
// message; an error alone is handleErrorNoReadOnlyForward's 400 with the
// error's message.
func sysError(resp *logical.Response, err error) error {
	if resp == nil && err != nil {
		resp = logical.ErrorResponse(err.Error())
		err = &wrappedErr{shown: logical.ErrInvalidRequest, cause: err}
	}
	return responseError(&logical.Request{Operation: logical.UpdateOperation}, resp, err)
}

// calculateTTL is framework.CalculateTTL of sdk v0.20.0 on the host's
// clock (now) instead of time.Now: the TTL of a lease or token that
// starts at startTime (zero: now), from the increment asked for, the
// backend's TTL, period and max TTL, the auth's explicit max TTL and the
// mount's default and max TTLs, with the warnings Vault adds when it caps
// one.
func calculateTTL(now time.Time, mountDefault, mountMax, increment, backendTTL, period, backendMaxTTL, explicitMaxTTL time.Duration, startTime time.Time) (time.Duration, []string, error) {
	now = now.Truncate(time.Second)
	if startTime.IsZero() {
		startTime = now
	} else {
		startTime = startTime.Truncate(time.Second)
	}
	maxTTL := mountMax
	if backendMaxTTL > 0 && backendMaxTTL < maxTTL {
		maxTTL = backendMaxTTL
	}
	if explicitMaxTTL > 0 && explicitMaxTTL < maxTTL {
		maxTTL = explicitMaxTTL
	}
	if maxTTL <= 0 {
		return 0, nil, errors.New("max TTL must be greater than zero")
	}

	var ttl time.Duration
	var warnings []string
	var maxValidTime time.Time
	switch {
	case period > 0:
		if period > maxTTL {
			warnings = append(warnings, fmt.Sprintf("period of %q exceeded the effective max_ttl of %q; period value is capped accordingly", humanDuration(period), humanDuration(maxTTL)))
			period = maxTTL
		}
		ttl = period
		if explicitMaxTTL > 0 {
			maxValidTime = startTime.Add(explicitMaxTTL)
		}
	default:
		switch {
		case increment > 0:
			ttl = increment
		case backendTTL > 0:
			ttl = backendTTL
		default:
			ttl = mountDefault
		}
		maxValidTime = startTime.Add(maxTTL)
	}
	if !maxValidTime.IsZero() {
		maxValidTTL := maxValidTime.Sub(now)
		if maxValidTTL <= 0 {
			return 0, nil, errors.New("past the max TTL, cannot renew")
		}
		if maxValidTTL-ttl < 0 {
			warnings = append(warnings, fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly", humanDuration(ttl), humanDuration(maxValidTTL)))
			ttl = maxValidTTL
		}
	}
	return ttl, warnings, nil
}

// humanDuration is framework's: a duration without its zero parts
// ("1h", "1h30s", "30m").
func humanDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if idx := strings.Index(s, "h0m"); idx > 0 {
		s = s[:idx+1] + s[idx+3:]
	}
	return s
}

package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/crypto/bcrypt"
)

// env is one mount of the auth method. Its hashes are at bcrypt.MinCost:
// at the default cost each would take over a second under -race.
type env struct {
	t *testing.T
	b *backend
	s logical.Storage
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dummy, err := bcrypt.GenerateFromPassword([]byte("dummy"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(bcrypt.MinCost, dummy)
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, b: b, s: conf.StorageView}
}

// do sends one request, picking create or update with the existence check
// as Vault's router does.
func (e *env) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.s}
	if op == logical.UpdateOperation {
		found, exists, err := e.b.HandleExistenceCheck(context.Background(), req)
		if err != nil {
			return nil, fmt.Errorf("existence check: %w", err)
		}
		if found && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return e.b.HandleRequest(context.Background(), req)
}

// must is do, failing the test on an error or an error response.
func (e *env) must(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil || resp.IsError() {
		e.t.Fatalf("%s %s: %v %v", op, path, resp, err)
	}
	return resp
}

// refused checks that a request is refused as the caller's mistake (a 400)
// with a message containing want: by an error response, or by the
// framework's validation of the fields in the existence check.
func (e *env) refused(op logical.Operation, path string, data map[string]any, want string) {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	var msg string
	var userErr errutil.UserError
	switch {
	case err == nil && resp.IsError():
		msg = resp.Error().Error()
	case errors.As(err, &userErr):
		msg = userErr.Error()
	}
	if msg == "" || !strings.Contains(msg, want) {
		e.t.Errorf("%s %s %v = %v, %v; want an error response containing %q", op, path, keysOf(data), resp, err, want)
	}
}

// keysOf names a request's fields without their values: they hold passwords.
func keysOf(data map[string]any) []string {
	var k []string
	for name := range data {
		k = append(k, name)
	}
	return k
}

func (e *env) login(username, password string) (*logical.Response, error) {
	return e.do(logical.UpdateOperation, "login", map[string]any{"username": username, "password": password})
}

func (e *env) denied(username, password, why string) {
	e.t.Helper()
	resp, err := e.login(username, password)
	if !errors.Is(err, logical.ErrPermissionDenied) || resp != nil {
		e.t.Errorf("login %s (%s) = %v, %v; want permission denied", username, why, resp, err)
	}
}

func TestUsersAndLogin(t *testing.T) {
	e := newEnv(t)
	e.must(logical.UpdateOperation, "users/alice", map[string]any{"password": "pw1", "policies": "reader, dev,dev", "ttl": "30m"})

	got := e.must(logical.ReadOperation, "users/alice", nil).Data
	want := map[string]any{"policies": []string{"dev", "reader"}, "ttl": int64(1800)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read = %v, want %v", got, want)
	}
	if keys := e.must(logical.ListOperation, "users/", nil).Data["keys"]; !reflect.DeepEqual(keys, []string{"alice"}) {
		t.Errorf("list = %v", keys)
	}

	// Stored as a hash of the backend's cost, the password nowhere.
	entry, err := e.s.Get(context.Background(), "users/alice")
	if err != nil || entry == nil {
		t.Fatalf("stored entry: %v %v", entry, err)
	}
	if bytes.Contains(entry.Value, []byte("pw1")) {
		t.Error("the password is stored in clear")
	}
	var u user
	if err := entry.DecodeJSON(&u); err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost(u.Hash); err != nil || cost != e.b.cost {
		t.Errorf("stored hash cost = %d, %v; want %d", cost, err, e.b.cost)
	}

	resp := e.must(logical.UpdateOperation, "login", map[string]any{"username": "Alice", "password": "pw1"})
	wantAuth := &logical.Auth{
		Policies:     []string{"dev", "reader"},
		DisplayName:  "alice",
		Metadata:     map[string]string{"username": "alice"},
		InternalData: map[string]any{"username": "alice"},
		Alias:        &logical.Alias{Name: "alice"},
		LeaseOptions: logical.LeaseOptions{TTL: 30 * time.Minute, Renewable: true},
	}
	if !reflect.DeepEqual(resp.Auth, wantAuth) {
		t.Errorf("login auth = %+v\nwant %+v", resp.Auth, wantAuth)
	}

	e.denied("alice", "wrong", "wrong password")
	e.denied("bob", "pw1", "unknown user")
	e.denied("alice", "pw1"+strings.Repeat("x", 72), "longer than bcrypt hashes")

	// An update changes only what it gives.
	e.must(logical.UpdateOperation, "users/alice", map[string]any{"password": "pw2"})
	e.denied("alice", "pw1", "old password")
	resp = e.must(logical.UpdateOperation, "login", map[string]any{"username": "alice", "password": "pw2"})
	if !reflect.DeepEqual(resp.Auth.Policies, []string{"dev", "reader"}) || resp.Auth.TTL != 30*time.Minute {
		t.Errorf("after a password change, login auth = %+v", resp.Auth)
	}
	e.must(logical.UpdateOperation, "users/alice", map[string]any{"policies": ""})
	if got := e.must(logical.ReadOperation, "users/alice", nil).Data["policies"]; len(got.([]string)) != 0 {
		t.Errorf("after clearing policies, read = %v", got)
	}
	e.must(logical.UpdateOperation, "login", map[string]any{"username": "alice", "password": "pw2"})

	e.must(logical.DeleteOperation, "users/alice", nil)
	e.denied("alice", "pw2", "deleted user")
	if resp := e.must(logical.ReadOperation, "users/alice", nil); resp != nil {
		t.Errorf("read of a deleted user = %v", resp)
	}
}

func TestRenew(t *testing.T) {
	e := newEnv(t)
	e.must(logical.UpdateOperation, "users/carol", map[string]any{"password": "pw", "policies": "ops", "ttl": 600})
	auth := e.must(logical.UpdateOperation, "login", map[string]any{"username": "carol", "password": "pw"}).Auth
	// What Vault holds for the token: its policies, with "default" added.
	auth.TokenPolicies = append([]string{"default"}, auth.Policies...)
	renew := func() (*logical.Response, error) {
		return e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Path: "login", Auth: auth, Storage: e.s})
	}

	// A renewal gets the user's TTL as it is now.
	e.must(logical.UpdateOperation, "users/carol", map[string]any{"ttl": "20m"})
	resp, err := renew()
	if err != nil || resp.IsError() || resp.Auth == nil || resp.Auth.TTL != 20*time.Minute {
		t.Fatalf("renew = %+v, %v; want auth with TTL 20m", resp, err)
	}

	e.must(logical.UpdateOperation, "users/carol", map[string]any{"policies": "ops,admin"})
	if resp, err := renew(); err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "policies") {
		t.Errorf("renew after a policy change = %v, %v; want refused", resp, err)
	}
	e.must(logical.UpdateOperation, "users/carol", map[string]any{"policies": "ops"})
	if resp, err := renew(); err != nil || resp.IsError() {
		t.Errorf("renew with the policies back = %v, %v", resp, err)
	}

	e.must(logical.DeleteOperation, "users/carol", nil)
	if resp, err := renew(); err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "no longer exists") {
		t.Errorf("renew after delete = %v, %v; want refused", resp, err)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	e.refused(logical.UpdateOperation, "users/bob", map[string]any{"policies": "x"}, "password is required")
	e.refused(logical.UpdateOperation, "users/bob", map[string]any{"password": ""}, "cannot be empty")
	e.refused(logical.UpdateOperation, "users/bob", map[string]any{"password": strings.Repeat("x", 73)}, "72 bytes")
	e.refused(logical.UpdateOperation, "users/bob", map[string]any{"password": "pw", "policies": "dev,root"}, "root")
	e.refused(logical.UpdateOperation, "users/bob", map[string]any{"password": "pw", "ttl": -1}, "negative")
	e.refused(logical.UpdateOperation, "users/bob", map[string]any{"password": "pw", "ttl": "soon"}, "ttl")
	e.refused(logical.UpdateOperation, "login", map[string]any{"username": "bob"}, "required")
	if k, err := e.s.List(context.Background(), ""); err != nil || len(k) != 0 {
		t.Errorf("refused requests stored %q (%v)", k, err)
	}
	// 72 bytes is allowed: the limit is bcrypt's, not lower.
	long := strings.Repeat("y", 72)
	e.must(logical.UpdateOperation, "users/bob", map[string]any{"password": long})
	e.must(logical.UpdateOperation, "login", map[string]any{"username": "bob", "password": long})
}

func TestAliasLookahead(t *testing.T) {
	e := newEnv(t)
	// For an unknown user too: the answer must not tell who exists.
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.AliasLookaheadOperation, Path: "login", Storage: e.s,
		Data: map[string]any{"username": "Dave", "password": "ignored"},
	})
	if err != nil || resp.Auth == nil || resp.Auth.Alias == nil || resp.Auth.Alias.Name != "dave" {
		t.Errorf("alias lookahead = %+v, %v", resp, err)
	}
}

// slowStorage widens the window between reading an entry and writing it
// back, where a concurrent update can be lost.
type slowStorage struct{ logical.Storage }

func (s slowStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	e, err := s.Storage.Get(ctx, key)
	time.Sleep(time.Millisecond)
	return e, err
}

// TestConcurrentUpdates checks that updates of different fields of one user
// all land: each reads, changes and writes back the whole user.
func TestConcurrentUpdates(t *testing.T) {
	e := newEnv(t)
	e.s = slowStorage{e.s}
	e.must(logical.UpdateOperation, "users/erin", map[string]any{"password": "pw"})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := map[string]any{"ttl": 60}
			if i%2 == 0 {
				data = map[string]any{"policies": "p"}
			}
			if resp, err := e.do(logical.UpdateOperation, "users/erin", data); err != nil || resp.IsError() {
				t.Errorf("update: %v %v", resp, err)
			}
		}()
	}
	wg.Wait()
	got := e.must(logical.ReadOperation, "users/erin", nil).Data
	if !reflect.DeepEqual(got, map[string]any{"policies": []string{"p"}, "ttl": int64(60)}) {
		t.Errorf("after concurrent updates, read = %v", got)
	}
}

func TestHelp(t *testing.T) {
	var logs bytes.Buffer
	conf := logical.TestBackendConfig()
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	// The root help builds the OpenAPI document, which needs the Vault
	// version; the test system view has none.
	conf.System.(*logical.StaticSystemView).PluginEnvironment = &logical.PluginEnvironment{VaultVersion: "1.21.0"}
	conf.StorageView = &logical.InmemStorage{}
	b, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	if b.Type() != logical.TypeCredential {
		t.Errorf("type = %v", b.Type())
	}
	if got := b.(*backend).cost; got != bcrypt.DefaultCost {
		t.Errorf("Factory's bcrypt cost = %d, want the default %d", got, bcrypt.DefaultCost)
	}
	if sp := b.SpecialPaths(); !reflect.DeepEqual(sp.Unauthenticated, []string{"login"}) {
		t.Errorf("unauthenticated paths = %v", sp.Unauthenticated)
	}
	for _, p := range []string{"", "users/", "users/x", "login"} {
		resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: p, Storage: conf.StorageView})
		if help, _ := resp.Data["help"].(string); err != nil || len(help) < 40 {
			t.Errorf("help for %q = %q, %v", p, help, err)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("help logged:\n%s", logs.String())
	}
}

// TestDummyHash checks what hides unknown users: comparing with dummyHash
// must cost what comparing with a real user's hash does, so it must be
// well formed and of the default cost, or the comparison returns early.
func TestDummyHash(t *testing.T) {
	if cost, err := bcrypt.Cost([]byte(dummyHash)); err != nil || cost != bcrypt.DefaultCost {
		t.Fatalf("dummyHash cost = %d, %v; want %d", cost, err, bcrypt.DefaultCost)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte("guess")); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		t.Errorf("comparing with dummyHash: %v, want a mismatch after a full comparison", err)
	}
}

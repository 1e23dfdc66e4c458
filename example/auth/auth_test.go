package auth_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/example/auth"
)

type env struct {
	t *testing.T
	b logical.Backend
	s logical.Storage
}

func newEnv(t *testing.T) *env {
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	b, err := auth.Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, b: b, s: conf.StorageView}
}

func (e *env) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.s}
	if op == logical.UpdateOperation {
		if found, exists, err := e.b.HandleExistenceCheck(context.Background(), req); err == nil && found && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return e.b.HandleRequest(context.Background(), req)
}

func (e *env) must(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil || resp.IsError() {
		e.t.Fatalf("%s %s: %v %v", op, path, resp, err)
	}
	return resp
}

func TestUsersAndLogin(t *testing.T) {
	e := newEnv(t)
	e.must(logical.UpdateOperation, "users/alice", map[string]any{"password": "pw1", "policies": "dev, reader", "ttl": "30m"})

	got := e.must(logical.ReadOperation, "users/alice", nil).Data
	if !reflect.DeepEqual(got["policies"], []string{"dev", "reader"}) || got["ttl"] != int64(1800) {
		t.Errorf("read = %v", got)
	}
	for k, v := range got {
		if s, ok := v.(string); ok && (strings.Contains(s, "pw1") || strings.HasPrefix(s, "$2")) {
			t.Errorf("read exposes %s", k)
		}
	}
	if keys := e.must(logical.ListOperation, "users/", nil).Data["keys"]; !reflect.DeepEqual(keys, []string{"alice"}) {
		t.Errorf("list = %v", keys)
	}

	resp := e.must(logical.UpdateOperation, "login", map[string]any{"username": "alice", "password": "pw1"})
	if resp.Auth == nil || !reflect.DeepEqual(resp.Auth.Policies, []string{"dev", "reader"}) || resp.Auth.TTL != 30*time.Minute || !resp.Auth.Renewable || resp.Auth.Alias.Name != "alice" {
		t.Fatalf("login auth = %+v", resp.Auth)
	}

	for _, bad := range []map[string]any{
		{"username": "alice", "password": "wrong"},
		{"username": "bob", "password": "pw1"},
	} {
		if _, err := e.do(logical.UpdateOperation, "login", bad); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("login %v: err = %v, want permission denied", bad, err)
		}
	}

	// A new password replaces the old one.
	e.must(logical.UpdateOperation, "users/alice", map[string]any{"password": "pw2"})
	if _, err := e.do(logical.UpdateOperation, "login", map[string]any{"username": "alice", "password": "pw1"}); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Errorf("old password still works: %v", err)
	}
	auth := e.must(logical.UpdateOperation, "login", map[string]any{"username": "alice", "password": "pw2"}).Auth

	// Renewal works while the user exists with the same policies.
	auth.TokenPolicies = auth.Policies
	renew := func() (*logical.Response, error) {
		return e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Path: "login", Auth: auth, Storage: e.s})
	}
	if resp, err := renew(); err != nil || resp.IsError() {
		t.Errorf("renew: %v %v", resp, err)
	}
	e.must(logical.DeleteOperation, "users/alice", nil)
	if resp, err := renew(); err == nil && !resp.IsError() {
		t.Error("renewal of a deleted user's token succeeded")
	}
	if _, err := e.do(logical.UpdateOperation, "login", map[string]any{"username": "alice", "password": "pw2"}); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Errorf("deleted user logs in: %v", err)
	}
}

func TestCreateNeedsPassword(t *testing.T) {
	e := newEnv(t)
	resp, err := e.do(logical.UpdateOperation, "users/bob", map[string]any{"policies": "x"})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "password is required") {
		t.Errorf("create without password: %v %v", resp, err)
	}
}

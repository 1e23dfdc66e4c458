package auth_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// TestBinary logs in through the plugin binary, started as Vault starts it.
func TestBinary(t *testing.T) {
	servetest.SkipOnRealHost(t, "the raw HandleRequest")
	bin := servetest.Build(t, "./cmd/vault-plugin-auth-example")
	p := servetest.Start(t, bin)
	ctx := context.Background()
	m := p.Mount(t, nil)
	req := func(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
		return m.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: data})
	}
	if resp, err := req(logical.CreateOperation, "users/carol", map[string]any{"password": "pw", "policies": "ops"}); err != nil || resp.IsError() {
		t.Fatalf("create: %v %v", resp, err)
	}
	resp, err := req(logical.UpdateOperation, "login", map[string]any{"username": "carol", "password": "pw"})
	if err != nil || resp.Auth == nil || len(resp.Auth.Policies) != 1 || resp.Auth.Policies[0] != "ops" {
		t.Fatalf("login: %+v %v", resp, err)
	}
	if _, err := req(logical.UpdateOperation, "login", map[string]any{"username": "carol", "password": "nope"}); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Errorf("wrong password: %v", err)
	}
}

// TestBinaryThroughTheAPI logs in through the binary only with what
// Vault's HTTP API offers, so it runs unchanged on a real Vault or OpenBao
// (servetest.HostEnv): a user written with the root token, a login
// without one, the token renewed through the plugin's renew handler.
func TestBinaryThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	m := servetest.Start(t, servetest.Build(t, "./cmd/vault-plugin-auth-example")).Mount(t, nil)
	if _, err := m.Write(ctx, "users/carol", map[string]any{"password": "pw", "policies": "ops", "ttl": "30m"}); err != nil {
		t.Fatal(err)
	}
	resp, err := m.Login(ctx, "login", map[string]any{"username": "carol", "password": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	a := resp.Auth
	if a == nil || a.ClientToken == "" || a.TTL != 30*time.Minute || !reflect.DeepEqual(a.TokenPolicies, []string{"default", "ops"}) {
		t.Fatalf("login: %+v", a)
	}
	renewed, err := m.RenewToken(ctx, a.ClientToken, 0)
	if err != nil || renewed.Auth.TTL != 30*time.Minute {
		t.Fatalf("renewal: %+v, %v", renewed, err)
	}
	_, err = m.Login(ctx, "login", map[string]any{"username": "carol", "password": "nope"})
	var re *servetest.ResponseError
	if !errors.As(err, &re) || !errors.Is(err, logical.ErrPermissionDenied) {
		t.Errorf("wrong password: %v, want permission denied", err)
	}
}

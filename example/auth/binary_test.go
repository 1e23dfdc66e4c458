package auth_test

import (
	"context"
	"errors"
	"testing"

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

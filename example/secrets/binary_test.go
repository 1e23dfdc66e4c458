package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// TestBinary drives the plugin binary an operator ships, started as Vault
// starts it: two mounts served by one process, isolated from each other.
func TestBinary(t *testing.T) {
	servetest.SkipOnRealHost(t, "Mount.Storage and the raw HandleRequest")
	bin := servetest.Build(t, "./cmd/vault-plugin-secrets-example")
	p := servetest.Start(t, bin)
	ctx := context.Background()
	a, b := p.Mount(t, nil), p.Mount(t, nil)
	do(t, a, nil, logical.CreateOperation, "data/app/db", map[string]any{"password": "p"})
	if got := do(t, a, nil, logical.ReadOperation, "data/app/db", nil).Data["password"]; got != "p" {
		t.Errorf("read back %v", got)
	}
	if resp := do(t, b, nil, logical.ReadOperation, "data/app/db", nil); resp != nil {
		t.Errorf("the second mount sees the first's secret: %v", resp.Data)
	}
	if keys, _ := logical.CollectKeys(ctx, a.Storage); len(keys) != 1 || keys[0] != "data/app/db" {
		t.Errorf("storage keys = %v", keys)
	}
	if t.Failed() || p.Exited() {
		t.Fatalf("plugin exited: %v", p.Logs())
	}
}

// TestBinaryThroughTheAPI drives the binary only through what Vault's
// HTTP API offers, so it runs unchanged on a real Vault or OpenBao
// (servetest.HostEnv): write, read, list and delete as the CLI does.
func TestBinaryThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	m := servetest.Start(t, servetest.Build(t, "./cmd/vault-plugin-secrets-example")).Mount(t, nil)
	if _, err := m.Write(ctx, "data/app/db", map[string]any{"password": "p"}); err != nil {
		t.Fatal(err)
	}
	resp, err := m.Read(ctx, "data/app/db")
	if err != nil || resp.Data["password"] != "p" {
		t.Fatalf("read back: %v, %v", resp, err)
	}
	list, err := m.List(ctx, "data/app")
	if err != nil || fmt.Sprint(list.Data["keys"]) != "[db]" {
		t.Fatalf("list: %v, %v", list, err)
	}
	if _, err := m.Delete(ctx, "data/app/db"); err != nil {
		t.Fatal(err)
	}
	var re *servetest.ResponseError
	if _, err := m.Read(ctx, "data/app/db"); !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
		t.Errorf("read after delete: %v, want a 404", err)
	}
}

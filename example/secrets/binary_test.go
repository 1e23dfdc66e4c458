package secrets_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// The plugin binary of each release the tests run: v2 is this tree's.
const (
	v1Main     = "./internal/v1/cmd/vault-plugin-secrets-example"
	v2Main     = "./cmd/vault-plugin-secrets-example"
	brokenMain = "./internal/broken/cmd/vault-plugin-secrets-example"
)

// TestBinary drives the plugin binary an operator ships, started as Vault
// starts it: two mounts served by one process, isolated from each other.
func TestBinary(t *testing.T) {
	servetest.SkipOnRealHost(t, "Mount.Storage and the raw HandleRequest")
	bin := servetest.Build(t, v2Main)
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
	m := servetest.Start(t, servetest.Build(t, v2Main)).Mount(t, nil)
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

// TestUpgradeFromV1 upgrades a mount from v1, as released, to v2, as an
// operator does (servetest.Plugin.Upgrade: register, tune, reload), and
// reads what v1 wrote through v2: v2 migrates a v1 secret when it reads
// it and rewrites it in its own schema on the next write. Only the
// mount's request methods are used, so the test means the same on a real
// Vault.
func TestUpgradeFromV1(t *testing.T) {
	ctx := context.Background()
	v1, v2 := servetest.Build(t, v1Main), servetest.Build(t, v2Main)
	p := servetest.Start(t, v1)
	m := p.Mount(t, nil)
	// Keys a record of v2's has, to show that v2 never mistakes a v1
	// secret for one of its own records.
	db := map[string]any{"user": "app", "password": "s3cr3t", "data": "not a record", "updated_time": "never"}
	api := map[string]any{"token": "t0k3n"}
	write(t, m, "data/app/db", db)
	write(t, m, "data/app/api", api)
	if info := read(t, m, "info"); info["schema"] != nil {
		t.Fatalf("v1's info = %v", info)
	}

	if err := p.Upgrade(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if info := read(t, m, "info"); fmt.Sprint(info["schema"]) != "2" {
		t.Fatalf("after the upgrade info = %v: v2 does not serve", info)
	}
	// v1's secrets read back as they were written.
	if got := read(t, m, "data/app/db"); !reflect.DeepEqual(got, db) {
		t.Errorf("v1's secret through v2 = %v, want %v", got, db)
	}
	if got := list(t, m, "data/app/"); !reflect.DeepEqual(got, []any{"api", "db"}) {
		t.Errorf("list = %v", got)
	}
	// Reading did not rewrite it; the next write does, in schema 2.
	if meta := read(t, m, "meta/app/db"); fmt.Sprint(meta["schema"]) != "1" || meta["updated_time"] != nil {
		t.Errorf("v1's secret after a read: meta %v, want schema 1", meta)
	}
	api["token"] = "rotated"
	write(t, m, "data/app/api", api)
	if meta := read(t, m, "meta/app/api"); fmt.Sprint(meta["schema"]) != "2" || meta["updated_time"] == nil {
		t.Errorf("a secret v2 wrote: meta %v, want schema 2 with updated_time", meta)
	}
	if got := read(t, m, "data/app/api"); !reflect.DeepEqual(got, api) {
		t.Errorf("read back %v, want %v", got, api)
	}
}

// TestUpgradeFailure: an upgrade to a v2 that cannot start fails with an
// error naming it, and v1 goes on serving the mount with its secrets.
func TestUpgradeFailure(t *testing.T) {
	ctx := context.Background()
	v1, broken := servetest.Build(t, v1Main), servetest.Build(t, brokenMain)
	missing := filepath.Join(t.TempDir(), "vault-plugin-secrets-example")
	p := servetest.Start(t, v1)
	m := p.Mount(t, nil)
	db := map[string]any{"password": "s3cr3t"}
	write(t, m, "data/app/db", db)
	for _, bin := range []string{broken, missing} {
		err := p.Upgrade(ctx, bin)
		var se *servetest.StartError
		if !errors.As(err, &se) || se.Binary != bin || !strings.Contains(err.Error(), bin) {
			t.Errorf("upgrading to %s: want a *servetest.StartError naming it, got %v", bin, err)
		}
		if bin == broken && !strings.Contains(se.Cause, "${VERSION}") {
			t.Errorf("the broken build's cause = %q, want its own reason", se.Cause)
		}
		if info := read(t, m, "info"); info["schema"] != nil {
			t.Errorf("after the failed upgrade info = %v: v1 does not serve", info)
		}
		if got := read(t, m, "data/app/db"); !reflect.DeepEqual(got, db) {
			t.Errorf("after the failed upgrade read %v, want %v", got, db)
		}
		// On a real host, the operator's undoing left v1 alone in the
		// catalog: the failed build's entry is gone.
		if h := p.Host(); h.Real {
			if got := catalogVersions(t, h, m.MountType); !reflect.DeepEqual(got, []string{"v1.0.0"}) {
				t.Errorf("after the failed upgrade the catalog holds %s at %v, want v1.0.0 alone", m.MountType, got)
			}
		}
	}
}

// catalogVersions lists the versions of the plugin name in the real host
// h's catalog, as `vault plugin list` shows them.
func catalogVersions(t *testing.T, h servetest.Host, name string) []string {
	t.Helper()
	req, err := http.NewRequest("GET", h.Addr+"/v1/sys/plugins/catalog", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", h.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Detailed []struct{ Name, Version string } `json:"detailed"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("listing the catalog: %d, %v", resp.StatusCode, err)
	}
	var versions []string
	for _, e := range body.Data.Detailed {
		if e.Name == name {
			versions = append(versions, e.Version)
		}
	}
	return versions
}

func write(t *testing.T, m *servetest.Mount, path string, data map[string]any) {
	t.Helper()
	if _, err := m.Write(context.Background(), path, data); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func read(t *testing.T, m *servetest.Mount, path string) map[string]any {
	t.Helper()
	resp, err := m.Read(context.Background(), path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return resp.Data
}

func list(t *testing.T, m *servetest.Mount, path string) any {
	t.Helper()
	resp, err := m.List(context.Background(), path)
	if err != nil {
		t.Fatalf("list %s: %v", path, err)
	}
	return resp.Data["keys"]
}

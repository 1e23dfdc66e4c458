package secrets_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/example/secrets"
)

func newBackend(t testing.TB) (logical.Backend, logical.Storage) {
	t.Helper()
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	b, err := secrets.Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	return b, conf.StorageView
}

// do sends one request to b and fails t on an error (an error response is
// returned, not failed on). s may be nil when b stores for itself, as a
// servetest mount does.
func do(t testing.TB, b logical.Backend, s logical.Storage, op logical.Operation, path string, data map[string]any) *logical.Response {
	t.Helper()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: s}
	if op == logical.UpdateOperation || op == logical.CreateOperation {
		// As Vault's router does: the existence check picks create or update.
		found, exists, err := b.HandleExistenceCheck(context.Background(), req)
		if err != nil {
			t.Fatalf("existence check %s: %v", path, err)
		}
		if found {
			req.Operation = logical.UpdateOperation
			if !exists {
				req.Operation = logical.CreateOperation
			}
		}
	}
	resp, err := b.HandleRequest(context.Background(), req)
	if err != nil {
		t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func keys(t testing.TB, b logical.Backend, s logical.Storage, path string) []string {
	t.Helper()
	resp := do(t, b, s, logical.ListOperation, path, nil)
	if resp.IsError() {
		t.Fatalf("list %s: %v", path, resp.Error())
	}
	k, _ := resp.Data["keys"].([]string)
	return k
}

func TestCRUD(t *testing.T) {
	b, s := newBackend(t)
	// "path" is also the URL's capture: the secret's own key must survive.
	want := map[string]any{"user": "app", "password": "p", "path": "/srv/db"}
	if resp := do(t, b, s, logical.UpdateOperation, "data/app/db", want); resp != nil {
		t.Errorf("write = %+v, want no response", resp)
	}
	if got := do(t, b, s, logical.ReadOperation, "data/app/db", nil).Data; !reflect.DeepEqual(got, want) {
		t.Errorf("read = %v, want %v", got, want)
	}

	// An update replaces the whole secret.
	do(t, b, s, logical.UpdateOperation, "data/app/db", map[string]any{"user": "app2"})
	if got := do(t, b, s, logical.ReadOperation, "data/app/db", nil).Data; !reflect.DeepEqual(got, map[string]any{"user": "app2"}) {
		t.Errorf("after update, read = %v", got)
	}

	do(t, b, s, logical.DeleteOperation, "data/app/db", nil)
	if resp := do(t, b, s, logical.ReadOperation, "data/app/db", nil); resp != nil {
		t.Errorf("after delete, read = %+v, want nil (a 404)", resp)
	}
	if resp := do(t, b, s, logical.DeleteOperation, "data/app/db", nil); resp != nil {
		t.Errorf("deleting again = %+v, want no response", resp)
	}
	if resp := do(t, b, s, logical.ReadOperation, "data/never", nil); resp != nil {
		t.Errorf("read of a missing secret = %+v", resp)
	}
}

func TestExistenceCheck(t *testing.T) {
	b, s := newBackend(t)
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "data/k", Storage: s}
	for _, want := range []bool{false, true} {
		found, exists, err := b.HandleExistenceCheck(context.Background(), req)
		if err != nil || !found || exists != want {
			t.Fatalf("existence check = found %v, exists %v, %v; want exists %v", found, exists, err, want)
		}
		do(t, b, s, logical.CreateOperation, "data/k", map[string]any{"v": 1})
	}
}

func TestList(t *testing.T) {
	b, s := newBackend(t)
	for _, p := range []string{"data/top", "data/app/db", "data/app/api/key", "data/app/api/cert", "data/other/x"} {
		do(t, b, s, logical.CreateOperation, p, map[string]any{"v": p})
	}
	for _, c := range []struct {
		path string
		want []string
	}{
		{"data/", []string{"app/", "other/", "top"}},
		{"data", []string{"app/", "other/", "top"}},
		{"data/app/", []string{"api/", "db"}},
		{"data/app", []string{"api/", "db"}}, // as an in-process caller may send it
		{"data/app/api/", []string{"cert", "key"}},
		{"data/nothing/", nil},
	} {
		if got := keys(t, b, s, c.path); !reflect.DeepEqual(got, c.want) {
			t.Errorf("list %s = %q, want %q", c.path, got, c.want)
		}
	}

	// A folder goes when its last secret does.
	do(t, b, s, logical.DeleteOperation, "data/other/x", nil)
	if got := keys(t, b, s, "data/"); !reflect.DeepEqual(got, []string{"app/", "top"}) {
		t.Errorf("after deleting other/x, list data/ = %q", got)
	}
}

func TestRefusals(t *testing.T) {
	b, s := newBackend(t)
	for _, c := range []struct {
		op   logical.Operation
		path string
		data map[string]any
		want string
	}{
		{logical.UpdateOperation, "data/x", nil, "no data provided"},
		{logical.UpdateOperation, "data/x", map[string]any{}, "no data provided"},
		{logical.UpdateOperation, "data/x/", map[string]any{"a": "b"}, "folder"},
		{logical.UpdateOperation, "data/a//b", map[string]any{"a": "b"}, "empty name"},
		{logical.UpdateOperation, "data/a/../b", map[string]any{"a": "b"}, ".."},
		{logical.ReadOperation, "data/a/", nil, "folder"},
		{logical.DeleteOperation, "data/../x", nil, ".."},
		{logical.ListOperation, "data/a//", nil, "empty name"},
	} {
		resp := do(t, b, s, c.op, c.path, c.data)
		if !resp.IsError() || !strings.Contains(resp.Error().Error(), c.want) {
			t.Errorf("%s %s = %+v, want an error response containing %q", c.op, c.path, resp, c.want)
		}
	}
	if k, err := s.List(context.Background(), ""); err != nil || len(k) != 0 {
		t.Errorf("refused requests stored %q (%v)", k, err)
	}
}

func TestInfoAndHelp(t *testing.T) {
	conf := logical.TestBackendConfig()
	// The root help builds the OpenAPI document, which needs the Vault
	// version; the test system view has none.
	conf.System.(*logical.StaticSystemView).PluginEnvironment = &logical.PluginEnvironment{VaultVersion: "1.21.0"}
	s := &logical.InmemStorage{}
	conf.StorageView = s
	b, err := secrets.Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	do(t, b, s, logical.CreateOperation, "data/k", map[string]any{"v": "secret-value"})
	if got := do(t, b, s, logical.ReadOperation, "info", nil).Data; !reflect.DeepEqual(got, map[string]any{"plugin": secrets.Name, "schema": secrets.Schema}) {
		t.Errorf("info = %v", got)
	}
	if b.Type() != logical.TypeLogical {
		t.Errorf("type = %v", b.Type())
	}
	for _, p := range []string{"", "data/", "data/k", "info"} {
		resp := do(t, b, s, logical.HelpOperation, p, nil)
		if help, _ := resp.Data["help"].(string); len(help) < 40 {
			t.Errorf("help for %q = %q", p, help)
		}
	}
}

func ExampleFactory() {
	ctx := context.Background()
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{} // Vault gives each mount its own
	b, err := secrets.Factory(ctx, conf)
	if err != nil {
		panic(err)
	}

	// What `vault write kv/data/app/db user=app password=s3cr3t` sends.
	_, err = b.HandleRequest(ctx, &logical.Request{
		Operation: logical.CreateOperation,
		Path:      "data/app/db",
		Data:      map[string]any{"user": "app", "password": "s3cr3t"},
		Storage:   conf.StorageView,
	})
	if err != nil {
		panic(err)
	}

	read, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "data/app/db", Storage: conf.StorageView})
	if err != nil {
		panic(err)
	}
	fmt.Println(read.Data["user"], read.Data["password"])

	list, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.ListOperation, Path: "data/", Storage: conf.StorageView})
	if err != nil {
		panic(err)
	}
	fmt.Println(list.Data["keys"])
	// Output:
	// app s3cr3t
	// [app/]
}

package secrets_test

import (
	"context"
	"fmt"
	"reflect"
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

func do(t testing.TB, b logical.Backend, s logical.Storage, op logical.Operation, path string, data map[string]any) *logical.Response {
	t.Helper()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: s}
	if op == logical.UpdateOperation || op == logical.CreateOperation {
		// As Vault's router does: the existence check picks create or update.
		if found, exists, err := b.HandleExistenceCheck(context.Background(), req); err == nil && found && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	resp, err := b.HandleRequest(context.Background(), req)
	if err != nil {
		t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func TestCRUDAndList(t *testing.T) {
	b, s := newBackend(t)
	do(t, b, s, logical.UpdateOperation, "data/app/db", map[string]any{"user": "app", "password": "p"})
	do(t, b, s, logical.UpdateOperation, "data/app/api/key", map[string]any{"key": "k"})
	do(t, b, s, logical.UpdateOperation, "data/top", map[string]any{"v": "1"})

	if got := do(t, b, s, logical.ReadOperation, "data/app/db", nil).Data; !reflect.DeepEqual(got, map[string]any{"user": "app", "password": "p"}) {
		t.Errorf("read = %v", got)
	}
	if got := do(t, b, s, logical.ListOperation, "data/", nil).Data["keys"]; !reflect.DeepEqual(got, []string{"app/", "top"}) {
		t.Errorf("list data/ = %v", got)
	}
	if got := do(t, b, s, logical.ListOperation, "data/app/", nil).Data["keys"]; !reflect.DeepEqual(got, []string{"api/", "db"}) {
		t.Errorf("list data/app/ = %v", got)
	}
	do(t, b, s, logical.UpdateOperation, "data/app/db", map[string]any{"user": "app2"})
	if got := do(t, b, s, logical.ReadOperation, "data/app/db", nil).Data; !reflect.DeepEqual(got, map[string]any{"user": "app2"}) {
		t.Errorf("after update, read = %v", got)
	}
	do(t, b, s, logical.DeleteOperation, "data/app/db", nil)
	if resp := do(t, b, s, logical.ReadOperation, "data/app/db", nil); resp != nil {
		t.Errorf("after delete, read = %v", resp)
	}
	if got := do(t, b, s, logical.ReadOperation, "info", nil).Data["secrets"]; got != 2 {
		t.Errorf("info secrets = %v, want 2", got)
	}
}

func TestRejectsEmptyAndFolderWrites(t *testing.T) {
	b, s := newBackend(t)
	if resp := do(t, b, s, logical.UpdateOperation, "data/x", nil); !resp.IsError() || resp.Error().Error() != "no data provided" {
		t.Errorf("empty write = %v", resp)
	}
	if resp := do(t, b, s, logical.UpdateOperation, "data/x/", map[string]any{"a": "b"}); !resp.IsError() {
		t.Errorf("write to a folder = %v", resp)
	}
}

func ExampleFactory() {
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	b, _ := secrets.Factory(context.Background(), conf)
	ctx := context.Background()
	_, _ = b.HandleRequest(ctx, &logical.Request{Operation: logical.CreateOperation, Path: "data/greeting", Storage: conf.StorageView, Data: map[string]any{"text": "hello"}})
	resp, _ := b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "data/greeting", Storage: conf.StorageView})
	fmt.Println(resp.Data["text"])
	// Output: hello
}

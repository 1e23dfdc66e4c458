package auth_test

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/example/auth"
)

func ExampleFactory() {
	ctx := context.Background()
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{} // Vault gives each mount its own
	b, err := auth.Factory(ctx, conf)
	if err != nil {
		panic(err)
	}

	// What `vault write auth/example/users/alice password=... policies=dev,reader ttl=30m` sends.
	_, err = b.HandleRequest(ctx, &logical.Request{
		Operation: logical.CreateOperation,
		Path:      "users/alice",
		Data:      map[string]any{"password": "correct horse", "policies": "dev,reader", "ttl": "30m"},
		Storage:   conf.StorageView,
	})
	if err != nil {
		panic(err)
	}

	// What `vault write auth/example/login username=alice password=...` sends.
	resp, err := b.HandleRequest(ctx, &logical.Request{
		Operation: logical.UpdateOperation,
		Path:      "login",
		Data:      map[string]any{"username": "alice", "password": "correct horse"},
		Storage:   conf.StorageView,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Auth.DisplayName, resp.Auth.Policies, resp.Auth.TTL, resp.Auth.Renewable)
	// Output: alice [dev reader] 30m0s true
}

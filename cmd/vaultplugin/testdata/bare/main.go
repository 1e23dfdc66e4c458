// Command bare is a Vault secrets engine served the way Vault's plugin
// documentation shows, with the bare SDK and no vaultplugin: what
// vaultplugin check is measured against. It is a module of its own so that
// it builds with the SDK plugin authors use today (the root module's
// floor, vault/api v1.5.0, has a TLS provider that cannot start under
// AutoMTLS) and so that nothing in it reaches the root module.
package main

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	apiClientMeta := &api.PluginAPIClientMeta{}
	flags := apiClientMeta.FlagSet()
	flags.Parse(os.Args[1:])

	tlsConfig := apiClientMeta.GetTLSConfig()
	tlsProviderFunc := api.VaultPluginTLSProvider(tlsConfig)

	err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: Factory,
		TLSProviderFunc:    tlsProviderFunc,
	})
	if err != nil {
		logger := hclog.New(&hclog.LoggerOptions{})
		logger.Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}

// Factory is a secrets engine with one path, info.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{
		Help:        "A bare SDK secrets engine.",
		BackendType: logical.TypeLogical,
		Paths: []*framework.Path{{
			Pattern: "info",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
						return &logical.Response{Data: map[string]any{"name": "bare"}}, nil
					},
				},
			},
			HelpSynopsis: "What this engine is.",
		}},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

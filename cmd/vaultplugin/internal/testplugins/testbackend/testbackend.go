// Package testbackend is the smallest secrets engine the check command's
// test plugins serve: one path, info, which reads back the engine's name.
package testbackend

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Factory builds the engine; version, when not "", is what it reports to
// Vault as its own (framework.Backend's RunningVersion).
func Factory(version string) logical.Factory {
	return func(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
		b := &framework.Backend{
			Help:           "A test secrets engine.",
			BackendType:    logical.TypeLogical,
			RunningVersion: version,
			Paths: []*framework.Path{{
				Pattern: "info",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: readInfo},
				},
				HelpSynopsis: "What this engine is.",
			}},
		}
		if err := b.Setup(ctx, conf); err != nil {
			return nil, err
		}
		return b, nil
	}
}

func readInfo(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	return &logical.Response{Data: map[string]any{"name": "testbackend"}}, nil
}

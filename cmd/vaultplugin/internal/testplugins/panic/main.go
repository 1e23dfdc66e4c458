// Command panic is a bare SDK plugin whose factory panics: the process
// dies at its first mount.
package main

import (
	"context"
	"os"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	// No TLS provider: under AutoMTLS go-plugin does the TLS itself.
	err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: func(context.Context, *logical.BackendConfig) (logical.Backend, error) {
			panic("the factory is broken")
		},
	})
	if err != nil {
		os.Exit(1)
	}
}

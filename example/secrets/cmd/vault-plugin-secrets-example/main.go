// Command vault-plugin-secrets-example is the example secrets engine as a
// Vault plugin binary.
package main

import (
	"github.com/plugkit/vaultplugin/example/secrets"
	"github.com/plugkit/vaultplugin/serve"
)

func main() { serve.Run(secrets.Factory) }

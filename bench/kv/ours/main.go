// Command ours serves HashiCorp's KV secrets engine with serve.Run: the
// other side of the size comparison with the engine's own main
// (github.com/hashicorp/vault-plugin-secrets-kv/cmd/vault-plugin-secrets-kv,
// the docs' bare SDK main).
package main

import (
	kv "github.com/hashicorp/vault-plugin-secrets-kv"

	"github.com/plugkit/vaultplugin/serve"
)

func main() { serve.Run(kv.Factory) }

// Command vault-plugin-auth-example is the example auth method as a Vault
// plugin binary.
package main

import (
	"github.com/plugkit/vaultplugin/example/auth"
	"github.com/plugkit/vaultplugin/serve"
)

func main() { serve.Run(auth.Factory) }

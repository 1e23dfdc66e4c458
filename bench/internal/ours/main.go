// Command ours serves the example secrets engine with serve.Run.
package main

import (
	"github.com/plugkit/vaultplugin/example/secrets"
	"github.com/plugkit/vaultplugin/serve"
)

func main() { serve.Run(secrets.Factory) }

// Command versioned is a plugin served by serve.Run with a version of
// its own.
package main

import (
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/testplugins/testbackend"
	"github.com/plugkit/vaultplugin/serve"
)

func main() { serve.Run(testbackend.Factory(""), serve.WithVersion("v1.2.3")) }

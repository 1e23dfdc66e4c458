// Command stdout is a plugin that prints a line on stdout before serving,
// where Vault expects its handshake, as a plugin with a stray fmt.Println
// in main does.
package main

import (
	"fmt"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/testplugins/testbackend"
	"github.com/plugkit/vaultplugin/serve"
)

func main() {
	fmt.Println("starting the stdout test plugin")
	serve.Run(testbackend.Factory(""))
}

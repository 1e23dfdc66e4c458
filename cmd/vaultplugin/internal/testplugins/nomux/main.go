// Command nomux is a bare SDK plugin served without multiplexing
// (plugin.Serve), whose backend reports v1.0.0 to Vault while its
// -version flag prints v2.0.0.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/hashicorp/vault/sdk/plugin"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/testplugins/testbackend"
)

func main() {
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println("v2.0.0")
		return
	}
	// No TLS provider: under AutoMTLS go-plugin does the TLS itself.
	if err := plugin.Serve(&plugin.ServeOpts{BackendFactoryFunc: testbackend.Factory("v1.0.0")}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

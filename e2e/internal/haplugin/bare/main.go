// Command bare is the example secrets engine served by the main that
// Vault's plugin documentation shows, with nothing of this library's
// serving: the HA test's baseline. -ldflags "-X main.variant=v2" makes a
// second build with another sha256.
package main

import (
	"log"
	"os"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"

	secrets "github.com/plugkit/vaultplugin/example/secrets"
)

// variant only makes two builds differ.
var variant = "v1"

func main() {
	apiClientMeta := &api.PluginAPIClientMeta{}
	flags := apiClientMeta.FlagSet()
	flags.Parse(os.Args[1:])

	tlsConfig := apiClientMeta.GetTLSConfig()
	tlsProviderFunc := api.VaultPluginTLSProvider(tlsConfig)

	err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: secrets.Factory,
		TLSProviderFunc:    tlsProviderFunc,
	})
	if err != nil {
		log.Println(variant, err)
		os.Exit(1)
	}
}

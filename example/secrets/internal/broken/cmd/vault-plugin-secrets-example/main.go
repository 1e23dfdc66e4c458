// Command vault-plugin-secrets-example is a v2 build that cannot start,
// for the upgrade test: its release script was to stamp the version with
// -ldflags "-X main.version=v2.0.0" and passed the variable unexpanded.
// serve.Run refuses the version before the handshake and says why on
// stdout, which Vault quotes ("Unrecognized remote plugin message: …").
package main

import (
	"github.com/plugkit/vaultplugin/example/secrets"
	"github.com/plugkit/vaultplugin/serve"
)

var version = "${VERSION}"

func main() { serve.Run(secrets.Factory, serve.WithVersion(version)) }

// Command ours is the example secrets engine served by this library, with
// a version set at link time (-ldflags "-X main.version=v2.0.0"), so the
// HA test can register two builds of it as two versions.
package main

import (
	secrets "github.com/plugkit/vaultplugin/example/secrets"
	"github.com/plugkit/vaultplugin/serve"
)

var version = "v1.0.0"

func main() { serve.Run(secrets.Factory, serve.WithVersion(version)) }

// Command vault-plugin-secrets-example is the v1.0.0 release of the
// example secrets engine's plugin binary, for the upgrade test. Its
// version is set in main because a test builds it from this tree, which
// stamps no version into the build info; the release itself got v1.0.0
// from `go install …@v1.0.0`, as v2 gets its own.
package main

import (
	"github.com/plugkit/vaultplugin/example/secrets/internal/v1"
	"github.com/plugkit/vaultplugin/serve"
)

func main() { serve.Run(v1.Factory, serve.WithVersion("v1.0.0")) }

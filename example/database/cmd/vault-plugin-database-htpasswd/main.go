// Command vault-plugin-database-htpasswd is the example htpasswd database
// plugin as a Vault plugin binary.
package main

import (
	htpasswd "github.com/plugkit/vaultplugin/example/database"
	"github.com/plugkit/vaultplugin/serve"
)

func main() { serve.RunDatabase(htpasswd.New) }

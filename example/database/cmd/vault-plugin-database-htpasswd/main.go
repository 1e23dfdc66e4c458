// Command vault-plugin-database-htpasswd is the example htpasswd database
// plugin as a Vault plugin binary.
package main

import (
	"github.com/plugkit/vaultplugin/dbserve"
	htpasswd "github.com/plugkit/vaultplugin/example/database"
)

func main() { dbserve.Run(htpasswd.New) }

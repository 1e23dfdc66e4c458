// Package vaultplugin makes serving a HashiCorp Vault plugin a one-line main,
// correct by default:
//
//	package main
//
//	import (
//		"github.com/plugkit/vaultplugin/serve"
//		"example.com/myplugin/backend"
//	)
//
//	func main() { serve.Run(backend.Factory) }
//
// A database plugin's main is serve.RunDatabase(mydb.New), with the SDK's
// own dbplugin.Factory.
//
// The packages:
//
//   - serve: Run and Serve, the options, the command line a person sees.
//   - serve/servetest: starts a plugin binary exactly as Vault does, for go test.
//   - compat: what the host told the plugin through its environment, and
//     how to serve on that host.
//   - logging: the plugin's logger, JSON on the stderr Vault reads.
//
// # Exit codes
//
//	0  served until the host stopped the plugin, or answered -version, -describe or -help
//	1  a startup or serving failure, or the binary was run by a person rather than Vault
//	2  a bad flag or an invalid option
//
// # Environment
//
// Operators set these with `vault plugin register -env NAME=VALUE`:
//
//	VAULTPLUGIN_LOG_LEVEL  trace, debug, info, warn, error or off (default trace: Vault filters by its own level)
package vaultplugin

// Package dbserve runs a Vault database plugin (dbplugin v5): its whole
// main is one line, with the SDK's own dbplugin.Factory, so an existing
// plugin's New drops in unchanged.
//
//	func main() { dbserve.Run(mydb.New) }
//
// It behaves as package serve does for secrets engines and auth methods:
// the same flags, logger, version reporting, exit codes (serve.ExitCode)
// and stopping with the host. In addition:
//
//   - the factory is called once before serving, so a factory that fails,
//     panics or returns something that is not a dbplugin.Database is a
//     startup failure with its cause, where dbplugin.Serve prints the error
//     on stdout and then panics;
//   - a panic in a call fails that call, not the process and every
//     connection it serves;
//   - errors never carry the passwords of the request that caused them, nor
//     the connection's secrets: they would reach Vault's API response and
//     its audit log verbatim.
//
// Protocol 6 (multiplexed: one process for every connection) is offered
// with protocol 5 unless WithoutMultiplexing is given. Database plugins
// always use AutoMTLS: there is no legacy TLS path, and so no unwrap
// timeout to set.
//
// The package is apart from serve so that a secrets engine's binary does
// not link the database SDK, nor a database plugin's the backend SDK.
package dbserve

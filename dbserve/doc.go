// Package dbserve runs a Vault database plugin (dbplugin v5): its whole
// main is one line, with the SDK's own dbplugin.Factory, so an existing
// plugin's New drops in unchanged.
//
//	func main() { dbserve.Run(mydb.New) }
//
// Run parses Vault's plugin flags plus -version, -describe and -help;
// builds the logger first, so its JSON records reach Vault; reports the
// plugin's version to Vault; stops by itself, closing every connection,
// on SIGTERM or when its host dies; and exits with a code that says what
// happened ([vaultplugin.ExitCode]). Every startup failure is reported as
// an error record on stderr, which Vault logs at ERROR, and one line on
// stdout, which Vault's API error shows. In addition:
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
// Secrets engines and auth methods are served by another package of this
// module, so that a secrets engine's binary does not link the database
// SDK, nor a database plugin's the backend SDK. The operator's variables
// (log level, debugger wait, metrics endpoint) are the module's,
// [github.com/plugkit/vaultplugin] lists them, and -help prints them.
package dbserve

// Package serve runs a Vault plugin: the whole main of a secrets engine or
// auth method is one line.
//
//	func main() { serve.Run(backend.Factory) }
//
// Run parses Vault's plugin flags (-ca-cert, -ca-path, -client-cert,
// -client-key, -tls-server-name, -tls-skip-verify) plus -version, -describe
// and -help; builds the logger first, so its JSON records reach Vault;
// unwraps the TLS certificate on the legacy path under a deadline; serves
// multiplexed unless WithoutMultiplexing is given; reports the plugin's
// version to Vault; and exits with a code that says what happened:
//
//	0  served until the host stopped the plugin, or answered -version, -describe or -help
//	1  a startup or serving failure, or the binary was run by a person rather than Vault
//	2  a bad flag or an invalid option
//
// Every startup failure is reported three ways: an error record with a hint
// on stderr (Vault logs it at ERROR under the plugin's name), one plain line
// on stdout (Vault's API error shows it as "Unrecognized remote plugin
// message: …"), and the exit code.
//
// The plugin stops by itself, calling each backend's Cleanup, when it
// receives SIGTERM or when its host dies (Vault killed with SIGKILL), so it
// never outlives Vault. SIGINT is ignored, as go-plugin does, because a
// terminal sends it to Vault's whole process group.
//
// Database plugins (dbplugin v5) are served the same way by RunDatabase,
// which takes the SDK's own dbplugin.Factory:
//
//	func main() { serve.RunDatabase(mydb.New) }
//
// Operators can ask a running plugin for more through its environment:
// VAULTPLUGIN_LOG_LEVEL sets the log level, VAULTPLUGIN_DEBUG_WAIT makes it
// wait for a debugger before serving, and VAULTPLUGIN_HTTP_ADDR serves
// profiles and Prometheus metrics on a loopback address. The module's
// package documentation lists their values and bounds.
//
// Serve and ServeDatabase do the same work and return an error instead of
// exiting, for tests and custom mains; ExitCode maps that error to Run's
// exit code.
package serve

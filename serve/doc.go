// Package serve runs a Vault secrets engine or auth method plugin: its
// whole main is one line.
//
//	func main() { serve.Run(backend.Factory) }
//
// Run parses Vault's plugin flags (-ca-cert, -ca-path, -client-cert,
// -client-key, -tls-server-name, -tls-skip-verify) plus -version, -describe
// and -help; builds the logger first, so its JSON records reach Vault;
// unwraps the TLS certificate on the legacy path under a deadline; serves
// multiplexed unless WithoutMultiplexing is given; reports the plugin's
// version to Vault; and exits with a code that says what happened
// ([vaultplugin.ExitCode]).
//
// Every startup failure is reported three ways: an error record with a hint
// on stderr (Vault logs it at ERROR under the plugin's name), one plain line
// on stdout (Vault's API error shows it as "Unrecognized remote plugin
// message: …"), and the exit code.
//
// A panic in a backend's request handler, existence check or periodic
// function fails that request, not the process and every mount it serves:
// the caller gets an error (Vault answers 500) saying "internal error: the
// plugin's backend panicked handling OP PATH", without the panic's value,
// which could hold a secret, and the value and the stack are logged at
// ERROR ("backend panicked handling a request"). A factory that panics
// fails that mount's setup the same way.
//
// The plugin stops by itself, calling each backend's Cleanup, when it
// receives SIGTERM or when its host dies (Vault killed with SIGKILL), so it
// never outlives Vault. SIGINT is ignored, as go-plugin does, because a
// terminal sends it to Vault's whole process group. Once a stop begins no
// new request reaches a backend: it is held until the requests in flight
// have finished and every backend's Cleanup has run, then refused with
// the error Vault answers by starting a new plugin process and sending
// the request there, so Vault's clients see no failure. The host's own
// kill (an unmount, a reload, Vault stopping) is made as graceful.
//
// Database plugins are served by package dbserve, which takes the SDK's
// own dbplugin.Factory, so that a backend plugin's binary links nothing of
// the database SDK:
//
//	func main() { dbserve.Run(mydb.New) }
//
// Operators switch on more through the plugin's environment (the log
// level, a wait for a debugger, a loopback endpoint with profiles and
// Prometheus metrics); the module's documentation,
// [github.com/plugkit/vaultplugin], lists the variables, and -help prints
// them.
//
// # -describe
//
// -describe prints one JSON object, for tools and registration scripts.
// Its fields are stable: fields may be added, but none is removed or
// changes meaning while "schema" stays 1.
//
//	schema          1
//	name            the binary's name
//	version         the version reported to Vault ("" when the build has none)
//	version_source  "WithVersion", "vaultplugin release", "main module", "factory's module" or "none"
//	type            "secret", "auth", "database", or "" when the factory could not tell in time
//	sha256          the binary's sha256, as vault plugin register -sha256 wants it (left out when the binary cannot be read)
//	path            the binary's path (left out when the OS cannot say)
//	sdk_version     the vault/sdk module version linked (left out for a build without module information)
//	go_version      the Go release that built it
//	multiplexing    whether it offers one process for many mounts
//
// Serve does the same work as Run and returns an error instead of
// exiting, for tests and custom mains; [vaultplugin.ExitCode] maps that
// error to Run's exit code.
package serve

// Package proctext names the phrases that one process of this module
// writes and another reads. A plugin served by serve.Run or dbserve.Run
// writes them; `vaultplugin check`, which runs the plugin as a process of
// its own, looks for them in what the plugin printed or in an error that
// crossed the plugin's gRPC boundary as text. An error value cannot cross
// a process boundary, so the phrase itself is the contract: both sides
// name it from here, and rewording it here changes both at once.
package proctext

// ByHand is in the text a plugin prints when a person runs it without a
// host (no handshake cookie or the wrong one): Vault starts the plugin,
// and running it by hand serves nothing. check takes a plugin that
// printed it for one that refused the cookie it was started with, as it
// takes go-plugin's own text for a bare SDK plugin.
const ByHand = "running it by hand serves nothing"

// FactoryPanicked is in the error a new mount or connection returns when
// the plugin's factory panicked and the panic was recovered (the stack is
// in the plugin's error log). check tells a panicking factory from a
// failing one by it.
const FactoryPanicked = "factory panicked"

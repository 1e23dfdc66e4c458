// Package jwttest holds servetest tests for a plugin this project did not
// write: HashiCorp's JWT/OIDC auth method (vault-plugin-auth-jwt), built
// from its own main, unchanged, at a released version. They are the tests
// its author could write with servetest, and they prove that servetest
// drives any plugin binary, not only ours: config, roles, and logins whose
// JWT the plugin checks against a JWKS it fetches itself from a server on
// 127.0.0.1, so every login is a real round trip out of the plugin process.
//
//	cd e2e && go test ./internal/jwttest
//
// The tests build the plugin with `go install …@VERSION` (the module's own
// go.mod and go.sum, nothing of this repository's) into
// vaultplugin-jwttest/VERSION under the user cache directory, once; when
// the Go module proxy cannot be reached they skip with the reason.
// JWTTEST_PLUGIN_BIN names a binary to use instead. With servetest's real
// host variable set the same tests run inside that host; e2e's
// TestThirdPartyServetest runs them in both modes on every host.
//
// The package has no code of its own: everything is in its tests.
package jwttest

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
// A database plugin's main is dbserve.Run(mydb.New), with the SDK's own
// dbplugin.Factory.
//
// The packages:
//
//   - serve: Run and Serve for secrets engines and auth methods, the
//     options, the command line a person sees.
//   - dbserve: the same for database plugins, in a package of its own so
//     that neither kind of binary links the other's SDK.
//   - serve/servetest: starts a plugin binary exactly as Vault does, for go test.
//   - compat: what the host told the plugin through its environment: Vault
//     or OpenBao, and which version.
//   - logging: the plugin's logger, JSON on the stderr Vault reads.
//
// The module requires Go 1.24, github.com/hashicorp/vault/sdk v0.6.2,
// github.com/hashicorp/vault/api v1.5.0 and github.com/hashicorp/go-plugin
// v1.6.0 or newer, the oldest it is tested with, so that importing it does
// not raise a plugin's own; README.md says what sets each.
//
// # Exit codes
//
//	0  served until the host stopped the plugin, or answered -version, -describe or -help
//	1  a startup or serving failure, or the binary was run by a person rather than Vault
//	2  a bad flag or an invalid option
//
// # Environment
//
// This is the one reference for the variables; -help prints a line for
// each. Operators set these with `vault plugin register -env NAME=VALUE`. The
// debugger wait and the endpoint are off when unset and then cost nothing;
// a malformed value of either is a startup failure (exit 1) naming the
// variable, while a malformed log level is logged as a warning and ignored.
//
//	VAULTPLUGIN_LOG_LEVEL   trace, debug, info, warn, error or off (default trace: Vault filters by its own level)
//	VAULTPLUGIN_DEBUG_WAIT  before serving, wait for a debugger: a duration (at most 50s) or true (30s)
//	VAULTPLUGIN_HTTP_ADDR   serve profiles and metrics on this loopback HOST:PORT; port 0 picks a free one
//
// VAULTPLUGIN_DEBUG_WAIT makes the plugin log its pid and the command to
// paste (`dlv attach PID`) at INFO, then wait before its handshake, so that
// breakpoints in the factory and in Setup are hit. The wait ends as soon as
// a debugger attaches (read from TracerPid in /proc/self/status; other
// systems cannot tell, so the plugin waits the whole time there) or when it
// is over, and it never starts when the variable is unset. Vault gives a
// plugin one minute to complete its handshake (go-plugin's default start
// timeout, which Vault does not change), so a longer wait is cut to 50
// seconds with a warning, leaving ten for setting breakpoints and the
// handshake. Build the plugin with -gcflags=all='-N -l' for a faithful
// debugging session.
//
// VAULTPLUGIN_HTTP_ADDR serves, on a loopback address only (anything else,
// including 0.0.0.0 and a name that resolves elsewhere, is refused), the
// runtime profiles under /debug/pprof/ (go tool pprof
// http://ADDR/debug/pprof/heap) and metrics in the Prometheus text format
// under /metrics: requests, errors and latency (a histogram) by operation
// and mount point, requests in flight, mounts (or database connections)
// served by the process, and the Go runtime and process metrics (go_*,
// process_*). The operation and mount pairs recorded apart are bounded at
// 1024; later ones are counted together under operation and mount "_other".
// The bound address is logged at INFO.
// Vault starts one process per mount for a plugin it does not multiplex,
// and those cannot share a fixed port: use port 0 then.
//
// An author who wants the leanest binary builds with
// -tags vaultplugin_noendpoint, which leaves the endpoint's HTTP server and
// profile handlers out (about 0.6 MB of a 25 MB stripped plugin; go run
// ./bench measures it). VAULTPLUGIN_HTTP_ADDR then fails the start with a
// message naming the tag, rather than being ignored.
package vaultplugin

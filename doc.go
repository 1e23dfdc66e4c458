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
// serve.Run and dbserve.Run exit with [ExitCode] of what their Serve
// returns: [ExitOK], [ExitFailure] or [ExitUsage]. This package holds
// what both kinds of plugin share, so that neither package imports the
// other: the exit codes, the errors they are decided by ([ErrUsage],
// [ErrNoHost]) and the default timeouts.
//
// # Environment
//
// This is the one reference for the variables; -help prints a line for
// each. Operators set these with `vault plugin register -env NAME=VALUE`
// (OpenBao 2.6's `bao plugin register` has no -env: write the catalog entry,
// `bao write sys/plugins/catalog/TYPE/NAME … env=NAME=VALUE`). The
// debugger wait and the endpoint are off when unset and then cost nothing;
// a malformed value of either is a startup failure (exit 1) naming the
// variable, while a malformed log level is logged as a warning and ignored.
//
//	VAULTPLUGIN_LOG_LEVEL   trace, debug, info, warn, error or off (default trace: Vault filters by its own level)
//	VAULTPLUGIN_DEBUG_WAIT  before serving, wait for a debugger: a duration (at most 50s) or true (30s)
//	VAULTPLUGIN_HTTP_ADDR   serve profiles and metrics on this loopback HOST:PORT (port 0 picks a free one), or on a unix socket: unix:/PATH, or unix:NAME in a container
//
// One more variable is read by tests, not by plugins:
// VAULTPLUGIN_TEST_HOST, the path of a vault or bao binary, runs servetest's
// Start, New, StartDatabase and NewDatabase on that real host instead of
// the emulation (servetest.HostEnv).
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
// or one an operator names in the host's VAULT_PLUGIN_MULTIPLEXING_OPT_OUT
// (a comma-separated list of catalog names, read by Vault and, as
// BAO_PLUGIN_MULTIPLEXING_OPT_OUT or that name, by OpenBao), and those
// cannot share a fixed port: use port 0 then.
//
// VAULTPLUGIN_HTTP_ADDR also takes a unix socket, unix:/PATH (or just
// /PATH), which only the plugin's user (and root) can use: it is created
// with mode 0600, owned by the plugin's user, with no moment at which it
// is open wider (it is bound in a private directory, then linked into
// place), and removed when the plugin stops; a stale socket of the same
// user, left by a plugin that was killed, is replaced. The start fails,
// naming the variable, when another user or group could replace the
// socket: when its directory can be written by its group or by others,
// or a directory above it can without the sticky bit, or either belongs
// to another user than the plugin's or root (so /tmp/ops.sock is refused
// and /tmp/mine/ops.sock, in a directory made with mkdir -m 0700, is not);
// and when anything but a stale socket of the plugin's user is at the
// path, including a live one: a plugin Vault does not multiplex needs a
// path per process, or port 0. The log record gives the command to fetch
// with (curl --unix-socket PATH http://localhost/metrics; go tool pprof
// reads only the files curl saves). Windows has unix sockets, but a
// socket file's mode does not keep other users out there, so a socket
// path fails the start on Windows. SECURITY.md says when to use which.
//
// In a container (Vault 1.15 and later, vault plugin register
// -oci_image), the plugin's loopback is the container's own, which
// nothing on the host reaches. Serve the endpoint on a socket in the
// directory Vault shares with the container for the plugin's sockets
// instead: unix:NAME is NAME in the directory go-plugin names in
// PLUGIN_UNIX_SOCKET_DIR (/tmp/go-plugin-container inside the container,
// bind-mounted from a plugin-dir* directory in Vault's plugin_tmpdir,
// which Vault removes with the container). That directory is Vault's
// (mode 0770 for Vault's group), so the directory checks do not apply to
// it. The socket belongs to the container's user: on the host, connect as
// root or as the user that uid maps to. The debugger wait runs as
// elsewhere, with two differences: the logged pid is the container's,
// not the host's (docker top shows the host's), and the kernel shows a
// tracer outside the container's pid namespace to the plugin as none, so
// a debugger attached from the host does not end the wait early: the
// plugin waits the whole time. Under gVisor (runsc, Vault's default
// runtime) the plugin is not a host process at all, and a debugger must
// run inside the sandbox. servetest.WithContainerEnv tests a plugin in
// the container's environment; these notes on a real container follow
// from how containers work and were not tried in one.
//
// An author who wants the leanest binary builds with
// -tags vaultplugin_noendpoint, which leaves the endpoint's HTTP server and
// profile handlers out (about 0.6 MB of a 25 MB stripped plugin; go run
// ./bench measures it). VAULTPLUGIN_HTTP_ADDR then fails the start with a
// message naming the tag, rather than being ignored.
package vaultplugin

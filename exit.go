package vaultplugin

import (
	"errors"
	"time"
)

// ErrUsage is wrapped by every error a plugin author or operator causes
// with the command line or the options, from serve.Serve and
// dbserve.Serve alike: Run exits ExitUsage for it.
var ErrUsage = errors.New("usage error")

// ErrNoHost is returned when no host started the process: the handshake
// cookie is missing because a person ran the binary. Run exits
// ExitFailure for it, after printing how to register the plugin.
var ErrNoHost = errors.New("not started by Vault: this binary is a Vault plugin")

// Exit codes of serve.Run and dbserve.Run, as ExitCode maps them. A
// supervisor or a script can tell a broken plugin (1) from a broken
// registration or main (2) without reading the log.
const (
	// ExitOK means the plugin served until the host stopped it, or answered -version, -describe or -help.
	ExitOK = 0
	// ExitFailure means a startup or serving failure, or the binary was run by a person rather than a host.
	ExitFailure = 1
	// ExitUsage means a bad flag or an invalid option.
	ExitUsage = 2
)

// ExitCode maps an error returned by serve.Serve or dbserve.Serve to the
// exit code Run uses: ExitOK for nil, ExitUsage for an error wrapping
// ErrUsage, ExitFailure for any other. A custom main ends with
//
//	os.Exit(vaultplugin.ExitCode(serve.Serve(ctx, factory)))
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// DefaultShutdownTimeout bounds a plugin's graceful stop: asked to stop
// (SIGTERM, its host gone, the host's kill on unmount or reload, or
// Serve's context done), it refuses new requests, waits for those in
// flight and then for every backend's Cleanup (or database's Close), and
// stops serving when they are done or the timeout is over. The host's
// kill waits for that. A backend plugin that refused requests also waits,
// within the same timeout, for the host to replace it, since Vault
// answers the refusal by starting a new process and sending the request
// there. Five seconds is well under the ten most supervisors wait between
// SIGTERM and SIGKILL, and holds Vault's plugin catalog (which waits on
// the kill) only briefly.
const DefaultShutdownTimeout = 5 * time.Second

// DefaultUnwrapTimeout bounds a secrets engine's or auth method's call to
// the host's sys/wrapping/unwrap on the legacy TLS path (database plugins
// have no such path). The Vault API client's own defaults (a 60 s timeout,
// two retries) add up to more than the host's one-minute start timeout,
// so an unreachable api_addr would surface as a bare time-out on the host
// instead of the plugin's error. Ten seconds is ample for one loopback or
// LAN call.
const DefaultUnwrapTimeout = 10 * time.Second

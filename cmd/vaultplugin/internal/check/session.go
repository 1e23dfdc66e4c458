package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/internal/proctext"
	"github.com/plugkit/vaultplugin/serve/servetest"
)

// session is the plugin started through servetest exactly as Vault starts
// it (AutoMTLS, protocol 5 for a backend, 5 and 6 for a database; for a
// backend whose AutoMTLS start fails, Vault's fallback: the legacy TLS
// path, protocol 4), and what its mounts, or connections, answered.
type session struct {
	kind kind
	bin  string

	// legacy is set when the session runs on the legacy TLS path, and
	// autoMTLS is then why the AutoMTLS start failed.
	legacy   bool
	autoMTLS *startFailure
	// legacyErr is why the legacy path failed too, after the AutoMTLS
	// start (startErr) failed; nil when it was not tried.
	legacyErr error

	startErr  error
	proc      *servetest.Process // nil when the start failed
	plugin    *servetest.Plugin
	db        *servetest.Database
	handshake time.Duration

	// Set by explore.
	instErr     error  // the first mount (connection) failed
	typ         string // "secret", "auth", "database"; "" when unknown
	typDetail   string
	hostVersion string
	request     Result
	multiplex   bool
	muxErr      error // the second mount failed otherwise than by not multiplexing
	logs        []servetest.LogRecord
}

// startSession starts the plugin as Vault does and waits for its
// handshake. Vault 1.21 starts a backend with AutoMTLS and, when that
// fails, starts it again on the legacy TLS path (builtin/plugin's
// Factory: sdk/plugin's NewBackendWithVersion, protocols 3 and 4, a
// wrapping token); so does the session. autoMTLS, when not nil, is an
// AutoMTLS failure already seen (by the cookie probe): the session then
// goes to the legacy path at once.
func (h *host) startSession(ctx context.Context, k kind, autoMTLS *startFailure) *session {
	s := &session{kind: k, bin: h.Binary}
	if autoMTLS == nil {
		s.start(ctx, h.options())
		if s.startErr == nil || k.legacyOffer == "" {
			return s
		}
		f := newStartFailure(s.startErr)
		if f.TimedOut {
			// It would only run out of time once more.
			return s
		}
		autoMTLS = &f
	}
	l := &session{kind: k, bin: h.Binary, legacy: true, autoMTLS: autoMTLS}
	l.start(ctx, h.options(servetest.WithLegacyTLS()))
	if l.startErr == nil || s.startErr == nil {
		// On the legacy path, or the probe already saw the AutoMTLS
		// start fail: the legacy start's outcome is the session's.
		return l
	}
	s.legacyErr = l.startErr
	return s
}

// start starts the plugin through servetest with opts.
func (s *session) start(ctx context.Context, opts []servetest.Option) {
	ctx, cancel := context.WithTimeout(ctx, HandshakeBound)
	defer cancel()
	if s.kind.name == "database" {
		s.db, s.startErr = servetest.NewDatabase(ctx, s.bin, opts...)
		if s.startErr == nil {
			s.proc = s.db.Process
		}
	} else {
		s.plugin, s.startErr = servetest.New(ctx, s.bin, opts...)
		if s.startErr == nil {
			s.proc = s.plugin.Process
		}
	}
	if s.proc != nil {
		s.handshake = s.proc.HandshakeTime()
	}
}

// apiUpgradeFix is the fix for a plugin whose vault/api predates v1.8.0,
// the first release whose api.VaultPluginTLSProvider returns nil under
// AutoMTLS (v1.7.2 still unwraps a token the host never sent; see
// plugin_helpers.go in both).
const apiUpgradeFix = "upgrade github.com/hashicorp/vault/api to ≥ v1.8.0 (go get github.com/hashicorp/vault/api@latest): " +
	"from v1.8.0 api.VaultPluginTLSProvider steps aside under AutoMTLS; or serve with serve.Run, which needs no TLS provider"

func (s *session) handshakeResult() Result {
	switch {
	case s.startErr == nil && s.legacy:
		r := Result{ID: idHandshake, Status: Warn,
			Detail: fmt.Sprintf("serves, but only over the legacy TLS path (a wrapping token, protocol 4, one process per mount), "+
				"to which Vault falls back: under AutoMTLS %s; completed in %s, pid %d", s.autoMTLS.why(), s.handshake.Round(time.Millisecond), s.proc.PID())}
		switch {
		case s.autoMTLS.said(apiNoWrappingToken):
			r.Fix = apiUpgradeFix
		case strings.Contains(s.autoMTLS.Reason, goPluginIncompatible):
			r.Fix = "serve protocol 5, which AutoMTLS needs: upgrade github.com/hashicorp/vault/sdk to ≥ v0.5.4 and serve with plugin.ServeMultiplex, or use serve.Run"
		default:
			r.Fix = "make the AutoMTLS start work: Vault 1.12+ tries it first at every start and logs its failure before it falls back"
		}
		return r
	case s.startErr == nil:
		return Result{ID: idHandshake, Status: Pass,
			Detail: fmt.Sprintf("completed in %s with AutoMTLS (bound %s), pid %d", s.handshake.Round(time.Millisecond), HandshakeBound, s.proc.PID())}
	}
	f := newStartFailure(s.startErr)
	r := Result{ID: idHandshake, Status: Fail, Detail: f.why()}
	if s.legacy {
		r.Detail = fmt.Sprintf("%s on the legacy TLS path, to which Vault falls back; under AutoMTLS %s", f.why(), s.autoMTLS.why())
	} else if s.legacyErr != nil {
		why := newStartFailure(s.legacyErr).why()
		if why == f.why() {
			why = "the same"
		}
		r.Detail += "; on the legacy TLS path, Vault's fallback: " + why
	}
	switch {
	case f.Stdout != "":
		// A line on stdout where the handshake belonged: Vault's error
		// quotes it, and so does the report, word for word.
		r.Detail = "Vault refuses it: " + quote(f.Reason)
		r.Fix = "write nothing to stdout before serving, log to stderr (see stdout)"
	case f.said(apiNoWrappingToken), s.autoMTLS != nil && s.autoMTLS.said(apiNoWrappingToken):
		r.Fix = apiUpgradeFix
	case f.TimedOut:
		r.Fix = fmt.Sprintf("print the handshake within %s of starting: do slow set-up after serving, in the backend's InitializeFunc", HandshakeBound)
	case strings.Contains(f.Reason, goPluginIncompatible):
		r.Fix = "serve protocol " + s.kind.offer + " as Vault 1.12+ asks: upgrade github.com/hashicorp/vault/sdk and serve with ServeMultiplex, or use serve.Run"
	default:
		r.Fix = "fix the failure above: Vault fails the start with the same message"
	}
	return r
}

// startFailure is what a failed start through servetest showed, from
// servetest.StartError's fields, in a form that also crosses from
// HostCommand to the check as JSON.
type startFailure struct {
	// Reason is the first line of the failure as the host met it
	// (StartError.Err: go-plugin's error, or opening the binary), or of
	// the error itself when it is no StartError.
	Reason string `json:"reason"`
	// Stdout, Cause, Exited and Stderr are StartError's.
	Stdout string   `json:"stdout,omitempty"`
	Cause  string   `json:"cause,omitempty"`
	Exited bool     `json:"exited,omitempty"`
	Stderr []string `json:"stderr,omitempty"`
	// TimedOut is true when the start ran out of its time bound.
	TimedOut bool `json:"timed_out,omitempty"`
}

// newStartFailure reads err, an error from servetest.New or NewDatabase
// (or from a first mount or connection after it).
func newStartFailure(err error) startFailure {
	f := startFailure{Reason: firstLine(err.Error()), TimedOut: errors.Is(err, context.DeadlineExceeded)}
	if se := (*servetest.StartError)(nil); errors.As(err, &se) {
		if se.Err != nil {
			f.Reason = firstLine(se.Err.Error())
		}
		f.Stdout, f.Cause, f.Exited, f.Stderr = se.Stdout, se.Cause, se.Exited, se.Stderr
	}
	return f
}

// why is the one line that says why the start failed: the plugin's own
// cause; when it gave none and exited, the telling line of its stderr;
// otherwise the host's reason.
func (f startFailure) why() string {
	switch {
	case f.Cause != "":
		return f.Cause
	case f.Exited:
		if c := cause(nil, f.Stderr); c != "" {
			return "it exited: " + c
		}
		return "it exited without a word on stdout or stderr"
	}
	return f.Reason
}

// lineWith returns the first line the plugin or the host said that holds
// sub, trimmed, or "".
func (f startFailure) lineWith(sub string) string {
	for _, l := range append([]string{f.Cause, f.Reason}, f.Stderr...) {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// said reports whether the plugin or the host said sub.
func (f startFailure) said(sub string) bool { return f.lineWith(sub) != "" }

// explore makes the mounts (connections) Vault would and asks them what
// the other checks need; then it closes the session.
func (s *session) explore(ctx context.Context) {
	if s.kind.name == "database" {
		s.exploreDatabase(ctx)
	} else {
		s.exploreBackend(ctx)
	}
	_ = s.proc.Close()
	s.logs = s.proc.Logs()
}

func (s *session) exploreBackend(ctx context.Context) {
	m, err := bounded(ctx, func(ctx context.Context) (*servetest.Mount, error) { return s.plugin.NewMount(ctx, nil) })
	if err != nil {
		s.instErr = err
		return
	}
	switch t := m.Type(); t {
	case logical.TypeLogical:
		s.typ, s.typDetail = "secret", "a secrets engine (logical.TypeLogical)"
	case logical.TypeCredential:
		s.typ, s.typDetail = "auth", "an auth method (logical.TypeCredential)"
	default:
		s.typDetail = "Type() answered " + t.String()
	}
	if v, ok := m.Backend.(logical.PluginVersioner); ok {
		s.hostVersion = v.PluginVersion().Version
	}
	s.request = roundTrip(ctx, m.Backend, s.proc)
	_, err = bounded(ctx, func(ctx context.Context) (*servetest.Mount, error) { return s.plugin.NewMount(ctx, nil) })
	s.multiplex = err == nil
	if err != nil && !errors.Is(err, servetest.ErrNotMultiplexed) {
		s.muxErr = err
	}
}

func (s *session) exploreDatabase(ctx context.Context) {
	conn, err := bounded(ctx, s.db.NewConnection)
	if err != nil {
		s.instErr = err
		return
	}
	start := time.Now()
	dbType, err := conn.Type()
	if err != nil {
		s.instErr = fmt.Errorf("asking the database's Type: %w", err)
		return
	}
	s.typ, s.typDetail = "database", fmt.Sprintf("a database plugin (Type: %q)", dbType)
	s.request = Result{ID: idRequest, Status: Pass,
		Detail: fmt.Sprintf("Type on a fresh connection answered %q in %s", dbType, time.Since(start).Round(time.Millisecond))}
	if v, ok := any(conn).(logical.PluginVersioner); ok {
		s.hostVersion = v.PluginVersion().Version
	}
	_, err = bounded(ctx, s.db.NewConnection)
	s.multiplex = err == nil
	if err != nil && !errors.Is(err, servetest.ErrNotMultiplexed) {
		s.muxErr = err
	}
}

// bounded calls f with ctx bounded by RequestBound.
func bounded[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestBound)
	defer cancel()
	return f(ctx)
}

// instFailure describes a failed first mount (connection), with the fix.
func (s *session) instFailure() (detail, fix string) {
	what := "a mount's Setup"
	if s.kind.name == "database" {
		what = "a new connection"
	}
	detail = what + " failed: " + firstLine(s.instErr.Error())
	var raw []string
	for _, r := range s.logs {
		raw = append(raw, r.Raw)
	}
	if p := panicLine(raw); p != "" {
		return what + " crashed the plugin: " + quote(p),
			"fix the panic in the factory: its stack is on the plugin's stderr (serve.Run turns a factory panic into a failed mount instead of a crash)"
	}
	if strings.Contains(s.instErr.Error(), proctext.FactoryPanicked) {
		return detail, "fix the panic in the factory: its stack is in the plugin's error log"
	}
	return detail, "fix the factory's failure: every Vault mount of the plugin fails the same way"
}

// typeResult is the type check: the cookie it answered and the type its
// first mount reported.
func (s *session) typeResult() Result {
	cookie := fmt.Sprintf("answers the %s cookie %s", s.kind.name, s.kind.cookie.MagicCookieKey)
	switch {
	case s.instErr != nil:
		detail, fix := s.instFailure()
		return Result{ID: idType, Status: Fail, Detail: cookie + ", but " + detail, Fix: fix}
	case s.typ == "":
		return Result{ID: idType, Status: Fail, Detail: cookie + ", but " + s.typDetail,
			Fix: "set the backend's type: framework.Backend{BackendType: logical.TypeLogical} (or TypeCredential for an auth method)"}
	}
	return Result{ID: idType, Status: Pass, Detail: s.typDetail + ": " + cookie}
}

func (s *session) requestResult() Result {
	if s.instErr != nil {
		return Result{ID: idRequest, Status: Skip, Detail: "needs a mount (see type)"}
	}
	return s.request
}

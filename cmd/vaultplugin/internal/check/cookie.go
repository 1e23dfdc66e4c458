package check

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/plugkit/vaultplugin/internal/proctext"
)

// cookieProbe is what starting the plugin with each of Vault's handshake
// cookies showed, backend first, and then, when the backend cookie's
// AutoMTLS start failed, what Vault's fallback showed: the legacy TLS
// path.
type cookieProbe struct {
	kind  *kind // whose cookie it answered with a handshake; nil for neither
	tries []cookieTry
	// legacy is the start on the legacy TLS path; nil when none was made.
	// When it answered, it is also the last of tries.
	legacy *cookieTry
	// autoMTLS is the AutoMTLS start's failure when the plugin answered
	// only on the legacy path; nil otherwise.
	autoMTLS *startFailure
}

// cookieTry is one start with one cookie.
type cookieTry struct {
	kind      kind
	handshake handshakeLine
	ok        bool     // a handshake line came
	before    []string // stdout lines before it
	stderr    []string
	err       error // why no handshake came
}

// probeCookies starts the plugin raw with the backend cookie, then, if it
// does not answer, with the database cookie. When it took a cookie for its
// own but failed to start, it starts it once more as Vault then does
// (builtin/plugin's Factory, Vault 1.21): on the legacy TLS path, for a
// kind that has one. A start that ran out of time is not tried again:
// it would only run out of time once more.
func (h *host) probeCookies(ctx context.Context) cookieProbe {
	var probe cookieProbe
	for _, k := range kinds() {
		t := h.tryCookie(ctx, k)
		probe.tries = append(probe.tries, t)
		if t.ok {
			probe.kind = &k
			return probe
		}
		if ctx.Err() != nil {
			return probe
		}
	}
	t, ok := probe.failedStart()
	if !ok || t.kind.legacyOffer == "" || t.timedOut() {
		return probe
	}
	lt := h.onLegacyPath().tryCookie(ctx, t.kind)
	probe.legacy = &lt
	if lt.ok {
		f := t.failure()
		probe.autoMTLS = &f
		probe.kind = &lt.kind
		probe.tries = append(probe.tries, lt)
	}
	return probe
}

// took is the kind whose cookie the plugin took for its own: the one it
// answered, or the one under which it failed to start; nil when it
// refused both.
func (c cookieProbe) took() *kind {
	if c.kind != nil {
		return c.kind
	}
	if t, ok := c.failedStart(); ok {
		return &t.kind
	}
	return nil
}

func (h *host) tryCookie(ctx context.Context, k kind) cookieTry {
	t := cookieTry{kind: k}
	p, err := h.startRaw(k, h.offer(k))
	if err != nil {
		t.err = err
		return t
	}
	t.err = p.awaitHandshake(ctx, HandshakeBound)
	p.stop()
	t.ok = t.err == nil
	t.handshake = p.handshake
	t.before = p.stdoutBefore()
	t.stderr = p.stderr.Lines()
	return t
}

// answered is the try that got a handshake.
func (c cookieProbe) answered() cookieTry { return c.tries[len(c.tries)-1] }

func (c cookieProbe) stdoutResult() Result {
	if c.kind == nil {
		return Result{ID: idStdout, Status: Skip, Detail: "no handshake line under either cookie (see type)"}
	}
	t := c.answered()
	if len(t.before) == 0 {
		return Result{ID: idStdout, Status: Pass, Detail: "nothing before the handshake line " + shortHandshake(t.handshake)}
	}
	return Result{ID: idStdout, Status: Fail,
		Detail: fmt.Sprintf("%s before the handshake line, the first: %s", lines(len(t.before)), quote(t.before[0])),
		Fix:    "write nothing to stdout before serving, log to stderr: Vault fails the start with \"Unrecognized remote plugin message: <that line>\""}
}

// lines says "1 line", "2 lines".
func lines(n int) string {
	if n == 1 {
		return "1 line"
	}
	return fmt.Sprintf("%d lines", n)
}

// shortHandshake shows a handshake line without its certificate, and
// without the path of its Unix socket, which is the check's own.
func shortHandshake(hs handshakeLine) string {
	parts := strings.SplitN(hs.raw, "|", 6)
	if hs.network == "unix" {
		parts[3] = "<socket>"
	}
	if len(parts) == 6 {
		parts[5] = "<server certificate>"
	}
	return strings.Join(parts, "|")
}

// typeResult is the type check as far as the cookie tells: the session
// replaces it once a mount has answered Type.
func (c cookieProbe) typeResult() Result {
	if c.kind != nil {
		what := "a secrets engine or auth method"
		if c.kind.name == "database" {
			what = "a database plugin"
		}
		return Result{ID: idType, Status: Pass,
			Detail: fmt.Sprintf("%s: answers the %s cookie %s", what, c.kind.name, c.kind.cookie.MagicCookieKey)}
	}
	if t, ok := c.failedStart(); ok {
		r := Result{ID: idType, Status: Fail,
			Detail: fmt.Sprintf("answers the %s cookie %s, but %s", t.kind.name, t.kind.cookie.MagicCookieKey, t.why())}
		r.Fix = "fix the failure it printed: Vault fails the start with the same message"
		if len(t.before) > 0 {
			r.Fix = "fix the failure it printed: Vault's error shows it as \"Unrecognized remote plugin message: <that line>\""
		}
		if f := t.failure(); f.said(apiNoWrappingToken) {
			r.Fix = apiUpgradeFix
		}
		if lt := c.legacy; lt != nil {
			why := lt.why()
			if why == t.why() {
				why = "the same"
			}
			r.Detail += "; on the legacy TLS path, Vault's fallback, " + why
		}
		return r
	}
	var seen []string
	notPlugin, timedOut := 0, 0
	for _, t := range c.tries {
		why := t.why()
		if t.refused() {
			notPlugin++
		}
		if t.timedOut() {
			timedOut++
		}
		seen = append(seen, t.kind.cookie.MagicCookieKey+": "+why)
	}
	r := Result{ID: idType, Status: Fail, Detail: "answers neither of Vault's handshake cookies (" + strings.Join(seen, "; ") + ")"}
	switch {
	case notPlugin == len(c.tries):
		r.Fix = "serve with Vault's handshake cookie: sdk/plugin.ServeMultiplex, dbplugin.ServeMultiplex or serve.Run (go-plugin refused both of Vault's cookies)"
	case timedOut > 0:
		r.Fix = fmt.Sprintf("print the handshake within %s of starting: do slow set-up after serving, in the backend's InitializeFunc", HandshakeBound)
	default:
		r.Fix = "fix the failure it printed: Vault fails the start with the same message"
	}
	return r
}

// why is why the try got no handshake, with the line the plugin printed
// that best says so.
func (t cookieTry) why() string {
	why := t.err.Error()
	if line := cause(t.before, t.stderr); line != "" {
		why += ": " + quote(line)
	}
	return why
}

// timedOut reports whether the try ran out of time waiting for the
// handshake.
func (t cookieTry) timedOut() bool {
	nh := (*noHandshake)(nil)
	return errors.As(t.err, &nh) && nh.exit == ""
}

// failure is the try's failed start as the session reports one: the
// plugin's line on stdout as its cause, its stderr, and whether it exited
// or ran out of time.
func (t cookieTry) failure() startFailure {
	f := startFailure{Reason: firstLine(t.err.Error()), Stderr: t.stderr, TimedOut: t.timedOut()}
	if nh := (*noHandshake)(nil); errors.As(t.err, &nh) && nh.exit != "" {
		f.Exited = true
	}
	if len(t.before) > 0 {
		f.Stdout, f.Cause = t.before[0], t.before[0]
	}
	return f
}

// refused reports whether the plugin refused the try's cookie as not its
// own: go-plugin's text for a missing cookie, or serve.Run's for a person
// (which names the phrase in internal/proctext: the plugin is another
// process, so its words are all the check has).
func (t cookieTry) refused() bool {
	text := strings.Join(append(append([]string(nil), t.before...), t.stderr...), "\n")
	return strings.Contains(text, goPluginNotAPlugin) || strings.Contains(text, proctext.ByHand)
}

// failedStart returns the try under which the plugin took the cookie for
// its own but failed before its handshake: the one where it wrote a line
// on stdout, which only a host reads (serve.Run's cause line), or else
// the only one it did not refuse.
func (c cookieProbe) failedStart() (cookieTry, bool) {
	for _, t := range c.tries {
		if len(t.before) > 0 {
			return t, true
		}
	}
	var took []cookieTry
	for _, t := range c.tries {
		if !t.refused() {
			took = append(took, t)
		}
	}
	if len(took) == 1 {
		return took[0], true
	}
	return cookieTry{}, false
}

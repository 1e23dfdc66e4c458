package servetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotMultiplexed is wrapped by the error of NewMount and NewConnection
// (and so by the failure of Mount and Connect) when the plugin already
// serves one instance and does not multiplex: Vault would start another
// process for the new mount or connection, so a test starts another
// Plugin or Database. Test for it with errors.Is.
var ErrNotMultiplexed = errors.New("servetest: the plugin does not multiplex")

// StartError is the error of a plugin that did not start: New and
// NewDatabase return one (and Start and StartDatabase fail their test with
// its message) when the binary could not be run, the plugin gave no
// handshake, or it did not answer the host's first question, whether it
// multiplexes. Invalid options are another error, returned before anything
// starts. Its fields hold what a host sees of the failure, so that a test
// or a tool decides by them (errors.As) and not by the message's words,
// which may change.
type StartError struct {
	// Binary is the path of the plugin binary, as given to New.
	Binary string

	// Stdout is the line the plugin printed on stdout where its handshake
	// belonged, trimmed, or "" if it printed none. Vault's API error
	// quotes it ("Unrecognized remote plugin message: " and the line), so
	// it is where a plugin tells the operator why it cannot start, as
	// serve.Run does.
	Stdout string

	// Cause is the plugin's own reason: Stdout if it printed one, or else
	// the message of the last ERROR record it wrote to stderr; "" when it
	// gave none.
	Cause string

	// Exited reports whether the plugin ended, or closed its stdout,
	// without printing any line where its handshake belonged: it did not
	// run into a time limit or a protocol it does not speak, it stopped.
	// Stderr then usually says why.
	Exited bool

	// Stderr holds the plugin's last lines on stderr (at most five), as
	// written; Process.Logs would have held them all.
	Stderr []string

	// Err is the failure as the host met it: go-plugin's error, an error
	// opening the binary, or the plugin's failure to answer whether it
	// multiplexes. When ctx had ended by the time the start failed (its
	// deadline bounds the handshake), errors.Is(Err, ctx.Err()) holds,
	// whatever go-plugin's words for it. Unwrap returns Err.
	Err error
}

// stderrTail is how many of the plugin's last stderr lines a StartError
// keeps: enough for a Go panic's first lines or a few log records, few
// enough for a test's failure message.
const stderrTail = 5

// Error gives the failure one fact a line, the plugin's own cause first:
//
//	servetest: starting BIN: <the plugin's cause>
//	go-plugin: <the first line of go-plugin's error>
//	plugin stderr:
//	  <its last lines>
//
// go-plugin's generic explanation after its first line ("This usually
// means…": architecture, libraries, permissions) is left out; the rest of
// Err is in Err. An error that did not come from go-plugin is shown whole,
// after "servetest: starting BIN: ".
func (e *StartError) Error() string {
	var b strings.Builder
	b.WriteString("servetest: starting " + e.Binary + ": ")
	var gp *goPluginError
	switch {
	case errors.As(e.Err, &gp):
		first, _, _ := strings.Cut(gp.err.Error(), "\n")
		if e.Cause != "" {
			b.WriteString(e.Cause + "\ngo-plugin: ")
		}
		b.WriteString(first)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("unknown error")
	}
	if len(e.Stderr) > 0 {
		b.WriteString("\nplugin stderr:\n  " + strings.Join(e.Stderr, "\n  "))
	}
	return b.String()
}

// Unwrap returns Err.
func (e *StartError) Unwrap() error { return e.Err }

// goPluginError marks an error from go-plugin's start of the process, so
// that StartError can tell go-plugin's words from the plugin's.
type goPluginError struct{ err error }

func (e *goPluginError) Error() string { return e.err.Error() }
func (e *goPluginError) Unwrap() error { return e.err }

// ctxError is a failure that happened once ctx had ended: go-plugin's
// handshake takes a timeout, not a context, so its error ("timeout while
// waiting for plugin to start") does not say that ctx ended, and neither
// does a gRPC status. Its text is err's; errors.Is finds both.
type ctxError struct{ err, ctx error }

func (e *ctxError) Error() string   { return e.err.Error() }
func (e *ctxError) Unwrap() []error { return []error{e.err, e.ctx} }

// newStartError makes the StartError of a failed start of bin: err is why,
// logs the plugin's stderr, read to the end. ctx is the start's context.
func newStartError(ctx context.Context, bin string, err error, logs *lineLog, exited bool) *StartError {
	e := &StartError{Binary: bin, Err: withContext(ctx, err), Stderr: logs.last(stderrTail), Exited: exited}
	var gp *goPluginError
	if errors.As(err, &gp) {
		first, _, _ := strings.Cut(gp.err.Error(), "\n")
		if line, ok := strings.CutPrefix(first, goPluginUnrecognized); ok {
			// go-plugin's read of stdout ended without a line: the
			// process closed it, which in practice is its end.
			e.Stdout = strings.TrimSpace(line)
			e.Exited = e.Exited || e.Stdout == ""
		}
	}
	e.Cause = e.Stdout
	if e.Cause == "" {
		e.Cause = logs.lastError()
	}
	return e
}

// goPluginUnrecognized starts go-plugin's error for a line on the
// plugin's stdout that is not a handshake (go-plugin's Client.Start),
// followed by the line; Vault's API error shows it the same way.
const goPluginUnrecognized = "Unrecognized remote plugin message: "

// withContext marks err as having happened after ctx ended, if it did:
// ctx is done, or its deadline has passed (go-plugin's timeout, set to the
// time until the deadline, may fire just before ctx's own timer).
func withContext(ctx context.Context, err error) error {
	ctxErr := ctx.Err()
	if d, ok := ctx.Deadline(); ctxErr == nil && ok && !time.Now().Before(d) {
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr == nil || errors.Is(err, ctxErr) {
		return err
	}
	return &ctxError{err: err, ctx: ctxErr}
}

// notMultiplexed is ErrNotMultiplexed for a new what ("mount" or
// "connection") of a process that kind ("Plugin" or "Database") runs.
func notMultiplexed(what, kind string) error {
	return fmt.Errorf("%w: Vault starts one process per %s, so start another %s", ErrNotMultiplexed, what, kind)
}

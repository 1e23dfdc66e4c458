//go:build !windows

package check

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// checkSignals starts two plugins raw, as Vault does, and after each one's
// handshake sends SIGINT to the first and SIGTERM to the second. SIGINT
// must not end it: a Ctrl-C in the terminal of a Vault started by hand
// reaches the whole process group, its plugins too, and Vault stops them
// itself. SIGTERM must end it with exit 0 within SIGTERMBound: a
// supervisor (systemd, a container runtime) stops everything in Vault's
// group with it, and exit 0 tells it the plugin stopped cleanly.
func (h *host) checkSignals(ctx context.Context, k kind) []Result {
	results := make(chan Result, 2)
	go func() { results <- h.checkSIGINT(ctx, k) }()
	go func() { results <- h.checkSIGTERM(ctx, k) }()
	return []Result{<-results, <-results}
}

// How long the SIGINT check lets a plugin run after its handshake before
// it sends SIGINT: first sigintSettle, then, if SIGINT ended it,
// sigintSettleAgain on a second start. go-plugin's Serve prints the
// handshake first and only then catches SIGINT (signal.Notify), so a
// SIGINT sent at once may land in between and end a plugin that a Ctrl-C
// would not end a moment later; on a busy machine that moment grows. A
// plugin that SIGINT ends after the longer wait too, SIGINT really ends.
const (
	sigintSettle      = 100 * time.Millisecond
	sigintSettleAgain = time.Second
)

func (h *host) checkSIGINT(ctx context.Context, k kind) Result {
	var r Result
	for _, settle := range []time.Duration{sigintSettle, sigintSettleAgain} {
		if r = h.trySIGINT(ctx, k, settle); r.Status != Fail {
			return r
		}
	}
	return r
}

// trySIGINT starts the plugin raw and sends it SIGINT settle after its
// handshake.
func (h *host) trySIGINT(ctx context.Context, k kind, settle time.Duration) Result {
	p, err := h.startRaw(k, h.offer(k))
	if err != nil {
		return Result{ID: idSIGINT, Status: Skip, Detail: err.Error()}
	}
	defer p.stop()
	if err := p.awaitHandshake(ctx, HandshakeBound); err != nil {
		return Result{ID: idSIGINT, Status: Skip, Detail: "no handshake: " + err.Error()}
	}
	if p.waitExit(ctx, settle) {
		return Result{ID: idSIGINT, Status: Skip, Detail: "it exited on its own after its handshake (" + p.exitStatus() + ")"}
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		return Result{ID: idSIGINT, Status: Skip, Detail: fmt.Sprintf("sending SIGINT: %v", err)}
	}
	if p.waitExit(ctx, SIGINTWait) {
		return Result{ID: idSIGINT, Status: Fail, Detail: "SIGINT ended it (" + p.exitStatus() + "): a Ctrl-C meant for Vault stops it before Vault calls its Cleanup",
			Fix: "ignore SIGINT: go-plugin's Serve does, so a bare SDK main must not signal.Notify it to exit; serve.Run ignores it too"}
	}
	return Result{ID: idSIGINT, Status: Pass, Detail: fmt.Sprintf("still serving %s after SIGINT", SIGINTWait)}
}

func (h *host) checkSIGTERM(ctx context.Context, k kind) Result {
	p, err := h.startRaw(k, h.offer(k))
	if err != nil {
		return Result{ID: idSIGTERM, Status: Skip, Detail: err.Error()}
	}
	defer p.stop()
	if err := p.awaitHandshake(ctx, HandshakeBound); err != nil {
		return Result{ID: idSIGTERM, Status: Skip, Detail: "no handshake: " + err.Error()}
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return Result{ID: idSIGTERM, Status: Skip, Detail: fmt.Sprintf("sending SIGTERM: %v", err)}
	}
	if !p.waitExit(ctx, SIGTERMBound) {
		return Result{ID: idSIGTERM, Status: Fail, Detail: fmt.Sprintf("still running %s after SIGTERM (killed): a supervisor kills it too, and no Cleanup runs", SIGTERMBound),
			Fix: "stop on SIGTERM within seconds: call each backend's Cleanup and exit 0 (serve.Run does, bounded by its shutdown timeout)"}
	}
	took := time.Since(start).Round(time.Millisecond)
	switch code := p.exitCode(); {
	case code == 0:
		return Result{ID: idSIGTERM, Status: Pass, Detail: fmt.Sprintf("exited 0, %s after SIGTERM", took)}
	case code < 0:
		return Result{ID: idSIGTERM, Status: Fail, Detail: "SIGTERM killed it (" + p.exitStatus() + "): no backend's Cleanup ran",
			Fix: "go-plugin handles no SIGTERM (it only ignores SIGINT), so a bare SDK main dies mid-request: catch it with signal.Notify(ch, syscall.SIGTERM), " +
				"then call each backend's Cleanup and exit 0; serve.Run does all that"}
	}
	return Result{ID: idSIGTERM, Status: Warn, Detail: fmt.Sprintf("%s, %s after SIGTERM", p.exitStatus(), took),
		Fix: "exit 0 after a graceful stop on SIGTERM, as serve.Run does: a supervisor reads any other code as a failure"}
}

// waitExit waits up to bound for the process to exit and reports whether
// it did.
func (p *rawProcess) waitExit(ctx context.Context, bound time.Duration) bool {
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// exitCode is the process's exit code, or -1 when a signal ended it or it
// still runs.
func (p *rawProcess) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return -1
	}
	return p.state.ExitCode()
}

package server

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// stopping is the bit of Tracker.state set once a stop has begun; the
// bits below it count the requests in flight.
const stopping = 1 << 62

// Tracker counts the requests in flight and remembers the live instances
// (backends or database connections), so that a graceful stop can refuse
// new requests, drain those in flight and then close every instance. One
// type serves both kinds, so that they stop alike.
type Tracker struct {
	log hclog.Logger
	// state holds the stop flag and the count in one word, so that Begin
	// sees a stop and counts its request in one atomic step: no request
	// can slip in between the stop and the drain.
	state atomic.Int64
	// idle is closed once, by whichever brings the count to zero after
	// the stop began (the last end, or Shutdown itself).
	idle chan struct{}
	end  func() // t.end, bound once: Begin is on every request's path

	mu     sync.Mutex
	live   map[any]func(context.Context) error
	warned map[string]bool
}

// NewTracker returns a Tracker that logs to log.
func NewTracker(log hclog.Logger) *Tracker {
	t := &Tracker{log: log, idle: make(chan struct{}), live: make(map[any]func(context.Context) error), warned: make(map[string]bool)}
	t.end = t.endRequest
	return t
}

// Begin admits one call into an instance (a request, or building an
// instance) and counts it in flight until end is called. Once Shutdown
// has begun it admits nothing: ok is false, end does nothing, and the
// caller must answer without reaching the author's code, whose instance
// is about to be closed or already is.
func (t *Tracker) Begin() (end func(), ok bool) {
	for {
		s := t.state.Load()
		if s&stopping != 0 {
			return func() {}, false
		}
		if t.state.CompareAndSwap(s, s+1) {
			return t.end, true
		}
	}
}

func (t *Tracker) endRequest() {
	if t.state.Add(-1) == stopping {
		close(t.idle)
	}
}

// Stopping reports whether Shutdown has begun.
func (t *Tracker) Stopping() bool { return t.state.Load()&stopping != 0 }

// Add registers a live instance and how to close it. close recovers its
// own panics (through Recover, naming the instance and method), so that
// the record says which kind of instance failed. An instance built while
// serving must be added between its builder's Begin and end, so that
// Shutdown, which waits for every end, closes it.
func (t *Tracker) Add(instance any, close func(context.Context) error) {
	t.mu.Lock()
	t.live[instance] = close
	t.mu.Unlock()
}

// Remove forgets an instance the host closed itself; it reports whether
// the instance was still live, so that it is closed only once.
func (t *Tracker) Remove(instance any) (wasLive bool) {
	t.mu.Lock()
	_, wasLive = t.live[instance]
	delete(t.live, instance)
	t.mu.Unlock()
	return wasLive
}

// WarnOnce logs a warning once per process for each distinct msg, for
// what every instance would otherwise repeat. Only msg tells warnings
// apart: the first one's args are those logged.
func (t *Tracker) WarnOnce(msg string, args ...any) {
	t.mu.Lock()
	seen := t.warned[msg]
	t.warned[msg] = true
	t.mu.Unlock()
	if !seen {
		t.log.Warn(msg, args...)
	}
}

// Shutdown stops admitting calls (Begin fails from now on), waits for
// those in flight (up to timeout), then closes every live instance at
// once with what is left of it: one slow Cleanup must not starve the
// others of their share of the timeout. Calls after the first return at
// once.
func (t *Tracker) Shutdown(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	old := t.state.Or(stopping)
	if old&stopping != 0 {
		return
	}
	if old == 0 {
		close(t.idle)
	}
	timer := time.NewTimer(timeout)
	select {
	case <-t.idle:
	case <-timer.C:
		t.log.Warn("stopping with requests in flight", "requests", t.state.Load()&^stopping)
	}
	timer.Stop()

	t.mu.Lock()
	live := t.live
	t.live = make(map[any]func(context.Context) error)
	t.mu.Unlock()

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	for _, close := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := close(ctx); err != nil {
				t.log.Warn("closing an instance", "error", err)
			}
		}()
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
		t.log.Debug("closed every instance", "count", len(live))
	case <-ctx.Done():
		t.log.Warn("closing instances did not finish before the shutdown timeout", "timeout", timeout.String())
	}
}

// Recover is deferred by every method of a served instance. The SDKs'
// gRPC servers do not recover panics, so one bad call would kill the
// process and every mount it serves; instead the panic is logged at ERROR
// with its stack and the call fails. The panic value goes only to the
// log: the returned error reaches Vault's API client, and a value built
// from the request could carry its secrets. what names the instance
// ("backend", "database"); err, when the method returns one, is set to an
// error naming the method.
func (t *Tracker) Recover(what, method string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	t.log.Error(what+" panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	if err != nil {
		*err = fmt.Errorf("internal error: the plugin's %s panicked in %s (the stack is in the plugin's log)", what, method)
	}
}

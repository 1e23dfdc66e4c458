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
// (backends or database connections), so that a graceful stop can hold
// back new requests, drain those in flight, close every instance and
// only then refuse what it held back. One type serves both kinds, so that
// they stop alike.
type Tracker struct {
	log hclog.Logger
	// state holds the stop flag and the count in one word, so that Begin
	// sees a stop and counts its request in one atomic step: no request
	// can slip in between the stop and the drain.
	state atomic.Int64
	// idle is closed once, by whichever brings the count to zero after
	// the stop began (the last end, or Shutdown itself).
	idle chan struct{}
	// closed is closed once Shutdown has closed every instance (or given
	// up at its timeout): the calls Begin held back are refused then.
	closed chan struct{}
	end    func() // t.endRequest, bound once: Begin is on every request's path
	refuse func() // t.endRefusal, likewise

	refused atomic.Bool // whether Begin ever refused a call
	// hold makes Begin hold calls back while stopping instead of
	// refusing them at once: set before serving when the host reacts to
	// a refusal by killing the process (Plugin.HostReloads).
	hold bool

	mu       sync.Mutex
	live     map[any]func(context.Context) error
	warned   map[string]bool
	refusing int           // calls Begin refused that have not ended yet
	quiet    chan struct{} // when not nil, closed as refusing drops to zero
}

// NewTracker returns a Tracker that logs to log.
func NewTracker(log hclog.Logger) *Tracker {
	t := &Tracker{
		log:    log,
		idle:   make(chan struct{}),
		closed: make(chan struct{}),
		live:   make(map[any]func(context.Context) error),
		warned: make(map[string]bool),
	}
	t.end, t.refuse = t.endRequest, t.endRefusal
	return t
}

// Begin admits one call into an instance (a request, or building an
// instance) and counts it in flight; the caller calls end when the call
// returns, whether it was admitted or not.
//
// Once Shutdown has begun Begin admits nothing: ok is false, and the
// caller must answer without reaching the author's code, whose instance
// is about to be closed or already is. When the host reacts to the
// refusal by killing the process (a backend's: Vault reloads the plugin
// on a new process and sends the request again), Begin first waits,
// until Shutdown has closed every instance or until ctx is done: the
// kill would otherwise cut the calls still in flight on the process's
// other mounts, and close the host's storage under them and under
// Cleanup.
func (t *Tracker) Begin(ctx context.Context) (end func(), ok bool) {
	for {
		s := t.state.Load()
		if s&stopping != 0 {
			t.refused.Store(true)
			t.mu.Lock()
			t.refusing++
			t.mu.Unlock()
			if t.hold {
				select {
				case <-t.closed:
				case <-ctx.Done():
				}
			}
			return t.refuse, false
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

func (t *Tracker) endRefusal() {
	t.mu.Lock()
	t.refusing--
	if t.refusing == 0 && t.quiet != nil {
		close(t.quiet)
		t.quiet = nil
	}
	t.mu.Unlock()
}

// Stopping reports whether Shutdown has begun.
func (t *Tracker) Stopping() bool { return t.state.Load()&stopping != 0 }

// Refused reports whether Begin has refused a call.
func (t *Tracker) Refused() bool { return t.refused.Load() }

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

// Shutdown stops admitting calls (Begin refuses them from now on, or
// holds them back), waits for those in flight (up to timeout), then
// closes every live instance at once with what is left of it: one slow
// Cleanup must not starve the others of their share of the timeout. Then
// it lets Begin refuse the calls it held back, and waits (within the same
// timeout) for every refused call to have returned, so that its answer
// is on its way before the caller stops the gRPC server. Calls after the
// first return at once.
func (t *Tracker) Shutdown(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	old := t.state.Or(stopping)
	if old&stopping != 0 {
		return
	}
	if old == 0 {
		close(t.idle)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	select {
	case <-t.idle:
	case <-ctx.Done():
		t.log.Warn("stopping with requests in flight", "requests", t.state.Load()&^stopping)
	}

	t.mu.Lock()
	live := t.live
	t.live = make(map[any]func(context.Context) error)
	t.mu.Unlock()
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

	close(t.closed)
	t.mu.Lock()
	var quiet chan struct{}
	if t.refusing > 0 {
		quiet = make(chan struct{})
		t.quiet = quiet
	}
	t.mu.Unlock()
	if quiet != nil {
		select {
		case <-quiet:
		case <-ctx.Done():
		}
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

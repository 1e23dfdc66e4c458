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

// Tracker counts the requests in flight and remembers the live instances
// (backends or database connections), so that a graceful stop can drain
// the requests and then close every instance. One type serves both kinds,
// so that they stop alike.
type Tracker struct {
	log      hclog.Logger
	inflight atomic.Int64
	mu       sync.Mutex
	live     map[any]func(context.Context) error
	warned   sync.Once
}

// NewTracker returns a Tracker that logs to log.
func NewTracker(log hclog.Logger) *Tracker {
	return &Tracker{log: log, live: make(map[any]func(context.Context) error)}
}

// Begin counts a request in flight until the returned func is called.
func (t *Tracker) Begin() (end func()) {
	t.inflight.Add(1)
	return func() { t.inflight.Add(-1) }
}

// Add registers a live instance and how to close it. close recovers its
// own panics (through Recover, naming the instance and method), so that
// the record says which kind of instance failed.
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

// WarnOnce logs a warning once per process, for what every instance
// would otherwise repeat.
func (t *Tracker) WarnOnce(msg string, args ...any) {
	t.warned.Do(func() { t.log.Warn(msg, args...) })
}

// Shutdown waits for the requests in flight (up to timeout), then closes
// every live instance at once with what is left of it: one slow Cleanup
// must not starve the others of their share of the timeout.
func (t *Tracker) Shutdown(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for t.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := t.inflight.Load(); n > 0 {
		t.log.Warn("stopping with requests in flight", "requests", n)
	}
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

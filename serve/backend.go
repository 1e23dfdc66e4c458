package serve

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// tracker wraps every backend the factory builds: it reports the plugin's
// version, counts in-flight requests and remembers live instances so that a
// graceful stop can drain and clean them up.
type tracker struct {
	c        *config
	inflight atomic.Int64
	mu       sync.Mutex
	live     map[*versionedBackend]struct{}
	warned   sync.Once
}

func newTracker(c *config) *tracker {
	return &tracker{c: c, live: make(map[*versionedBackend]struct{})}
}

// wrapFactory returns a factory that wraps what f builds. A panic in f is
// turned into an error logged with its stack: the host then fails only
// that mount's Setup, instead of the process dying with a raw panic dump
// that Vault buries at DEBUG.
func (t *tracker) wrapFactory(f logical.Factory) logical.Factory {
	return func(ctx context.Context, conf *logical.BackendConfig) (b logical.Backend, err error) {
		defer func() {
			if r := recover(); r != nil {
				t.c.logger.Error("backend factory panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				b, err = nil, fmt.Errorf("backend factory panicked: %v", r)
			}
		}()
		b, err = f(ctx, conf)
		if err != nil {
			t.c.logger.Error("backend factory failed", "error", err)
			return nil, err
		}
		if b == nil {
			err = fmt.Errorf("backend factory returned a nil backend and no error")
			t.c.logger.Error("backend factory failed", "error", err)
			return nil, err
		}
		return t.wrap(b), nil
	}
}

func (t *tracker) wrap(b logical.Backend) *versionedBackend {
	v := t.c.version
	if own := ownVersion(b); own != "" {
		switch {
		case t.c.versionSource != "WithVersion":
			// The author set RunningVersion on the backend: theirs wins
			// over the build info.
			v = own
		case own != v:
			t.warned.Do(func() {
				t.c.logger.Warn("the backend reports a version of its own; reporting WithVersion's", "backend", own, "reported", v)
			})
		}
	}
	if t.c.metrics != nil {
		b = t.c.metrics.Backend(b) // after ownVersion: it hides optional interfaces
	}
	vb := &versionedBackend{Backend: b, version: v, t: t}
	t.mu.Lock()
	t.live[vb] = struct{}{}
	t.mu.Unlock()
	return vb
}

func ownVersion(b logical.Backend) string {
	if pv, ok := b.(logical.PluginVersioner); ok {
		return pv.PluginVersion().Version
	}
	return ""
}

// shutdown waits for in-flight requests (up to timeout), then calls
// Cleanup on every live backend with what is left of it.
func (t *tracker) shutdown(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for t.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := t.inflight.Load(); n > 0 {
		t.c.logger.Warn("stopping with requests in flight", "requests", n)
	}
	t.mu.Lock()
	live := make([]*versionedBackend, 0, len(t.live))
	for b := range t.live {
		live = append(live, b)
	}
	t.live = make(map[*versionedBackend]struct{})
	t.mu.Unlock()

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	for _, b := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer t.recoverCall("Cleanup", nil)
			b.Backend.Cleanup(ctx)
		}()
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
		t.c.logger.Debug("cleaned up backends", "count", len(live))
	case <-ctx.Done():
		t.c.logger.Warn("backend Cleanup did not finish before the shutdown timeout", "timeout", timeout.String())
	}
}

// versionedBackend is the backend as the host sees it. Only
// logical.PluginVersioner is type-asserted on a backend by the SDK's gRPC
// server (sdk/plugin/grpc_backend_server.go, Version), so embedding the
// interface hides no other optional behaviour.
type versionedBackend struct {
	logical.Backend
	version string
	t       *tracker
}

var _ logical.PluginVersioner = (*versionedBackend)(nil)

// PluginVersion reports the version Vault compares with the catalog's.
func (b *versionedBackend) PluginVersion() logical.PluginVersion {
	return logical.PluginVersion{Version: b.version}
}

// HandleRequest counts the request in flight so a graceful stop can wait
// for it, and turns a panic in the backend into that request's error.
func (b *versionedBackend) HandleRequest(ctx context.Context, req *logical.Request) (resp *logical.Response, err error) {
	b.t.inflight.Add(1)
	defer b.t.inflight.Add(-1)
	defer b.t.recoverRequest(req, &resp, &err)
	return b.Backend.HandleRequest(ctx, req)
}

// recoverRequest is deferred by HandleRequest. The SDK's gRPC server does
// not recover panics, so one bad request would kill the process and every
// mount it serves; instead the panic is logged at ERROR with its stack and
// the request fails. The panic value goes only to the log: the returned
// error reaches Vault's API client, and a value built from the request
// could carry its secrets.
func (t *tracker) recoverRequest(req *logical.Request, resp **logical.Response, err *error) {
	r := recover()
	if r == nil {
		return
	}
	var op logical.Operation
	var path string
	if req != nil {
		op, path = req.Operation, req.Path
	}
	t.c.logger.Error("backend panicked handling a request", "operation", op, "path", path,
		"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*resp = nil
	*err = fmt.Errorf("internal error: the plugin's backend panicked handling %s %q (the stack is in the plugin's log)", op, path)
}

// HandleExistenceCheck answers Vault's create-or-update question before a
// write; a panic in it fails that request, as in HandleRequest.
func (b *versionedBackend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (checkFound, exists bool, err error) {
	defer b.t.recoverCall("HandleExistenceCheck", &err)
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// Initialize runs once the mount is set up; a panic in it fails the
// mount's initialization instead of the process.
func (b *versionedBackend) Initialize(ctx context.Context, req *logical.InitializationRequest) (err error) {
	defer b.t.recoverCall("Initialize", &err)
	return b.Backend.Initialize(ctx, req)
}

// InvalidateKey tells the backend a storage key changed (on performance
// standbys); it returns nothing, so a panic in it is only logged.
func (b *versionedBackend) InvalidateKey(ctx context.Context, key string) {
	defer b.t.recoverCall("InvalidateKey", nil)
	b.Backend.InvalidateKey(ctx, key)
}

// Cleanup is called by the host when it unmounts: the instance is no
// longer live. A panic in the backend's Cleanup is logged, not fatal: the
// other mounts keep serving.
func (b *versionedBackend) Cleanup(ctx context.Context) {
	b.t.mu.Lock()
	_, live := b.t.live[b]
	delete(b.t.live, b)
	b.t.mu.Unlock()
	if live {
		defer b.t.recoverCall("Cleanup", nil)
		b.Backend.Cleanup(ctx)
	}
}

// recoverCall is deferred by the backend methods other than HandleRequest,
// for the reason recoverRequest gives. err, when the method returns one,
// is set to an error naming the method; the panic value goes only to the
// log.
func (t *tracker) recoverCall(method string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	t.c.logger.Error("backend panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	if err != nil {
		*err = fmt.Errorf("internal error: the plugin's backend panicked in %s (the stack is in the plugin's log)", method)
	}
}

// buildVersion returns the main module's version from the build info,
// normalised as Vault stores versions, or "" for a development build.
func buildVersion() (v, source string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		return "", ""
	}
	norm, err := normalizeVersion(bi.Main.Version)
	if err != nil {
		return "", ""
	}
	return norm, "build info"
}

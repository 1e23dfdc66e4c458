package serve

import (
	"context"
	"fmt"
	"math"
	"net/rpc"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/vault/sdk/logical"
	sdkplugin "github.com/hashicorp/vault/sdk/plugin"
	"google.golang.org/grpc"

	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/internal/proctext"
	"github.com/plugkit/vaultplugin/internal/server"
)

// backendPlugin serves a logical.Factory: secrets engines and auth methods.
type backendPlugin struct{ factory logical.Factory }

func (backendPlugin) Kind() hostenv.Kind { return hostenv.Backend }

func (b backendPlugin) Factory() any { return b.factory }

func (b backendPlugin) Sets(in *server.Instances, plan server.Plan) (map[int]goplugin.PluginSet, error) {
	factory := wrapFactory(in, b.factory)
	set := func(mux bool) goplugin.PluginSet {
		return goplugin.PluginSet{sdkplugin.BackendPluginName: &sdkplugin.GRPCBackendPlugin{
			Factory:             factory,
			Logger:              in.Logger,
			MultiplexingSupport: mux,
		}}
	}
	// The same sets as sdk/plugin's ServeMultiplex and Serve: 3 and 4 for
	// hosts before 1.12, 5 (with or without multiplexing) after.
	return map[int]goplugin.PluginSet{3: set(false), 4: set(false), 5: set(plan.Multiplex)}, nil
}

// HostReloads: Vault reloads a backend plugin, on a new process, when a
// request fails with errStopping, and sends the request again.
func (backendPlugin) HostReloads() bool { return true }

func (backendPlugin) GRPCOptions() []grpc.ServerOption {
	// As the SDK does: Vault's requests and responses (a large list, a
	// big policy) exceed gRPC's 4 MiB default.
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(math.MaxInt32), grpc.MaxSendMsgSize(math.MaxInt32)}
}

// typeTimeout bounds the factory call made to learn the plugin's type for
// -describe, -help and the run-by-a-person text: a factory that dials out
// at creation must not make them hang.
const typeTimeout = 2 * time.Second

// Type calls the factory once with an empty configuration, as Vault does
// at registration, to learn whether it is a secrets engine or an auth
// method.
func (b backendPlugin) Type(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, typeTimeout)
	defer cancel()
	ch := make(chan logical.BackendType, 1)
	go func() {
		defer func() {
			if recover() != nil {
				ch <- logical.TypeUnknown
			}
		}()
		be, err := b.factory(ctx, &logical.BackendConfig{
			StorageView: &logical.InmemStorage{},
			Logger:      hclog.NewNullLogger(),
			System:      logical.StaticSystemView{},
			Config:      map[string]string{},
		})
		if err != nil || be == nil {
			ch <- logical.TypeUnknown
			return
		}
		t := be.Type()
		be.Cleanup(ctx)
		ch <- t
	}()
	select {
	case t := <-ch:
		switch t {
		case logical.TypeLogical:
			return "secret"
		case logical.TypeCredential:
			return "auth"
		}
	case <-ctx.Done():
	}
	return ""
}

// errStopping is what a call gets that arrives once the plugin is
// stopping (SIGTERM, its host gone, Serve's context done): it never
// reaches the backend, whose Cleanup may already have run.
//
// It is net/rpc's ErrShutdown, unwrapped, because of what Vault does with
// it. An error a backend returns crosses gRPC as its text alone (the SDK
// rebuilds it with errors.New), so no sentinel survives; but Vault's
// plugin wrapper (builtin/plugin, for every protocol) compares a failed
// HandleRequest's or HandleExistenceCheck's text with ErrShutdown's
// ("connection is shut down") and, when they match, reloads the mount's
// plugin (Cleanup, then it kills the process, even a multiplexed one, and
// starts a new one) and sends the request once more. Wrapping it with
// context would change the text and lose the retry.
//
// Since that kill would cut the calls still in flight on the process's
// other mounts, and close Vault's storage under them, a refused call is
// held back until every instance is closed (server.Tracker.Begin), and the
// plugin then waits for Vault's kill instead of exiting first
// (backendPlugin.HostReloads).
//
// Through Vault 1.21.0, eight clients streaming reads over two mounts of
// one process while it got SIGTERM: every request sent after the signal
// was answered 200 (10,204, 9,708 and 12,087 in three runs; with 1 s
// requests reading storage on one mount, 80 of 80), where letting requests
// through until the process exited failed 94 to 466 of about 9,300 with
// 500s (requests run after Cleanup, transport errors once the process was
// gone; 16 of 96 with the 1 s requests).
var errStopping = rpc.ErrShutdown

// wrapFactory returns a factory that wraps what f builds. A panic in f is
// turned into an error logged with its stack: the host then fails only
// that mount's Setup, instead of the process dying with a raw panic dump
// that Vault buries at DEBUG. Once the plugin is stopping f is not called:
// an instance built then would never be closed.
func wrapFactory(in *server.Instances, f logical.Factory) logical.Factory {
	return func(ctx context.Context, conf *logical.BackendConfig) (b logical.Backend, err error) {
		end, ok := in.Tracker.Begin(ctx)
		defer end()
		if !ok {
			// Setup's error is not retried by Vault: say what happened.
			return nil, fmt.Errorf("the plugin is stopping, it builds no new backend: %w", errStopping)
		}
		defer func() {
			if r := recover(); r != nil {
				in.Logger.Error("backend "+proctext.FactoryPanicked, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				b, err = nil, fmt.Errorf("backend %s: %v", proctext.FactoryPanicked, r)
			}
		}()
		b, err = f(ctx, conf)
		if err != nil {
			in.Logger.Error("backend factory failed", "error", err)
			return nil, err
		}
		if b == nil {
			err = fmt.Errorf("backend factory returned a nil backend and no error")
			in.Logger.Error("backend factory failed", "error", err)
			return nil, err
		}
		return wrapBackend(in, b), nil
	}
}

func wrapBackend(in *server.Instances, b logical.Backend) *servedBackend {
	v := in.VersionFor(b, "backend")
	if in.Metrics != nil {
		b = in.Metrics.Backend(b) // after the version: it hides optional interfaces
	}
	sb := &servedBackend{Backend: b, version: v, t: in.Tracker, log: in.Logger}
	in.Tracker.Add(sb, sb.cleanup)
	return sb
}

// servedBackend is the backend as the host sees it. Only
// logical.PluginVersioner is type-asserted on a backend by the SDK's gRPC
// server (sdk/plugin/grpc_backend_server.go, Version), so embedding the
// interface hides no other optional behaviour.
type servedBackend struct {
	logical.Backend
	version string
	t       *server.Tracker
	log     hclog.Logger
}

var _ logical.PluginVersioner = (*servedBackend)(nil)

// PluginVersion reports the version Vault compares with the catalog's.
func (b *servedBackend) PluginVersion() logical.PluginVersion {
	return logical.PluginVersion{Version: b.version}
}

// The calls that reach the author's code while serving (HandleRequest,
// HandleExistenceCheck, Initialize, InvalidateKey) are counted in flight
// so that a graceful stop waits for them before Cleanup, and are held
// back, then refused, once the stop began. Type, SpecialPaths, Logger and
// System are not:
// they hand back what the backend was built with and touch nothing that
// Cleanup closes. Cleanup itself is what the stop waits to run.

// HandleRequest counts the request in flight so a graceful stop can wait
// for it, refuses it with errStopping once the stop began, and turns a
// panic in the backend into that request's error.
func (b *servedBackend) HandleRequest(ctx context.Context, req *logical.Request) (resp *logical.Response, err error) {
	end, ok := b.t.Begin(ctx)
	defer end()
	if !ok {
		return nil, errStopping
	}
	defer b.recoverRequest(req, &resp, &err)
	return b.Backend.HandleRequest(ctx, req)
}

// recoverRequest is HandleRequest's server.Tracker.Recover: the log
// record and the error name the operation and path, which say what failed
// without carrying the request's data.
func (b *servedBackend) recoverRequest(req *logical.Request, resp **logical.Response, err *error) {
	r := recover()
	if r == nil {
		return
	}
	var op logical.Operation
	var path string
	if req != nil {
		op, path = req.Operation, req.Path
	}
	b.log.Error("backend panicked handling a request", "operation", op, "path", path,
		"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*resp = nil
	*err = fmt.Errorf("internal error: the plugin's backend panicked handling %s %q (the stack is in the plugin's log)", op, path)
}

// HandleExistenceCheck answers Vault's create-or-update question before a
// write; it is counted, refused and recovered as HandleRequest is.
func (b *servedBackend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (checkFound, exists bool, err error) {
	end, ok := b.t.Begin(ctx)
	defer end()
	if !ok {
		return false, false, errStopping
	}
	defer b.t.Recover("backend", "HandleExistenceCheck", &err)
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// Initialize runs once the mount is set up; a panic in it fails the
// mount's initialization instead of the process. Once the plugin is
// stopping it is refused: the backend will be cleaned up unused.
func (b *servedBackend) Initialize(ctx context.Context, req *logical.InitializationRequest) (err error) {
	end, ok := b.t.Begin(ctx)
	defer end()
	if !ok {
		return errStopping
	}
	defer b.t.Recover("backend", "Initialize", &err)
	return b.Backend.Initialize(ctx, req)
}

// InvalidateKey tells the backend a storage key changed (on performance
// standbys); it returns nothing, so a panic in it is only logged. Once
// the plugin is stopping it is dropped: a backend about to be cleaned up
// serves nothing more that a stale cache could spoil.
func (b *servedBackend) InvalidateKey(ctx context.Context, key string) {
	end, ok := b.t.Begin(ctx)
	defer end()
	if !ok {
		return
	}
	defer b.t.Recover("backend", "InvalidateKey", nil)
	b.Backend.InvalidateKey(ctx, key)
}

// Cleanup is called by the host when it unmounts: the instance is no
// longer live. A panic in the backend's Cleanup is logged, not fatal: the
// other mounts keep serving.
func (b *servedBackend) Cleanup(ctx context.Context) {
	if b.t.Remove(b) {
		_ = b.cleanup(ctx)
	}
}

// cleanup runs the backend's Cleanup with a panic recovered, for the host's
// unmount and for a graceful stop alike.
func (b *servedBackend) cleanup(ctx context.Context) error {
	defer b.t.Recover("backend", "Cleanup", nil)
	b.Backend.Cleanup(ctx)
	return nil
}

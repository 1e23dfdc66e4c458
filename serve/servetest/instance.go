package servetest

import (
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// instanceState is one backend instance of a mount, in one process.
type instanceState struct {
	be         logical.Backend // the SDK's client for it
	on         *child          // the process it lives in
	version    string          // the version it reports: the mount's running version
	sha256     string          // its binary's: the mount's running sha256
	loginPaths []string        // its unauthenticated paths
}

// instance is a mount's backend as Vault's route entry holds an external
// plugin's (builtin/plugin/v5's backend): it forwards every call to the
// instance that serves the mount now, which a reload, an upgrade or a
// restart replaces. Its methods are the raw calls and never restart
// anything; Mount.call does, as Vault's wrapper does.
type instance struct {
	mu      sync.RWMutex
	cur     *instanceState
	cleaned bool // the mount was cleaned up: no process serves it again
}

var (
	_ logical.Backend         = (*instance)(nil)
	_ logical.PluginVersioner = (*instance)(nil)
)

func (i *instance) state() *instanceState {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.cur
}

func (i *instance) set(s *instanceState) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cur = s
}

// live reports whether the mount still exists: it was not cleaned up.
func (i *instance) live() bool {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return !i.cleaned
}

// cleanup cleans the mount up, as unmounting it does: the instance's
// Cleanup, unless its process has exited, where a call could only fail.
func (i *instance) cleanup(ctx context.Context) {
	i.mu.Lock()
	st := i.cur
	i.cleaned = true
	i.mu.Unlock()
	if !st.on.exited() {
		st.be.Cleanup(ctx)
	}
}

func (i *instance) backend() logical.Backend { return i.state().be }

func (i *instance) Initialize(ctx context.Context, req *logical.InitializationRequest) error {
	return i.backend().Initialize(ctx, req)
}

func (i *instance) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	return i.backend().HandleRequest(ctx, req)
}

func (i *instance) SpecialPaths() *logical.Paths { return i.backend().SpecialPaths() }
func (i *instance) System() logical.SystemView   { return i.backend().System() }
func (i *instance) Logger() hclog.Logger         { return i.backend().Logger() }
func (i *instance) Cleanup(ctx context.Context)  { i.backend().Cleanup(ctx) }
func (i *instance) Type() logical.BackendType    { return i.backend().Type() }
func (i *instance) InvalidateKey(ctx context.Context, key string) {
	i.backend().InvalidateKey(ctx, key)
}

func (i *instance) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	return i.backend().HandleExistenceCheck(ctx, req)
}

func (i *instance) Setup(ctx context.Context, conf *logical.BackendConfig) error {
	return i.backend().Setup(ctx, conf)
}

// PluginVersion is the version the instance serving now reports, as the
// SDK's client asks the plugin for it.
func (i *instance) PluginVersion() logical.PluginVersion {
	if v, ok := i.backend().(logical.PluginVersioner); ok {
		return v.PluginVersion()
	}
	return logical.EmptyPluginVersion
}

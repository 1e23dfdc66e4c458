package servetest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
	sdkplugin "github.com/hashicorp/vault/sdk/plugin"
)

// Plugin is a secrets engine or auth method plugin running as Vault runs
// one: a process that serves a backend per Mount.
type Plugin struct {
	// Process is the running process: its id, logs, Kill and Close.
	*Process

	vaultVersion  string
	metadataMode  bool
	name          string // the name the plugin is registered and mounted under
	defaultTTL    time.Duration
	maxTTL        time.Duration
	token         string // the client token of every request, before salting
	tokenAccessor string
	mounted       atomic.Int64
	exp           *expiration       // the host's leases and clock, for all mounts
	mounts        *registry[*Mount] // every mount made, for Upgrade and Reload
}

// Mount is one backend instance in the plugin process, as one Vault mount.
type Mount struct {
	// Backend is the instance, reached through the gRPC boundary: the
	// instance in the process that serves the mount now, which a reload,
	// an upgrade or a restart replaces (see Plugin.Upgrade), as Vault's
	// route entry holds its plugin's backend. Its methods are the raw
	// calls: they never restart a process that died.
	logical.Backend
	// Storage is the mount's storage, which the plugin reads and writes
	// through the broker as it would Vault's; a test may inspect it. It
	// is nil on a real host, whose storage is its own.
	Storage *logical.InmemStorage
	// ID is the multiplexing id the host sends with every call; "" on a
	// real host, which does not show it.
	ID string
	// MountPoint is the mount's path, which requests carry: "NAME/" for
	// a secrets engine, "auth/NAME/" for an auth method, where NAME is the
	// plugin's name (WithPluginName), with "-2", "-3"… for the Plugin's
	// later mounts. On a real host, whose mounts parallel tests share,
	// NAME is followed by "-" and six random characters: "NAME-a1b2c3/".
	MountPoint string
	// MountType is the mount's type as Vault records it, which requests
	// carry: the plugin's name (on a real host, its catalog entry's name,
	// as the host reports it).
	MountType string
	// MountAccessor is the mount's accessor, which requests carry:
	// "NAME_" or "auth_NAME_" and eight hex digits, as Vault makes them.
	MountAccessor string

	uuid          string // salts the client token, as the mount's UUID does
	token         string // the client token before salting
	tokenAccessor string // the token's accessor
	class         string // "secret" or "auth"
	exp           *expiration
	defaultTTL    time.Duration     // the mount's default_lease_ttl
	maxTTL        time.Duration     // the mount's max_lease_ttl
	config        map[string]string // what Setup is given, for each instance
	plugin        *Plugin
	inst          *instance // Backend: the instance serving now

	cleanup func(context.Context) error // the backend's Cleanup, once
	host    *hostMount                  // on a real host; nil in the emulation
}

// Cleanup cleans the mount up as unmounting it from Vault does: the
// backend's Cleanup, once. Later calls, the test's end and Close do
// nothing more, as Vault never cleans a mount up twice. The mount's
// leases are dropped without revoking them (see the package doc's known
// limits): RevokePrefix(ctx, m.MountPoint) first revokes them as Vault's
// unmount does.
func (m *Mount) Cleanup(ctx context.Context) {
	m.plugin.swap.RLock()
	defer m.plugin.swap.RUnlock()
	_ = m.cleanup(ctx)
}

// New starts the secrets engine or auth method plugin binary bin as Vault
// would and waits for its handshake; ctx's deadline, if any, bounds the
// handshake. The caller must Close the Plugin. A plugin that fails to
// start gives a *StartError, holding what Vault would show: the plugin's
// cause line, go-plugin's message and the plugin's last stderr lines.
func New(ctx context.Context, bin string, opts ...Option) (*Plugin, error) {
	c, err := newConfig(false, opts)
	if err != nil {
		return nil, err
	}
	if c.hostBin() != "" {
		return newOnHost(ctx, bin, c)
	}
	proc, err := newProcess(ctx, bin, c)
	if err != nil {
		return nil, err
	}
	name := c.pluginName
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(bin), ".exe")
	}
	token, err := newID()
	if err != nil {
		proc.Close()
		return nil, err
	}
	accessor, err := newID()
	if err != nil {
		proc.Close()
		return nil, err
	}
	return &Plugin{
		Process:       proc,
		vaultVersion:  c.vaultVersion,
		metadataMode:  c.metadataMode,
		name:          name,
		defaultTTL:    c.defaultTTL,
		maxTTL:        c.maxTTL,
		token:         "hvs." + token,
		tokenAccessor: accessor[:24],
		exp:           newExpiration(),
		mounts:        &registry[*Mount]{},
	}, nil
}

// Start is New for tests: it fails t on error and closes the plugin when
// the test ends.
func Start(t testing.TB, bin string, opts ...Option) *Plugin {
	t.Helper()
	p, err := New(context.Background(), bin, opts...)
	if err != nil {
		skipIfEmulationOnly(t, err)
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// NewMount sets up a new backend instance in the plugin, as a new Vault
// mount of it: config is the mount's configuration map. A plugin that
// does not multiplex serves only one mount per process, as in Vault: a
// second NewMount returns an error wrapping ErrNotMultiplexed. Close
// cleans the mount up.
func (p *Plugin) NewMount(ctx context.Context, config map[string]string) (*Mount, error) {
	if p.host != nil {
		return p.newMountOnHost(ctx, config)
	}
	unreserve, err := p.reserve("mount", "Plugin")
	if err != nil {
		return nil, err
	}
	p.swap.RLock()
	m, err := p.newMount(ctx, config)
	p.swap.RUnlock()
	if err != nil {
		unreserve()
		return nil, err
	}
	m.cleanup = p.track(func(ctx context.Context) error {
		p.exp.forget(m)
		m.inst.cleanup(ctx)
		return nil
	})
	p.mounts.add(m)
	return m, nil
}

// newMount mounts the plugin as Vault's mount does: a new instance, with
// its storage, path and accessor. The caller holds swap for reading.
func (p *Plugin) newMount(ctx context.Context, config map[string]string) (*Mount, error) {
	id, err := newID()
	if err != nil {
		return nil, err
	}
	// Vault's mount passes the operator's options with what it adds
	// (vault/mount.go newLogicalBackend, auth.go newCredentialBackend):
	// plugin_name; plugin_type and plugin_version are not known before
	// Setup here (see the package doc's known limits).
	conf := map[string]string{}
	for k, v := range config {
		conf[k] = v
	}
	conf["plugin_name"] = p.name
	m := &Mount{
		Storage: &logical.InmemStorage{}, ID: id, MountType: p.name, uuid: id, token: p.token, tokenAccessor: p.tokenAccessor,
		exp: p.exp, defaultTTL: p.defaultTTL, maxTTL: p.maxTTL, config: conf, plugin: p,
	}
	n := p.mounted.Add(1)
	name := p.name
	if n > 1 {
		name = fmt.Sprintf("%s-%d", name, n)
	}
	in, err := p.setUp(ctx, m, p.serving())
	if err != nil {
		return nil, fmt.Errorf("servetest: %w", err)
	}
	m.inst = &instance{}
	m.inst.set(in)
	m.Backend = m.inst
	m.class, m.MountPoint = "secret", name+"/"
	if in.be.Type() == logical.TypeCredential {
		m.class, m.MountPoint = "auth", "auth/"+name+"/"
	}
	accessor, err := newID()
	if err != nil {
		in.be.Cleanup(ctx)
		return nil, err
	}
	// vault/mount.go generateMountAccessor: TYPE_ and eight hex digits;
	// auth.go prefixes "auth_".
	m.MountAccessor = p.name + "_" + accessor[:8]
	if m.class == "auth" {
		m.MountAccessor = "auth_" + m.MountAccessor
	}
	return m, nil
}

// setUp makes m's backend instance in the process ch, with m's
// multiplexing id, storage and configuration: Setup, then Initialize, as
// Vault's mount and its reload do (vault/mount.go, plugin_reload.go
// reloadBackendCommon). On failure nothing of the instance is left.
func (p *Plugin) setUp(ctx context.Context, m *Mount, ch *child) (*instanceState, error) {
	be, err := sdkplugin.Dispense(ch.rpc, ch.instanceConn(m.ID))
	if err != nil {
		return nil, fmt.Errorf("dispensing the backend: %w", err)
	}
	err = be.Setup(ctx, &logical.BackendConfig{
		StorageView: m.Storage,
		Logger:      hclog.NewNullLogger(),
		System:      newSystemView(p.vaultVersion, p.defaultTTL, p.maxTTL),
		Config:      m.config,
		BackendUUID: m.ID,
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the mount: %w", err)
	}
	// A host in metadata mode only sets a backend up to ask for its
	// type and version; the SDK refuses Initialize then.
	if !p.metadataMode {
		if err := be.Initialize(ctx, &logical.InitializationRequest{Storage: m.Storage}); err != nil {
			be.Cleanup(ctx)
			return nil, fmt.Errorf("initializing the mount: %w", err)
		}
	}
	in := &instanceState{be: be, on: ch, sha256: ch.sha256}
	if v, ok := be.(logical.PluginVersioner); ok {
		in.version = v.PluginVersion().Version
	}
	if sp := be.SpecialPaths(); sp != nil {
		in.loginPaths = sp.Unauthenticated
	}
	return in, nil
}

// Mount is NewMount for tests: it fails t on error and cleans the mount up
// when the test ends, as unmounting it from Vault would.
func (p *Plugin) Mount(t testing.TB, config map[string]string) *Mount {
	t.Helper()
	m, err := p.NewMount(context.Background(), config)
	if err != nil {
		t.Fatal(err)
	}
	p.stopAtEnd(t, m.cleanup)
	return m
}

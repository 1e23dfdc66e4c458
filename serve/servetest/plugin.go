package servetest

import (
	"context"
	"fmt"
	"strings"
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

	vaultVersion string
	metadataMode bool
}

// Mount is one backend instance in the plugin process, as one Vault mount.
type Mount struct {
	// Backend is the instance, reached through the gRPC boundary.
	logical.Backend
	// Storage is the mount's storage, which the plugin reads and writes
	// through the broker as it would Vault's; a test may inspect it.
	Storage *logical.InmemStorage
	// ID is the multiplexing id the host sends with every call.
	ID string

	cleanup func(context.Context) error // the backend's Cleanup, once
}

// Cleanup cleans the mount up as unmounting it from Vault does: the
// backend's Cleanup, once. Later calls, the test's end and Close do
// nothing more, as Vault never cleans a mount up twice.
func (m *Mount) Cleanup(ctx context.Context) { _ = m.cleanup(ctx) }

// New starts the secrets engine or auth method plugin binary bin as Vault
// would and waits for its handshake; ctx's deadline, if any, bounds the
// handshake. The caller must Close the Plugin. A plugin that fails to
// start gives an error holding what Vault would show: go-plugin's message
// (with the plugin's cause line) and the plugin's last stderr lines.
func New(ctx context.Context, bin string, opts ...Option) (*Plugin, error) {
	c, err := newConfig(false, opts)
	if err != nil {
		return nil, err
	}
	proc, err := launch(ctx, bin, c)
	if err != nil {
		return nil, err
	}
	return &Plugin{Process: proc, vaultVersion: c.vaultVersion, metadataMode: c.metadataMode}, nil
}

// Start is New for tests: it fails t on error and closes the plugin when
// the test ends.
func Start(t testing.TB, bin string, opts ...Option) *Plugin {
	t.Helper()
	p, err := New(context.Background(), bin, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// NewMount sets up a new backend instance in the plugin, as a new Vault
// mount of it: config is the mount's configuration map. A plugin that
// does not multiplex serves only one mount per process, as in Vault.
// Close cleans the mount up.
func (p *Plugin) NewMount(ctx context.Context, config map[string]string) (*Mount, error) {
	unreserve, err := p.reserve("mount", "Plugin")
	if err != nil {
		return nil, err
	}
	m, err := p.newMount(ctx, config)
	if err != nil {
		unreserve()
		return nil, err
	}
	be := m.Backend
	m.cleanup = p.track(func(ctx context.Context) error {
		be.Cleanup(ctx)
		return nil
	})
	return m, nil
}

func (p *Plugin) newMount(ctx context.Context, config map[string]string) (*Mount, error) {
	id, client, err := p.instanceConn()
	if err != nil {
		return nil, err
	}
	be, err := sdkplugin.Dispense(p.rpc, client)
	if err != nil {
		return nil, fmt.Errorf("servetest: dispensing the backend: %w", err)
	}
	storage := &logical.InmemStorage{}
	if config == nil {
		config = map[string]string{}
	}
	err = be.Setup(ctx, &logical.BackendConfig{
		StorageView: storage,
		Logger:      hclog.NewNullLogger(),
		System:      systemView(p.vaultVersion),
		Config:      config,
		BackendUUID: id,
	})
	if err != nil {
		return nil, fmt.Errorf("servetest: setting up the mount: %w", err)
	}
	// A host in metadata mode only sets a backend up to ask for its
	// type and version; the SDK refuses Initialize then.
	if !p.metadataMode {
		if err := be.Initialize(ctx, &logical.InitializationRequest{Storage: storage}); err != nil {
			be.Cleanup(ctx)
			return nil, fmt.Errorf("servetest: initializing the mount: %w", err)
		}
	}
	return &Mount{Backend: be, Storage: storage, ID: id}, nil
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

// systemView is what Vault's system view tells a mount, as far as a
// plugin reaches it over gRPC. The SDK's gRPC system view answers
// VaultVersion from PluginEnv, as Vault's dynamicSystemView fills it
// (version, prerelease and metadata apart), so that is set too: left nil,
// the plugin's VaultVersion and PluginEnv calls panic in the SDK.
func systemView(vaultVersion string) logical.StaticSystemView {
	release, metadata, _ := strings.Cut(vaultVersion, "+")
	release, prerelease, _ := strings.Cut(release, "-")
	return logical.StaticSystemView{
		DefaultLeaseTTLVal: time.Hour,
		MaxLeaseTTLVal:     24 * time.Hour,
		VersionString:      vaultVersion,
		PluginEnvironment: &logical.PluginEnvironment{
			VaultVersion:           release,
			VaultVersionPrerelease: prerelease,
			VaultVersionMetadata:   metadata,
		},
	}
}

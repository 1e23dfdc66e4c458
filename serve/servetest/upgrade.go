package servetest

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"
	sdkplugin "github.com/hashicorp/vault/sdk/plugin"
)

// This file plays what Vault does when a plugin's process is replaced:
// an operator's upgrade (`vault plugin register` of the new binary,
// `vault secrets tune -plugin-version`, `vault plugin reload`), a reload
// alone, and the restart of a process that died, which Vault makes on the
// next request. What it mirrors is cited from Vault v1.21.0
// (vault/plugin_reload.go reloadBackendCommon, builtin/plugin/v5/backend.go,
// vault/plugincatalog/plugin_catalog.go).

// Upgrade moves every mount of p to the plugin binary bin, as an operator
// upgrades a plugin in Vault: register bin's sha256 and the version it
// reports under p's name, tune each mount's plugin_version to it, and
// reload the plugin. In servetest that is what the reload does
// (reloadBackendCommon): each mount's backend is cleaned up as a reload
// cleans it up (Cleanup, with the SDK's reload context), the process
// stops, bin starts with the options p was started with, and each Mount
// gets a new backend instance there: Setup with the mount's configuration,
// then Initialize, on the same Storage, with the same ID (multiplexing id
// and BackendUUID), MountPoint, accessor and leases. The Mount values a
// test holds stay valid; the running version and sha256 that requests
// carry are bin's from then on. Upgrade waits for the requests in flight
// and holds new ones back until it returns, as Vault's reload does.
//
// If bin does not start, or a mount's Setup or Initialize fails there,
// the error names bin and the version it reports (when one of its
// backends was set up far enough to tell) and wraps the cause: a
// *StartError for a binary that did not start (errors.As finds it),
// ErrNotMultiplexed for a binary that serves one mount per process where p
// has several. p is then left on the binary it ran before, serving: that
// binary is started again and every mount set up anew on it, so nothing
// is half-done. Vault
// gets there too, lazily: a mount whose reload failed keeps its old
// backend, which restarts its old version on the next request; but
// Vault keeps the registration and the tuned version, which is why an
// operator undoes them (see the package doc). Only when the old binary
// does not start again either are the mounts left without a process; the
// next request then tries to start it, as Vault's would.
//
// ctx's deadline, if any, bounds each start's handshake, as for New.
// Upgrade with the binary p already runs is Reload.
//
// On a real host Upgrade is the operator's steps through the host's API:
// bin's copy registered under p's catalog name with its sha256 and its
// version (or v0.0.0-servetest.N when it reports no semantic version),
// each mount's plugin_version tuned, the plugin reloaded, and each mount
// read back. On failure each step is undone (mounts tuned back, the new
// entry deleted, a reload), so the old binary serves and nothing of bin
// stays registered; the error wraps the host's answer, as a *StartError
// when the host quotes the plugin's own line. See the package doc.
func (p *Plugin) Upgrade(ctx context.Context, bin string) error {
	return p.replace(ctx, bin)
}

// Reload reloads the plugin, as `vault plugin reload -plugin NAME` does:
// each mount's backend is cleaned up (Cleanup, once, with the SDK's reload
// context), the process stops, the same binary starts again with the same
// options, and each Mount gets a new backend instance on the same Storage,
// as Upgrade describes. A failure leaves p serving on a process started
// anew, as after a failed Upgrade, or the error says that it is not. On a
// real host it is `vault plugin reload -plugin NAME`
// (sys/plugins/reload/backend), each mount read back after it.
func (p *Plugin) Reload(ctx context.Context) error {
	return p.replace(ctx, "")
}

// reloadContext is ctx marked as Vault marks a reload's Cleanup
// (reloadBackendCommon): the SDK's client then asks the host's plugin
// catalog to reload the process instead of closing its connection.
func reloadContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, sdkplugin.ContextKeyPluginReload, "reload")
}

// pluginShutdown reports whether err is the failure of a call to a plugin
// whose process is gone, as Vault's plugin backend tells it
// (builtin/plugin/v5/backend.go HandleRequest): the SDK's
// ErrPluginShutdown, or net/rpc's ErrShutdown by its text.
func pluginShutdown(err error) bool {
	return err != nil && (errors.Is(err, sdkplugin.ErrPluginShutdown) || err.Error() == rpc.ErrShutdown.Error())
}

// call makes the call f to the mount's backend as Vault's router makes it
// through builtin/plugin/v5's backend: while no swap of the process is
// under way; and when it fails because the plugin's process is gone, the
// mount is set up anew in a new process and f is called once more
// (reloadBackend). A restart that fails is the call's error, as in Vault.
func (m *Mount) call(ctx context.Context, f func(logical.Backend) error) error {
	p := m.plugin
	p.swap.RLock()
	st := m.inst.state()
	err := f(st.be)
	p.swap.RUnlock()
	if !pluginShutdown(err) || !m.inst.live() {
		return err
	}
	p.swap.Lock()
	// Vault's canary: a concurrent call may have restarted it already.
	if m.inst.state() == st {
		if err := p.restart(ctx, m); err != nil {
			p.swap.Unlock()
			return err
		}
	}
	p.swap.Unlock()
	p.swap.RLock()
	defer p.swap.RUnlock()
	return f(m.inst.state().be)
}

// restart sets m up anew after its process died, as Vault's plugin
// backend does on the next call (reloadBackend): the old instance's
// Cleanup with the reload context, which cannot reach the dead process
// but stops the host's side of its connection, then a new instance in the
// process that serves now. When that process is gone too, the binary is
// started again first, with the same options, as Vault's plugin catalog
// spawns a new process for the first mount that needs one; the plugin's
// other mounts join it on their own next call. The caller holds swap for
// writing.
func (p *Plugin) restart(ctx context.Context, m *Mount) error {
	if err := p.open(); err != nil {
		return err
	}
	ch := p.serving()
	if ch.exited() {
		nc, err := launch(ctx, ch.bin, p.conf)
		if err != nil {
			return fmt.Errorf("servetest: restarting the plugin %s, whose process exited: %w", p.name, err)
		}
		if err := p.adopt(nc); err != nil {
			return err
		}
		ch.release()
		ch = nc
	}
	m.inst.state().be.Cleanup(reloadContext(ctx))
	in, err := p.setUp(ctx, m, ch)
	if err != nil {
		return err
	}
	m.inst.set(in)
	return nil
}

// registry lists the mounts of a Plugin or the connections of a Database,
// for Upgrade and Reload. It is held by pointer so that Plugin and
// Database stay comparable, as they were at v1.0.0.
type registry[T any] struct {
	mu   sync.Mutex
	list []T
}

func (r *registry[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, v)
}

func (r *registry[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.list...)
}

// liveMounts returns the mounts not cleaned up, in the order they were
// made.
func (p *Plugin) liveMounts() []*Mount {
	var live []*Mount
	for _, m := range p.mounts.all() {
		if m.inst.live() {
			live = append(live, m)
		}
	}
	return live
}

// replace is Upgrade to bin, or Reload when bin is "".
func (p *Plugin) replace(ctx context.Context, bin string) error {
	p.swap.Lock()
	defer p.swap.Unlock()
	if p.host != nil {
		return p.replaceOnHost(ctx, bin)
	}
	if err := p.open(); err != nil {
		return err
	}
	old := p.serving()
	verb := "upgrading"
	if bin == "" || bin == old.bin {
		bin, verb = old.bin, "reloading"
	}
	mounts := p.liveMounts()
	oldVersion := ""
	for _, m := range mounts {
		oldVersion = " (" + describeVersion(m.inst.state().version) + ")"
		break
	}

	// reloadBackendCommon, for each mount: Cleanup with the reload
	// context, which for a multiplexed plugin ends with the catalog
	// killing the process. Here every mount is cleaned up first, then
	// the process stops as Process.Close stops it.
	for _, m := range mounts {
		m.inst.state().be.Cleanup(reloadContext(ctx))
	}
	old.release()

	states, reported, err := p.startOn(ctx, bin, mounts)
	if err == nil {
		for i, m := range mounts {
			m.inst.set(states[i])
		}
		return nil
	}
	what := fmt.Sprintf("upgrading the plugin %s to %s (%s)", p.name, bin, reported)
	if verb == "reloading" {
		what = fmt.Sprintf("reloading the plugin %s (%s)", p.name, bin)
	}

	// Back to the binary that ran before, as Vault's plugin backend
	// goes back to its old version on the next request.
	states, _, backErr := p.startOn(ctx, old.bin, mounts)
	if backErr != nil {
		return fmt.Errorf("servetest: %s failed, and starting %s again failed too, so no process serves its mounts until a request starts one (%v): %w", what, old.bin, backErr, err)
	}
	for i, m := range mounts {
		m.inst.set(states[i])
	}
	return fmt.Errorf("servetest: %s failed, and it serves %s%s again: %w", what, old.bin, oldVersion, err)
}

// describeVersion is a reported version as errors show it.
func describeVersion(v string) string {
	if v == "" {
		return "no version"
	}
	return v
}

// startOn starts bin and sets each of mounts up on it, and makes it the
// process that serves. It returns the mounts' new instances, in order,
// and what bin reports as its version, as errors show it: "it reports
// V" once a mount was set up on it, or why that is unknown. On failure
// nothing it started is left running. The caller holds swap for writing.
func (p *Plugin) startOn(ctx context.Context, bin string, mounts []*Mount) ([]*instanceState, string, error) {
	ch, err := launch(ctx, bin, p.conf)
	if err != nil {
		return nil, "version unknown: it did not start", err
	}
	reported := "version unknown: no mount was set up on it"
	if !ch.multiplex && len(mounts) > 1 {
		ch.release()
		return nil, reported, fmt.Errorf("%w: Vault would run a process per mount, and this Plugin has %d mounts", ErrNotMultiplexed, len(mounts))
	}
	var states []*instanceState
	for _, m := range mounts {
		in, err := p.setUp(ctx, m, ch)
		if err != nil {
			for _, s := range states {
				s.be.Cleanup(ctx)
			}
			ch.release()
			return nil, reported, fmt.Errorf("mount %s: %w", m.MountPoint, err)
		}
		states = append(states, in)
		reported = "it reports " + describeVersion(in.version)
	}
	if err := p.adopt(ch); err != nil {
		return nil, reported, err
	}
	return states, reported, nil
}

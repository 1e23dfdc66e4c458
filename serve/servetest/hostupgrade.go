package servetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/plugkit/vaultplugin/internal/filehash"
)

// This file is Plugin.Upgrade and Reload on a real host: what an operator
// does, through the host's API (`vault plugin register`, `vault secrets
// tune -plugin-version`, `vault plugin reload`), and what the operator
// then undoes when the new binary does not serve.

// hostCurrent is what a real host runs the plugin from now: its copy in
// the plugin directory, its catalog version and sha256, and the binary it
// was copied from. An upgrade changes it; Close removes what it names.
type hostCurrent struct {
	file, version, sha256, bin string
}

func (h *hostProcess) now() hostCurrent {
	h.curMu.Lock()
	defer h.curMu.Unlock()
	return h.cur
}

func (h *hostProcess) setNow(c hostCurrent) {
	h.curMu.Lock()
	defer h.curMu.Unlock()
	h.cur = c
}

// register puts the binary's copy file (named in the plugin directory)
// into the catalog under the plugin's name at version, as `vault plugin
// register -sha256=… -version=… TYPE NAME` does, with the arguments and
// environment the plugin was started with.
func (h *hostProcess) register(ctx context.Context, file, sum, version string) error {
	body := map[string]any{"sha256": sum, "command": filepath.Base(file), "args": h.args, "env": h.env}
	if version != "" {
		body["version"] = version
	}
	_, err := h.srv.api.call(ctx, "PUT", "sys/plugins/catalog/"+h.typ+"/"+h.name, body)
	return err
}

// deregister deletes the catalog entry of the plugin at version.
func (h *hostProcess) deregister(ctx context.Context, version string) error {
	q := ""
	if version != "" {
		q = "?version=" + version
	}
	_, err := h.srv.api.call(ctx, "DELETE", "sys/plugins/catalog/"+h.typ+"/"+h.name+q, nil)
	return err
}

// reload reloads every mount of the plugin, as `vault plugin reload
// -plugin NAME` does: sys/plugins/reload/backend, which Vault 1.21.0 and
// OpenBao 2.6.2 both take (Vault's newer sys/plugins/reload/:type/:name
// is Vault's alone).
func (h *hostProcess) reload(ctx context.Context) error {
	_, err := h.srv.api.call(ctx, "PUT", "sys/plugins/reload/backend", map[string]any{"plugin": h.name})
	return err
}

// tune sets the mount's plugin_version, as `vault secrets tune
// -plugin-version=V` (or `vault auth tune`) does.
func (hm *hostMount) tune(ctx context.Context, version string) error {
	_, err := hm.srv.api.call(ctx, "POST", hm.sysPath+hm.path+"/tune", map[string]any{"plugin_version": version})
	return err
}

// running reads the mount back: the version and sha256 the host runs it
// from now, and updates what its Backend's PluginVersion reports.
func (hm *hostMount) running(ctx context.Context) (version, sum string, err error) {
	info, err := hm.srv.api.call(ctx, "GET", hm.sysPath+hm.path, nil)
	if err != nil {
		return "", "", err
	}
	if d, ok := info["data"].(map[string]any); ok {
		info = d
	}
	version, _ = info["running_plugin_version"].(string)
	sum, _ = info["running_sha256"].(string)
	hm.be.setVersion(version)
	return version, sum, nil
}

// liveHostMounts are the plugin's mounts on the host not disabled yet.
func (p *Plugin) liveHostMounts() []*hostMount {
	var live []*hostMount
	for _, m := range p.mounts.all() {
		if m.host != nil && !m.host.gone.Load() {
			live = append(live, m.host)
		}
	}
	return live
}

// replaceOnHost is Upgrade to bin, or Reload when bin is "", on a real
// host. The caller holds swap for writing.
func (p *Plugin) replaceOnHost(ctx context.Context, bin string) error {
	if err := p.open(); err != nil {
		return err
	}
	h := p.host
	old := h.now()
	if bin == "" || bin == old.bin {
		if err := h.reload(ctx); err != nil {
			return fmt.Errorf("servetest: reloading the plugin %s on %s: %w", h.name, h.srv.info.Name, err)
		}
		return p.verifyOnHost(ctx, old)
	}

	// What the old binary is, for the errors: it serves on after a
	// failure, as the emulation's does.
	serves := func(what string, err error) error {
		return fmt.Errorf("servetest: %s failed, and it serves %s (%s) again: %w", what, old.bin, describeVersion(old.version), err)
	}
	what := fmt.Sprintf("upgrading the plugin %s to %s", h.name, bin)
	sum, err := filehash.SHA256(bin)
	if err != nil {
		return serves(what+" (version unknown: it did not start)", &StartError{Binary: bin, Err: err})
	}
	next := hostCurrent{sha256: fmt.Sprintf("%x", sum), bin: bin}
	// The version to register it under: its own, asked as the catalog
	// asks it, when it reports a semantic version (the catalog refuses
	// another then); else one made up, as a mount's plugin_version cannot
	// be tuned back to "" (the host refuses what is not a semantic
	// version), and the upgrade must be undone by tuning back.
	var reported string
	pr, err := h.srv.probe(ctx, bin, next.sha256, false, p.conf)
	var se *StartError
	switch {
	case err == nil:
		reported = "it reports " + describeVersion(pr.version)
		next.version = catalogVersion(pr.version)
	case errors.As(err, &se):
		reported = "version unknown: it did not start"
	default:
		reported = "version unknown: no mount was set up on it"
	}
	if next.version == "" || next.version == old.version {
		next.version = h.madeUpVersion()
	}
	what = fmt.Sprintf("%s (%s; registered as %s)", what, reported, next.version)

	// Its copy, under a file name of its own.
	suffix, err := randomName(6)
	if err != nil {
		return err
	}
	// Named as the first copy is, after the binary: a plugin may read
	// its own name.
	next.file = filepath.Join(h.srv.pluginDir, strings.TrimSuffix(filepath.Base(bin), ".exe")+"-"+suffix)
	if err := linkOrCopy(bin, next.file); err != nil {
		return serves(what, fmt.Errorf("copying it into the %s plugin directory: %w", h.srv.info.Name, err))
	}
	undoFile := func() { os.Remove(next.file) }
	if err := h.register(ctx, next.file, next.sha256, next.version); err != nil {
		undoFile()
		return serves(what, fmt.Errorf("registering it in the %s catalog: %w", h.srv.info.Name, err))
	}
	mounts := p.liveHostMounts()
	var tuned []*hostMount
	upErr := func() error {
		for _, hm := range mounts {
			if err := hm.tune(ctx, next.version); err != nil {
				return fmt.Errorf("tuning %s: %w", hm.point, err)
			}
			tuned = append(tuned, hm)
		}
		if err := h.reload(ctx); err != nil {
			return err
		}
		return p.verifyOnHost(ctx, next)
	}()
	if upErr == nil {
		// The old version is no longer mounted: its entry and copy go, as
		// an operator deregisters what nothing runs.
		h.setNow(next)
		_ = h.deregister(ctx, old.version)
		os.Remove(old.file)
		return nil
	}
	upErr = hostStartError(bin, upErr)

	// What the operator undoes: each mount tuned back, the new entry
	// deleted, a reload, so that the old binary serves again now and
	// not on some later request. An old entry without a version cannot
	// be tuned back to: it is registered again under a made-up version.
	back := old
	if back.version == "" {
		back.version = h.madeUpVersion()
		if err := h.register(ctx, back.file, back.sha256, back.version); err != nil {
			return fmt.Errorf("servetest: %s failed, and registering %s again under %s failed too (%v): %w", what, old.bin, back.version, err, upErr)
		}
	}
	var backErrs []error
	for _, hm := range tuned {
		if err := hm.tune(ctx, back.version); err != nil {
			backErrs = append(backErrs, fmt.Errorf("tuning %s back: %w", hm.point, err))
		}
	}
	if err := h.deregister(ctx, next.version); err != nil {
		backErrs = append(backErrs, fmt.Errorf("deleting the catalog entry %s: %w", next.version, err))
	}
	undoFile()
	if err := h.reload(ctx); err != nil {
		backErrs = append(backErrs, fmt.Errorf("reloading: %w", err))
	}
	if back.version != old.version {
		_ = h.deregister(ctx, old.version)
		h.setNow(back)
	}
	if err := errors.Join(backErrs...); err != nil {
		return fmt.Errorf("servetest: %s failed, and undoing it failed too (%v): %w", what, err, upErr)
	}
	if err := p.verifyOnHost(ctx, back); err != nil {
		return fmt.Errorf("servetest: %s failed, and %s does not serve again (%v): %w", what, old.bin, err, upErr)
	}
	return serves(what, upErr)
}

// verifyOnHost checks that every mount of the plugin runs the binary of
// cur now, as the host reports it (running_sha256), so that a reload the
// host answered with success but did not carry out is not taken for one.
func (p *Plugin) verifyOnHost(ctx context.Context, cur hostCurrent) error {
	for _, hm := range p.liveHostMounts() {
		_, sum, err := hm.running(ctx)
		if err != nil {
			return fmt.Errorf("reading the mount %s back: %w", hm.point, err)
		}
		if sum != "" && sum != cur.sha256 {
			return fmt.Errorf("the mount %s runs the binary of sha256 %s, not %s's", hm.point, sum, cur.bin)
		}
	}
	return nil
}

// madeUpVersion is a version for a catalog entry of a binary that reports
// none of its own (or the one already registered): v0.0.0-servetest.N.
func (h *hostProcess) madeUpVersion() string {
	return fmt.Sprintf("v0.0.0-servetest.%d", h.versions.Add(1))
}

// unrecognized is how Vault and OpenBao quote what a plugin printed where
// its handshake belonged.
const unrecognized = "Unrecognized remote plugin message: "

// hostStartError is err, the host's failure to run bin, as a *StartError
// when the host quotes the plugin's own words (its Cause and Stdout), so
// that a test asks errors.As of it as of the emulation's.
func hostStartError(bin string, err error) error {
	msg := err.Error()
	i := strings.Index(msg, unrecognized)
	if i < 0 {
		return err
	}
	cause := msg[i+len(unrecognized):]
	// The quote ends the line, or go-plugin's explanation that follows.
	if j := strings.IndexAny(cause, "\n"); j >= 0 {
		cause = cause[:j]
	}
	if j := strings.Index(cause, "This usually means"); j >= 0 {
		cause = cause[:j]
	}
	cause = strings.TrimSpace(cause)
	return &StartError{Binary: bin, Stdout: cause, Cause: cause, Err: &hostStartCause{msg: unrecognized + cause, err: err}}
}

// hostStartCause is the host's error about a plugin that did not start,
// shown by its one line that quotes the plugin (the rest repeats it, with
// go-plugin's generic explanation and the plugin file's details), and
// unwrapping to the whole of it.
type hostStartCause struct {
	msg string
	err error
}

func (e *hostStartCause) Error() string { return e.msg }
func (e *hostStartCause) Unwrap() error { return e.err }

package servetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/internal/filehash"
	"github.com/plugkit/vaultplugin/internal/procfs"
)

// hostProcess is a Process's part on a real host: the plugin's catalog
// entry and its copy in the server's plugin directory.
type hostProcess struct {
	srv    *hostServer
	typ    string   // the catalog's type: "secret", "auth" or "database"
	name   string   // the catalog entry's name, unique per Start
	args   []string // the catalog entry's -args
	env    []string // the catalog entry's -env
	probe  probed
	logs   *lineLog
	mounts atomic.Int64  // mounts (or connections) made, for their names
	reg    time.Duration // what registering took
	mount  atomic.Int64  // what the first mount took, in nanoseconds

	engine string     // a database plugin's engine path, "NAME/"
	roleMu sync.Mutex // a database engine's roles are defined and read one at a time

	// undo holds what takes launchOnHost's steps back, in the order the
	// steps were taken; release runs it last first, once, as a child's.
	undo        []func()
	releaseOnce sync.Once

	// cur is what the host runs the plugin from now (its copy, catalog
	// version and sha256), which Plugin.Upgrade replaces; versions
	// counts the versions made up for it.
	curMu    sync.Mutex
	cur      hostCurrent
	versions atomic.Int64
}

// release undoes launchOnHost, last step first, once: Close calls it, and
// a failed start. It does nothing for nil (the emulation).
func (h *hostProcess) release() {
	if h == nil {
		return
	}
	h.releaseOnce.Do(func() {
		for i := len(h.undo) - 1; i >= 0; i-- {
			h.undo[i]()
		}
	})
}

// probed is what a plugin binary said of itself when started in the
// emulation, which the catalog needs before the host starts it.
type probed struct {
	typ     logical.BackendType // backends only
	paths   *logical.Paths
	version string
}

// probeKey is what makes a binary answer the same: its contents, its
// file's name (which a plugin may read, as the servetest tests' plugins
// take modes from it) and how it is started.
func probeKey(bin, sum string, database bool, c *config) string {
	return fmt.Sprintf("%s\x00%s\x00%v\x00%q\x00%q", sum, filepath.Base(bin), database, c.env, c.args)
}

// probe starts bin in the emulation, as the host would start it (its
// environment entries and arguments), to learn what the catalog needs:
// its type (secret or auth, from a mount's Type) and the version it
// reports. Vault asks the same of a binary it does not know: an emulation
// start takes a few tens of milliseconds, and each binary is asked once
// per test binary. A plugin that does not start fails here, with the
// emulation's *StartError, as it would fail on the host.
func (s *hostServer) probe(ctx context.Context, bin, sum string, database bool, c *config) (probed, error) {
	key := probeKey(bin, sum, database, c)
	s.mu.Lock()
	pr, ok := s.probes[key]
	s.mu.Unlock()
	if ok {
		return pr, nil
	}
	opts := []Option{WithHost(""), WithEnv(c.env...), WithArgs(c.args...)}
	if database {
		d, err := NewDatabase(ctx, bin, opts...)
		if err != nil {
			return probed{}, err
		}
		defer d.Close()
		conn, err := d.NewConnection(ctx)
		if err != nil {
			return probed{}, err
		}
		pr.version = conn.PluginVersion().Version
	} else {
		// Metadata mode, as Vault starts a binary to learn its type and
		// version: Setup answers, nothing is initialized. The mount is
		// made untracked, so Close does not clean it up: a plugin's
		// Cleanup may leave traces (files, counters) a test checks.
		p, err := New(ctx, bin, append(opts, WithMetadataMode())...)
		if err != nil {
			return probed{}, err
		}
		defer p.Close()
		m, err := p.newMount(ctx, nil)
		if err != nil {
			return probed{}, err
		}
		pr.typ = m.Type()
		pr.paths = m.SpecialPaths()
		if v, ok := m.Backend.(logical.PluginVersioner); ok {
			pr.version = v.PluginVersion().Version
		}
	}
	s.mu.Lock()
	s.probes[key] = pr
	s.mu.Unlock()
	return pr, nil
}

// catalogVersion is the version to register a plugin that reports v
// under: v when the host takes it (a semantic version), "" otherwise, as
// an operator registers a plugin whose version is not one.
func catalogVersion(v string) string {
	if v == "" {
		return ""
	}
	if _, err := version.NewSemver(v); err != nil {
		return ""
	}
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	return v
}

// launchOnHost starts bin on the real host c names, as an operator
// would: a copy in the plugin directory, a catalog entry of its own
// (sha256, command, -args, -env, its version), ready for mounts. database
// says whether it is a database plugin; a backend's type is probed.
func launchOnHost(ctx context.Context, bin string, c *config, database bool) (_ *Process, err error) {
	// Refused before the host starts, so a test that only skips does
	// not start it.
	if err := c.emulationOnlyOptions(nil); err != nil {
		return nil, err
	}
	srv, err := sharedHost(c.hostBin())
	if err != nil {
		return nil, err
	}
	if err := c.emulationOnlyOptions(&srv.info); err != nil {
		return nil, err
	}
	sum, err := filehash.SHA256(bin)
	if err != nil {
		return nil, &StartError{Binary: bin, Err: err}
	}
	hexSum := fmt.Sprintf("%x", sum)
	pr, err := srv.probe(ctx, bin, hexSum, database, c)
	if err != nil {
		return nil, err
	}
	h := &hostProcess{srv: srv, probe: pr, logs: &lineLog{}}
	switch {
	case database:
		h.typ = "database"
	case pr.typ == logical.TypeCredential:
		h.typ = "auth"
	default:
		h.typ = "secret"
	}
	p := &Process{conf: c, info: srv.info, host: h, logs: []*lineLog{h.logs}}
	defer func() {
		if err != nil {
			h.release()
		}
	}()
	base := c.pluginName
	if base == "" {
		base = strings.TrimSuffix(filepath.Base(bin), ".exe")
	}
	suffix, err := randomName(6)
	if err != nil {
		return nil, err
	}
	h.name = base + "-" + suffix
	h.cur = hostCurrent{file: filepath.Join(srv.pluginDir, h.name), version: catalogVersion(pr.version), sha256: hexSum, bin: bin}
	if err := linkOrCopy(bin, h.cur.file); err != nil {
		return nil, fmt.Errorf("servetest: copying %s into the %s plugin directory: %w", bin, srv.info.Name, err)
	}
	// The copy the plugin runs from at the end: an upgrade replaces it.
	h.undo = append(h.undo, func() { os.Remove(h.now().file) })
	// The host's log lines for this plugin: its own records, which the
	// host re-logs under the catalog name, and the host's about it.
	sub := &hostLogSub{match: h.name, lines: h.logs, stderr: c.stderr, logger: c.logger}
	h.undo = append(h.undo, srv.log.subscribe(sub))

	env := append([]string(nil), c.env...)
	if dir := coverDir(); dir != "" {
		env = append(env, "GOCOVERDIR="+dir)
	}
	h.args, h.env = c.args, env
	start := time.Now()
	if err := h.register(ctx, h.cur.file, hexSum, h.cur.version); err != nil {
		return nil, fmt.Errorf("servetest: registering %s in the %s catalog: %w", bin, srv.info.Name, err)
	}
	h.reg = time.Since(start)
	h.undo = append(h.undo, func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = h.deregister(ctx, h.now().version)
	})
	// Whatever runs the copy once the mounts are gone: the host stops a
	// plugin when its last mount goes, and Close waits for that, then
	// kills what is left (a process the host lost track of).
	h.undo = append(h.undo, func() { h.waitGone(closeTimeout) })
	return p, nil
}

// linkOrCopy puts src at dst: a hard link, or else a copy.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

// pids are the processes running the plugin's copy now.
func (h *hostProcess) pids() []int { return procfs.Running(h.now().file) }

// waitGone waits up to d for the processes running the plugin's copy to
// end, then kills those left.
func (h *hostProcess) waitGone(d time.Duration) {
	deadline := time.Now().Add(d)
	for len(h.pids()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range h.pids() {
		_ = killPID(pid)
	}
}

// killPID kills the process pid at once.
func killPID(pid int) error {
	proc, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer proc.Release() //nolint:errcheck // only frees the handle
	return proc.Kill()
}

// kill ends every process running the plugin's copy at once, as a crash
// would.
func (h *hostProcess) kill() error {
	pids := h.pids()
	if len(pids) == 0 {
		return errors.New("servetest: no process runs the plugin now: the host starts it on a mount's first need")
	}
	for _, pid := range pids {
		if err := killPID(pid); err != nil {
			return fmt.Errorf("servetest: killing %d: %w", pid, err)
		}
	}
	return nil
}

// newOnHost is New on a real host.
func newOnHost(ctx context.Context, bin string, c *config) (*Plugin, error) {
	proc, err := launchOnHost(ctx, bin, c, false)
	if err != nil {
		return nil, err
	}
	return &Plugin{
		Process:      proc,
		vaultVersion: proc.info.Version,
		name:         proc.host.name,
		defaultTTL:   c.defaultTTL,
		maxTTL:       c.maxTTL,
		mounts:       &registry[*Mount]{},
	}, nil
}

// newMountOnHost enables a new mount of p's catalog entry, as
// `vault secrets enable` or `vault auth enable` does, with config as its
// options, and reads back what the host made of it.
func (p *Plugin) newMountOnHost(ctx context.Context, config map[string]string) (*Mount, error) {
	h := p.host
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, errors.New("servetest: the plugin is closed")
	}
	path := h.name
	if n := h.mounts.Add(1); n > 1 {
		path = fmt.Sprintf("%s-%d", h.name, n)
	}
	body := map[string]any{"type": h.name}
	if len(config) > 0 {
		body["options"] = config
	}
	if v := h.now().version; v != "" {
		body["plugin_version"] = v
	}
	if p.defaultTTL != DefaultLeaseTTL || p.maxTTL != DefaultMaxTTL {
		body["config"] = map[string]any{
			"default_lease_ttl": fmt.Sprintf("%ds", int64(p.defaultTTL.Seconds())),
			"max_lease_ttl":     fmt.Sprintf("%ds", int64(p.maxTTL.Seconds())),
		}
	}
	sys, mountPoint := "sys/mounts/", path+"/"
	if h.typ == "auth" {
		sys, mountPoint = "sys/auth/", "auth/"+path+"/"
	}
	start := time.Now()
	api := h.srv.api
	if _, err := api.call(ctx, "POST", sys+path, body); err != nil {
		return nil, fmt.Errorf("servetest: enabling %s at %s on %s: %w", h.name, mountPoint, h.srv.info.Name, err)
	}
	h.mount.CompareAndSwap(0, int64(time.Since(start)))
	hm := &hostMount{srv: h.srv, sysPath: sys, path: path, point: mountPoint}
	disable := func(ctx context.Context) error {
		hm.gone.Store(true)
		_, err := api.call(ctx, "DELETE", sys+path, nil)
		return err
	}
	info, err := api.call(ctx, "GET", sys+path, nil)
	if err != nil {
		_ = disable(ctx)
		return nil, fmt.Errorf("servetest: reading the mount %s back: %w", mountPoint, err)
	}
	if d, ok := info["data"].(map[string]any); ok {
		info = d
	}
	accessor, _ := info["accessor"].(string)
	typ, _ := info["type"].(string)
	running, _ := info["running_plugin_version"].(string)
	hm.be = &hostBackend{typ: h.probe.typ, paths: h.probe.paths, version: running}
	m := &Mount{
		Backend:    hm.be,
		MountPoint: mountPoint, MountType: typ, MountAccessor: accessor,
		class: h.typ, plugin: p, host: hm,
	}
	m.cleanup = p.track(disable)
	p.mounts.add(m)
	return m, nil
}

// hostMount is a Mount's part on a real host.
type hostMount struct {
	srv     *hostServer
	sysPath string       // "sys/mounts/" or "sys/auth/"
	path    string       // the mount's path under sys
	point   string       // its MountPoint
	be      *hostBackend // its Backend, whose version an upgrade changes
	gone    atomic.Bool  // disabled: an upgrade leaves it alone
}

// Package dev is vaultplugin's register and dev commands: what an author
// does by hand to put a plugin into a Vault (copy, register with its
// sha256 and version, mount, reload), as one command each.
package dev

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
	"github.com/plugkit/vaultplugin/internal/procfs"
)

// DevFlags defines dev's flags on fs and returns what runs `vaultplugin
// dev` once they are parsed: build the plugin package, serve it from a
// Vault dev server (or the Vault at VAULT_ADDR), mount it, and rebuild,
// re-register and reload it on every change to its Go files until
// interrupted. The flags' help is the command's help text, in package
// main.
func DevFlags(fs *flag.FlagSet) cli.Run {
	var o devOptions
	fs.StringVar(&o.vaultBin, "vault", "", "")
	fs.StringVar(&o.mountPath, "path", "", "")
	fs.StringVar(&o.pluginDir, "plugin-dir", "", "")
	fs.StringVar(&o.typ, "type", "", "")
	return o.run
}

// devOptions are dev's flags.
type devOptions struct {
	vaultBin, mountPath, pluginDir, typ string
}

func (o *devOptions) run(args []string, stdout, _ io.Writer) error {
	pkg := "."
	switch len(args) {
	case 0:
	case 1:
		pkg = args[0]
	default:
		return cli.Usagef("one PACKAGE at a time, got %s", strings.Join(args, " "))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &session{out: stdout, pkg: pkg, typ: o.typ, mountPath: o.mountPath}
	err := s.run(ctx, o.vaultBin, o.pluginDir)
	s.cleanup()
	return err
}

// session is one dev loop and what it started.
type session struct {
	out                 io.Writer
	pkg, typ, mountPath string

	work      string // the session's directory, removed at the end
	pluginDir string
	binary    string // the plugin's path in pluginDir
	vault     *vault
	server    *exec.Cmd
	serverEnd chan struct{}
	plugin    plugin
}

// run sets the plugin up in a Vault, then rebuilds and reloads it on
// every change until ctx ends.
func (s *session) run(ctx context.Context, vaultBin, pluginDir string) error {
	name, dirs, err := packageInfo(s.pkg)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	if s.work, err = os.MkdirTemp("", "vaultplugin-dev-"); err != nil {
		return fmt.Errorf("creating the work directory: %w", err)
	}
	fmt.Fprintf(s.out, "work dir: %s\n", s.work)

	// The Vault: a dev server of our own from -vault, whatever VAULT_ADDR
	// says (a shell keeps a stale one long after its Vault stopped), else
	// the one at VAULT_ADDR, else a dev server from the vault we find.
	if addr := os.Getenv("VAULT_ADDR"); addr != "" && vaultBin == "" {
		if pluginDir == "" {
			return cli.Usagef("VAULT_ADDR is set: give -plugin-dir, that Vault's plugin_directory, to copy the plugin into (or -vault BIN to start a dev server instead)")
		}
		if s.vault, err = vaultFromEnv(); err != nil {
			return &cli.UsageError{Err: err}
		}
		s.pluginDir = pluginDir
		fmt.Fprintf(s.out, "using the Vault at %s (VAULT_ADDR), %s; -vault BIN starts a dev server instead\n", s.vault.addr, s.vault.version(ctx))
	} else {
		if addr != "" {
			fmt.Fprintf(s.out, "ignoring VAULT_ADDR=%s: -vault starts a dev server of its own\n", addr)
		}
		s.pluginDir = filepath.Join(s.work, "plugins")
		if err := os.Mkdir(s.pluginDir, 0o755); err != nil {
			return fmt.Errorf("creating the plugin directory: %w", err)
		}
		bin, err := findVault(vaultBin)
		if err != nil {
			return &cli.UsageError{Err: err}
		}
		if err := s.startVault(ctx, bin); err != nil {
			return err
		}
	}
	s.binary = filepath.Join(s.pluginDir, name)

	before := snapshot(dirs)
	took, out, err := s.build(ctx)
	if err != nil {
		return fmt.Errorf("building %s: %v\n%s", s.pkg, err, out)
	}
	if s.plugin, err = describe(s.binary, name, s.typ, "", false); err != nil {
		return &cli.UsageError{Err: err}
	}
	if s.mountPath == "" {
		s.mountPath = s.plugin.name
		if s.plugin.typ == "database" {
			s.mountPath = "database"
		}
	}
	if err := s.vault.register(ctx, s.plugin); err != nil {
		return err
	}
	if err := s.vault.mount(ctx, s.plugin, s.mountPath); err != nil {
		return err
	}
	if s.plugin.typ == "database" {
		s.connectDatabase(ctx)
		fmt.Fprintf(s.out, "built in %s; database plugin %s %s serves the connection %s/config/%s, pid %s\n", round(took), s.plugin.name, orNone(s.plugin.version), s.mountPath, s.plugin.name, s.pid())
	} else {
		fmt.Fprintf(s.out, "built in %s; %s plugin %s %s mounted at %s/, pid %s\n", round(took), s.plugin.typ, s.plugin.name, orNone(s.plugin.version), s.mountPrefix(), s.pid())
	}
	fmt.Fprintf(s.out, "in another terminal:\n  export VAULT_ADDR=%s\n  export VAULT_TOKEN=%s\n", s.vault.addr, s.vault.token)
	if s.plugin.typ == "database" {
		fmt.Fprintf(s.out, "  vault write %s/roles/dev db_name=%s default_ttl=1h\n  vault read %s/creds/dev\n", s.mountPath, s.plugin.name, s.mountPath)
	}
	fmt.Fprintf(s.out, "watching %d package directories for changes; Ctrl-C stops\n", len(dirs))
	return s.watch(ctx, dirs, before)
}

// cycle rebuilds, and on success re-registers and reloads, printing one
// status line. A failed build leaves the old plugin serving.
func (s *session) cycle(ctx context.Context) {
	took, out, err := s.build(ctx)
	if err != nil {
		fmt.Fprintf(s.out, "build failed after %s; the previous build is still serving:\n%s\n", round(took), strings.TrimSpace(out))
		return
	}
	// The type is settled by the first build's describe.
	p, err := describe(s.binary, s.plugin.name, s.plugin.typ, "", true)
	if err != nil {
		fmt.Fprintf(s.out, "built in %s, but: %v\n", round(took), err)
		return
	}
	start := time.Now()
	if err := s.vault.register(ctx, p); err != nil {
		fmt.Fprintf(s.out, "built in %s, but registering failed: %v\n", round(took), err)
		return
	}
	if p.typ == "database" {
		if !s.reconnect(ctx, p, took) {
			return
		}
	} else {
		if p.version != s.plugin.version {
			// A new version must be the mount's too, or the reload
			// starts the old entry's binary again.
			if err := s.vault.tuneVersion(ctx, p, s.mountPath); err != nil {
				fmt.Fprintf(s.out, "built in %s, but tuning the mount to %s failed: %v\n", round(took), p.version, err)
				return
			}
		}
		if err := s.vault.reload(ctx, p.name, ""); err != nil {
			fmt.Fprintf(s.out, "built in %s, but reloading failed: %v\n", round(took), err)
			return
		}
	}
	s.plugin = p
	fmt.Fprintf(s.out, "rebuilt in %s, registered and reloaded in %s, pid %s\n", round(took), round(time.Since(start)), s.pid())
}

// connectDatabase configures the database plugin's connection. A plugin
// that needs settings of its own (a database's address, credentials)
// refuses the configuration dev writes: that is said, and the loop goes
// on, so that the author writes the connection's configuration and the
// next build is put to work all the same.
func (s *session) connectDatabase(ctx context.Context) {
	if err := s.vault.connect(ctx, s.plugin, s.mountPath); err != nil {
		fmt.Fprintf(s.out, "configuring the connection %s/config/%s failed: %v\n  configure it with: vault write %s/config/%s plugin_name=%s allowed_roles='*' …\n",
			s.mountPath, s.plugin.name, err, s.mountPath, s.plugin.name, s.plugin.name)
	}
}

// reconnect puts a new build of a database plugin to work: a new version
// is written into the connection's configuration (which also reopens
// it), else the connection is reset. It reports whether that worked,
// having said why not.
func (s *session) reconnect(ctx context.Context, p plugin, took time.Duration) bool {
	var err error
	if p.version != s.plugin.version {
		err = s.vault.connect(ctx, p, s.mountPath)
	} else {
		err = s.vault.reset(ctx, p, s.mountPath)
	}
	if err != nil {
		fmt.Fprintf(s.out, "built in %s, but reopening the connection %s/config/%s failed: %v\n", round(took), s.mountPath, p.name, err)
		return false
	}
	return true
}

// pid is the process id of the plugin serving the mount, as far as this
// system tells (Linux's /proc), after a request to the mount has made
// Vault start it.
func (s *session) pid() string {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	// Any answer will do: the request only makes Vault start the plugin.
	_, _ = s.vault.call(ctx, "GET", s.mountPrefix()+"/", nil)
	pids := procfs.Running(s.binary)
	if len(pids) == 0 {
		return "unknown"
	}
	strs := make([]string, len(pids))
	for i, p := range pids {
		strs[i] = strconv.Itoa(p)
	}
	return strings.Join(strs, ",")
}

// mountPrefix is the mount's path in Vault's API: auth methods live under
// auth/.
func (s *session) mountPrefix() string {
	if s.plugin.typ == "auth" {
		return "auth/" + s.mountPath
	}
	return s.mountPath
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

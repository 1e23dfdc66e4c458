package dev

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
	"github.com/plugkit/vaultplugin/internal/filehash"
	"github.com/plugkit/vaultplugin/serve/servetest"
)

// probeTimeout bounds running the binary with -version or -describe to
// learn what it is: a plugin answers those at once, and a binary that
// instead waits for a handshake must not hang the command.
const probeTimeout = 10 * time.Second

// plugin is what Vault's catalog records for a binary.
type plugin struct {
	name, typ, version, command, sha256 string
}

// RegisterFlags defines register's flags on fs and returns what runs
// `vaultplugin register` once they are parsed: it registers BINARY in the
// catalog of the Vault at VAULT_ADDR, with its sha256 and version, and
// reloads it when asked. The flags' help is the command's help text, in
// package main.
func RegisterFlags(fs *flag.FlagSet) cli.Run {
	var o registerOptions
	fs.StringVar(&o.name, "name", "", "")
	fs.StringVar(&o.version, "version", "", "")
	fs.StringVar(&o.typ, "type", "", "")
	fs.StringVar(&o.pluginDir, "plugin-dir", "", "")
	fs.BoolVar(&o.reload, "reload", false, "")
	fs.BoolVar(&o.force, "force", false, "")
	fs.StringVar(&o.scope, "scope", "", "")
	return o.run
}

// registerOptions are register's flags.
type registerOptions struct {
	name, version, typ, pluginDir, scope string
	reload, force                        bool
}

func (o *registerOptions) run(args []string, stdout, _ io.Writer) error {
	switch len(args) {
	case 0:
		return cli.Usagef("no BINARY to register")
	case 1:
	default:
		return cli.Usagef("one BINARY at a time, got %s", strings.Join(args, " "))
	}
	if o.scope != "" && o.scope != "global" {
		return cli.Usagef("-scope=%q: want global or nothing", o.scope)
	}
	v, err := vaultFromEnv()
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	bin := args[0]
	if o.pluginDir != "" {
		dst := filepath.Join(o.pluginDir, filepath.Base(bin))
		if err := copyExecutable(bin, dst); err != nil {
			return err
		}
		bin = dst
	}
	p, err := describe(bin, o.name, o.typ, o.version, o.force)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := v.register(ctx, p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registered %s plugin %s %s (sha256 %s, command %s)\n", p.typ, p.name, orNone(p.version), p.sha256[:12], p.command)
	if o.reload {
		if err := v.reload(ctx, p.name, o.scope); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reloaded %s%s\n", p.name, map[bool]string{true: " on every node"}[o.scope == "global"])
	}
	return nil
}

func orNone(v string) string {
	if v == "" {
		return "(no version)"
	}
	return v
}

// describe learns what Vault needs to register bin: the overrides given,
// else what the binary says of itself through -describe and -version,
// which plugins served by this module answer, or, for the type, through
// the handshake (selfType). A type given that contradicts the binary's
// own is refused unless force: Vault would register it, then fail every
// mount (an auth method registered as a secrets engine: "unknown backend
// type").
func describe(bin, name, typ, version string, force bool) (plugin, error) {
	sum, err := filehash.SHA256(bin)
	if err != nil {
		return plugin{}, err
	}
	p := plugin{name: name, typ: typ, version: version, command: filepath.Base(bin), sha256: fmt.Sprintf("%x", sum)}
	if p.name == "" {
		p.name = strings.TrimSuffix(filepath.Base(bin), ".exe")
	}
	var d struct {
		Type    string `json:"type"`
		Version string `json:"version"`
	}
	if out, err := probe(bin, "-describe"); err == nil {
		_ = json.Unmarshal(out, &d)
	}
	if p.version == "" {
		p.version = d.Version
	}
	self, how := d.Type, "-describe"
	if self == "" && (p.typ == "" || !force) {
		self, how = selfType(bin), "its Type() when started as Vault starts it"
	}
	switch {
	case p.typ == "":
		p.typ = self
	case self != "" && p.typ != self && !force:
		return plugin{}, fmt.Errorf("-type %s contradicts what %s reports for itself, %s (%s): Vault would register it, then fail to mount it; "+
			"leave -type out to register it as %s, or give -force to register it as %s anyway", p.typ, bin, self, how, self, p.typ)
	}
	switch p.typ {
	case "secret", "auth", "database":
	case "":
		return plugin{}, fmt.Errorf("%s does not say its type (-describe, or a start as Vault's): give -type secret, auth or database", bin)
	default:
		return plugin{}, fmt.Errorf("type %q: want secret, auth or database", p.typ)
	}
	if p.version == "(unknown)" {
		p.version = ""
	}
	return p, nil
}

// selfType is the type bin reports when started as Vault starts a plugin
// whose type its catalog does not know yet (plugincatalog's
// getPluginTypeFromUnknown), in metadata mode, which every SDK version
// serves without TLS: "secret" or "auth" from a mount's Type, "database"
// when it answers the database cookie; "" when it answers neither within
// probeTimeout.
func selfType(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	abs, err := filepath.Abs(bin)
	if err != nil {
		return ""
	}
	if p, err := servetest.New(ctx, abs, servetest.WithMetadataMode()); err == nil {
		defer p.Close()
		m, err := p.NewMount(ctx, nil)
		if err != nil {
			return ""
		}
		switch m.Type() {
		case logical.TypeLogical:
			return "secret"
		case logical.TypeCredential:
			return "auth"
		}
		return ""
	}
	if d, err := servetest.NewDatabase(ctx, abs, servetest.WithMetadataMode()); err == nil {
		_ = d.Close()
		return "database"
	}
	return ""
}

// probe runs bin with one flag and returns its stdout.
func probe(bin, flag string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, abs, flag).Output()
}

// copyExecutable copies src to dst through a temporary file and a rename,
// so a plugin process still running the old dst keeps its file.
func copyExecutable(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading the binary: %w", err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		return fmt.Errorf("copying the binary into the plugin directory: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copying the binary into the plugin directory: %w", err)
	}
	return nil
}

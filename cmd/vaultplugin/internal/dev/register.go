// Package dev is vaultplugin's register and dev commands: what an author
// does by hand to put a plugin into a Vault (copy, register with its
// sha256 and version, mount, reload), as one command each.
package dev

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/plugkit/vaultplugin/internal/filehash"
)

// Exit codes, as the check command's: 0 done, 1 failed, 2 bad usage.
const (
	exitFailed = 1
	exitUsage  = 2
)

// requestTimeout bounds one call to Vault's API: a registration or reload
// that takes longer is stuck, and a script should hear so.
const requestTimeout = 60 * time.Second

// probeTimeout bounds running the binary with -version or -describe to
// learn what it is: a plugin answers those at once, and a binary that
// instead waits for a handshake must not hang the command.
const probeTimeout = 10 * time.Second

// plugin is what Vault's catalog records for a binary.
type plugin struct {
	name, typ, version, command, sha256 string
}

// Register is `vaultplugin register`: it registers BINARY in the catalog
// of the Vault at VAULT_ADDR, with its sha256 and version, and reloads it
// when asked. It returns the exit code.
func Register(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the name to register under (default: the binary's file name)")
	version := fs.String("version", "", "the version to register (default: what BINARY -version prints, if it answers)")
	typ := fs.String("type", "", "secret, auth or database (default: what BINARY -describe says, if it answers)")
	pluginDir := fs.String("plugin-dir", "", "copy BINARY into this directory, Vault's plugin_directory, first")
	reload := fs.Bool("reload", false, "reload the plugin's mounts after registering")
	scope := fs.String("scope", "", `with -reload: "global" reloads on every node of a cluster`)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: vaultplugin register [flags] BINARY\n\nRegisters BINARY in the catalog of the Vault at VAULT_ADDR (token VAULT_TOKEN) with its sha256\nand version. BINARY must be in Vault's plugin directory, or be copied there with -plugin-dir.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	if *scope != "" && *scope != "global" {
		fmt.Fprintf(stderr, "vaultplugin register: -scope=%q: want global or nothing\n", *scope)
		return exitUsage
	}
	v, err := vaultFromEnv()
	if err != nil {
		fmt.Fprintf(stderr, "vaultplugin register: %v\n", err)
		return exitUsage
	}
	bin := fs.Arg(0)
	if *pluginDir != "" {
		dst := filepath.Join(*pluginDir, filepath.Base(bin))
		if err := copyExecutable(bin, dst); err != nil {
			fmt.Fprintf(stderr, "vaultplugin register: %v\n", err)
			return exitFailed
		}
		bin = dst
	}
	p, err := describe(bin, *name, *typ, *version)
	if err != nil {
		fmt.Fprintf(stderr, "vaultplugin register: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := v.register(ctx, p); err != nil {
		fmt.Fprintf(stderr, "vaultplugin register: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "registered %s plugin %s %s (sha256 %s, command %s)\n", p.typ, p.name, orNone(p.version), p.sha256[:12], p.command)
	if *reload {
		if err := v.reload(ctx, p.name, *scope); err != nil {
			fmt.Fprintf(stderr, "vaultplugin register: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "reloaded %s%s\n", p.name, map[bool]string{true: " on every node"}[*scope == "global"])
	}
	return 0
}

func orNone(v string) string {
	if v == "" {
		return "(no version)"
	}
	return v
}

// describe learns what Vault needs to register bin: the overrides given,
// else what the binary says of itself through -describe and -version,
// which plugins served by this module answer.
func describe(bin, name, typ, version string) (plugin, error) {
	sum, err := filehash.SHA256(bin)
	if err != nil {
		return plugin{}, err
	}
	p := plugin{name: name, typ: typ, version: version, command: filepath.Base(bin), sha256: fmt.Sprintf("%x", sum)}
	if p.name == "" {
		p.name = strings.TrimSuffix(filepath.Base(bin), ".exe")
	}
	if p.typ == "" || p.version == "" {
		var d struct {
			Type    string `json:"type"`
			Version string `json:"version"`
		}
		if out, err := probe(bin, "-describe"); err == nil && json.Unmarshal(out, &d) == nil {
			if p.typ == "" {
				p.typ = d.Type
			}
			if p.version == "" {
				p.version = d.Version
			}
		}
	}
	switch p.typ {
	case "secret", "auth", "database":
	case "":
		return plugin{}, fmt.Errorf("%s does not say its type (-describe): give -type secret, auth or database", bin)
	default:
		return plugin{}, fmt.Errorf("type %q: want secret, auth or database", p.typ)
	}
	if p.version == "(unknown)" {
		p.version = ""
	}
	return p, nil
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

// vault is a Vault's HTTP API.
type vault struct {
	addr, token string
	client      *http.Client
}

func vaultFromEnv() (*vault, error) {
	addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || token == "" {
		return nil, errors.New("VAULT_ADDR and VAULT_TOKEN must name the Vault and a token that may write sys/plugins/catalog")
	}
	return &vault{addr: strings.TrimSuffix(addr, "/"), token: token, client: &http.Client{Timeout: requestTimeout}}, nil
}

// call sends one request to Vault's API; an answer of 400 or more is an
// error holding Vault's messages.
func (v *vault) call(ctx context.Context, method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, v.addr+"/v1/"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vault-Token", v.token)
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode >= 400 {
		var msgs []string
		if es, ok := out["errors"].([]any); ok {
			for _, e := range es {
				msgs = append(msgs, strings.TrimSpace(fmt.Sprint(e)))
			}
		}
		return out, fmt.Errorf("%s %s: Vault answered %d: %s", method, path, resp.StatusCode, strings.Join(msgs, "; "))
	}
	return out, nil
}

func (v *vault) register(ctx context.Context, p plugin) error {
	body := map[string]any{"sha256": p.sha256, "command": p.command}
	if p.version != "" {
		body["version"] = p.version
	}
	_, err := v.call(ctx, "PUT", "sys/plugins/catalog/"+p.typ+"/"+p.name, body)
	return err
}

// reload reloads every mount of the plugin name; scope "global" asks
// every node of a cluster to. It uses sys/plugins/reload/backend, which
// every Vault since 1.0 and OpenBao answer.
func (v *vault) reload(ctx context.Context, name, scope string) error {
	body := map[string]any{"plugin": name}
	if scope != "" {
		body["scope"] = scope
	}
	_, err := v.call(ctx, "PUT", "sys/plugins/reload/backend", body)
	return err
}

// mount enables the plugin at path: a secrets engine or an auth method.
func (v *vault) mount(ctx context.Context, p plugin, path string) error {
	body := map[string]any{"type": p.name}
	if p.version != "" {
		body["plugin_version"] = p.version
	}
	switch p.typ {
	case "secret":
		_, err := v.call(ctx, "POST", "sys/mounts/"+path, body)
		return err
	case "auth":
		_, err := v.call(ctx, "POST", "sys/auth/"+path, body)
		return err
	}
	return fmt.Errorf("a %s plugin is not mounted: configure it through the database secrets engine", p.typ)
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

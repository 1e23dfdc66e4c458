package serve

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/hashicorp/vault/api"

	"github.com/plugkit/vaultplugin/compat"
	"github.com/plugkit/vaultplugin/internal/filehash"
)

// tlsFlags are the flags of api.PluginAPIClientMeta.FlagSet, with help text.
// They configure the client that unwraps the server certificate on the
// legacy TLS path; under AutoMTLS they are accepted and unused, because
// operators keep them in -args across Vault upgrades.
type tlsFlags struct {
	caCert, caPath, clientCert, clientKey, serverName string
	insecure                                          bool
}

func (f *tlsFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.caCert, "ca-cert", "", "PEM `file` with the CA certificate that signed Vault's API certificate (legacy TLS path)")
	fs.StringVar(&f.caPath, "ca-path", "", "`directory` of PEM CA certificates for Vault's API certificate (legacy TLS path)")
	fs.StringVar(&f.clientCert, "client-cert", "", "PEM `file` with a client certificate for Vault's API, if it requires one")
	fs.StringVar(&f.clientKey, "client-key", "", "PEM `file` with the private key of -client-cert")
	fs.StringVar(&f.serverName, "tls-server-name", "", "`name` to expect in Vault's API certificate (SNI)")
	fs.BoolVar(&f.insecure, "tls-skip-verify", false, "do not verify Vault's API certificate (insecure; logged as a warning)")
}

// apiTLSConfig mirrors PluginAPIClientMeta.GetTLSConfig: nil when no flag is set.
func (f *tlsFlags) apiTLSConfig() *api.TLSConfig {
	if *f == (tlsFlags{}) {
		return nil
	}
	return &api.TLSConfig{
		CACert: f.caCert, CAPath: f.caPath,
		ClientCert: f.clientCert, ClientKey: f.clientKey,
		TLSServerName: f.serverName, Insecure: f.insecure,
	}
}

// parseFlags parses the command line. done is true when a person's request
// (-help, -version, -describe) was answered and nothing should be served.
func (c *config) parseFlags(ctx context.Context, k kind, host interface{ Started(compat.Kind) bool }) (done bool, err error) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	// The flag package prints its own errors and the usage on every
	// error; we print one line instead, where the reader is.
	fs.SetOutput(io.Discard)
	c.flags.define(fs)
	var showVersion, describe bool
	fs.BoolVar(&showVersion, "version", false, "print the plugin's version and exit")
	fs.BoolVar(&describe, "describe", false, "print what this plugin is as JSON (name, version, type, sha256) and exit")
	for _, define := range c.defineFlags {
		if err := defineSafely(fs, define); err != nil {
			return false, c.usage(host, err)
		}
	}

	if err := fs.Parse(c.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printHelp(fs)
			return true, nil
		}
		return false, c.usage(host, err)
	}
	if fs.NArg() > 0 {
		return false, c.usage(host, fmt.Errorf("unexpected argument %q (the plugin takes only flags)", fs.Arg(0)))
	}
	if (c.flags.clientCert == "") != (c.flags.clientKey == "") {
		return false, c.usage(host, errors.New("-client-cert and -client-key must be given together"))
	}
	switch {
	case showVersion:
		c.resolveVersion()
		v := c.version
		if v == "" {
			v = "(unknown)"
		}
		fmt.Fprintln(c.stdout, v)
		return true, nil
	case describe:
		c.resolveVersion()
		return true, c.printDescription(ctx, k)
	}
	return false, nil
}

// defineSafely runs an author's flag definitions; the flag package panics
// on a redefined flag, which must be an error instead.
func defineSafely(fs *flag.FlagSet, define func(*flag.FlagSet)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("WithFlags: %v", r)
		}
	}()
	define(fs)
	return nil
}

// usage reports a command-line mistake. Under a host it is a startup
// failure like any other (the cause line reaches Vault's API error);
// a person gets one line on stderr.
func (c *config) usage(host interface{ Started(compat.Kind) bool }, err error) error {
	err = usageError{err}
	if host.Started(c.kind) {
		return c.fail(compat.FromEnv(c.lookup), err, "check the -args given to vault plugin register; run the binary with -help for its flags")
	}
	// One line, even for a flag name with a line break in it.
	fmt.Fprintln(c.stderr, oneLine(fmt.Sprintf("%s: %s (run %s -help for its flags)", c.name, err, c.name)))
	return err
}

func (c *config) resolveVersion() {
	if c.version == "" {
		c.version, c.versionSource = buildVersion()
	}
}

func (c *config) printHelp(fs *flag.FlagSet) {
	w := c.stdout
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", c.name)
	fmt.Fprintf(w, "%s is a Vault %s plugin, served by github.com/plugkit/vaultplugin.\n", c.name, c.kind)
	fmt.Fprintf(w, "Vault starts it; operators pass flags with `vault plugin register -args=...`.\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, "\nEnvironment (set with `vault plugin register -env NAME=VALUE`):\n")
	fmt.Fprintf(w, "  VAULTPLUGIN_LOG_LEVEL\ttrace, debug, info, warn, error or off (default trace; Vault filters by its own level)\n")
	fmt.Fprintf(w, "  %s\tbefore serving, wait for a debugger (dlv attach PID): a duration, at most %s, or true for %s\n", envDebugWait, maxDebugWait, defaultDebugWait)
	fmt.Fprintf(w, "  %s\tserve /debug/pprof/ and /metrics on this loopback HOST:PORT (port 0: a free port, logged)\n", envHTTPAddr)
	fmt.Fprintf(w, "\nExit codes: 0 served until stopped, or answered a flag like this one; 1 startup or serving failure, or run without Vault; 2 bad flag or invalid option.\n")
}

// Description is what -describe prints, as JSON.
type Description struct {
	Name       string `json:"name"`
	Version    string `json:"version,omitempty"`
	Type       string `json:"type,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	Path       string `json:"path,omitempty"`
	SDKVersion string `json:"sdk_version,omitempty"`
	GoVersion  string `json:"go_version"`
	Multiplex  bool   `json:"multiplexing"`
}

func (c *config) describe(ctx context.Context, k kind) Description {
	d := Description{
		Name:      c.name,
		Version:   c.version,
		Type:      k.probe(ctx, c),
		GoVersion: runtime.Version(),
		Multiplex: c.multiplex,
	}
	if c.kind == compat.Database {
		d.Type = "database"
	}
	d.Path, d.SHA256, _ = executableSHA256()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/hashicorp/vault/sdk" {
				d.SDKVersion = m.Version
				if m.Replace != nil {
					d.SDKVersion = m.Replace.Version
				}
			}
		}
	}
	return d
}

func (c *config) printDescription(ctx context.Context, k kind) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c.describe(ctx, k)); err != nil {
		return fmt.Errorf("writing the description: %w", err)
	}
	return nil
}

// executableSHA256 returns the running binary's path and sha256, what
// `vault plugin register -sha256` wants.
func executableSHA256() (path, sum string, err error) {
	path, err = os.Executable()
	if err != nil {
		return "", "", fmt.Errorf("locating the executable: %w", err)
	}
	raw, err := filehash.SHA256(path)
	if err != nil {
		return path, "", err
	}
	return path, hex.EncodeToString(raw), nil
}

// printNotAPlugin tells a person who ran the binary what it is and how to
// register it, instead of go-plugin's terse "This binary is a plugin".
func (c *config) printNotAPlugin(ctx context.Context, k kind) {
	c.resolveVersion()
	d := c.describe(ctx, k)
	w := c.stderr
	what := map[string]string{"secret": "secrets engine", "auth": "auth method", "database": "database"}[d.Type]
	if what == "" {
		what = "secrets engine or auth method"
	}
	ver := ""
	if d.Version != "" {
		ver = " " + d.Version
	}
	fmt.Fprintf(w, "%s%s is a Vault %s plugin. Vault starts it; running it by hand serves nothing.\n\n", d.Name, ver, what)
	if d.SHA256 != "" {
		fmt.Fprintf(w, "  binary: %s\n  sha256: %s\n\n", d.Path, d.SHA256)
	}
	fmt.Fprintf(w, "To use it, copy the binary into Vault's plugin_directory and run:\n\n")
	typ := d.Type
	if typ == "" {
		typ = "secret"
	}
	reg := "  vault plugin register -sha256=" + d.SHA256
	if d.Version != "" {
		reg += " -version=" + d.Version
	}
	fmt.Fprintf(w, "%s %s %s\n", reg, typ, d.Name)
	switch d.Type {
	case "secret":
		fmt.Fprintf(w, "  vault secrets enable -path=%s %s\n", d.Name, d.Name)
	case "auth":
		fmt.Fprintf(w, "  vault auth enable -path=%s %s\n", d.Name, d.Name)
	case "database":
		fmt.Fprintf(w, "  vault secrets enable database\n  vault write database/config/my-db plugin_name=%s allowed_roles=\"*\" ...\n", d.Name)
	default:
		fmt.Fprintf(w, "  vault secrets enable %s    # or, for an auth method: vault auth enable %s\n", d.Name, d.Name)
	}
	fmt.Fprintf(w, "\nRun %s -help for its flags, or -describe for this as JSON.\n", d.Name)
}

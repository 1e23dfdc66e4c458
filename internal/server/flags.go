package server

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

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/internal/filehash"
	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/internal/proctext"
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

// checkFiles reports a file or directory flag that cannot be read, naming
// the flag and the path. The SDK's own error for it is a bare "open …",
// which an operator would read as a network or certificate problem.
func (f *tlsFlags) checkFiles() error {
	for _, p := range []struct{ flag, path string }{
		{"-ca-cert", f.caCert}, {"-ca-path", f.caPath}, {"-client-cert", f.clientCert}, {"-client-key", f.clientKey},
	} {
		if p.path == "" {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			return fmt.Errorf("%s %s cannot be read: %w", p.flag, p.path, err)
		}
	}
	return nil
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
func (s *server) parseFlags(ctx context.Context) (done bool, err error) {
	var showVersion, describe bool
	fs := newFlagSet(s.Name, &s.flags, &showVersion, &describe)
	for _, define := range s.DefineFlags {
		// ApplyOptions has run each on a set like this one already; this
		// catches only a define function that acts differently the
		// second time.
		if err := defineSafely(fs, define); err != nil {
			return false, s.usage(err)
		}
	}

	if err := fs.Parse(s.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			s.printHelp(ctx, fs)
			return true, nil
		}
		return false, s.usage(err)
	}
	if fs.NArg() > 0 {
		return false, s.usage(fmt.Errorf("unexpected argument %q (the plugin takes only flags)", fs.Arg(0)))
	}
	if (s.flags.clientCert == "") != (s.flags.clientKey == "") {
		return false, s.usage(errors.New("-client-cert and -client-key must be given together"))
	}
	switch {
	case showVersion:
		s.resolveVersion()
		if s.Version.Value == "" {
			// stdout keeps one token for scripts; the why is for the
			// person, on stderr.
			fmt.Fprintln(s.Stdout, "(unknown)")
			fmt.Fprintln(s.Stderr, s.Name+": "+noVersionHelp)
			return true, nil
		}
		fmt.Fprintln(s.Stdout, s.Version.Value)
		return true, nil
	case describe:
		s.resolveVersion()
		return true, s.printDescription(ctx)
	}
	return false, nil
}

// newFlagSet is the plugin's flag set before the author's flags
// (WithFlags) are added: Vault's TLS flags, set into tls, and -version and
// -describe. ApplyOptions checks the author's flags against the same set,
// so that a redefinition is an invalid option.
func newFlagSet(name string, tls *tlsFlags, showVersion, describe *bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package prints its own errors and the usage on every
	// error; we print one line instead, where the reader is.
	fs.SetOutput(io.Discard)
	tls.define(fs)
	fs.BoolVar(showVersion, "version", false, "print the plugin's version and exit")
	fs.BoolVar(describe, "describe", false, "print what this plugin is as JSON (name, version, type, sha256) and exit")
	return fs
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
// failure like any other (the cause line reaches Vault's API error); a
// person gets one line on stderr.
func (s *server) usage(err error) error {
	hint := "run " + s.Name + " -help for its flags"
	if s.started() {
		hint = "check the -args given to vault plugin register; " + hint
	}
	return s.fail(usageError{err}, hint)
}

// typeNames are what a person calls each plugin type.
var typeNames = map[string]string{"secret": "secrets engine", "auth": "auth method", "database": "database"}

// what names the plugin's type for a person, from the probed type.
func (s *server) what(typ string) string {
	if w := typeNames[typ]; w != "" {
		return w
	}
	if s.plugin.Kind() == hostenv.Database {
		return "database"
	}
	return "secrets engine or auth method"
}

func (s *server) printHelp(ctx context.Context, fs *flag.FlagSet) {
	w := s.Stdout
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", s.Name)
	fmt.Fprintf(w, "%s is a Vault %s plugin, served by github.com/plugkit/vaultplugin.\n", s.Name, s.what(s.plugin.Type(ctx)))
	fmt.Fprintf(w, "Vault starts it; operators pass flags with `vault plugin register -args=...`.\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, "\nEnvironment (set with `vault plugin register -env NAME=VALUE`):\n")
	for _, v := range OperatorEnv() {
		fmt.Fprintf(w, "  %s\t%s\n", v.Name, v.Help)
	}
	fmt.Fprintf(w, "\nExit codes:\n")
	for _, e := range ExitCodes() {
		fmt.Fprintf(w, "  %d  %s\n", e.Code, e.Meaning)
	}
}

// ExitCodeMeaning is what one of Run's exit codes tells.
type ExitCodeMeaning struct {
	Code    int
	Meaning string
}

// ExitCodes is the one text of Run's exit codes: -help prints it, and a
// test checks that the exit constants' documentation in package
// vaultplugin says the same, word for word.
func ExitCodes() []ExitCodeMeaning {
	return []ExitCodeMeaning{
		{vaultplugin.ExitOK, "the plugin served until the host stopped it, or answered -version, -describe or -help"},
		{vaultplugin.ExitFailure, "a startup or serving failure, or the binary was run by a person rather than a host"},
		{vaultplugin.ExitUsage, "a bad flag or an invalid option"},
	}
}

// description is what -describe prints, as JSON. Its fields are a stable
// interface (serve's package documentation lists them): new fields may be
// added, none removed or changed in meaning without a new Schema.
type description struct {
	Schema        int    `json:"schema"`
	Name          string `json:"name"`
	Version       string `json:"version"`
	VersionSource string `json:"version_source"`
	Type          string `json:"type"`
	SHA256        string `json:"sha256,omitempty"`
	Path          string `json:"path,omitempty"`
	SDKVersion    string `json:"sdk_version,omitempty"`
	GoVersion     string `json:"go_version"`
	Multiplex     bool   `json:"multiplexing"`
}

// describeSchema is the version of description's fields.
const describeSchema = 1

func (s *server) describe(ctx context.Context) description {
	d := description{
		Schema:        describeSchema,
		Name:          s.Name,
		Version:       s.Version.Value,
		VersionSource: s.Version.Source.String(),
		Type:          s.plugin.Type(ctx),
		GoVersion:     runtime.Version(),
		Multiplex:     s.Multiplex,
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

func (s *server) printDescription(ctx context.Context) error {
	enc := json.NewEncoder(s.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s.describe(ctx)); err != nil {
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
func (s *server) printNotAPlugin(ctx context.Context) {
	s.resolveVersion()
	d := s.describe(ctx)
	w := s.Stderr
	ver := ""
	if d.Version != "" {
		ver = " " + d.Version
	}
	fmt.Fprintf(w, "%s%s is a Vault %s plugin. Vault starts it; %s.\n\n", d.Name, ver, s.what(d.Type), proctext.ByHand)
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
	if d.Version == "" {
		fmt.Fprintf(w, "\nNo -version above: %s\n", noVersionHelp)
	}
	fmt.Fprintf(w, "\nRun %s -help for its flags, or -describe for this as JSON.\n", d.Name)
}

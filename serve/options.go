package serve

import (
	"flag"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/plugkit/vaultplugin/internal/server"
)

// Option configures Run and Serve. Options are validated when applied;
// every invalid one is reported at once, and makes Serve return an error
// wrapping [vaultplugin.ErrUsage] (Run exits 2). It is an interface so that options can
// grow without breaking callers; only this package implements it.
type Option interface {
	apply(*server.Config) error
}

type option func(*server.Config) error

func (o option) apply(c *server.Config) error { return o(c) }

// WithVersion sets the version the plugin reports to Vault, so that
// `vault plugin register -version=v` matches it. v must be a semantic
// version ("1.2.3", "v1.2.3-rc.1"); it is reported the way Vault normalises
// -version: "v" followed by the canonical semver.
//
// Without it the version is, in order: the one `vaultplugin release
// -version` stamped into a release build; the one the backend reports itself
// (framework.Backend's RunningVersion); the main module's version from the
// build info (set by `go install module@version`, or stamped from a tagged
// git checkout); and, when the main module has none or only an untagged
// pseudo-version, the version of the module that defines the factory, so
// that a main serving a third-party backend reports that backend's release.
func WithVersion(v string) Option {
	return option(func(c *server.Config) error { return c.SetVersion(v) })
}

// WithoutMultiplexing serves one backend instance per process, as
// plugin.Serve does, for a backend that keeps process-global state. Vault
// then starts one process per mount.
func WithoutMultiplexing() Option {
	return option(func(c *server.Config) error {
		c.Multiplex = false
		return nil
	})
}

// WithFlags lets the author define flags of their own on the plugin's flag
// set, next to Vault's TLS flags; operators pass them with
// `vault plugin register -args`. The flags are parsed before the factory
// runs, so the factory can read them. Defining a flag twice (one the
// library owns, or one another WithFlags defines) is an invalid option,
// reported with the others, not a panic. To check that, define is called
// once on a flag set of its own when the options are applied, and again
// when the command line is parsed: it should do nothing but define flags.
func WithFlags(define func(fs *flag.FlagSet)) Option {
	return option(func(c *server.Config) error { return c.AddFlags(define) })
}

// WithLogger replaces the plugin's logger. It must write JSON to the
// process's original stderr for Vault to show its records at their level;
// logging.New builds such a logger.
func WithLogger(l hclog.Logger) Option {
	return option(func(c *server.Config) error { return c.SetLogger(l) })
}

// WithArgs sets the command line to parse instead of os.Args[1:], for
// tests and custom mains. Several WithArgs append in order, as
// servetest.WithArgs does.
func WithArgs(args ...string) Option {
	return option(func(c *server.Config) error { return c.AddArgs(args) })
}

// WithUnwrapTimeout bounds the legacy TLS path's unwrap call to Vault
// ([vaultplugin.DefaultUnwrapTimeout] when not given). d must be
// positive. Database plugins never take that path, so dbserve has no such
// option.
func WithUnwrapTimeout(d time.Duration) Option {
	return option(func(c *server.Config) error { return c.SetUnwrapTimeout(d) })
}

// WithShutdownTimeout bounds a graceful stop: the drain of the requests in
// flight, every backend's Cleanup, and the wait for the host to replace a
// plugin that refused requests ([vaultplugin.DefaultShutdownTimeout]
// says why each is waited for, and is the default). d must be positive.
func WithShutdownTimeout(d time.Duration) Option {
	return option(func(c *server.Config) error { return c.SetShutdownTimeout(d) })
}

package dbserve

import (
	"flag"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/plugkit/vaultplugin/internal/server"
)

// Option configures Run and Serve. It is its own type, not serve.Option,
// so that an option that makes no sense for a database plugin (the legacy
// TLS path's WithUnwrapTimeout) does not compile. Each option here means
// what serve's option of the same name means; every invalid one is
// reported at once, and makes Serve return an error wrapping
// serve.ErrUsage (Run exits 2).
type Option interface {
	apply(*server.Config) error
}

type option func(*server.Config) error

func (o option) apply(c *server.Config) error { return o(c) }

// WithVersion sets the version the plugin reports to Vault, as
// serve.WithVersion does.
func WithVersion(v string) Option {
	return option(func(c *server.Config) error { return c.SetVersion(v) })
}

// WithoutMultiplexing serves one database instance per process (protocol
// 5 only), for a database that keeps process-global state. Vault then
// starts one process per connection.
func WithoutMultiplexing() Option {
	return option(func(c *server.Config) error {
		c.Multiplex = false
		return nil
	})
}

// WithFlags lets the author define flags of their own, as
// serve.WithFlags does. Defining a flag twice (one the library owns, or
// one another WithFlags defines) is an invalid option, reported with the
// others; define is called once to check that when the options are
// applied, and again when the command line is parsed, so it should do
// nothing but define flags.
func WithFlags(define func(fs *flag.FlagSet)) Option {
	return option(func(c *server.Config) error { return c.AddFlags(define) })
}

// WithLogger replaces the plugin's logger, as serve.WithLogger does. Vault
// hands database plugins no logger of their own, so this one is theirs.
func WithLogger(l hclog.Logger) Option {
	return option(func(c *server.Config) error { return c.SetLogger(l) })
}

// WithArgs sets the command line to parse instead of os.Args[1:]; several
// WithArgs append in order.
func WithArgs(args ...string) Option {
	return option(func(c *server.Config) error { return c.AddArgs(args) })
}

// WithShutdownTimeout bounds a graceful stop, waiting for requests in
// flight and then each connection's Close (serve.DefaultShutdownTimeout
// when not given). d must be positive.
func WithShutdownTimeout(d time.Duration) Option {
	return option(func(c *server.Config) error { return c.SetShutdownTimeout(d) })
}

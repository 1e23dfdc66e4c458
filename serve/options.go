package serve

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-multierror"
	version "github.com/hashicorp/go-version"
)

// DefaultUnwrapTimeout bounds the legacy TLS path's call to Vault's
// sys/wrapping/unwrap. The Vault API client's own defaults (a 60 s timeout,
// two retries) add up to more than go-plugin's one-minute start timeout on
// the host, so an unreachable api_addr would surface as a bare host time-out
// instead of our error. Ten seconds is ample for one loopback or LAN call.
const DefaultUnwrapTimeout = 10 * time.Second

// DefaultShutdownTimeout bounds how long a plugin asked to stop (SIGTERM,
// its host gone, or Serve's context done) waits for in-flight requests and
// backend Cleanup before it stops serving regardless. It is well under the
// ten seconds most supervisors wait between SIGTERM and SIGKILL.
const DefaultShutdownTimeout = 5 * time.Second

// Option configures Serve and Run. Options are validated when applied; an
// invalid one makes Serve return an error wrapping ErrUsage (Run exits 2).
type Option func(*config) error

// WithVersion sets the version the plugin reports to Vault, so that
// `vault plugin register -version=v` matches it. v must be a semantic
// version ("1.2.3", "v1.2.3-rc.1"); it is reported the way Vault normalises
// -version: "v" followed by the canonical semver. Without it the version is
// the one the backend reports itself, else the main module's version from
// the build info (set by `go install module@version`).
func WithVersion(v string) Option {
	return func(c *config) error {
		norm, err := normalizeVersion(v)
		if err != nil {
			return fmt.Errorf("WithVersion(%q): %w", v, err)
		}
		c.version = norm
		c.versionSource = "WithVersion"
		return nil
	}
}

// WithoutMultiplexing serves one backend instance per process, as
// plugin.Serve does, for a backend that keeps process-global state. Vault
// then starts one process per mount.
func WithoutMultiplexing() Option {
	return func(c *config) error {
		c.multiplex = false
		return nil
	}
}

// WithFlags lets the author define flags of their own on the plugin's flag
// set, next to Vault's TLS flags; operators pass them with
// `vault plugin register -args`. The flags are parsed before the factory
// runs, so the factory can read them. Redefining a flag the library owns is
// an error, not a panic.
func WithFlags(define func(fs *flag.FlagSet)) Option {
	return func(c *config) error {
		if define == nil {
			return errors.New("WithFlags(nil): the define function is nil")
		}
		c.defineFlags = append(c.defineFlags, define)
		return nil
	}
}

// WithLogger replaces the plugin's logger. It must write JSON to the
// process's original stderr for Vault to show its records at their level;
// logging.New builds such a logger.
func WithLogger(l hclog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("WithLogger(nil): the logger is nil")
		}
		c.logger = l
		return nil
	}
}

// WithArgs replaces os.Args[1:] as the command line to parse, for tests
// and custom mains.
func WithArgs(args ...string) Option {
	return func(c *config) error {
		c.args = append([]string{}, args...)
		c.argsSet = true
		return nil
	}
}

// WithUnwrapTimeout bounds the legacy TLS path's unwrap call to Vault
// (DefaultUnwrapTimeout when not given). d must be positive.
func WithUnwrapTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithUnwrapTimeout(%s): the timeout must be positive", d)
		}
		c.unwrapTimeout = d
		return nil
	}
}

// WithShutdownTimeout bounds a graceful stop (DefaultShutdownTimeout when
// not given). d must be positive.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithShutdownTimeout(%s): the timeout must be positive", d)
		}
		c.shutdownTimeout = d
		return nil
	}
}

// applyOptions applies every option and aggregates their errors, so an
// author sees all of their mistakes at once.
func (c *config) applyOptions(opts []Option) error {
	var result *multierror.Error
	for i, o := range opts {
		if o == nil {
			result = multierror.Append(result, fmt.Errorf("option %d is nil", i))
			continue
		}
		if err := o(c); err != nil {
			result = multierror.Append(result, err)
		}
	}
	if err := result.ErrorOrNil(); err != nil {
		if result.Len() == 1 {
			return usageError{fmt.Errorf("invalid option: %w", result.Errors[0])}
		}
		result.ErrorFormat = oneLineErrors
		return usageError{fmt.Errorf("invalid options: %w", result)}
	}
	return nil
}

// oneLineErrors keeps an aggregated error on one line: the host shows the
// cause line verbatim and a multi-line one would be cut at its first line.
func oneLineErrors(errs []error) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// normalizeVersion validates v as Vault's catalog does
// (version.NewSemver) and returns it as Vault stores it: "v" + canonical.
// Vault compares the reported version with the registered one as exact
// strings, so "1.2.3" must be reported as "v1.2.3".
func normalizeVersion(v string) (string, error) {
	if strings.TrimSpace(v) != v || v == "" {
		return "", fmt.Errorf("%q is not a semantic version", v)
	}
	ver, err := version.NewSemver(v)
	if err != nil {
		return "", fmt.Errorf("%q is not a semantic version (want e.g. v1.2.3)", v)
	}
	return "v" + ver.String(), nil
}

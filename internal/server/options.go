package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-multierror"
	version "github.com/hashicorp/go-version"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/internal/hostenv"
)

// usageError marks err as vaultplugin.ErrUsage without changing its
// message.
type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Unwrap() error        { return e.err }
func (e usageError) Is(target error) bool { return target == vaultplugin.ErrUsage }

// Config is everything the options decide. The public packages' options
// set it through the Set methods, which validate.
type Config struct {
	Name            string
	Version         Version
	Multiplex       bool
	Logger          hclog.Logger
	Args            []string // nil: os.Args[1:]
	DefineFlags     []func(*flag.FlagSet)
	UnwrapTimeout   time.Duration
	ShutdownTimeout time.Duration

	// Where the process meets the world; tests replace them.
	Lookup         hostenv.LookupFunc
	Stdout, Stderr io.Writer
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{
		Name:            filepath.Base(os.Args[0]),
		Multiplex:       true,
		UnwrapTimeout:   vaultplugin.DefaultUnwrapTimeout,
		ShutdownTimeout: vaultplugin.DefaultShutdownTimeout,
		Lookup:          os.LookupEnv,
		// Captured now: after the handshake go-plugin replaces os.Stdout
		// and os.Stderr with pipes the host discards.
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	}
}

func defaultArgs() []string {
	if len(os.Args) > 1 {
		return os.Args[1:]
	}
	return []string{}
}

// ApplyOptions applies every option and aggregates their errors, with the
// problems the caller found first and the conflicts between options
// (Config.conflicts) last, so that an author sees all of their mistakes
// at once, whatever the options' order. A nil option is an error, not a
// panic. The result is nil or a one-line error.
func ApplyOptions[O any](c *Config, opts []O, apply func(O, *Config) error, problems ...error) error {
	result := multierror.Append(nil, problems...)
	for i, o := range opts {
		if any(o) == nil {
			result = multierror.Append(result, fmt.Errorf("option %d is nil", i))
			continue
		}
		if err := apply(o, c); err != nil {
			result = multierror.Append(result, err)
		}
	}
	result = multierror.Append(result, c.conflicts()...)
	if result.ErrorOrNil() == nil {
		return nil
	}
	if result.Len() == 1 {
		return fmt.Errorf("invalid option: %w", result.Errors[0])
	}
	result.ErrorFormat = oneLineErrors
	return fmt.Errorf("invalid options: %w", result)
}

// conflicts checks the options as a whole, once every one is applied: an
// option's own check sees only itself, so a rule that involves more than
// one is checked here, where their order does not matter. It returns
// every problem found.
//
// The one such rule is the flags': every WithFlags defines its flags on
// the set that already holds the library's flags and those of the
// WithFlags before it, so a flag defined twice (by two WithFlags, or by
// one that redefines -ca-cert or -version) is reported here with the
// other options' problems. parseFlags would otherwise find it only when
// the options were otherwise valid, and alone.
func (c *Config) conflicts() []error {
	var (
		tls               tlsFlags
		version, describe bool
		errs              []error
	)
	fs := newFlagSet(c.Name, &tls, &version, &describe)
	for _, define := range c.DefineFlags {
		if err := defineSafely(fs, define); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
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

// SetVersion validates v and sets it as the version to report.
func (c *Config) SetVersion(v string) error {
	norm, err := NormalizeVersion(v)
	if err != nil {
		return fmt.Errorf("WithVersion(%q): %w", v, err)
	}
	c.Version = Version{Value: norm, Source: VersionFromOption}
	return nil
}

// AddFlags adds the author's flag definitions.
func (c *Config) AddFlags(define func(*flag.FlagSet)) error {
	if define == nil {
		return errors.New("WithFlags(nil): the define function is nil")
	}
	c.DefineFlags = append(c.DefineFlags, define)
	return nil
}

// SetLogger replaces the plugin's logger.
func (c *Config) SetLogger(l hclog.Logger) error {
	if l == nil {
		return errors.New("WithLogger(nil): the logger is nil")
	}
	c.Logger = l
	return nil
}

// AddArgs appends to the command line to parse instead of os.Args[1:].
func (c *Config) AddArgs(args []string) error {
	c.Args = append(append([]string{}, c.Args...), args...)
	return nil
}

// SetUnwrapTimeout bounds the legacy TLS path's unwrap call.
func (c *Config) SetUnwrapTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("WithUnwrapTimeout(%s): the timeout must be positive", d)
	}
	c.UnwrapTimeout = d
	return nil
}

// SetShutdownTimeout bounds a graceful stop.
func (c *Config) SetShutdownTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("WithShutdownTimeout(%s): the timeout must be positive", d)
	}
	c.ShutdownTimeout = d
	return nil
}

// NormalizeVersion validates v as Vault's catalog does
// (version.NewSemver) and returns it as Vault stores it: "v" + canonical.
// Vault compares the reported version with the registered one as exact
// strings, so "1.2.3" must be reported as "v1.2.3".
func NormalizeVersion(v string) (string, error) {
	if strings.TrimSpace(v) != v || v == "" {
		return "", fmt.Errorf("%q is not a semantic version", v)
	}
	ver, err := version.NewSemver(v)
	if err != nil {
		return "", fmt.Errorf("%q is not a semantic version (want e.g. v1.2.3)", v)
	}
	return "v" + ver.String(), nil
}

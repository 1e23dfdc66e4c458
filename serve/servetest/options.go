package servetest

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-multierror"
)

// DefaultVaultVersion is the VAULT_VERSION a plugin sees, and the version
// its mounts' system view reports, unless WithVaultVersion says otherwise:
// the Vault release whose way of starting plugins and handling their
// requests servetest plays.
const DefaultVaultVersion = "1.21.0"

// Option changes how New, Start, NewDatabase or StartDatabase plays
// the host. Options are checked before anything starts, each on its own
// and then, once all are applied, against each other (whatever their
// order): the error from New (or the failure of Start) lists every
// problem at once, so a test author fixes them in one go instead of one
// run per mistake.
type Option interface {
	// apply records the option in c, or says why it cannot. It is
	// unexported so that the host's configuration stays an implementation
	// detail: only this package's With functions make Options.
	apply(c *config) error
}

// optionFunc turns a function into an Option.
type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// config is the host that New and NewDatabase play.
type config struct {
	database     bool   // set before the options run, so they can refuse a kind
	host         string // WithHost's binary; see hostBin
	hostSet      bool   // WithHost was given, so HostEnv is not read
	versionSet   bool   // WithVaultVersion was given
	legacyTLS    bool
	metadataMode bool
	noHostMux    bool
	container    bool // WithContainerEnv
	env          []string
	args         []string
	vaultVersion string
	pluginName   string
	defaultTTL   time.Duration
	maxTTL       time.Duration
	stderr       io.Writer
	logger       hclog.Logger
}

// newConfig applies opts to the host for a backend (database false) or a
// database plugin and returns every problem found, not only the first:
// each option's own, then the conflicts between them (see conflicts).
func newConfig(database bool, opts []Option) (*config, error) {
	c := &config{database: database, vaultVersion: DefaultVaultVersion, defaultTTL: DefaultLeaseTTL, maxTTL: DefaultMaxTTL}
	var errs *multierror.Error
	for i, o := range opts {
		if o == nil {
			errs = multierror.Append(errs, fmt.Errorf("option %d of %d is nil", i+1, len(opts)))
			continue
		}
		if err := o.apply(c); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	errs = multierror.Append(errs, c.conflicts()...)
	if errs.ErrorOrNil() != nil {
		errs.ErrorFormat = listErrors
		return nil, fmt.Errorf("servetest: %w", errs)
	}
	return c, nil
}

// conflicts checks the host c describes as a whole, once every option is
// applied: an option's apply sees only the options before it, so a rule
// that involves two options is checked here, where their order does not
// matter. It returns every problem found.
func (c *config) conflicts() []error {
	var errs []error
	if c.metadataMode && c.legacyTLS {
		errs = append(errs, errors.New("WithMetadataMode and WithLegacyTLS exclude each other: a host in metadata mode sends no wrapping token"))
	}
	return append(errs, c.containerConflicts()...)
}

// listErrors formats option errors: one error reads as itself, several as
// a list, one per line.
func listErrors(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d invalid options:", len(errs))
	for _, err := range errs {
		b.WriteString("\n\t* ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// WithEnv adds "KEY=VALUE" entries to the plugin's environment, as
// `vault plugin register -env` does: after the host's own environment and
// before the variables Vault sets, which win over an entry of the same
// name, as under Vault. Several WithEnv options add their entries in
// order. On a real host they are the catalog entry's env.
func WithEnv(kv ...string) Option {
	return optionFunc(func(c *config) error {
		for _, e := range kv {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				return fmt.Errorf("WithEnv(%q): want KEY=VALUE", e)
			}
		}
		c.env = append(c.env, kv...)
		return nil
	})
}

// WithArgs appends args to the plugin's command line, as
// `vault plugin register -args` does. Several WithArgs options append in
// order, so a test can build the command line from parts; the -ca-cert
// that WithLegacyTLS adds comes before them all. On a real host they are
// the catalog entry's args.
func WithArgs(args ...string) Option {
	return optionFunc(func(c *config) error {
		c.args = append(c.args, args...)
		return nil
	})
}

// WithVaultVersion sets the Vault version the plugin sees, so a plugin
// that adapts to its host's version can be tested against several: v as
// given in VAULT_VERSION at start, and from each mount's system view
// (VaultVersion, PluginEnv) split as Vault reports it, the release apart
// from a -prerelease and +metadata. A real host reports its own version:
// there any other version is refused (see ErrEmulationOnly).
func WithVaultVersion(v string) Option {
	return optionFunc(func(c *config) error {
		if v == "" {
			return errors.New("WithVaultVersion: empty version")
		}
		c.vaultVersion, c.versionSet = v, true
		return nil
	})
}

// WithMetadataMode plays a host that starts the plugin only to read its
// metadata (type, version), as Vaults before 1.12 did at registration:
// VAULT_PLUGIN_METADATA_MODE=true, no TLS. The SDK refuses requests in
// this mode; Setup and the version still answer.
func WithMetadataMode() Option {
	return optionFunc(func(c *config) error {
		c.metadataMode = true
		return nil
	})
}

// WithoutHostMultiplexing plays a host that does not multiplex: it offers
// only protocol 4, as Vault does for a plugin it will not share, so the
// plugin serves one backend and every Mount after the first fails. It is
// for backend plugins only: Vault always offers a database plugin
// protocols 5 and 6 and lets the plugin choose.
func WithoutHostMultiplexing() Option {
	return optionFunc(func(c *config) error {
		if c.database {
			return errors.New("WithoutHostMultiplexing does not apply to database plugins: Vault always offers them protocols 5 and 6, and whether to multiplex is the plugin's choice")
		}
		c.noHostMux = true
		return nil
	})
}

// WithStderr copies the plugin's raw stderr lines to w as well, e.g.
// os.Stderr to watch a plugin's records while a test runs. On a real host
// it gets the host's log lines that name the plugin (see Process.Logs), as
// the host writes them.
func WithStderr(w io.Writer) Option {
	return optionFunc(func(c *config) error {
		if w == nil {
			return errors.New("WithStderr(nil): want a writer")
		}
		c.stderr = w
		return nil
	})
}

// WithHostLogger sets the host's logger: the one Vault's own log is,
// to which go-plugin re-logs the plugin's stderr records at their level
// and under the plugin's name, so a test sees what an operator reads in
// Vault's log. It is named for the host because the plugin's logger is
// another one, which the plugin's main sets (serve.WithLogger). Without it
// the records are only kept for Logs. On a real host it gets the host's
// records that name the plugin, at their level, with their fields.
func WithHostLogger(l hclog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("WithHostLogger(nil): want a logger")
		}
		c.logger = l
		return nil
	})
}

// WithPluginName sets the name the plugin is registered under, as in
// `vault plugin register … NAME`: the mounts' type, the start of their
// paths and accessors, and plugin_name in their configuration. By
// default it is the binary's file name. It is for backend plugins only.
// On a real host, whose catalog parallel tests share, the entry's name is
// NAME followed by "-" and six random characters.
func WithPluginName(name string) Option {
	return optionFunc(func(c *config) error {
		switch {
		case c.database:
			return errors.New("WithPluginName does not apply to database plugins: Vault's database engine names a connection, not a mount")
		case name == "" || strings.ContainsAny(name, "/ "):
			return fmt.Errorf("WithPluginName(%q): want a name without slashes or spaces, as vault plugin register takes", name)
		}
		c.pluginName = name
		return nil
	})
}

// WithLeaseTTLs sets the lease TTLs the mounts' system view reports, as
// `vault secrets tune -default-lease-ttl -max-lease-ttl` does. Without
// it they are Vault's own, DefaultLeaseTTL and DefaultMaxTTL. On a real
// host they are the mounts' default_lease_ttl and max_lease_ttl.
func WithLeaseTTLs(defaultTTL, maxTTL time.Duration) Option {
	return optionFunc(func(c *config) error {
		switch {
		case c.database:
			return errors.New("WithLeaseTTLs does not apply to database plugins: their leases are the database engine's, not the plugin's")
		case defaultTTL <= 0 || maxTTL <= 0:
			return fmt.Errorf("WithLeaseTTLs(%s, %s): want positive durations", defaultTTL, maxTTL)
		case defaultTTL > maxTTL:
			return fmt.Errorf("WithLeaseTTLs(%s, %s): the default is longer than the maximum, which Vault refuses", defaultTTL, maxTTL)
		}
		c.defaultTTL, c.maxTTL = defaultTTL, maxTTL
		return nil
	})
}

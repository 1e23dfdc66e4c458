// Package compat reads what the host process (Vault or OpenBao) told a plugin
// through its environment, and decides how the plugin should be served on that
// host.
//
//	host := compat.FromEnv(os.LookupEnv)
//	for _, p := range host.Problems {
//		logger.Warn("ignoring malformed host setting", "error", p)
//	}
//	plan := host.Plan(compat.Backend, true)
//	if plan.TLSProvider { /* unwrap the server certificate */ }
//
// Nothing here fails: a malformed value is recorded in [Host.Problems] and
// the decision that depends on it falls back to what the rest of the
// environment shows, so a plugin still starts on a host that sets an odd
// value.
package compat

import (
	"fmt"
	"strconv"
	"strings"

	version "github.com/hashicorp/go-version"
)

// Names of the environment variables Vault sets on a plugin process. They are
// the values of the constants in vault/sdk/helper/pluginutil/env.go and
// go-plugin's server.go, repeated here so this package does not pull either in.
const (
	// EnvBackendCookie is the handshake cookie of secrets engines and auth methods.
	EnvBackendCookie = "VAULT_BACKEND_PLUGIN"
	// EnvDatabaseCookie is the handshake cookie of database plugins.
	EnvDatabaseCookie = "VAULT_DATABASE_PLUGIN"
	// EnvVaultVersion carries the host's version, e.g. "1.21.0".
	EnvVaultVersion = "VAULT_VERSION"
	// EnvAutoMTLS is "true" when the host negotiates TLS through go-plugin's AutoMTLS.
	EnvAutoMTLS = "VAULT_PLUGIN_AUTOMTLS_ENABLED"
	// EnvMetadataMode is "true" when the host starts the plugin only to read its metadata.
	EnvMetadataMode = "VAULT_PLUGIN_METADATA_MODE"
	// EnvMlock is "true" when the host wants the plugin's memory locked.
	EnvMlock = "VAULT_PLUGIN_MLOCK_ENABLED"
	// EnvUnwrapToken holds the wrapping token of the legacy TLS path. It is a secret.
	EnvUnwrapToken = "VAULT_UNWRAP_TOKEN"
	// EnvProtocolVersions is go-plugin's list of protocol versions the host speaks.
	EnvProtocolVersions = "PLUGIN_PROTOCOL_VERSIONS"
	// EnvClientCert is go-plugin's AutoMTLS client certificate (PEM).
	EnvClientCert = "PLUGIN_CLIENT_CERT"
)

// Cookie values of the two go-plugin handshakes. They are not secrets: go-plugin
// uses them only to tell a person who runs the binary by hand that it is a plugin.
const (
	BackendCookieValue  = "6669da05-b1c8-4f49-97d9-c8e5bed98e20"
	DatabaseCookieValue = "926a0820-aea2-be28-51d6-83cdf00e8edb"
)

// Kind is the kind of plugin being served; the host's capabilities differ by kind.
type Kind int

const (
	// Backend is a secrets engine or an auth method (sdk/plugin).
	Backend Kind = iota
	// Database is a database secrets-engine plugin (sdk/database/dbplugin/v5).
	Database
)

// String returns the kind's name as the vault CLI spells the plugin type.
func (k Kind) String() string {
	switch k {
	case Backend:
		return "backend"
	case Database:
		return "database"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Cookie returns the handshake cookie's environment variable and value for k.
func (k Kind) Cookie() (key, value string) {
	if k == Database {
		return EnvDatabaseCookie, DatabaseCookieValue
	}
	return EnvBackendCookie, BackendCookieValue
}

// Host is what the host process told the plugin through the environment.
// The zero value is a host that told nothing: the plugin was run by a person.
type Host struct {
	// Cookie names the handshake cookie that was set with its right value
	// ("" when none was: the binary was not started by a host).
	Cookie string
	// VaultVersion is the host's version, nil when unset or malformed.
	VaultVersion *version.Version
	// AutoMTLS, MetadataMode and Mlock are the host's boolean settings.
	AutoMTLS, MetadataMode, Mlock bool
	// AutoMTLSSet reports whether EnvAutoMTLS held a valid boolean.
	AutoMTLSSet bool
	// WrapToken reports whether a wrapping token is present (never its value).
	WrapToken bool
	// ClientCert reports whether go-plugin's AutoMTLS client certificate is present.
	ClientCert bool
	// ProtocolVersions are the go-plugin protocol versions the host offered.
	ProtocolVersions []int
	// OpenBao reports whether the host set OpenBao's BAO_* names alongside Vault's.
	OpenBao bool
	// Problems lists the malformed values found, each naming its variable.
	// They never stop the plugin; each decision that needs one falls back
	// to the other evidence in the environment.
	Problems []error
}

// LookupFunc is the signature of os.LookupEnv.
type LookupFunc func(key string) (string, bool)

// FromEnv reads the host's settings through lookup, normally os.LookupEnv.
func FromEnv(lookup LookupFunc) Host {
	var h Host
	for _, k := range []Kind{Backend, Database} {
		key, want := k.Cookie()
		if v, _ := lookup(key); v == want {
			h.Cookie = key
			break
		}
	}
	if v, ok := lookup(EnvVaultVersion); ok && v != "" {
		// Vault sends its own version string, e.g. "1.21.0" or
		// "1.21.0+ent"; OpenBao sends "2.1.0". Anything go-version
		// cannot parse is reported and treated as unknown.
		ver, err := version.NewVersion(strings.TrimSpace(v))
		if err != nil {
			h.Problems = append(h.Problems, fmt.Errorf("%s=%q is not a version: %w", EnvVaultVersion, v, err))
		} else {
			h.VaultVersion = ver
		}
	}
	h.AutoMTLS, h.AutoMTLSSet = h.boolEnv(lookup, EnvAutoMTLS)
	h.MetadataMode, _ = h.boolEnv(lookup, EnvMetadataMode)
	h.Mlock, _ = h.boolEnv(lookup, EnvMlock)
	if v, _ := lookup(EnvUnwrapToken); v != "" {
		h.WrapToken = true
	}
	if v, _ := lookup(EnvClientCert); v != "" {
		h.ClientCert = true
	}
	if v, ok := lookup(EnvProtocolVersions); ok && v != "" {
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 0 {
				h.Problems = append(h.Problems, fmt.Errorf("%s=%q: %q is not a protocol version", EnvProtocolVersions, v, s))
				continue
			}
			h.ProtocolVersions = append(h.ProtocolVersions, n)
		}
	}
	if _, ok := lookup("BAO_VERSION"); ok {
		h.OpenBao = true
	}
	return h
}

// boolEnv parses a boolean the host set. Vault writes "true" or "false"
// (fmt's %t in pluginutil/run_config.go); strconv.ParseBool's other
// spellings are accepted too, and anything else is a problem.
func (h *Host) boolEnv(lookup LookupFunc, key string) (value, valid bool) {
	v, ok := lookup(key)
	if !ok || v == "" {
		return false, false
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		h.Problems = append(h.Problems, fmt.Errorf("%s=%q is not a boolean", key, v))
		return false, false
	}
	return b, true
}

// Started reports whether a host started this process: the handshake cookie
// of kind k is set to its value.
func (h Host) Started(k Kind) bool {
	key, _ := k.Cookie()
	return h.Cookie == key
}

// Feature is a capability a host may or may not have.
type Feature int

const (
	// FeatureAutoMTLS is go-plugin's automatic mutual TLS.
	FeatureAutoMTLS Feature = iota
	// FeatureMultiplexing is one plugin process serving several mounts.
	FeatureMultiplexing
	// FeaturePluginVersions is the catalog's -version and a plugin reporting its own.
	FeaturePluginVersions
)

// String returns the feature's name.
func (f Feature) String() string {
	switch f {
	case FeatureAutoMTLS:
		return "AutoMTLS"
	case FeatureMultiplexing:
		return "multiplexing"
	case FeaturePluginVersions:
		return "plugin versions"
	}
	return fmt.Sprintf("Feature(%d)", int(f))
}

// since is the first Vault release that has a feature, by plugin kind.
// Sources: Vault's CHANGELOG.md and docs (plugins/plugin-architecture,
// plugins/plugin-development#multiplexing):
//   - AutoMTLS: database plugins since 1.6 (builtinplugins moved to
//     dbplugin v5 with AutoMTLS); secrets and auth since 1.12, when the
//     catalog started them on protocol 5.
//   - Multiplexing: database plugins since 1.10 (SDK v0.4.0); secrets and
//     auth since 1.12 (SDK v0.5.4).
//   - Plugin versions: since 1.12 (`vault plugin register -version`).
var since = map[Feature][2]*version.Version{
	FeatureAutoMTLS:       {version.Must(version.NewVersion("1.12.0")), version.Must(version.NewVersion("1.6.0"))},
	FeatureMultiplexing:   {version.Must(version.NewVersion("1.12.0")), version.Must(version.NewVersion("1.10.0"))},
	FeaturePluginVersions: {version.Must(version.NewVersion("1.12.0")), version.Must(version.NewVersion("1.12.0"))},
}

// Supports reports whether the host has feature f for plugins of kind k.
// known is false when the host's version is unknown (unset or malformed);
// supported then says true, because every capability here is negotiated
// by the host, so offering it to a host that lacks it is harmless.
func (h Host) Supports(f Feature, k Kind) (supported, known bool) {
	min, ok := since[f]
	if !ok || k < Backend || k > Database {
		return false, true
	}
	if h.VaultVersion == nil {
		return true, false
	}
	// OpenBao forked from Vault 1.14 and numbers its releases from 2.0;
	// every feature here predates the fork.
	if h.OpenBao {
		return true, true
	}
	return h.VaultVersion.Core().GreaterThanOrEqual(min[k]), true
}

// Plan is how to serve on this host.
type Plan struct {
	// TLSProvider is whether to unwrap a server certificate from the host
	// (the legacy TLS path) instead of relying on AutoMTLS.
	TLSProvider bool
	// Multiplex is whether to offer one process for many mounts.
	Multiplex bool
	// Mlock is whether to lock the process's memory before serving.
	Mlock bool
	// Reasons explains each decision that was not the default, for the debug log.
	Reasons []string
}

// Plan decides how to serve a plugin of kind k on this host; multiplex is
// the author's choice (false for a backend that keeps process-global state).
func (h Host) Plan(k Kind, multiplex bool) Plan {
	p := Plan{Multiplex: multiplex, Mlock: h.Mlock}
	if multiplex {
		if ok, known := h.Supports(FeatureMultiplexing, k); known && !ok {
			// Harmless to offer, but the operator should know why every
			// mount gets a process of its own.
			p.Reasons = append(p.Reasons, fmt.Sprintf("host %s predates %s for %s plugins: one process per mount", h.VaultVersion, FeatureMultiplexing, k))
		}
	}
	switch {
	case k == Database:
		// dbplugin has no TLS provider: database plugins are AutoMTLS only.
	case h.MetadataMode:
		// The SDK's provider returns nil in metadata mode: the host does
		// not send a token because it only asks for metadata.
	case h.AutoMTLSSet:
		p.TLSProvider = !h.AutoMTLS
	case h.WrapToken:
		// No valid AutoMTLS setting, but a token: a host on the legacy path.
		p.TLSProvider = true
		p.Reasons = append(p.Reasons, "no valid "+EnvAutoMTLS+", but a wrapping token is present: using the legacy TLS path")
	default:
		// No setting and no token: go-plugin negotiates AutoMTLS if the
		// host sent a client certificate, or serves without TLS.
	}
	return p
}

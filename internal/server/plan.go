package server

import (
	"fmt"

	"github.com/plugkit/vaultplugin/internal/hostenv"
)

// The serving policy: what to offer a host, given what it told the plugin.
// It is serve's business, not the plugin author's, so it lives here rather
// than in compat.

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
//
// Each is {major, minor} for backends, then for databases: a table of
// numbers rather than parsed versions, so that package initialisation,
// which every plugin start pays for, parses nothing.
var since = map[Feature][2][2]int{
	FeatureAutoMTLS:       {{1, 12}, {1, 6}},
	FeatureMultiplexing:   {{1, 12}, {1, 10}},
	FeaturePluginVersions: {{1, 12}, {1, 12}},
}

// supports reports whether the host has feature f for plugins of kind k.
// known is false when the host's version is unknown (unset or malformed);
// supported then says true, because every capability here is negotiated
// by the host, so offering it to a host that lacks it is harmless.
func supports(h hostenv.Host, f Feature, k hostenv.Kind) (supported, known bool) {
	min, ok := since[f]
	if !ok || k < hostenv.Backend || k > hostenv.Database {
		return false, true
	}
	if h.Version == nil {
		return true, false
	}
	// OpenBao forked from Vault 1.14 and numbers its releases from 2.0;
	// every feature here predates the fork.
	if h.OpenBao {
		return true, true
	}
	seg, want := h.Version.Segments(), min[k]
	return seg[0] > want[0] || seg[0] == want[0] && seg[1] >= want[1], true
}

// Plan is how to serve on a host, decided from what it told the plugin.
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

// NewPlan decides how to serve a plugin of kind k on this host; multiplex is
// the author's choice (false for a backend that keeps process-global state).
func NewPlan(h hostenv.Host, k hostenv.Kind, multiplex bool) Plan {
	p := Plan{Multiplex: multiplex, Mlock: h.Mlock}
	if multiplex {
		if ok, known := supports(h, FeatureMultiplexing, k); known && !ok {
			// Harmless to offer, but the operator should know why every
			// mount gets a process of its own.
			p.Reasons = append(p.Reasons, fmt.Sprintf("host %s predates %s for %s plugins: one process per mount", h.Version, FeatureMultiplexing, k))
		}
	}
	switch {
	case k == hostenv.Database:
		// dbplugin has no TLS provider: database plugins are AutoMTLS only.
	case h.MetadataMode:
		// The SDK's provider returns nil in metadata mode: the host does
		// not send a token because it only asks for metadata.
	case h.AutoMTLSSet:
		p.TLSProvider = !h.AutoMTLS
	case h.WrapToken:
		// No valid AutoMTLS setting, but a token: a host on the legacy path.
		p.TLSProvider = true
		p.Reasons = append(p.Reasons, "no valid "+hostenv.EnvAutoMTLS+", but a wrapping token is present: using the legacy TLS path")
	default:
		// No setting and no token: go-plugin negotiates AutoMTLS if the
		// host sent a client certificate, or serves without TLS.
	}
	return p
}

// Package hostenv reads everything the host process (Vault or OpenBao)
// tells a plugin through its environment: which kind of plugin it
// started, its version, and how it wants the plugin served. The serving
// core decides its plan from it; package compat exposes to plugin
// authors the part that is theirs (which host, which version).
//
// Nothing here fails: a malformed value is recorded in [Host.Problems] and
// the field that depends on it keeps its zero value, so a plugin still
// starts on a host that sets an odd value.
package hostenv

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
	// EnvMetadataMode is "true" when the host starts the plugin only to read
	// its metadata without TLS: on the legacy path (a plugin that offers
	// protocol 4 or older) and for a database plugin at registration. It is
	// "false" for a protocol-5 backend even when the host starts it only to
	// read its version (at `vault plugin register -version`), so "false"
	// does not mean the process will serve a mount.
	EnvMetadataMode = "VAULT_PLUGIN_METADATA_MODE"
	// EnvMlock is "true" when the host wants the plugin's memory locked.
	EnvMlock = "VAULT_PLUGIN_MLOCK_ENABLED"
	// EnvUnwrapToken holds the wrapping token of the legacy TLS path. It is a secret.
	EnvUnwrapToken = "VAULT_UNWRAP_TOKEN"
	// EnvProtocolVersions is go-plugin's list of protocol versions the host
	// speaks. Vault 1.16 and later and OpenBao offer a backend plugin only "5"; a
	// plugin's offer of 3 and 4 is for older hosts.
	EnvProtocolVersions = "PLUGIN_PROTOCOL_VERSIONS"
	// EnvClientCert is go-plugin's AutoMTLS client certificate (PEM).
	EnvClientCert = "PLUGIN_CLIENT_CERT"
	// EnvOpenBaoVersion carries OpenBao's version; only OpenBao sets it.
	EnvOpenBaoVersion = "BAO_VERSION"
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

// String returns "backend" or "database", the names log records use. (The
// vault CLI's plugin types are "secret", "auth" and "database": a backend
// plugin is one of the first two, which only its factory knows.)
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
	// Version is the host's own version, nil when unset or malformed:
	// Vault's (VAULT_VERSION), or OpenBao's (BAO_VERSION), which numbers
	// its releases from 2.0 and is not comparable with Vault's. OpenBao
	// also sets VAULT_VERSION to its own version, so compare versions only
	// after checking OpenBao.
	Version *version.Version
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
	// OpenBao reports whether the host is OpenBao, which sets its BAO_*
	// names alongside Vault's.
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
	versionKey := EnvVaultVersion
	if _, ok := lookup(EnvOpenBaoVersion); ok {
		h.OpenBao = true
		versionKey = EnvOpenBaoVersion
	}
	if v, ok := lookup(versionKey); ok && v != "" {
		// Vault sends its own version string, e.g. "1.21.0" or
		// "1.21.0+ent"; OpenBao sends "2.6.2". Anything go-version
		// cannot parse is reported and treated as unknown.
		ver, err := version.NewVersion(strings.TrimSpace(v))
		if err != nil {
			h.Problems = append(h.Problems, fmt.Errorf("%s=%q is not a version: %w", versionKey, v, err))
		} else {
			h.Version = ver
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
	return h
}

// String names the host and its version as a person would: "Vault
// 1.21.0", "OpenBao 2.6.2", "Vault (version unknown)", or "no host" when
// no handshake cookie was set.
func (h Host) String() string {
	if h.Cookie == "" {
		return "no host"
	}
	name := "Vault"
	if h.OpenBao {
		name = "OpenBao"
	}
	if h.Version == nil {
		return name + " (version unknown)"
	}
	return name + " " + h.Version.String()
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

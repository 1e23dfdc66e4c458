// Package compat tells a plugin which host started it: Vault or OpenBao,
// and which version, for a backend that must behave differently on one of
// them.
//
//	host := compat.FromEnv(os.LookupEnv)
//	logger.Info("started", "host", host) // "Vault 1.21.0", "OpenBao 2.6.2"
//	if host.OpenBao { /* an OpenBao-only feature */ }
//
// How the host wants the plugin served (TLS, multiplexing, memory locking)
// is the serving library's business and is not exposed here.
package compat

import (
	version "github.com/hashicorp/go-version"

	"github.com/plugkit/vaultplugin/internal/hostenv"
)

// Host is the host that started the plugin, as its environment tells.
// The zero value is no host: a person or a test ran the binary.
type Host struct {
	// OpenBao reports whether the host is OpenBao, which sets its BAO_*
	// variables alongside Vault's.
	OpenBao bool
	// Version is the host's own version, nil when unset or malformed:
	// Vault's (VAULT_VERSION), or OpenBao's (BAO_VERSION), which numbers
	// its releases from 2.0 and is not comparable with Vault's. OpenBao
	// also sets VAULT_VERSION to its own version, so compare versions only
	// after checking OpenBao.
	//
	// It is a go-version Version, the type the Vault SDK itself parses
	// versions with, so that constraints such as ">= 1.16" need no code of
	// the plugin's own; go-version is already in every plugin's module
	// graph through the SDK, and its v1 API has not broken since 2018.
	Version *version.Version

	started bool
}

// FromEnv reads the host through lookup, normally os.LookupEnv. It never
// fails: a version the host sent that is not one leaves Version nil.
func FromEnv(lookup func(key string) (string, bool)) Host {
	h := hostenv.FromEnv(lookup)
	return Host{OpenBao: h.OpenBao, Version: h.Version, started: h.Cookie != ""}
}

// String names the host and its version as a person would: "Vault
// 1.21.0", "OpenBao 2.6.2", "Vault (version unknown)", or "no host" when
// no host started the process.
func (h Host) String() string {
	var cookie string
	if h.started {
		cookie = hostenv.EnvBackendCookie // any: String only asks whether one was set
	}
	return hostenv.Host{Cookie: cookie, OpenBao: h.OpenBao, Version: h.Version}.String()
}

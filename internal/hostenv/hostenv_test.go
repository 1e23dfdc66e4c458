package hostenv_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/internal/hostenv"
)

func env(kv ...string) hostenv.LookupFunc {
	m := map[string]string{}
	for _, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnvVault121(t *testing.T) {
	h := hostenv.FromEnv(env(
		"VAULT_BACKEND_PLUGIN="+hostenv.BackendCookieValue,
		"VAULT_VERSION=1.21.0",
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=true",
		"VAULT_PLUGIN_METADATA_MODE=false",
		"PLUGIN_PROTOCOL_VERSIONS=3,4,5",
		"PLUGIN_CLIENT_CERT=pem",
	))
	if len(h.Problems) != 0 {
		t.Fatalf("problems: %v", h.Problems)
	}
	if !h.Started(hostenv.Backend) || h.Started(hostenv.Database) {
		t.Errorf("Started: backend %v database %v", h.Started(hostenv.Backend), h.Started(hostenv.Database))
	}
	if h.Version.String() != "1.21.0" || !h.AutoMTLS || h.MetadataMode || h.Mlock || h.WrapToken || !h.ClientCert {
		t.Errorf("host = %+v", h)
	}
	if fmt.Sprint(h.ProtocolVersions) != "[3 4 5]" {
		t.Errorf("ProtocolVersions = %v", h.ProtocolVersions)
	}
	if got := h.String(); got != "Vault 1.21.0" {
		t.Errorf("String = %q", got)
	}
}

func TestMalformedValuesAreReportedNotFatal(t *testing.T) {
	h := hostenv.FromEnv(env(
		"VAULT_BACKEND_PLUGIN="+hostenv.BackendCookieValue,
		"VAULT_VERSION=garbage!",
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=yes",
		"VAULT_PLUGIN_MLOCK_ENABLED=please",
		"PLUGIN_PROTOCOL_VERSIONS=5,x,-1",
		"VAULT_UNWRAP_TOKEN=tok",
	))
	if len(h.Problems) != 5 {
		t.Fatalf("want 5 problems (version, automtls, mlock, two protocol entries), got %d: %v", len(h.Problems), h.Problems)
	}
	for _, want := range []string{"VAULT_VERSION", "VAULT_PLUGIN_AUTOMTLS_ENABLED", "VAULT_PLUGIN_MLOCK_ENABLED", "PLUGIN_PROTOCOL_VERSIONS"} {
		found := false
		for _, p := range h.Problems {
			found = found || strings.Contains(p.Error(), want)
		}
		if !found {
			t.Errorf("no problem names %s: %v", want, h.Problems)
		}
	}
	if h.Version != nil || h.Mlock || h.AutoMTLSSet {
		t.Errorf("malformed values must not be used: %+v", h)
	}
	if got := h.String(); got != "Vault (version unknown)" {
		t.Errorf("String = %q", got)
	}
}

func TestOpenBao(t *testing.T) {
	h := hostenv.FromEnv(env("VAULT_VERSION=2.6.2", "BAO_VERSION=2.6.2", "VAULT_BACKEND_PLUGIN="+hostenv.BackendCookieValue))
	if !h.OpenBao || !h.Started(hostenv.Backend) || h.Version.String() != "2.6.2" {
		t.Fatalf("host = %+v", h)
	}
	if got := h.String(); got != "OpenBao 2.6.2" {
		t.Errorf("String = %q", got)
	}
	// A malformed BAO_VERSION is named as such, not as VAULT_VERSION.
	h = hostenv.FromEnv(env("VAULT_VERSION=2.6.2", "BAO_VERSION=next", "VAULT_BACKEND_PLUGIN="+hostenv.BackendCookieValue))
	if h.Version != nil || len(h.Problems) != 1 || !strings.HasPrefix(h.Problems[0].Error(), "BAO_VERSION=") {
		t.Errorf("host = %+v", h)
	}
}

func TestNoHost(t *testing.T) {
	h := hostenv.FromEnv(env("VAULT_VERSION=1.21.0"))
	if h.Started(hostenv.Backend) || h.Started(hostenv.Database) || h.String() != "no host" {
		t.Errorf("host = %+v (%s)", h, h)
	}
}

// A plugin asks which host started it; serve logs the same at startup.
func ExampleFromEnv() {
	lookup := func(key string) (string, bool) {
		v, ok := map[string]string{
			hostenv.EnvBackendCookie:  hostenv.BackendCookieValue,
			hostenv.EnvVaultVersion:   "2.6.2",
			hostenv.EnvOpenBaoVersion: "2.6.2",
		}[key]
		return v, ok
	}
	host := hostenv.FromEnv(lookup) // in a plugin: hostenv.FromEnv(os.LookupEnv)
	fmt.Println(host)
	fmt.Println("started as a backend plugin:", host.Started(hostenv.Backend))
	// Output:
	// OpenBao 2.6.2
	// started as a backend plugin: true
}

package compat_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/compat"
)

func env(kv ...string) compat.LookupFunc {
	m := map[string]string{}
	for _, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnvVault121(t *testing.T) {
	h := compat.FromEnv(env(
		"VAULT_BACKEND_PLUGIN="+compat.BackendCookieValue,
		"VAULT_VERSION=1.21.0",
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=true",
		"VAULT_PLUGIN_METADATA_MODE=false",
		"PLUGIN_PROTOCOL_VERSIONS=3,4,5",
		"PLUGIN_CLIENT_CERT=pem",
	))
	if len(h.Problems) != 0 {
		t.Fatalf("problems: %v", h.Problems)
	}
	if !h.Started(compat.Backend) || h.Started(compat.Database) {
		t.Errorf("Started: backend %v database %v", h.Started(compat.Backend), h.Started(compat.Database))
	}
	if h.VaultVersion.String() != "1.21.0" || !h.AutoMTLS || h.MetadataMode || h.Mlock || h.WrapToken || !h.ClientCert {
		t.Errorf("host = %+v", h)
	}
	if fmt.Sprint(h.ProtocolVersions) != "[3 4 5]" {
		t.Errorf("ProtocolVersions = %v", h.ProtocolVersions)
	}
	p := h.Plan(compat.Backend, true)
	if p.TLSProvider || !p.Multiplex || p.Mlock {
		t.Errorf("plan = %+v", p)
	}
}

func TestMalformedValuesAreReportedNotFatal(t *testing.T) {
	h := compat.FromEnv(env(
		"VAULT_BACKEND_PLUGIN="+compat.BackendCookieValue,
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
	if h.VaultVersion != nil || h.Mlock {
		t.Errorf("malformed values must not be used: %+v", h)
	}
	// The token is the evidence of the legacy path when the flag is garbage.
	if p := h.Plan(compat.Backend, true); !p.TLSProvider || len(p.Reasons) == 0 {
		t.Errorf("plan = %+v, want the TLS provider with a reason", p)
	}
	// Without a token there is nothing to unwrap.
	h2 := compat.FromEnv(env("VAULT_PLUGIN_AUTOMTLS_ENABLED=yes"))
	if p := h2.Plan(compat.Backend, true); p.TLSProvider {
		t.Errorf("plan = %+v, want no TLS provider", p)
	}
}

func TestPlanTLS(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		kind compat.Kind
		want bool
	}{
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=false", "VAULT_UNWRAP_TOKEN=t"}, compat.Backend, true},
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=false"}, compat.Backend, true},
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=true", "VAULT_UNWRAP_TOKEN=t"}, compat.Backend, false},
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=false", "VAULT_PLUGIN_METADATA_MODE=true"}, compat.Backend, false},
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=false", "VAULT_UNWRAP_TOKEN=t"}, compat.Database, false},
		{nil, compat.Backend, false},
	} {
		if got := compat.FromEnv(env(tc.env...)).Plan(tc.kind, true).TLSProvider; got != tc.want {
			t.Errorf("%v %v: TLSProvider = %v, want %v", tc.env, tc.kind, got, tc.want)
		}
	}
}

func TestSupports(t *testing.T) {
	for _, tc := range []struct {
		version string
		f       compat.Feature
		k       compat.Kind
		want    bool
	}{
		{"1.11.9", compat.FeatureMultiplexing, compat.Backend, false},
		{"1.12.0", compat.FeatureMultiplexing, compat.Backend, true},
		{"1.10.0", compat.FeatureMultiplexing, compat.Database, true},
		{"1.9.3", compat.FeatureMultiplexing, compat.Database, false},
		{"1.6.0", compat.FeatureAutoMTLS, compat.Database, true},
		{"1.11.0", compat.FeatureAutoMTLS, compat.Backend, false},
		{"1.12.0-rc1", compat.FeaturePluginVersions, compat.Backend, true},
		{"1.21.0+ent", compat.FeaturePluginVersions, compat.Backend, true},
	} {
		h := compat.FromEnv(env("VAULT_VERSION=" + tc.version))
		got, known := h.Supports(tc.f, tc.k)
		if !known || got != tc.want {
			t.Errorf("Vault %s %v for %v: got %v (known %v), want %v", tc.version, tc.f, tc.k, got, known, tc.want)
		}
	}
	if got, known := compat.FromEnv(env()).Supports(compat.FeatureMultiplexing, compat.Backend); !got || known {
		t.Errorf("unknown version: got %v known %v, want offered and unknown", got, known)
	}
	h := compat.FromEnv(env("VAULT_VERSION=1.11.0"))
	if p := h.Plan(compat.Backend, true); len(p.Reasons) != 1 || !strings.Contains(p.Reasons[0], "one process per mount") {
		t.Errorf("plan on an old host = %+v", p)
	}
}

func TestOpenBao(t *testing.T) {
	h := compat.FromEnv(env("VAULT_VERSION=2.1.0", "BAO_VERSION=2.1.0", "VAULT_BACKEND_PLUGIN="+compat.BackendCookieValue))
	if !h.OpenBao || !h.Started(compat.Backend) {
		t.Fatalf("host = %+v", h)
	}
	if ok, _ := h.Supports(compat.FeatureMultiplexing, compat.Backend); !ok {
		t.Error("OpenBao supports multiplexing")
	}
}

func ExampleHost_Plan() {
	host := compat.FromEnv(env(
		"VAULT_BACKEND_PLUGIN="+compat.BackendCookieValue,
		"VAULT_VERSION=1.21.0",
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=true",
	))
	plan := host.Plan(compat.Backend, true)
	fmt.Println("started by a host:", host.Started(compat.Backend))
	fmt.Println("unwrap a TLS certificate:", plan.TLSProvider)
	fmt.Println("multiplex:", plan.Multiplex)
	// Output:
	// started by a host: true
	// unwrap a TLS certificate: false
	// multiplex: true
}

package server

import (
	"encoding/base64"
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

func TestPlanMalformedHost(t *testing.T) {
	h := hostenv.FromEnv(env(
		"VAULT_BACKEND_PLUGIN="+hostenv.BackendCookieValue,
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=yes",
		"VAULT_UNWRAP_TOKEN=tok",
	))
	// The token is the evidence of the legacy path when the flag is garbage.
	if p := NewPlan(h, hostenv.Backend, true); !p.TLSProvider || len(p.Reasons) == 0 {
		t.Errorf("plan = %+v, want the TLS provider with a reason", p)
	}
	// Without a token there is nothing to unwrap.
	h2 := hostenv.FromEnv(env("VAULT_PLUGIN_AUTOMTLS_ENABLED=yes"))
	if p := NewPlan(h2, hostenv.Backend, true); p.TLSProvider {
		t.Errorf("plan = %+v, want no TLS provider", p)
	}
	h3 := hostenv.FromEnv(env("VAULT_VERSION=1.21.0", "VAULT_PLUGIN_AUTOMTLS_ENABLED=true"))
	if p := NewPlan(h3, hostenv.Backend, true); p.TLSProvider || !p.Multiplex || p.Mlock {
		t.Errorf("plan = %+v", p)
	}
}

func TestPlanTLS(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		kind hostenv.Kind
		want bool
	}{
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=false", "VAULT_UNWRAP_TOKEN=t"}, hostenv.Backend, true},
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=false"}, hostenv.Backend, true},
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=true", "VAULT_UNWRAP_TOKEN=t"}, hostenv.Backend, false},
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=false", "VAULT_PLUGIN_METADATA_MODE=true"}, hostenv.Backend, false},
		{[]string{"VAULT_PLUGIN_AUTOMTLS_ENABLED=false", "VAULT_UNWRAP_TOKEN=t"}, hostenv.Database, false},
		{nil, hostenv.Backend, false},
	} {
		if got := NewPlan(hostenv.FromEnv(env(tc.env...)), tc.kind, true).TLSProvider; got != tc.want {
			t.Errorf("%v %v: TLSProvider = %v, want %v", tc.env, tc.kind, got, tc.want)
		}
	}
}

func TestSupports(t *testing.T) {
	for _, tc := range []struct {
		version string
		f       Feature
		k       hostenv.Kind
		want    bool
	}{
		{"1.11.9", FeatureMultiplexing, hostenv.Backend, false},
		{"1.12.0", FeatureMultiplexing, hostenv.Backend, true},
		{"1.10.0", FeatureMultiplexing, hostenv.Database, true},
		{"1.9.3", FeatureMultiplexing, hostenv.Database, false},
		{"1.6.0", FeatureAutoMTLS, hostenv.Database, true},
		{"1.11.0", FeatureAutoMTLS, hostenv.Backend, false},
		{"1.12.0-rc1", FeaturePluginVersions, hostenv.Backend, true},
		{"1.21.0+ent", FeaturePluginVersions, hostenv.Backend, true},
	} {
		h := hostenv.FromEnv(env("VAULT_VERSION=" + tc.version))
		got, known := supports(h, tc.f, tc.k)
		if !known || got != tc.want {
			t.Errorf("Vault %s %v for %v: got %v (known %v), want %v", tc.version, tc.f, tc.k, got, known, tc.want)
		}
	}
	if got, known := supports(hostenv.FromEnv(env()), FeatureMultiplexing, hostenv.Backend); !got || known {
		t.Errorf("unknown version: got %v known %v, want offered and unknown", got, known)
	}
	h := hostenv.FromEnv(env("VAULT_VERSION=1.11.0"))
	if p := NewPlan(h, hostenv.Backend, true); len(p.Reasons) != 1 || !strings.Contains(p.Reasons[0], "one process per mount") {
		t.Errorf("plan on an old host = %+v", p)
	}
}

func TestOpenBaoSupports(t *testing.T) {
	h := hostenv.FromEnv(env("VAULT_VERSION=2.1.0", "BAO_VERSION=2.1.0", "VAULT_BACKEND_PLUGIN="+hostenv.BackendCookieValue))
	if ok, _ := supports(h, FeatureMultiplexing, hostenv.Backend); !ok {
		t.Error("OpenBao supports multiplexing")
	}
}

// FuzzPlan plans serving on a host whose every variable is arbitrary. The
// plan never unwraps for a database plugin, unwraps for a backend only on
// the host's word (AutoMTLS=false) or, lacking a valid one, a token, and
// never carries the token in a reason.
func FuzzPlan(f *testing.F) {
	f.Add("1.21.0", "true", "false", "false", "", false)
	f.Add("1.10.0+ent", "TRUE", "0", "1", "", false)
	f.Add("1.11.2", "false", "false", "true", "eyJhbGciOiJFUzUxMiJ9.e30.sig", false)
	f.Add("2.1.0", "", "", "", "eyJhbGciOiJFUzUxMiJ9.e30.sig", true)
	f.Add("not-a-version", "yes", "maybe", "on", "", false)
	f.Fuzz(func(t *testing.T, vaultVersion, autoMTLS, metadata, mlock, token string, bao bool) {
		m := map[string]string{
			hostenv.EnvBackendCookie: hostenv.BackendCookieValue,
			hostenv.EnvVaultVersion:  vaultVersion,
			hostenv.EnvAutoMTLS:      autoMTLS,
			hostenv.EnvMetadataMode:  metadata,
			hostenv.EnvMlock:         mlock,
			hostenv.EnvUnwrapToken:   token,
		}
		if bao {
			m[hostenv.EnvOpenBaoVersion] = vaultVersion
		}
		h := hostenv.FromEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
		for _, k := range []hostenv.Kind{hostenv.Backend, hostenv.Database, hostenv.Kind(7)} {
			for _, feat := range []Feature{FeatureAutoMTLS, FeatureMultiplexing, FeaturePluginVersions, Feature(9)} {
				supports(h, feat, k)
			}
			for _, mux := range []bool{true, false} {
				p := NewPlan(h, k, mux)
				if k == hostenv.Database && p.TLSProvider {
					t.Fatal("a database plugin was planned onto the TLS provider")
				}
				wantTLS := k != hostenv.Database && !h.MetadataMode && (h.AutoMTLSSet && !h.AutoMTLS || !h.AutoMTLSSet && h.WrapToken)
				if p.TLSProvider != wantTLS {
					t.Fatalf("kind %v, host %+v: TLSProvider = %v, want %v", k, h, p.TLSProvider, wantTLS)
				}
				if p.Multiplex != mux || p.Mlock != h.Mlock {
					t.Fatalf("plan %+v for mux %v, host mlock %v", p, mux, h.Mlock)
				}
				// The token is a secret: it never reaches a reason.
				if len(token) >= 8 {
					for _, r := range p.Reasons {
						if strings.Contains(r, token) {
							t.Fatalf("a plan reason carries the token: %q", r)
						}
					}
				}
			}
		}
	})
}

func TestUnwrapAddr(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tok := func(header, claims string) string { return enc(header) + "." + enc(claims) + ".c2ln" }
	for _, tc := range []struct {
		token, want, err string
	}{
		{tok(`{"alg":"ES512","typ":"JWT"}`, `{"addr":"https://vault.example:8200","jti":"s.x"}`), "https://vault.example:8200", ""},
		{tok(`{"alg":"HS256"}`, `{"addr":"https://vault.example:8200"}`), "", "not an ES512-signed JWT"},
		{tok(`{"alg":"ES512"}`, `{"jti":"s.x"}`), "", "no addr claim"},
		{tok(`{"alg":"ES512"}`, `{"addr":"not a url"}`), "", "is not a URL"},
		{tok(`{"alg":"ES512"}`, `[1,2]`), "", "claims are not JSON"},
		{enc(`{"alg":"ES512"}`) + ".%%%.sig", "", "not an ES512-signed JWT"},
		{"garbage", "", "not an ES512-signed JWT"},
		{"", "", "empty"},
	} {
		got, err := unwrapAddr(tc.token)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("unwrapAddr(%q) = %q, %v; want %q, an error with %q", tc.token, got, err, tc.want, tc.err)
		}
	}
}

package compat

import (
	"strconv"
	"strings"
	"testing"

	version "github.com/hashicorp/go-version"
)

// FuzzFromEnv gives every variable FromEnv reads an arbitrary value. It
// must never panic; a malformed value is recorded in Problems, naming its
// variable, and the setting falls back to "unset"; the plan that follows
// never unwraps for a database plugin and unwraps for a backend only on
// the host's word (AutoMTLS=false) or, lacking a valid one, a token.
func FuzzFromEnv(f *testing.F) {
	f.Add(BackendCookieValue, "1.21.0", "true", "false", "false", "", "", "3,4,5", false)
	f.Add(DatabaseCookieValue, "1.10.0+ent", "TRUE", "0", "1", "", "cert", "5,6", false)
	f.Add(BackendCookieValue, "1.11.2", "false", "false", "true", "eyJhbGciOiJFUzUxMiJ9.e30.sig", "", "3,4", false)
	f.Add(BackendCookieValue, "2.1.0", "", "", "", "eyJhbGciOiJFUzUxMiJ9.e30.sig", "", "", true)
	f.Add("wrong-cookie", "not-a-version", "yes", "maybe", "on", "", "", "3,x,-1,,99999999999999999999", false)
	f.Add("", " 1.21.0 ", " true ", "t", "F", "tok", "", " 5 ", false)
	f.Add(BackendCookieValue, "v1.21", "\x00", "\n", "ü", "", "", ",", false)
	f.Fuzz(func(t *testing.T, cookie, vaultVersion, autoMTLS, metadata, mlock, token, clientCert, protocols string, bao bool) {
		env := map[string]string{
			EnvBackendCookie:    cookie,
			EnvDatabaseCookie:   cookie,
			EnvVaultVersion:     vaultVersion,
			EnvAutoMTLS:         autoMTLS,
			EnvMetadataMode:     metadata,
			EnvMlock:            mlock,
			EnvUnwrapToken:      token,
			EnvClientCert:       clientCert,
			EnvProtocolVersions: protocols,
		}
		if bao {
			env["BAO_VERSION"] = vaultVersion
		}
		h := FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })

		problems := map[string]int{}
		for _, p := range h.Problems {
			name, _, ok := strings.Cut(p.Error(), "=")
			if !ok || env[name] == "" && name != "" {
				t.Fatalf("problem %q does not start with a variable the host set", p)
			}
			problems[name]++
		}

		// The version: unknown when it does not parse, and then a problem.
		if _, err := version.NewVersion(strings.TrimSpace(vaultVersion)); err == nil && vaultVersion != "" {
			if h.VaultVersion == nil || problems[EnvVaultVersion] != 0 {
				t.Fatalf("VAULT_VERSION=%q parses but FromEnv gave %v, problems %v", vaultVersion, h.VaultVersion, h.Problems)
			}
		} else if h.VaultVersion != nil || (vaultVersion != "" && problems[EnvVaultVersion] != 1) {
			t.Fatalf("VAULT_VERSION=%q: version %v, problems %v", vaultVersion, h.VaultVersion, h.Problems)
		}

		// Booleans: a malformed one is false, a problem, and not "set".
		for _, b := range []struct {
			key   string
			value string
			got   bool
		}{{EnvAutoMTLS, autoMTLS, h.AutoMTLS}, {EnvMetadataMode, metadata, h.MetadataMode}, {EnvMlock, mlock, h.Mlock}} {
			want, err := strconv.ParseBool(strings.TrimSpace(b.value))
			malformed := b.value != "" && err != nil
			if malformed && (b.got || problems[b.key] != 1) {
				t.Fatalf("%s=%q: got %v, problems %v", b.key, b.value, b.got, h.Problems)
			}
			if !malformed && (b.got != want || problems[b.key] != 0) {
				t.Fatalf("%s=%q: got %v, want %v; problems %v", b.key, b.value, b.got, want, h.Problems)
			}
			if b.key == EnvAutoMTLS && h.AutoMTLSSet != (b.value != "" && !malformed) {
				t.Fatalf("%s=%q: AutoMTLSSet = %v", b.key, b.value, h.AutoMTLSSet)
			}
		}

		for _, n := range h.ProtocolVersions {
			if n < 0 {
				t.Fatalf("negative protocol version %d from %q", n, protocols)
			}
		}
		if h.WrapToken != (token != "") || h.ClientCert != (clientCert != "") || h.OpenBao != bao {
			t.Fatalf("presence flags wrong: %+v", h)
		}
		if h.Started(Backend) != (cookie == BackendCookieValue) || h.Started(Database) != (cookie == DatabaseCookieValue) {
			t.Fatalf("cookie %q: Started = %v/%v", cookie, h.Started(Backend), h.Started(Database))
		}

		for _, k := range []Kind{Backend, Database, Kind(7)} {
			for _, feat := range []Feature{FeatureAutoMTLS, FeatureMultiplexing, FeaturePluginVersions, Feature(9)} {
				h.Supports(feat, k)
			}
			for _, mux := range []bool{true, false} {
				p := h.Plan(k, mux)
				if k == Database && p.TLSProvider {
					t.Fatal("a database plugin was planned onto the TLS provider")
				}
				wantTLS := k != Database && !h.MetadataMode && (h.AutoMTLSSet && !h.AutoMTLS || !h.AutoMTLSSet && h.WrapToken)
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
		if len(token) >= 8 && !strings.Contains(vaultVersion+autoMTLS+metadata+mlock+protocols+cookie, token) {
			for _, p := range h.Problems {
				if strings.Contains(p.Error(), token) {
					t.Fatalf("a problem carries the token: %v", p)
				}
			}
		}
	})
}

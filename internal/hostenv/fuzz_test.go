package hostenv

import (
	"strconv"
	"strings"
	"testing"

	version "github.com/hashicorp/go-version"
)

// FuzzFromEnv gives every variable FromEnv reads an arbitrary value. It
// must never panic; a malformed value is recorded in Problems, naming its
// variable, and the setting falls back to "unset". (FuzzPlan in
// internal/server fuzzes the serving decision made from the result.)
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
			env[EnvOpenBaoVersion] = vaultVersion
		}
		versionKey := EnvVaultVersion
		if bao {
			versionKey = EnvOpenBaoVersion
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
			if h.Version == nil || problems[versionKey] != 0 {
				t.Fatalf("%s=%q parses but FromEnv gave %v, problems %v", versionKey, vaultVersion, h.Version, h.Problems)
			}
		} else if h.Version != nil || (vaultVersion != "" && problems[versionKey] != 1) {
			t.Fatalf("%s=%q: version %v, problems %v", versionKey, vaultVersion, h.Version, h.Problems)
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

		if h.String() == "" {
			t.Fatal("empty String")
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

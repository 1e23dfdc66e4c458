package compat_test

import (
	"fmt"
	"strings"
	"testing"

	version "github.com/hashicorp/go-version"

	"github.com/plugkit/vaultplugin/compat"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for _, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const backendCookie = "VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20"

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     []string
		openBao bool
		version string // "" for nil
		str     string
	}{
		{"Vault", []string{backendCookie, "VAULT_VERSION=1.21.0"}, false, "1.21.0", "Vault 1.21.0"},
		{"Vault Enterprise", []string{backendCookie, "VAULT_VERSION=1.19.5+ent"}, false, "1.19.5+ent", "Vault 1.19.5+ent"},
		{"OpenBao", []string{backendCookie, "VAULT_VERSION=2.6.2", "BAO_VERSION=2.6.2"}, true, "2.6.2", "OpenBao 2.6.2"},
		{"database host", []string{"VAULT_DATABASE_PLUGIN=926a0820-aea2-be28-51d6-83cdf00e8edb", "VAULT_VERSION=1.21.0"}, false, "1.21.0", "Vault 1.21.0"},
		{"malformed version", []string{backendCookie, "VAULT_VERSION=garbage!"}, false, "", "Vault (version unknown)"},
		{"no host", []string{"VAULT_VERSION=1.21.0"}, false, "1.21.0", "no host"},
		{"nothing", nil, false, "", "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := compat.FromEnv(env(tc.env...))
			if h.OpenBao != tc.openBao {
				t.Errorf("OpenBao = %t, want %t", h.OpenBao, tc.openBao)
			}
			got := ""
			if h.Version != nil {
				got = h.Version.String()
			}
			if got != tc.version {
				t.Errorf("Version = %q, want %q", got, tc.version)
			}
			if s := h.String(); s != tc.str {
				t.Errorf("String = %q, want %q", s, tc.str)
			}
		})
	}
}

func TestZeroValueIsNoHost(t *testing.T) {
	if s := (compat.Host{}).String(); s != "no host" {
		t.Errorf("String = %q", s)
	}
}

// A backend that needs a feature of Vault 1.16 or later, and none of
// OpenBao's.
func ExampleFromEnv() {
	lookup := env(backendCookie, "VAULT_VERSION=1.21.0")
	host := compat.FromEnv(lookup) // os.LookupEnv in a plugin
	fmt.Println(host)
	if !host.OpenBao && host.Version != nil {
		fmt.Println("1.16 or later:", host.Version.GreaterThanOrEqual(version.Must(version.NewVersion("1.16"))))
	}
	// Output:
	// Vault 1.21.0
	// 1.16 or later: true
}

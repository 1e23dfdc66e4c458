package dev

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
)

// register parses args as vaultplugin does and runs register.
func register(args ...string) (stdout string, err error) {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := RegisterFlags(fs)
	rest, err := cli.ParseFlags(fs, args)
	if err != nil {
		return "", &cli.UsageError{Err: err}
	}
	var out strings.Builder
	err = run(rest, &out, io.Discard)
	return out.String(), err
}

// A fake Vault API records what register sends; the real one is driven
// by e2e's TestDevLoop.
func TestRegisterSendsTheCatalogEntry(t *testing.T) {
	var got []string
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Vault-Token"))
		if strings.HasPrefix(r.URL.Path, "/v1/sys/plugins/catalog/") {
			_ = json.NewDecoder(r.Body).Decode(&body)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "tok")
	bin := filepath.Join(t.TempDir(), "my-plugin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Flags after BINARY, as the README writes them.
	out, err := register("-type", "auth", "-version", "v1.2.3", bin, "-reload", "-scope", "global")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PUT /v1/sys/plugins/catalog/auth/my-plugin tok", "PUT /v1/sys/plugins/reload/backend tok"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if body["command"] != "my-plugin" || body["version"] != "v1.2.3" || len(body["sha256"].(string)) != 64 {
		t.Errorf("catalog entry %v", body)
	}
	if !strings.HasPrefix(out, "registered auth plugin my-plugin v1.2.3 (sha256 ") || !strings.HasSuffix(out, "reloaded my-plugin on every node\n") {
		t.Errorf("stdout %q", out)
	}
}

func TestRegisterUsage(t *testing.T) {
	t.Setenv("VAULT_ADDR", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no BINARY to register"},
		{[]string{"a", "b"}, "one BINARY at a time, got a b"},
		{[]string{"-scope", "local", "x"}, `-scope="local": want global or nothing`},
		{[]string{"x"}, "VAULT_ADDR and VAULT_TOKEN must name the Vault"},
	} {
		_, err := register(c.args...)
		var usage *cli.UsageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("register %q: %v, want a usage error holding %q", c.args, err, c.want)
		}
	}
}

// A -type that contradicts the type the binary reports for itself is
// refused, naming both, before anything reaches Vault; -force registers it
// as given.
func TestRegisterRefusesAContradictingType(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "tok")
	// An auth method as -describe shows one.
	bin := filepath.Join(t.TempDir(), "my-auth")
	script := "#!/bin/sh\n[ \"$1\" = -describe ] && echo '{\"schema\":1,\"type\":\"auth\",\"version\":\"v1.0.0\"}' && exit 0\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	_, err := register("-type", "secret", bin)
	var usage *cli.UsageError
	const want = "-type secret contradicts what %s reports for itself, auth (-describe): Vault would register it, then fail to mount it; " +
		"leave -type out to register it as auth, or give -force to register it as secret anyway"
	if !errors.As(err, &usage) || err.Error() != fmt.Sprintf(want, bin) {
		t.Errorf("register -type secret: %v; want a usage error %q", err, fmt.Sprintf(want, bin))
	}
	if len(got) > 0 {
		t.Errorf("a refused registration sent %v", got)
	}

	out, err := register("-type", "secret", "-force", bin)
	if err != nil || !strings.HasPrefix(out, "registered secret plugin my-auth v1.0.0") || strings.Join(got, " ") != "PUT /v1/sys/plugins/catalog/secret/my-auth" {
		t.Errorf("register -type secret -force: %v, stdout %q, requests %v", err, out, got)
	}
}

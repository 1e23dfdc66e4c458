package dev

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
	var out, errOut strings.Builder
	if code := Register([]string{"-type", "auth", "-version", "v1.2.3", "-reload", "-scope", "global", bin}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := []string{"PUT /v1/sys/plugins/catalog/auth/my-plugin tok", "PUT /v1/sys/plugins/reload/backend tok"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if body["command"] != "my-plugin" || body["version"] != "v1.2.3" || len(body["sha256"].(string)) != 64 {
		t.Errorf("catalog entry %v", body)
	}
}

func TestRegisterUsage(t *testing.T) {
	t.Setenv("VAULT_ADDR", "")
	for _, args := range [][]string{nil, {"a", "b"}, {"-scope", "local", "x"}, {"x"}} {
		var out, errOut strings.Builder
		if code := Register(args, &out, &errOut); code != exitUsage {
			t.Errorf("register %q: exit %d, want %d (%s)", args, code, exitUsage, errOut.String())
		}
	}
}

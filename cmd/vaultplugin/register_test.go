package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// When a proxy in front of Vault answers instead of Vault, register's
// error says what it said; when the answer breaks off, it says that.
func TestRegisterWhenAProxyAnswers(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "my-plugin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const prefix = "vaultplugin register: PUT sys/plugins/catalog/secret/my-plugin: Vault answered 502"
	for _, c := range []struct {
		name    string
		handler http.HandlerFunc
		stderr  string
	}{
		{"HTML", answer("text/html", "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
			prefix + ": 502 Bad Gateway\n"},
		{"plain text", answer("text/plain", "upstream connect error or disconnect/reset before headers. reset reason: connection failure\n"),
			prefix + ": upstream connect error or disconnect/reset before headers. reset reason: connection failure\n"},
		{"cut short", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, prefix + ", and reading the answer failed: unexpected EOF\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			r := vaultpluginWith(t, func(cmd *exec.Cmd) {
				cmd.Env = append(withoutVault(os.Environ()), "VAULT_ADDR="+srv.URL, "VAULT_TOKEN=tok")
			}, "register", "-type", "secret", "-version", "v1.0.0", bin)
			assertRun(t, r, 1, "", c.stderr)
		})
	}
}

// answer answers 502 with body as contentType.
func answer(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, body)
	}
}

// A binary that does not answer -describe, the bare SDK main, tells its
// type when started as Vault starts a plugin of unknown type: register
// takes it from there, and refuses a -type that contradicts it.
func TestRegisterAsksTheBinarysType(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	env := func(cmd *exec.Cmd) {
		cmd.Env = append(withoutVault(os.Environ()), "VAULT_ADDR="+srv.URL, "VAULT_TOKEN=tok")
	}
	bare := plugin(t, "bare")

	r := vaultpluginWith(t, env, "register", "-type", "auth", bare)
	assertRun(t, r, 2, "", "vaultplugin register: -type auth contradicts what "+bare+" reports for itself, secret (its Type() when started as Vault starts it): "+
		"Vault would register it, then fail to mount it; leave -type out to register it as secret, or give -force to register it as auth anyway\n"+
		"usage: vaultplugin register [-name NAME] [-version V] [-type T [-force]] [-plugin-dir DIR] [-reload [-scope global]] BINARY\n"+
		"Run 'vaultplugin help register' for details.\n")

	r = vaultpluginWith(t, env, "register", bare)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "registered secret plugin bare (no version)") {
		t.Errorf("register without -type: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, " ") != "PUT /v1/sys/plugins/catalog/secret/bare" {
		t.Errorf("requests %v, want the one registration", got)
	}
}

//go:build unix

package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// VAULTPLUGIN_HTTP_ADDR takes a unix socket as unix:/abs, /abs, or
// unix:NAME in the host's socket directory; a refusal names the variable.
func TestReadOpsSocket(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		env        map[string]string
		addr, fail string
	}{
		{"prefixed", map[string]string{envHTTPAddr: "unix:" + dir + "/ops.sock"}, "unix:" + dir + "/ops.sock", ""},
		{"bare path", map[string]string{envHTTPAddr: dir + "//ops.sock"}, "unix:" + dir + "/ops.sock", ""},
		{"TCP as before", map[string]string{envHTTPAddr: "127.0.0.1:0"}, "127.0.0.1:0", ""},
		{"in the host's socket directory", map[string]string{envHTTPAddr: "unix:ops.sock", "PLUGIN_UNIX_SOCKET_DIR": open}, "unix:" + open + "/ops.sock", ""},
		{"relative without a host directory", map[string]string{envHTTPAddr: "unix:ops.sock"}, "",
			`VAULTPLUGIN_HTTP_ADDR: "unix:ops.sock" is relative`},
		{"world-writable directory", map[string]string{envHTTPAddr: "unix:" + open + "/ops.sock"}, "",
			"VAULTPLUGIN_HTTP_ADDR: the socket's directory " + open + " can be written by its group and every user"},
		{"a file in the way", map[string]string{envHTTPAddr: dir}, "",
			"VAULTPLUGIN_HTTP_ADDR: " + dir + ": it exists and is not a socket (a directory)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			s, err := readOps(context.Background(), lookup)
			if tc.fail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fail) {
					t.Fatalf("err = %v, want %q", err, tc.fail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.httpAddr != tc.addr {
				t.Errorf("httpAddr = %q, want %q", s.httpAddr, tc.addr)
			}
		})
	}
}

//go:build unix

package opshttp

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugkit/vaultplugin/internal/loopback"
)

// On a unix socket any Host is served (no web page can open a unix
// socket, so the DNS-rebinding check has nothing to guard) and the index
// page gives advice that works there.
func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ops.sock")
	ln, err := loopback.ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	s := Start(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") }), nil)
	defer ln.Remove()
	defer s.Close(time.Second)
	if s.Addr() != path {
		t.Errorf("Addr %q, want %q", s.Addr(), path)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	defer client.CloseIdleConnections()
	for url, want := range map[string]string{
		"http://rebind.example/metrics": "metrics",
		"http://localhost/":             "curl --unix-socket " + path + " -o heap.pb.gz http://localhost/debug/pprof/heap",
	} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %q, want 200 and %q", url, resp.StatusCode, b, want)
		}
	}
}

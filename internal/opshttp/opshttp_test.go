package opshttp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLoopbackAddr(t *testing.T) {
	hosts := map[string][]string{
		"localhost":      {"127.0.0.1", "::1"},
		"lan.example":    {"192.168.1.20"},
		"half.example":   {"127.0.0.1", "10.0.0.1"},
		"mapped.example": {"::ffff:127.0.0.1"},
		"none.example":   {},
	}
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		ips, ok := hosts[host]
		if !ok {
			return nil, errors.New("no such host")
		}
		var out []netip.Addr
		for _, s := range ips {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "127.0.0.1:0", want: "127.0.0.1:0"},
		{in: "127.1.2.3:9100", want: "127.1.2.3:9100"},
		{in: "[::1]:9100", want: "[::1]:9100"},
		{in: "localhost:9100", want: "127.0.0.1:9100"},
		{in: "mapped.example:1", want: "127.0.0.1:1"},
		{in: "0.0.0.0:9100", err: "means every interface"},
		{in: "[::]:9100", err: "means every interface"},
		{in: ":9100", err: "has no host"},
		{in: "192.168.1.20:9100", err: "is not a loopback address"},
		{in: "lan.example:9100", err: `"lan.example" resolves to 192.168.1.20, which is not a loopback address`},
		{in: "half.example:9100", err: "resolves to 10.0.0.1"},
		{in: "none.example:9100", err: "resolves to no address"},
		{in: "nowhere.example:9100", err: "no such host"},
		{in: "127.0.0.1", err: "is not HOST:PORT"},
		{in: "127.0.0.1:http", err: "is not a number"},
		{in: "127.0.0.1:70000", err: "is not a number"},
	} {
		got, err := LoopbackAddr(context.Background(), tc.in, lookup)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("LoopbackAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("LoopbackAddr(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.err)
		}
	}
}

func TestHostHeader(t *testing.T) {
	h := loopbackOnly(NewMux(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("metrics")) })))
	for host, want := range map[string]int{
		"127.0.0.1:9100":      http.StatusOK,
		"[::1]:9100":          http.StatusOK,
		"localhost:9100":      http.StatusOK,
		"LOCALHOST":           http.StatusOK,
		"rebind.example:9100": http.StatusForbidden,
		"192.168.1.20:9100":   http.StatusForbidden,
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
	}
}

func TestProfiles(t *testing.T) {
	mux := NewMux(nil)
	for path, want := range map[string]int{
		"/":                                 http.StatusOK,
		"/metrics":                          http.StatusNotFound,
		"/debug/pprof/":                     http.StatusOK,
		"/debug/pprof/allocs?debug=1":       http.StatusOK,
		"/debug/pprof/heap?gc=1":            http.StatusOK,
		"/debug/pprof/nosuch":               http.StatusNotFound,
		"/debug/pprof/heap?seconds=5":       http.StatusBadRequest,
		"/debug/pprof/profile?seconds=0":    http.StatusBadRequest,
		"/debug/pprof/profile?seconds=9999": http.StatusBadRequest,
		"/debug/pprof/trace?seconds=0.05":   http.StatusOK,
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("GET %s: %d, want %d: %.100s", path, w.Code, want, w.Body.String())
		}
	}
}

// Close ends a running CPU profile instead of waiting for it, and the
// port is released.
func TestServerClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Start(ln, nil, nil)
	started := make(chan struct{})
	go func() {
		close(started)
		resp, err := http.Get("http://" + s.Addr() + "/debug/pprof/profile?seconds=60")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-started
	time.Sleep(100 * time.Millisecond) // let the profile start
	closed := make(chan struct{})
	go func() { s.Close(100 * time.Millisecond); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close waited for the 60-second profile")
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Error("the endpoint still accepts connections after Close")
	}
}

package opshttp

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

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

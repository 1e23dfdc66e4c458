// Package opshttp is the plugin's operator endpoint: profiles and metrics
// over HTTP on a loopback address or a unix socket only.
//
// It does not import net/http/pprof: that package's init registers its
// handlers on http.DefaultServeMux, which would expose profiles through any
// server a plugin author starts with a nil handler. The handlers here are
// built on runtime/pprof and runtime/trace and serve the same URLs, so
// `go tool pprof http://ADDR/debug/pprof/heap` works as usual.
package opshttp

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Server is the running endpoint.
type Server struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// Start serves profiles, and metrics when metrics is not nil, on ln until
// Close. errorLog receives the HTTP server's own errors. On a TCP listener
// a request must name a loopback host (see loopbackOnly); on a unix socket
// any Host is accepted, as no web page can open a unix socket and clients
// name whatever host they like there (curl --unix-socket sends localhost,
// Go's http.Client the URL's).
func Start(ln net.Listener, metrics http.Handler, errorLog *log.Logger) *Server {
	var h http.Handler
	if a := ln.Addr(); a.Network() == "unix" {
		h = newMux(metrics, a.String())
	} else {
		h = loopbackOnly(newMux(metrics, ""))
	}
	s := &Server{
		srv: &http.Server{
			Handler: h,
			// A slow or idle client must not hold a connection forever;
			// there is no WriteTimeout because a CPU profile streams for
			// as long as it was asked to.
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
			ErrorLog:          errorLog,
		},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && errorLog != nil {
			errorLog.Printf("operator endpoint stopped: %v", err)
		}
	}()
	return s
}

// Addr is the address the endpoint listens on, with the port bound.
func (s *Server) Addr() string { return s.addr }

// Close stops the endpoint: it lets requests finish for up to timeout
// (a running CPU profile ends early with what it has), then closes every
// connection.
func (s *Server) Close(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Shutdown does not cancel request contexts; Close does, and ends
	// the profiles waiting on them.
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

// NewMux returns the endpoint's routes on a mux of its own (never
// http.DefaultServeMux), as served on a TCP address.
func NewMux(metrics http.Handler) *http.ServeMux { return newMux(metrics, "") }

// newMux is NewMux for the endpoint on the unix socket at socket, or on
// TCP when socket is "": only the index page's advice differs, since go
// tool pprof cannot fetch from a unix socket.
func newMux(metrics http.Handler, socket string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "vaultplugin operator endpoint")
		if metrics != nil {
			fmt.Fprintln(w, "  /metrics        Prometheus metrics")
		}
		if socket == "" {
			fmt.Fprintln(w, "  /debug/pprof/   profiles (go tool pprof http://"+r.Host+"/debug/pprof/heap)")
		} else {
			fmt.Fprintln(w, "  /debug/pprof/   profiles (curl --unix-socket "+socket+" -o heap.pb.gz http://localhost/debug/pprof/heap; go tool pprof heap.pb.gz)")
		}
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /debug/pprof/{$}", index)
	mux.HandleFunc("GET /debug/pprof/profile", cpuProfile)
	mux.HandleFunc("GET /debug/pprof/trace", executionTrace)
	mux.HandleFunc("GET /debug/pprof/{name}", namedProfile)
	return mux
}

// loopbackOnly refuses requests whose Host header is not a loopback IP or
// "localhost": a web page the operator opens cannot reach the endpoint by
// pointing a name of its own at 127.0.0.1 (DNS rebinding).
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		ip, err := netip.ParseAddr(host)
		if !strings.EqualFold(host, "localhost") && (err != nil || !ip.Unmap().IsLoopback()) {
			http.Error(w, "forbidden: use a loopback address in the URL", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Package opshttp is the plugin's operator endpoint: profiles and metrics
// over HTTP on a loopback address only.
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
	"strconv"
	"strings"
	"time"
)

// LookupFunc resolves a host name, as net.Resolver.LookupNetIP does.
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// resolveTimeout bounds the name lookup of a host given by name; a name
// that takes longer than this is not a loopback name from /etc/hosts.
const resolveTimeout = 2 * time.Second

// LoopbackAddr checks that addr ("127.0.0.1:8080", "[::1]:0",
// "localhost:0") names only loopback addresses and returns it with the host
// replaced by one literal loopback IP, so that what is bound is exactly what
// was checked. An empty host, an unspecified address (0.0.0.0, ::) or any
// address off the loopback interface is an error: the endpoint shows the
// plugin's internals to anyone who can reach it. lookup nil means
// net.DefaultResolver.
func LoopbackAddr(ctx context.Context, addr string, lookup LookupFunc) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not HOST:PORT (want e.g. 127.0.0.1:0): %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("%q: the port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host, which means every interface: only a loopback address is allowed (e.g. 127.0.0.1:%s)", addr, port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.IsUnspecified() {
			return "", fmt.Errorf("%q means every interface: only a loopback address is allowed (e.g. 127.0.0.1:%s)", addr, port)
		}
		if !ip.IsLoopback() {
			return "", fmt.Errorf("%q is not a loopback address: only 127.0.0.0/8 or ::1 is allowed", addr)
		}
		return net.JoinHostPort(ip.String(), port), nil
	}
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	ips, err := lookup(ctx, host)
	if err != nil {
		return "", fmt.Errorf("%q: resolving %q: %w", addr, host, err)
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("%q: %q resolves to no address", addr, host)
	}
	for _, ip := range ips {
		if !ip.Unmap().IsLoopback() {
			return "", fmt.Errorf("%q: %q resolves to %s, which is not a loopback address: only loopback is allowed", addr, host, ip)
		}
	}
	return net.JoinHostPort(ips[0].Unmap().String(), port), nil
}

// Server is the running endpoint.
type Server struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// Start serves profiles, and metrics when metrics is not nil, on ln until
// Close. errorLog receives the HTTP server's own errors.
func Start(ln net.Listener, metrics http.Handler, errorLog *log.Logger) *Server {
	s := &Server{
		srv: &http.Server{
			Handler: loopbackOnly(NewMux(metrics)),
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
// http.DefaultServeMux).
func NewMux(metrics http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "vaultplugin operator endpoint")
		if metrics != nil {
			fmt.Fprintln(w, "  /metrics        Prometheus metrics")
		}
		fmt.Fprintln(w, "  /debug/pprof/   profiles (go tool pprof http://"+r.Host+"/debug/pprof/heap)")
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

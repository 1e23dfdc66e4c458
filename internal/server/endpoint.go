//go:build !vaultplugin_noendpoint

package server

import (
	"fmt"
	"net"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/plugkit/vaultplugin/internal/loopback"
	"github.com/plugkit/vaultplugin/internal/metrics"
	"github.com/plugkit/vaultplugin/internal/opshttp"
)

// startEndpoint serves profiles and metrics on addr, a checked loopback
// HOST:PORT or socketPrefix + a checked socket path, and sets in.Metrics
// so that every instance is recorded. The returned stop closes the
// endpoint and removes its socket.
func (s *server) startEndpoint(addr string, in *Instances) (stop func(), err error) {
	ln, remove, err := listen(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listening on %s: %w", envHTTPAddr, addr, err)
	}
	in.Metrics = metrics.New(s.Name, s.Version.Value)
	srv := opshttp.Start(ln, in.Metrics.Handler(), s.Logger.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}))
	if path, ok := strings.CutPrefix(addr, socketPrefix); ok {
		// No URL reaches a unix socket: the record says how to ask.
		curl := "curl --unix-socket " + path + " http://localhost"
		s.Logger.Info("serving profiles and metrics", "addr", addr,
			"metrics", curl+"/metrics", "pprof", curl+"/debug/pprof/")
	} else {
		s.Logger.Info("serving profiles and metrics", "addr", srv.Addr(),
			"metrics", "http://"+srv.Addr()+"/metrics", "pprof", "http://"+srv.Addr()+"/debug/pprof/")
	}
	return func() {
		srv.Close(endpointCloseTimeout)
		remove()
	}, nil
}

// listen listens on addr as startEndpoint takes it; remove removes a
// socket's file once the listener is closed (and does nothing for TCP).
func listen(addr string) (_ net.Listener, remove func(), err error) {
	if path, ok := strings.CutPrefix(addr, socketPrefix); ok {
		sock, err := loopback.ListenSocket(path)
		if err != nil {
			return nil, nil, err
		}
		return sock, sock.Remove, nil
	}
	ln, err := net.Listen("tcp", addr)
	return ln, func() {}, err
}

//go:build !vaultplugin_noendpoint

package server

import (
	"fmt"
	"net"

	"github.com/hashicorp/go-hclog"

	"github.com/plugkit/vaultplugin/internal/metrics"
	"github.com/plugkit/vaultplugin/internal/opshttp"
)

// startEndpoint serves profiles and metrics on addr, a checked loopback
// HOST:PORT, and sets in.Metrics so that every instance is recorded.
func (s *server) startEndpoint(addr string, in *Instances) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listening on %s: %w", envHTTPAddr, addr, err)
	}
	in.Metrics = metrics.New(s.Name, s.Version.Value)
	srv := opshttp.Start(ln, in.Metrics.Handler(), s.Logger.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}))
	s.Logger.Info("serving profiles and metrics", "addr", srv.Addr(),
		"metrics", "http://"+srv.Addr()+"/metrics", "pprof", "http://"+srv.Addr()+"/debug/pprof/")
	return func() { srv.Close(endpointCloseTimeout) }, nil
}

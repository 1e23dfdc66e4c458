//go:build vaultplugin_noendpoint

package server

import "fmt"

// startEndpoint refuses: the plugin was built without the operator
// endpoint, whose HTTP server, profiles and metrics are about 590 KB of a
// stripped binary (serve's benchmark measures it). The operator asked for
// it, so they must learn that they did not get it.
func (s *server) startEndpoint(addr string, in *Instances) (stop func(), err error) {
	return nil, fmt.Errorf("%s=%s: %w", envHTTPAddr, addr, errNoEndpoint)
}

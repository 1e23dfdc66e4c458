// Package loopback checks that an address an operator gave names only the
// loopback interface, or a unix socket only the plugin's user can use, and
// makes that socket. It is apart from opshttp so that checking the
// operator's setting does not link the endpoint's HTTP server.
package loopback

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// LookupFunc resolves a host name, as net.Resolver.LookupNetIP does.
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// resolveTimeout bounds the name lookup of a host given by name; a name
// that takes longer than this is not a loopback name from /etc/hosts.
const resolveTimeout = 2 * time.Second

// Addr checks that addr ("127.0.0.1:8080", "[::1]:0",
// "localhost:0") names only loopback addresses and returns it with the host
// replaced by one literal loopback IP, so that what is bound is exactly what
// was checked. An empty host, an unspecified address (0.0.0.0, ::) or any
// address off the loopback interface is an error: the endpoint shows the
// plugin's internals to anyone who can reach it. lookup nil means
// net.DefaultResolver.
func Addr(ctx context.Context, addr string, lookup LookupFunc) (string, error) {
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

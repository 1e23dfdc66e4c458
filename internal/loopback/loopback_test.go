package loopback

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestAddr(t *testing.T) {
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
		got, err := Addr(context.Background(), tc.in, lookup)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("Addr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Addr(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.err)
		}
	}
}

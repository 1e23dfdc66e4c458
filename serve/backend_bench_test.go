package serve

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/internal/metrics"
	"github.com/plugkit/vaultplugin/internal/server"
)

type nopBackend struct{ logical.Backend }

func (nopBackend) HandleRequest(context.Context, *logical.Request) (*logical.Response, error) {
	return nil, nil
}

func (nopBackend) Cleanup(context.Context) {}

// BenchmarkWrapperOverhead measures what the wrapper adds to each request,
// with the metrics off (the default) and on, against the bare backend
// measured in the same run: each variant reports ns-over-bare (its cost
// per request) and x-bare (the ratio).
func BenchmarkWrapperOverhead(b *testing.B) {
	ctx := context.Background()
	req := &logical.Request{Operation: logical.ReadOperation, Path: "kv/k", MountPoint: "secret/"}
	bare := nopBackend{}
	wrap := func(withMetrics bool) logical.Backend {
		in := &server.Instances{Logger: hclog.NewNullLogger(), Tracker: server.NewTracker(hclog.NewNullLogger())}
		if withMetrics {
			in.Metrics = metrics.New("bench", "v1.0.0")
		}
		return wrapBackend(in, bare)
	}
	var baseline float64
	for _, v := range []struct {
		name string
		be   logical.Backend
	}{
		{"bare", bare},
		{"metrics=off", wrap(false)},
		{"metrics=on", wrap(true)},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = v.be.HandleRequest(ctx, req)
			}
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if v.name == "bare" {
				baseline = perOp
				return
			}
			if baseline > 0 {
				b.ReportMetric(perOp-baseline, "ns-over-bare")
				b.ReportMetric(perOp/baseline, "x-bare")
			}
		})
	}
	// Requests at once from every core: the shared counters, the
	// histogram's mutex and the in-flight gauge are where contention would
	// show (the series cache is read with an atomic load and no lock).
	// ns/op is wall time over all goroutines' requests.
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "metrics=off/parallel", true: "metrics=on/parallel"}[on]
		b.Run(name, func(b *testing.B) {
			be := wrap(on)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = be.HandleRequest(ctx, req)
				}
			})
		})
	}
}

// BenchmarkOptions measures applying the options Serve takes.
func BenchmarkOptions(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c := server.NewConfig()
		if err := server.ApplyOptions(c, []Option{WithVersion("1.2.3"), WithoutMultiplexing(), WithArgs("-tls-skip-verify")}, Option.apply); err != nil {
			b.Fatal(err)
		}
	}
}

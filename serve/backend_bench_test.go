package serve

import (
	"context"
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

type nopBackend struct{ logical.Backend }

func (nopBackend) HandleRequest(context.Context, *logical.Request) (*logical.Response, error) {
	return nil, nil
}

// BenchmarkWrapperOverhead measures what the version wrapper adds to each
// request: compare ns/op of "direct" and "wrapped" from the same run.
func BenchmarkWrapperOverhead(b *testing.B) {
	ctx, req := context.Background(), &logical.Request{}
	direct := nopBackend{}
	c := newConfig(0)
	c.logger = hclog.NewNullLogger()
	wrapped := newTracker(c).wrap(direct)
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = direct.HandleRequest(ctx, req)
		}
	})
	b.Run("wrapped", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = wrapped.HandleRequest(ctx, req)
		}
	})
}

// BenchmarkOptions measures applying the options Serve takes.
func BenchmarkOptions(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c := newConfig(0)
		c.stderr = io.Discard
		if err := c.applyOptions([]Option{WithVersion("1.2.3"), WithoutMultiplexing(), WithArgs("-tls-skip-verify")}); err != nil {
			b.Fatal(err)
		}
	}
}

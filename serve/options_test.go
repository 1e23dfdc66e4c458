package serve_test

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/serve"
)

// Every invalid option is reported by one Serve, conflicts between
// options included, whatever their order; nothing is served. (Serve
// prints the error on stderr, as a person would read it.)
func TestOptionConflictsReportedAtOnce(t *testing.T) {
	factory := func(context.Context, *logical.BackendConfig) (logical.Backend, error) {
		return nil, errors.New("not called")
	}
	greeting := serve.WithFlags(func(fs *flag.FlagSet) { fs.String("greeting", "", "") })
	caCert := serve.WithFlags(func(fs *flag.FlagSet) { fs.String("ca-cert", "", "") })
	badVersion := serve.WithVersion("bad")
	for _, opts := range [][]serve.Option{
		{greeting, badVersion, caCert, greeting},
		{greeting, caCert, badVersion, greeting},
	} {
		err := serve.Serve(context.Background(), factory, opts...)
		if !errors.Is(err, vaultplugin.ErrUsage) {
			t.Fatalf("Serve = %v, want a usage error", err)
		}
		for _, want := range []string{`WithVersion("bad")`, "flag redefined: ca-cert", "flag redefined: greeting"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
		}
	}
}

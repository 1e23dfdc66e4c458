package serve_test

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/serve"
)

// Factory is a plugin's backend factory, as every Vault plugin has one.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{BackendType: logical.TypeLogical, Help: "An example."}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// A plugin's whole main. Run never returns: it exits 0 once Vault stops
// the plugin, 1 on a failure, 2 on a bad flag.
func ExampleRun() {
	serve.Run(Factory)
}

// Serve returns instead of exiting, for custom mains and tests. Here it
// answers -version, as it would for a person.
func ExampleServe() {
	err := serve.Serve(context.Background(), Factory,
		serve.WithVersion("1.4.0"),
		serve.WithArgs("-version"),
	)
	fmt.Println("error:", err, "exit code:", vaultplugin.ExitCode(err))
	// Output:
	// v1.4.0
	// error: <nil> exit code: 0
}

// WithVersion validates the version and reports it the way Vault stores
// versions, with a leading "v"; an invalid one is a usage error (exit 2).
func ExampleWithVersion() {
	err := serve.Serve(context.Background(), Factory, serve.WithVersion("1.2.3-rc.1"), serve.WithArgs("-version"))
	fmt.Println(err)

	err = serve.Serve(context.Background(), Factory, serve.WithVersion("one.two"), serve.WithArgs("-version"))
	fmt.Println(errors.Is(err, vaultplugin.ErrUsage), vaultplugin.ExitCode(err))
	// Output:
	// v1.2.3-rc.1
	// <nil>
	// true 2
}

// WithFlags adds the author's flags next to Vault's TLS flags; operators
// pass them with `vault plugin register -args`.
func ExampleWithFlags() {
	var region string
	err := serve.Serve(context.Background(), Factory,
		serve.WithFlags(func(fs *flag.FlagSet) {
			fs.StringVar(&region, "region", "eu-west-1", "the cloud region to issue credentials in")
		}),
		serve.WithVersion("v2.0.0"),
		serve.WithArgs("-region=us-east-2", "-version"),
	)
	fmt.Println(region, err)
	// Output:
	// v2.0.0
	// us-east-2 <nil>
}

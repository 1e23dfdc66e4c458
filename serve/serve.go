package serve

import (
	"context"
	"errors"
	"os"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/internal/server"
)

// Run serves factory as a secrets engine or auth method plugin and exits the
// process: it never returns. It is the whole main of a plugin:
//
//	func main() { serve.Run(backend.Factory) }
//
// The exit code is vaultplugin.ExitCode of what Serve would return:
// [vaultplugin.ExitOK], [vaultplugin.ExitFailure] or [vaultplugin.ExitUsage].
//
// Run calls factory once outside of any host, with an empty
// configuration, in-memory storage and a null logger, when it needs the
// plugin's type (secrets engine or auth method): for -help, -describe and
// the text a person sees who runs the binary by hand, as Vault itself does
// at `vault plugin register`. That call is bounded by two seconds; past
// it the type is reported as unknown. A factory should therefore not dial
// out or read its configuration when it is called: do that in the
// backend's InitializeFunc or on the first request, where the mount's
// configuration and a deadline are at hand.
func Run(factory logical.Factory, opts ...Option) {
	os.Exit(vaultplugin.ExitCode(Serve(context.Background(), factory, opts...)))
}

// Serve does what Run does but returns instead of exiting: nil once the
// host (or ctx) stopped the plugin or a person's -version, -describe or
// -help was answered, and otherwise the cause. Every startup failure has
// already been reported when Serve returns: under a host, an error record
// on stderr and a cause line on stdout, which Vault's API error shows; for
// a person, one line on stderr.
//
// When Serve returns it has put the process back as it found it:
// os.Stdout and os.Stderr are the files they were (go-plugin points them
// at pipes of its own while serving; those are closed), SIGINT is handled
// as it was, and every goroutine Serve started has ended but one under a
// host: go-plugin's SIGINT receiver, which go-plugin starts with every
// handshake and gives no way to end. It holds no file or connection and
// receives no signal once Serve has returned; each Serve under a host
// leaves one.
func Serve(ctx context.Context, factory logical.Factory, opts ...Option) error {
	c := server.NewConfig()
	var problems []error
	if factory == nil {
		problems = append(problems, errors.New("the factory is nil"))
	}
	err := server.ApplyOptions(c, opts, Option.apply, problems...)
	return server.Serve(ctx, backendPlugin{factory: factory}, c, err)
}

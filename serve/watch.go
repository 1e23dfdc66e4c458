package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"

	"github.com/plugkit/vaultplugin/compat"
)

// startupWatch is the logger handed to go-plugin. go-plugin's Serve
// reports a listener, TLS or protocol failure only as an error record and
// then returns as if it had served (sdk/plugin.Serve then returns nil and a
// naive main exits 0). Intercepting those records is the only way to learn
// that serving failed, and why.
type startupWatch struct {
	hclog.Logger
	mu    sync.Mutex
	first error
	hint  string
}

// errAborted marks a stop requested before serving started.
var errAborted = errors.New("aborted")

// goPluginStartupErrors are the messages go-plugin's server.go logs before
// returning from Serve without serving; "grpc server" is logged when the
// gRPC server's Serve fails after the handshake.
var goPluginStartupErrors = map[string]string{
	"plugin init error": "creating the plugin's listener",
	"plugin tls init":   "configuring TLS",
	"protocol init":     "initialising the plugin protocol",
	"grpc server":       "serving gRPC",
}

// Error records go-plugin's startup failures instead of logging them: the
// failure is reported once, with a hint, when Serve returns.
func (w *startupWatch) Error(msg string, args ...interface{}) {
	what, ok := goPluginStartupErrors[msg]
	if !ok {
		w.Logger.Error(msg, args...)
		return
	}
	var cause error = errors.New(msg)
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k == "error" {
			if e, ok := args[i+1].(error); ok {
				cause = e
			} else {
				cause = fmt.Errorf("%v", args[i+1])
			}
		}
	}
	hint := ""
	if msg == "plugin init error" {
		hint = "the plugin could not create its socket: check that the temporary directory (TMPDIR, PLUGIN_UNIX_SOCKET_DIR) exists and is writable"
	}
	w.record(fmt.Errorf("%s: %w", what, cause), hint)
}

// record keeps the first failure: later ones are consequences.
func (w *startupWatch) record(err error, hint string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first == nil {
		w.first, w.hint = err, hint
	}
}

func (w *startupWatch) abort(err error) { w.record(fmt.Errorf("%w: %w", errAborted, err), "") }

func (w *startupWatch) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

// tlsProvider is the legacy TLS path: unwrap the server certificate Vault
// wrapped for this process. It uses the SDK's own implementation
// (api.VaultPluginTLSProviderContext) under a deadline that starts when
// go-plugin calls it, and turns its errors into one that says where it
// went and what to check, with the token redacted.
func (c *config) tlsProvider(w *startupWatch) func() (*tls.Config, error) {
	tlsCfg := c.flags.apiTLSConfig()
	return func() (*tls.Config, error) {
		token, _ := c.lookup(compat.EnvUnwrapToken)
		addr, claimErr := unwrapAddr(token)
		if claimErr != nil {
			err := fmt.Errorf("reading the wrapping token in %s: %w", compat.EnvUnwrapToken, claimErr)
			w.record(err, "the host did not pass a valid wrapping token; it must set "+compat.EnvAutoMTLS+"=true or pass the token Vault generates")
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.unwrapTimeout)
		defer cancel()
		// The SDK reads these two variables itself and returns no
		// provider when either is "true"; the plan already decided.
		provider := api.VaultPluginTLSProviderContext(ctx, tlsCfg)
		if provider == nil {
			return nil, nil
		}
		start := time.Now()
		cfg, err := provider()
		if err != nil {
			msg := strings.ReplaceAll(err.Error(), token, "[redacted]")
			if ctx.Err() != nil {
				msg = fmt.Sprintf("no answer within %s: %s", c.unwrapTimeout, msg)
			}
			err = fmt.Errorf("unwrapping the TLS certificate from Vault at %s: %s", addr, msg)
			w.record(err, "check that Vault's api_addr ("+addr+") is reachable from the plugin, and pass -ca-cert or -ca-path in the plugin's -args if Vault's certificate is not trusted by the system")
			return nil, err
		}
		c.logger.Debug("unwrapped the TLS certificate", "addr", addr, "duration", time.Since(start).String())
		return cfg, nil
	}
}

// unwrapAddr reads the addr claim from the wrapping token without
// verifying it (as the SDK does), to name Vault's address in errors.
func unwrapAddr(token string) (string, error) {
	if token == "" {
		return "", errors.New("the variable is empty")
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{api.CubbyHoleJWTSignatureAlgorithm})
	if err != nil {
		return "", errors.New("not an ES512-signed JWT")
	}
	var claims struct {
		Addr string `json:"addr"`
	}
	if err := parsed.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return "", errors.New("its claims are not JSON")
	}
	if claims.Addr == "" {
		return "", errors.New("it has no addr claim (Vault's api_addr)")
	}
	if u, err := url.Parse(claims.Addr); err != nil || u.Host == "" {
		return "", fmt.Errorf("its addr claim %q is not a URL", claims.Addr)
	}
	return claims.Addr, nil
}

// listenForStop listens, until release is called, for what asks the
// plugin to stop from outside: SIGTERM from a supervisor, and its host's
// death. The channel then yields why, once. It also catches SIGINT and
// drops it: a Ctrl-C in the host's terminal reaches the whole process
// group, and go-plugin starts ignoring SIGINT only after it has printed the
// handshake, so without this a Ctrl-C in that window (or while the plugin
// waits for a debugger) would kill the plugin.
func listenForStop() (reasons <-chan string, release func()) {
	ctx, cancel := context.WithCancel(context.Background())
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	interrupt := make(chan os.Signal, 1) // never read: the signal is dropped
	signal.Notify(interrupt, os.Interrupt)
	hostGone := watchParent(ctx, os.Getppid())
	why := make(chan string, 1)
	go func() {
		select {
		case s := <-term:
			why <- "received " + s.String()
		case <-hostGone:
			why <- "host process exited"
		case <-ctx.Done():
		}
	}()
	return why, func() {
		cancel()
		signal.Stop(term)
		signal.Stop(interrupt)
	}
}

// parentPollInterval is how often the plugin checks that its host still
// runs. A host killed with SIGKILL cannot tell its plugins, and go-plugin
// does not notice: the plugin is re-parented and would run forever. Polling
// getppid is portable across Unixes and, unlike PR_SET_PDEATHSIG, is not
// fooled by the host's forking thread exiting while the host lives. At
// 250 ms the plugin is gone well within two seconds, for one cheap system
// call four times a second.
const parentPollInterval = 250 * time.Millisecond

// watchParent returns a channel closed when the parent process, whose pid
// was ppid when the plugin started, is gone (the plugin was re-parented).
func watchParent(ctx context.Context, ppid int) <-chan struct{} {
	ch := make(chan struct{})
	if ppid <= 1 {
		// Started by init, or the host is PID 1 in a container: there is
		// no re-parenting to observe.
		return ch
	}
	go func() {
		t := time.NewTicker(parentPollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != ppid {
					close(ch)
					return
				}
			}
		}
	}()
	return ch
}

package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-secure-stdlib/mlock"
	"github.com/hashicorp/vault/sdk/logical"
	sdkplugin "github.com/hashicorp/vault/sdk/plugin"
	"google.golang.org/grpc"

	"github.com/plugkit/vaultplugin/compat"
	"github.com/plugkit/vaultplugin/internal/metrics"
	"github.com/plugkit/vaultplugin/logging"
)

// ErrUsage is wrapped by every error a plugin author or operator causes
// with the command line or the options: Run exits 2 for it.
var ErrUsage = errors.New("usage error")

// usageError marks err as ErrUsage without changing its message.
type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Unwrap() error        { return e.err }
func (e usageError) Is(target error) bool { return target == ErrUsage }

// ErrNoHost is returned when no host started the process: the handshake
// cookie is missing because a person ran the binary. Run exits 1 for it,
// after printing how to register the plugin.
var ErrNoHost = errors.New("not started by Vault: this binary is a Vault plugin")

// Exit codes of Run, also returned by ExitCode.
const (
	// ExitOK: served until the host stopped the plugin, or answered
	// -version, -describe or -help.
	ExitOK = 0
	// ExitFailure: a startup or serving failure, or run by a person.
	ExitFailure = 1
	// ExitUsage: a bad flag or an invalid option.
	ExitUsage = 2
)

// ExitCode maps an error returned by Serve or ServeDatabase to Run's exit code.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// Run serves factory as a secrets engine or auth method plugin and exits the
// process: it never returns. It is the whole main of a plugin:
//
//	func main() { serve.Run(backend.Factory) }
//
// The exit code is ExitOK, ExitFailure or ExitUsage, as ExitCode describes.
func Run(factory logical.Factory, opts ...Option) {
	os.Exit(ExitCode(Serve(context.Background(), factory, opts...)))
}

// Serve does what Run does but returns instead of exiting: nil once the
// host (or ctx) stopped the plugin or a person's -version, -describe or
// -help was answered, and otherwise the cause. Every startup failure has
// already been reported to the host when Serve returns: an error record on
// stderr and a cause line on stdout, which Vault's API error shows.
func Serve(ctx context.Context, factory logical.Factory, opts ...Option) error {
	if factory == nil {
		opts = append([]Option{func(*config) error { return errors.New("the factory is nil") }}, opts...)
	}
	return newConfig(compat.Backend).serve(ctx, backendKind{factory: factory}, opts)
}

// kind is what differs between backend and database plugins.
type kind interface {
	// Kind is the compat kind, which picks the handshake cookie.
	Kind() compat.Kind
	// prepare returns go-plugin's versioned plugin sets and the function
	// that stops every instance served (draining requests, then Cleanup or
	// Close), bounded by its timeout. An error is a startup failure.
	prepare(c *config, plan compat.Plan) (sets map[int]goplugin.PluginSet, stop func(timeout time.Duration), err error)
	// probe builds one instance outside of any host to learn the plugin's
	// type, as Vault does at registration; it returns "" when it cannot.
	probe(ctx context.Context, c *config) string
	// grpcOptions are extra gRPC server options.
	grpcOptions() []grpc.ServerOption
}

// config is everything the options and the environment decide.
type config struct {
	kind            compat.Kind
	name            string
	version         string
	versionSource   string
	multiplex       bool
	logger          hclog.Logger
	args            []string
	argsSet         bool
	defineFlags     []func(*flag.FlagSet)
	unwrapTimeout   time.Duration
	shutdownTimeout time.Duration
	lookup          compat.LookupFunc
	stdout, stderr  io.Writer
	flags           tlsFlags

	// metrics is set when the operator turned the endpoint on (ops.go);
	// nil means nothing is recorded and no instance is wrapped.
	metrics *metrics.Recorder
}

func newConfig(k compat.Kind) *config {
	return &config{
		kind:            k,
		name:            filepath.Base(os.Args[0]),
		multiplex:       true,
		unwrapTimeout:   DefaultUnwrapTimeout,
		shutdownTimeout: DefaultShutdownTimeout,
		lookup:          os.LookupEnv,
		// Captured now: after the handshake go-plugin replaces os.Stdout
		// and os.Stderr with pipes the host discards.
		stdout: os.Stdout,
		stderr: os.Stderr,
	}
}

func (c *config) serve(ctx context.Context, k kind, opts []Option) error {
	if !c.argsSet && len(os.Args) > 1 {
		c.args = os.Args[1:]
	}
	host := compat.FromEnv(c.lookup)
	optErr := c.applyOptions(opts)
	if c.logger == nil {
		var redact []string
		if tok, _ := c.lookup(compat.EnvUnwrapToken); tok != "" {
			redact = append(redact, tok)
		}
		c.logger = logging.New(&logging.Options{Output: c.stderr, Redact: redact, Lookup: c.lookup})
	}
	if optErr != nil {
		return c.fail(host, optErr, "fix the serve options in the plugin's main")
	}

	// Everything printed to a person goes to the original writers.
	done, err := c.parseFlags(ctx, k, host)
	if done || err != nil {
		return err
	}
	if !host.Started(c.kind) {
		c.printNotAPlugin(ctx, k)
		return ErrNoHost
	}

	restoreLog := logging.RouteStdLog(c.logger)
	defer restoreLog()
	for _, p := range host.Problems {
		c.logger.Warn("malformed setting from the host, ignored", "error", p)
	}
	if c.version == "" {
		c.version, c.versionSource = buildVersion()
	}
	ops, err := readOps(ctx, c.lookup)
	if err != nil {
		return c.fail(host, err, opsHint)
	}
	plan := host.Plan(c.kind, c.multiplex)
	for _, r := range plan.Reasons {
		c.logger.Debug("serving plan", "reason", r)
	}
	if c.flags.insecure {
		c.logger.Warn("-tls-skip-verify is set: Vault's API certificate is not verified on the legacy TLS path")
	}
	// The unwrap call's client starts from api.DefaultConfig, which reads
	// VAULT_SKIP_VERIFY from the plugin's environment; no flag can turn
	// verification back on, so say so where the operator looks.
	if v, _ := c.lookup(envSkipVerify); plan.TLSProvider && isTrue(v) {
		c.logger.Warn(envSkipVerify + " is set in the plugin's environment: Vault's API certificate is not verified on the legacy TLS path")
	}

	if plan.Mlock {
		if err := mlock.LockMemory(); err != nil {
			return c.fail(host, fmt.Errorf("locking memory (the host set %s=true): %w", compat.EnvMlock, err),
				"give the plugin binary CAP_IPC_LOCK (setcap cap_ipc_lock=+ep PLUGIN) or set disable_mlock = true in Vault's configuration")
		}
	}

	stopOps, err := c.startOps(ops)
	if err != nil {
		return c.fail(host, err, "another process may hold the port (Vault starts one process per mount for a plugin it does not multiplex): use port 0 and read the bound address from the log")
	}
	defer stopOps()
	// Before anything of the author's runs (a database factory runs in
	// prepare), so every breakpoint can be hit.
	if why := c.waitForDebugger(ctx, ops.debugWait); why != "" {
		c.logger.Info("stopped before serving", "reason", why)
		return nil
	}

	return c.run(ctx, k, host, plan)
}

// run hands the process to go-plugin and turns what it did into an error.
func (c *config) run(ctx context.Context, k kind, host compat.Host, plan compat.Plan) error {
	sets, stopInstances, err := k.prepare(c, plan)
	if err != nil {
		return c.fail(host, err, "")
	}
	watch := &startupWatch{Logger: c.logger}

	var tlsProvider func() (*tls.Config, error)
	if plan.TLSProvider {
		tlsProvider = c.tlsProvider(watch)
	}

	var (
		srvMu sync.Mutex
		srv   *grpc.Server
	)
	serveConfig := &goplugin.ServeConfig{
		HandshakeConfig:  handshake(c.kind),
		VersionedPlugins: sets,
		TLSProvider:      tlsProvider,
		Logger:           watch,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, k.grpcOptions()...)
			s := goplugin.DefaultGRPCServer(opts)
			srvMu.Lock()
			srv = s
			srvMu.Unlock()
			return s
		},
	}

	// Stop serving when asked: SIGTERM from a supervisor, the host gone,
	// or the caller's context. go-plugin leaves SIGTERM to the Go
	// runtime, which would kill the process without calling any
	// backend's Cleanup.
	stopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopRequested, release := listenForStop()
	defer release()
	stopped := make(chan struct{})
	stopping := false // written before stopped is closed, read after
	go func() {
		defer close(stopped)
		var why string
		select {
		case <-stopCtx.Done():
			if ctx.Err() == nil {
				return // serving ended on its own
			}
			why = "context done"
		case why = <-stopRequested:
		}
		c.logger.Info("stopping", "reason", why)
		stopping = true
		stopInstances(c.shutdownTimeout)
		srvMu.Lock()
		s := srv
		srvMu.Unlock()
		if s != nil {
			s.Stop()
		} else {
			// Not serving yet (still unwrapping, say): nothing to drain.
			watch.abort(errors.New("stopped before serving: " + why))
		}
	}()

	goplugin.Serve(serveConfig)
	cancel()
	<-stopped

	srvMu.Lock()
	served := srv != nil
	srvMu.Unlock()
	if err := watch.err(); err != nil {
		hint := watch.hint
		if errors.Is(err, errAborted) {
			c.logger.Info("stopped before serving", "reason", err)
			return nil
		}
		// A stop right after the handshake can beat go-plugin's call to
		// the gRPC server's Serve, which then fails with ErrServerStopped:
		// that is our own stop, not a failure (TestSIGTERM/exit_0 saw
		// exit 1 about once in six runs under -race).
		if stopping && errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return c.fail(host, err, hint)
	}
	if !served {
		return c.fail(host, errors.New("go-plugin stopped before serving, without an error"), "")
	}
	return nil
}

// fail reports a startup failure the three ways that reach someone: an
// error record on stderr (Vault re-logs it at ERROR), a plain line on stdout
// (Vault's API error quotes it: "Unrecognized remote plugin message: …"),
// and the returned error.
func (c *config) fail(host compat.Host, err error, hint string) error {
	if hint != "" {
		c.logger.Error("plugin failed to start", "error", err, "hint", hint)
	} else {
		c.logger.Error("plugin failed to start", "error", err)
	}
	line := c.name + ": " + err.Error()
	if hint != "" {
		line += " (" + hint + ")"
	}
	// Only a host reads stdout; a person reads stderr, where the record
	// already is.
	if host.Cookie != "" {
		fmt.Fprintln(c.stdout, oneLine(line))
	}
	return err
}

// envSkipVerify is the Vault API client's variable that turns off
// certificate verification (api.EnvVaultSkipVerify).
const envSkipVerify = "VAULT_SKIP_VERIFY"

// isTrue reports whether v is true as the API client parses it.
func isTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// oneLine folds line breaks: the host reads one line as the cause.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func handshake(k compat.Kind) goplugin.HandshakeConfig {
	key, value := k.Cookie()
	return goplugin.HandshakeConfig{MagicCookieKey: key, MagicCookieValue: value}
}

// backendKind serves a logical.Factory (secrets engines and auth methods).
type backendKind struct{ factory logical.Factory }

func (backendKind) Kind() compat.Kind { return compat.Backend }

func (b backendKind) prepare(c *config, plan compat.Plan) (map[int]goplugin.PluginSet, func(time.Duration), error) {
	tr := newTracker(c)
	factory := tr.wrapFactory(b.factory)
	set := func(mux bool) goplugin.PluginSet {
		return goplugin.PluginSet{sdkplugin.BackendPluginName: &sdkplugin.GRPCBackendPlugin{
			Factory:             factory,
			Logger:              c.logger,
			MultiplexingSupport: mux,
		}}
	}
	// The same sets as sdk/plugin's ServeMultiplex and Serve: 3 and 4 for
	// hosts before 1.12, 5 (with or without multiplexing) after.
	return map[int]goplugin.PluginSet{3: set(false), 4: set(false), 5: set(plan.Multiplex)}, tr.shutdown, nil
}

func (backendKind) grpcOptions() []grpc.ServerOption {
	// As the SDK does: Vault's requests and responses (a large list, a
	// big policy) exceed gRPC's 4 MiB default.
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(math.MaxInt32), grpc.MaxSendMsgSize(math.MaxInt32)}
}

func (b backendKind) probe(ctx context.Context, c *config) string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	type result struct {
		t   logical.BackendType
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- result{err: fmt.Errorf("factory panicked: %v", r)}
			}
		}()
		cfg := &logical.BackendConfig{
			StorageView: &logical.InmemStorage{},
			Logger:      hclog.NewNullLogger(),
			System:      logical.StaticSystemView{},
			Config:      map[string]string{},
		}
		be, err := b.factory(ctx, cfg)
		if err != nil || be == nil {
			ch <- result{err: fmt.Errorf("factory: %v", err)}
			return
		}
		t := be.Type()
		be.Cleanup(ctx)
		ch <- result{t: t}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return ""
		}
		switch r.t {
		case logical.TypeLogical:
			return "secret"
		case logical.TypeCredential:
			return "auth"
		}
	case <-ctx.Done():
	}
	return ""
}

// probeTimeout bounds the factory call made to learn the plugin's type for
// -describe and the run-by-a-person text; a factory that dials out at
// creation must not make -describe hang.
const probeTimeout = 2 * time.Second

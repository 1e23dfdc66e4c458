// Package server is the serving machinery shared by package serve (secrets
// engines and auth methods) and package dbserve (database plugins): the
// command line, the logger, the host's environment, the legacy TLS path,
// stopping with the host, and turning what go-plugin did into an error.
// It imports no plugin-kind SDK package, so that a backend plugin's binary
// does not link the database SDK, nor the reverse; each kind plugs in
// through the Plugin interface.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-secure-stdlib/mlock"
	"github.com/hashicorp/vault/sdk/logical"
	"google.golang.org/grpc"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/internal/metrics"
	"github.com/plugkit/vaultplugin/logging"
)

// Plugin is what differs between the kinds of plugin served.
type Plugin interface {
	// Kind picks the handshake cookie and the serving plan.
	Kind() hostenv.Kind
	// Sets returns go-plugin's versioned plugin sets. Every instance they
	// build must be registered with in.Tracker (within a Tracker.Begin
	// and its end, once serving), and every call into an instance must
	// be admitted by Tracker.Begin, so that a graceful stop can drain and
	// close it. An error is a startup failure.
	Sets(in *Instances, plan Plan) (map[int]goplugin.PluginSet, error)
	// Type builds one instance outside of any host to learn the plugin's
	// type ("secret", "auth" or "database"), as Vault does at
	// registration; it returns "" when it cannot before ctx is done.
	Type(ctx context.Context) string
	// GRPCOptions are the gRPC server options the kind's SDK uses.
	GRPCOptions() []grpc.ServerOption
	// Factory is the author's factory, whose module versions a build
	// that has no version of its own.
	Factory() any
	// HostReloads reports whether the host answers a call refused
	// because the plugin is stopping by reloading the plugin (killing
	// this process, starting another) and sending the call again. A
	// stopping plugin that refused calls then waits for the host's kill,
	// within the shutdown timeout, rather than going away first: until
	// the host has a new process, every call would fail.
	HostReloads() bool
}

// Instances is what a plugin kind needs to build the instances it serves.
type Instances struct {
	Logger  hclog.Logger
	Tracker *Tracker
	// Metrics is nil unless the operator turned the endpoint on; then
	// every instance is wrapped to record its requests.
	Metrics *metrics.Recorder
	Version Version
}

// VersionFor returns the version an instance reports to the host: see
// Version.For. what names the instance ("backend", "database") in the
// warning, logged once, when the instance's own version loses to
// WithVersion's.
func (in *Instances) VersionFor(instance any, what string) string {
	var own string
	if pv, ok := instance.(logical.PluginVersioner); ok {
		own = pv.PluginVersion().Version
	}
	v, overridden := in.Version.For(own)
	if overridden {
		in.Tracker.WarnOnce("the "+what+" reports a version of its own; reporting "+in.Version.Source.String()+"'s", what, own, "reported", v)
	}
	return v
}

// server is one run of a plugin: the options, the host and what follows.
type server struct {
	*Config
	plugin Plugin
	host   hostenv.Host
	flags  tlsFlags
}

// Serve runs p as c says and returns nil once the host (or ctx) stopped
// it, or a person's request was answered; otherwise the cause, wrapping
// vaultplugin.ErrUsage for a usage error. optErr is the options' aggregated error: it
// is reported like any startup failure, once the logger exists.
func Serve(ctx context.Context, p Plugin, c *Config, optErr error) error {
	s := &server{Config: c, plugin: p}
	if s.Args == nil {
		s.Args = defaultArgs()
	}
	s.host = hostenv.FromEnv(s.Lookup)
	if s.Logger == nil {
		var redact []string
		if tok, _ := s.Lookup(hostenv.EnvUnwrapToken); tok != "" {
			redact = append(redact, tok)
		}
		s.Logger = logging.New(&logging.Options{Output: s.Stderr, Redact: redact, Lookup: s.Lookup})
	}
	if optErr != nil {
		return s.fail(usageError{optErr}, "fix the options given to Run or Serve in the plugin's main")
	}

	// Everything printed to a person goes to the original writers.
	done, err := s.parseFlags(ctx)
	if done || err != nil {
		return err
	}
	if !s.started() {
		s.printNotAPlugin(ctx)
		return vaultplugin.ErrNoHost
	}

	stop := listenForStop()
	defer stop.release()
	restoreLog := logging.RouteStdLog(s.Logger)
	defer restoreLog()
	for _, p := range s.host.Problems {
		s.Logger.Warn("malformed setting from the host, ignored", "error", p)
	}
	s.resolveVersion()
	ops, err := readOps(ctx, s.Lookup)
	if err != nil {
		return s.fail(err, opsHint)
	}
	plan := NewPlan(s.host, p.Kind(), s.Multiplex)
	s.Logger.Debug("starting", "host", s.host.String(), "version", s.Version.Value, "version_source", s.Version.Source.String())
	for _, r := range plan.Reasons {
		s.Logger.Debug("serving plan", "reason", r)
	}
	s.warnInsecureTLS(plan.TLSProvider)
	if plan.Mlock {
		// mlockall(2) on Linux and the other Unixes go-secure-stdlib
		// supports; on macOS and Windows LockMemory locks nothing and
		// returns nil (as in Vault itself), so there it never fails.
		if err := mlock.LockMemory(); err != nil {
			return s.fail(fmt.Errorf("locking memory (the host set %s=true): %w", hostenv.EnvMlock, err),
				"give the plugin binary CAP_IPC_LOCK (setcap cap_ipc_lock=+ep PLUGIN) or set disable_mlock = true in Vault's configuration")
		}
	}

	in := &Instances{Logger: s.Logger, Tracker: NewTracker(s.Logger), Version: s.Version}
	in.Tracker.hold = p.HostReloads()
	stopOps, err := s.startOps(ops, in)
	if err != nil {
		hint := "another process may hold the port (Vault starts one process per mount for a plugin it does not multiplex): use port 0 and read the bound address from the log"
		if errors.Is(err, errNoEndpoint) {
			hint = opsHint + ", or rebuild the plugin without that tag"
		}
		return s.fail(err, hint)
	}
	defer stopOps()
	// Before anything of the author's runs (a database factory runs in
	// Sets), so every breakpoint can be hit.
	if why := s.waitForDebugger(ctx, ops.debugWait, stop); why != "" {
		s.Logger.Info("stopped before serving", "reason", why)
		return nil
	}
	return s.run(ctx, in, plan, stop)
}

// started reports whether a host of the plugin's kind started the process.
func (s *server) started() bool { return s.host.Started(s.plugin.Kind()) }

// run hands the process to go-plugin and turns what it did into an error.
func (s *server) run(ctx context.Context, in *Instances, plan Plan, stop *stopListener) error {
	sets, err := s.plugin.Sets(in, plan)
	if err != nil {
		in.Tracker.Shutdown(s.ShutdownTimeout) // an instance built before the failure
		return s.fail(err, "")
	}
	watch := &startupWatch{Logger: s.Logger}

	var tlsProvider func() (*tls.Config, error)
	if plan.TLSProvider {
		tlsProvider = s.tlsProvider(watch)
	}

	var (
		srvMu sync.Mutex
		srv   *grpc.Server
	)
	var brokers brokerList
	hostStop := &hostShutdown{asked: make(chan struct{}), drained: make(chan struct{})}
	key, value := s.plugin.Kind().Cookie()
	serveConfig := &goplugin.ServeConfig{
		HandshakeConfig:  goplugin.HandshakeConfig{MagicCookieKey: key, MagicCookieValue: value},
		VersionedPlugins: brokers.track(sets),
		TLSProvider:      tlsProvider,
		Logger:           watch,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, s.plugin.GRPCOptions()...)
			opts = append(opts, grpc.ChainUnaryInterceptor(hostStop.intercept))
			g := goplugin.DefaultGRPCServer(opts)
			srvMu.Lock()
			srv = g
			srvMu.Unlock()
			return g
		},
	}

	// Stop serving when asked: SIGTERM from a supervisor, the host gone,
	// or the caller's context. go-plugin leaves SIGTERM to the Go
	// runtime, which would kill the process without calling any
	// backend's Cleanup.
	stopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	stopping := false // written before stopped is closed, read after
	go func() {
		defer close(stopped)
		defer hostStop.drain()
		var why string
		select {
		case <-stopCtx.Done():
			if ctx.Err() == nil {
				// Serving ended on its own (a startup failure, or the
				// gRPC server failed): close what was built, such as a
				// database's first instance.
				in.Tracker.Shutdown(s.ShutdownTimeout)
				return
			}
			why = "context done"
		case why = <-stop.Reasons:
		case <-hostStop.asked:
			why = "the host asked the plugin to shut down"
		}
		s.Logger.Info("stopping", "reason", why)
		stopping = true
		// From here no new call reaches an instance (Tracker.Begin
		// holds it back, then refuses it); those in flight finish,
		// every instance is closed, and only then does the gRPC server
		// stop, so that the calls in flight could still answer.
		deadline := time.Now().Add(s.ShutdownTimeout)
		in.Tracker.Shutdown(s.ShutdownTimeout)
		hostStop.drain()
		if s.plugin.HostReloads() && in.Tracker.Refused() {
			s.Logger.Debug("calls were refused: waiting for the host to replace the plugin")
			t := time.NewTimer(time.Until(deadline))
			select {
			case <-hostStop.asked:
			case <-t.C:
			}
			t.Stop()
		}
		srvMu.Lock()
		g := srv
		srvMu.Unlock()
		if g != nil {
			g.Stop()
		} else {
			// Not serving yet (still unwrapping, say): nothing to drain.
			watch.abort(errors.New("stopped before serving: " + why))
		}
	}()

	// go-plugin swaps os.Stdout and os.Stderr for pipes of its own and
	// never swaps them back outside its test mode (which prints no
	// handshake): Serve's caller gets them back, and the pipes are
	// closed, which ends go-plugin's goroutines copying from them.
	stdout, stderr := os.Stdout, os.Stderr
	goplugin.Serve(serveConfig)
	cancel()
	<-stopped
	restoreStdio(stdout, stderr)
	// go-plugin closes its broker only in test mode; its goroutine reads
	// from the host's broker stream until then, forever if the host
	// never opened one.
	brokers.close()

	srvMu.Lock()
	served := srv != nil
	srvMu.Unlock()
	if err := watch.err(); err != nil {
		if errors.Is(err, errAborted) {
			s.Logger.Info("stopped before serving", "reason", err)
			return nil
		}
		// A stop right after the handshake can beat go-plugin's call to
		// the gRPC server's Serve, which then fails with ErrServerStopped:
		// that is our own stop, not a failure (TestSIGTERM/exit_0 saw
		// exit 1 about once in six runs under -race).
		if stopping && errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return s.fail(err, watch.hint)
	}
	if !served {
		return s.fail(errors.New("go-plugin stopped before serving, without an error"), "")
	}
	return nil
}

// controllerShutdown is the gRPC method by which go-plugin's client (the
// host's Kill) asks the plugin to exit; go-plugin's handler stops the gRPC
// server at once.
const controllerShutdown = "/plugin.GRPCController/Shutdown"

// hostShutdown makes the host's Kill a graceful stop: its Shutdown call
// is held until the stop has drained the calls in flight and closed every
// instance (within the shutdown timeout), where go-plugin's handler would
// stop the gRPC server under them at once. go-plugin's Kill waits for
// that answer before its own two-second grace. Vault kills a plugin
// process when a mount is unmounted or reloaded, or Vault itself stops.
type hostShutdown struct {
	askedOnce, drainedOnce sync.Once
	asked                  chan struct{} // closed when the host called Shutdown
	drained                chan struct{} // closed when the stop is done with the instances
}

func (h *hostShutdown) drain() { h.drainedOnce.Do(func() { close(h.drained) }) }

func (h *hostShutdown) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod == controllerShutdown {
		h.askedOnce.Do(func() { close(h.asked) })
		select {
		case <-h.drained:
		case <-ctx.Done():
		}
	}
	return handler(ctx, req)
}

// restoreStdio puts back os.Stdout and os.Stderr as they were before
// go-plugin's Serve and closes what it had put there: its pipes' write
// ends, whose readers then see EOF.
func restoreStdio(stdout, stderr *os.File) {
	for _, f := range []struct {
		std **os.File
		was *os.File
	}{{&os.Stdout, stdout}, {&os.Stderr, stderr}} {
		if now := *f.std; now != f.was {
			*f.std = f.was
			_ = now.Close()
		}
	}
}

// brokerList remembers the gRPC brokers go-plugin hands the plugins it
// serves, so that they can be closed once it returns.
type brokerList struct {
	mu   sync.Mutex
	list []*goplugin.GRPCBroker
}

// track returns sets with every gRPC plugin wrapped to record its broker.
func (b *brokerList) track(sets map[int]goplugin.PluginSet) map[int]goplugin.PluginSet {
	out := make(map[int]goplugin.PluginSet, len(sets))
	for v, set := range sets {
		out[v] = make(goplugin.PluginSet, len(set))
		for name, p := range set {
			if gp, ok := p.(goplugin.GRPCPlugin); ok {
				p = brokerRecorder{Plugin: p, grpc: gp, list: b}
			}
			out[v][name] = p
		}
	}
	return out
}

func (b *brokerList) close() {
	b.mu.Lock()
	list := b.list
	b.list = nil
	b.mu.Unlock()
	for _, br := range list {
		_ = br.Close()
	}
}

// brokerRecorder is a gRPC plugin that records the broker it is served
// with; the rest is the plugin's own.
type brokerRecorder struct {
	goplugin.Plugin
	grpc goplugin.GRPCPlugin
	list *brokerList
}

func (r brokerRecorder) GRPCServer(b *goplugin.GRPCBroker, s *grpc.Server) error {
	r.list.mu.Lock()
	r.list.list = append(r.list.list, b)
	r.list.mu.Unlock()
	return r.grpc.GRPCServer(b, s)
}

func (r brokerRecorder) GRPCClient(ctx context.Context, b *goplugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return r.grpc.GRPCClient(ctx, b, c)
}

// fail reports a failure where its reader is. Under a host: an error
// record on stderr (Vault re-logs it at ERROR) and a plain line on stdout
// (Vault's API error quotes it: "Unrecognized remote plugin message: …").
// For a person: one plain line on stderr, as for a bad flag, because a
// JSON record is for machines. It returns err.
func (s *server) fail(err error, hint string) error {
	line := s.Name + ": " + err.Error()
	if hint != "" {
		line += " (" + hint + ")"
	}
	if !s.started() {
		fmt.Fprintln(s.Stderr, oneLine(line))
		return err
	}
	if hint != "" {
		s.Logger.Error("plugin failed to start", "error", err, "hint", hint)
	} else {
		s.Logger.Error("plugin failed to start", "error", err)
	}
	fmt.Fprintln(s.Stdout, oneLine(line))
	return err
}

// oneLine folds line breaks: the host reads one line as the cause.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

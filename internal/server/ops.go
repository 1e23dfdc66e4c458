package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/internal/loopback"
	"github.com/plugkit/vaultplugin/logging"
)

// The operator's switches, set with `vault plugin register -env NAME=VALUE`.
// Each is off when unset. OperatorEnv is their one description, printed by
// -help; the module's package documentation (doc.go) explains them at
// length, and a test checks that it names each.
const (
	// envDebugWait makes the plugin wait for a debugger before it serves:
	// a duration, or a boolean ("true" waits defaultDebugWait).
	envDebugWait = "VAULTPLUGIN_DEBUG_WAIT"
	// envHTTPAddr serves profiles and metrics on this loopback HOST:PORT,
	// or on a unix socket: "unix:/abs/path" (or just "/abs/path"), or
	// "unix:NAME" in the host's socket directory.
	envHTTPAddr = "VAULTPLUGIN_HTTP_ADDR"
)

// maxDebugWait bounds the wait for a debugger. The host gives a plugin one
// minute to print its handshake line: go-plugin's ClientConfig.StartTimeout
// defaults to one minute and Vault (sdk/helper/pluginutil's runConfig)
// leaves it unset; past it the host kills the plugin and the mount fails.
// Fifty seconds leaves ten for the operator to set breakpoints and continue
// after attaching (the process is stopped while they do) and for the
// handshake itself. A longer requested wait is clamped to this, with a
// warning: the operator asked to debug, and refusing to start would only
// cost them another registration.
const maxDebugWait = 50 * time.Second

// defaultDebugWait is the wait for VAULTPLUGIN_DEBUG_WAIT=true: time to
// copy the logged dlv command into a shell, with room to spare.
const defaultDebugWait = 30 * time.Second

// debuggerPollInterval is how often the waiting plugin reads its tracer
// from /proc/self/status: one small file read ten times a second, for at
// most maxDebugWait.
const debuggerPollInterval = 100 * time.Millisecond

// endpointCloseTimeout bounds how long requests to the operator endpoint
// may run on after the plugin stopped serving.
const endpointCloseTimeout = time.Second

// EnvVar is an environment variable an operator may set, for -help.
type EnvVar struct{ Name, Help string }

// OperatorEnv lists every variable the library reads from the operator.
// It is a function, not a variable, so that nothing can change it and
// package initialisation formats nothing.
func OperatorEnv() []EnvVar {
	return []EnvVar{
		{logging.LevelEnv, "trace, debug, info, warn, error or off (default trace; Vault filters by its own level)"},
		{envDebugWait, fmt.Sprintf("before serving, wait for a debugger (dlv attach PID): a duration, at most %s, or true for %s", maxDebugWait, defaultDebugWait)},
		{envHTTPAddr, "serve /debug/pprof/ and /metrics on this loopback HOST:PORT (port 0: a free port, logged), or on a unix socket only the plugin's user can use: unix:/abs/path in a directory no other user can write to, or unix:NAME in a container's socket directory"},
	}
}

// errNoEndpoint is the failure of VAULTPLUGIN_HTTP_ADDR in a plugin built
// without the endpoint (endpoint_off.go).
var errNoEndpoint = errors.New("this plugin was built with -tags vaultplugin_noendpoint, without the operator endpoint")

// opsHint is the hint of every failure an operator switch causes.
const opsHint = "fix or remove the -env setting given to vault plugin register"

// opsSettings are the operator switches read from the environment.
type opsSettings struct {
	debugWait     time.Duration // 0: do not wait
	requestedWait time.Duration // before clamping to maxDebugWait
	httpAddr      string        // a checked loopback HOST:PORT, socketPrefix + a checked socket path, or "" for off
}

// socketPrefix marks httpAddr as a unix socket's path: a checked HOST:PORT
// never starts with it.
const socketPrefix = "unix:"

// readOps reads the operator switches through lookup. A malformed value
// is an error naming the variable: the operator asked for something and
// must learn that they did not get it.
func readOps(ctx context.Context, lookup hostenv.LookupFunc) (opsSettings, error) {
	var s opsSettings
	if v, _ := lookup(envDebugWait); v != "" {
		d, err := parseDebugWait(v)
		if err != nil {
			return s, fmt.Errorf("%s=%q: %w", envDebugWait, v, err)
		}
		s.requestedWait, s.debugWait = d, min(d, maxDebugWait)
	}
	if v, _ := lookup(envHTTPAddr); v != "" {
		addr, err := httpAddr(ctx, v, lookup)
		if err != nil {
			return s, fmt.Errorf("%s: %w", envHTTPAddr, err)
		}
		s.httpAddr = addr
	}
	return s, nil
}

// httpAddr checks the endpoint's address v: a unix socket path as
// socketPrefix + its absolute path, or else a loopback HOST:PORT. A
// socket's directory and what is at its path are checked here, before
// anything is created, because a refusal is the operator's setting to fix
// (opsHint), while Serve gives a failure of startEndpoint the hint for a busy
// port.
func httpAddr(ctx context.Context, v string, lookup hostenv.LookupFunc) (string, error) {
	hostDir, _ := lookup(loopback.SocketDirEnv)
	path, ok, err := loopback.SocketPath(v, hostDir)
	if !ok {
		return loopback.Addr(ctx, v, nil)
	}
	if err == nil {
		err = loopback.CheckSocket(path, hostDir)
	}
	if err != nil {
		return "", err
	}
	return socketPrefix + path, nil
}

// parseDebugWait reads a duration ("20s") or a boolean ("true" is
// defaultDebugWait, "false" or "0" is no wait).
func parseDebugWait(v string) (time.Duration, error) {
	if b, err := strconv.ParseBool(v); err == nil {
		if b {
			return defaultDebugWait, nil
		}
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 30s (at most %s), or true for %s", maxDebugWait, defaultDebugWait)
	}
	if d < 0 {
		return 0, errors.New("the wait must not be negative")
	}
	return d, nil
}

// startOps turns on what the operator asked for: the metrics recorder
// (set in in.Metrics, so that every instance is recorded) and the
// endpoint. The returned stop closes the endpoint; it is never nil.
func (s *server) startOps(o opsSettings, in *Instances) (stop func(), err error) {
	if o.requestedWait > maxDebugWait {
		s.Logger.Warn("the debugger wait is longer than the host's start timeout allows; waiting the maximum",
			"requested", o.requestedWait.String(), "wait", o.debugWait.String())
	}
	if o.httpAddr == "" {
		return func() {}, nil
	}
	return s.startEndpoint(o.httpAddr, in)
}

// waitForDebugger waits, when the operator asked for it, until a debugger
// is attached or the wait is over. It is called before the handshake and
// before the author's code runs, so the operator can set breakpoints in the
// factory and in Setup. It returns why the plugin must stop instead of
// serving ("" to serve): SIGTERM, the host gone, or ctx done while waiting.
func (s *server) waitForDebugger(ctx context.Context, d time.Duration, stop *stopListener) (why string) {
	if d <= 0 {
		return ""
	}
	// The host may give up or be killed meanwhile: stop listens already,
	// so a SIGTERM sent after reading the record is always handled.
	pid := os.Getpid()
	fields := []any{"pid", pid, "command", fmt.Sprintf("dlv attach %d", pid), "wait", d.String()}
	if h := ptraceHint(); h != "" {
		fields = append(fields, "hint", h)
	}
	if _, err := tracerPID(); errors.Is(err, errNoTracerInfo) {
		fields = append(fields, "note", "this system does not tell a process that a debugger attached: the plugin waits the whole time")
	}
	s.Logger.Info("waiting for a debugger before serving", fields...)

	start := time.Now()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(debuggerPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "context done"
		case why := <-stop.Reasons:
			return why
		case <-deadline.C:
			s.Logger.Info("no debugger attached within the wait; serving", "waited", time.Since(start).Round(time.Millisecond).String())
			return ""
		case <-tick.C:
			if tracer, err := tracerPID(); err == nil && tracer != 0 {
				s.Logger.Info("debugger attached; serving", "tracer_pid", tracer, "waited", time.Since(start).Round(time.Millisecond).String())
				return ""
			}
		}
	}
}

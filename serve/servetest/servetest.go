package servetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	sdkplugin "github.com/hashicorp/vault/sdk/plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/plugkit/vaultplugin/internal/filehash"
	"github.com/plugkit/vaultplugin/internal/wraphost"
)

// closeTimeout bounds what Close waits for a plugin's own shutdown code
// (each mount's Cleanup, each connection's Close), so a plugin that hangs
// there fails its test instead of hanging it.
const closeTimeout = 5 * time.Second

// Process is a running plugin process, started as Vault starts one. Plugin
// and Database embed it: what is here is common to both kinds. A Plugin's
// process can be replaced while the Plugin lives (Plugin.Upgrade and
// Reload, or a request after the process died, as Vault restarts it):
// the methods here answer for the process that serves now, and Logs for
// all of them.
type Process struct {
	// cur is the OS process serving now. Only adopt replaces it, its
	// caller holding swap.
	cur atomic.Pointer[child]

	// swap is held for reading by each call to a mount's or
	// connection's backend that may need the process restarted (as
	// Vault's route entry lock is held by requests) and for writing
	// while processes are swapped, so that a swap waits for the calls in
	// flight and none starts during it.
	swap sync.RWMutex

	conf *config // the host New played: what a restart plays again
	info Host    // what Host returns

	// host is the plugin's part on a real host (HostEnv, WithHost),
	// where no child runs: the host starts, restarts and replaces the
	// plugin's processes itself. nil in the emulation.
	host *hostProcess

	closeOnce sync.Once

	mu        sync.Mutex
	closed    bool
	instances int                           // mounts or connections made
	closers   []func(context.Context) error // each instance's Cleanup or Close
	logs      []*lineLog                    // each process's stderr, oldest first
	secrets   []string                      // what the host handed each process
}

// child is one OS process of a plugin binary, as go-plugin's client runs
// it.
type child struct {
	bin       string
	client    *goplugin.Client
	rpc       goplugin.ClientProtocol
	conn      grpc.ClientConnInterface
	multiplex bool
	pid       int
	sha256    string // the binary's, hex, as the catalog records it
	handshake time.Duration
	logs      *lineLog
	secrets   []string

	// undo holds what takes launch's steps back, in the order the steps
	// were taken; release runs it last first: the process, then the
	// legacy host's server, then its files. A failed launch and Close
	// both end in release, so there is one way down.
	undo        []func()
	releaseOnce sync.Once
}

// newProcess starts bin as the host described by c would; see launch.
func newProcess(ctx context.Context, bin string, c *config) (*Process, error) {
	ch, err := launch(ctx, bin, c)
	if err != nil {
		return nil, err
	}
	p := &Process{conf: c, info: Host{Name: "servetest", Version: c.vaultVersion}}
	return p, p.adopt(ch)
}

// adopt makes ch the process that serves from now on. The caller holds
// swap for writing, or p is new. A Process closed meanwhile (Close does
// not wait for a swap) adopts nothing: ch is stopped, and the error says
// so.
func (p *Process) adopt(ch *child) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		ch.release()
		return errors.New("servetest: the plugin is closed")
	}
	p.logs = append(p.logs, ch.logs)
	p.secrets = append(p.secrets, ch.secrets...)
	p.cur.Store(ch)
	return nil
}

// serving is the process that serves now.
func (p *Process) serving() *child { return p.cur.Load() }

// launch starts bin as the host described by c would and waits for its
// handshake. On failure everything it started is stopped again.
func launch(ctx context.Context, bin string, c *config) (_ *child, err error) {
	p := &child{bin: bin, logs: &lineLog{}}
	defer func() {
		if err != nil {
			// Asked before release kills it: go-plugin reports the
			// process's end (Exited) before it gives up waiting for the
			// handshake because of it.
			var gp *goPluginError
			exited := errors.As(err, &gp) && p.client != nil && p.client.Exited()
			p.release()
			// release stopped the process with go-plugin's Kill, which
			// returns only after the plugin's stderr was read to the end
			// (see stopClient), so the logs hold the plugin's last
			// words: often its reason.
			err = newStartError(ctx, bin, err, p.logs, exited)
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sum, err := filehash.SHA256(bin)
	if err != nil {
		return nil, err
	}
	p.sha256 = hex.EncodeToString(sum)
	var socketDir string
	if c.container {
		if socketDir, err = p.startSocketDir(); err != nil {
			return nil, err
		}
	}
	var legacy *wraphost.Host
	if c.legacyTLS {
		if legacy, err = p.startLegacyHost(); err != nil {
			return nil, err
		}
		p.secrets = []string{legacy.Token, legacy.ServerKey}
	}
	cc := c.clientConfig(bin, sum, legacy, socketDir, p.logs)
	if d, ok := ctx.Deadline(); ok {
		// go-plugin's handshake takes no context, only a timeout.
		cc.StartTimeout = time.Until(d)
	}
	client := goplugin.NewClient(cc)
	p.undo = append(p.undo, func() { stopClient(client) })
	p.client = client
	if err := p.handshakeWith(ctx, client); err != nil {
		return nil, err
	}
	return p, nil
}

// startLegacyHost starts Vault's side of the wrap-token TLS path, with
// its CA file in a directory of its own, and registers their removal.
func (p *child) startLegacyHost() (*wraphost.Host, error) {
	dir, err := os.MkdirTemp("", "servetest-legacy-")
	if err != nil {
		return nil, err
	}
	p.undo = append(p.undo, func() { os.RemoveAll(dir) })
	h, err := wraphost.Start(dir)
	if err != nil {
		return nil, fmt.Errorf("servetest: %w", err)
	}
	p.undo = append(p.undo, h.Close)
	return h, nil
}

// clientConfig is the go-plugin client Vault's plugin catalog would make
// for the plugin at bin, whose sha256 is sum; legacy is the wrap-token TLS
// host, or nil for AutoMTLS; socketDir is the socket directory under
// WithContainerEnv.
func (c *config) clientConfig(bin string, sum []byte, legacy *wraphost.Host, socketDir string, logs io.Writer) *goplugin.ClientConfig {
	autoMTLS := !c.metadataMode && legacy == nil
	args := c.args
	if legacy != nil {
		args = append([]string{"-ca-cert=" + legacy.CAFile}, args...)
	}
	cmd := exec.Command(bin, args...)
	// As pluginutil's runConfig.generateCmd (sdk v0.20.0): the host's
	// environment, then the operator's -env entries, then Vault's
	// variables, so a later duplicate wins as it does under Vault.
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Env = append(cmd.Env,
		pluginutil.PluginVaultVersionEnv+"="+c.vaultVersion,
		pluginutil.PluginMetadataModeEnv+"="+strconv.FormatBool(c.metadataMode),
		pluginutil.PluginAutoMTLSEnv+"="+strconv.FormatBool(autoMTLS),
	)
	if legacy != nil {
		cmd.Env = append(cmd.Env, pluginutil.PluginUnwrapTokenEnv+"="+legacy.Token)
	}
	if dir := coverDir(); dir != "" {
		// A plugin Build made with -cover writes its counters here.
		cmd.Env = append(cmd.Env, "GOCOVERDIR="+dir)
	}
	if c.container {
		// WithContainerEnv replaces all of the above: see containerEnv.
		cmd.Env = c.containerEnv(autoMTLS, socketDir)
	}

	stderr := logs
	if c.stderr != nil {
		stderr = io.MultiWriter(logs, c.stderr)
	}
	logger := c.logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	handshake, sets := c.pluginSets()
	var clientTLS *tls.Config
	if legacy != nil {
		clientTLS = legacy.ClientTLS
	}
	return &goplugin.ClientConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: sets,
		Cmd:              cmd,
		SecureConfig:     &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolNetRPC, goplugin.ProtocolGRPC},
		AutoMTLS:         autoMTLS,
		TLSConfig:        clientTLS,
		SkipHostEnv:      true,
		Logger:           logger,
		Stderr:           stderr,

		// Set under WithContainerEnv only: see containerEnv.
		UnixSocketConfig:    c.unixSocketConfig(),
		GRPCBrokerMultiplex: c.container,
	}
}

// pluginSets is the handshake cookie and the protocol versions the host
// offers, as Vault chooses them for the plugin's kind.
func (c *config) pluginSets() (goplugin.HandshakeConfig, map[int]goplugin.PluginSet) {
	switch {
	case c.database:
		return dbplugin.HandshakeConfig, dbplugin.PluginSets
	case c.noHostMux || c.legacyTLS:
		// A host that will not share the process, and the wrap-token
		// TLS path (which Vault takes for plugins that offer protocol 4
		// at most), speak protocol 4: one backend per process.
		return sdkplugin.HandshakeConfig, map[int]goplugin.PluginSet{4: {"backend": &sdkplugin.GRPCBackendPlugin{}}}
	default:
		return sdkplugin.HandshakeConfig, map[int]goplugin.PluginSet{5: {"backend": &sdkplugin.GRPCBackendPlugin{}}}
	}
}

// handshakeWith starts the process through client, reads its handshake,
// and asks the plugin whether it multiplexes, as Vault does before the
// first mount.
func (p *child) handshakeWith(ctx context.Context, client *goplugin.Client) error {
	start := time.Now()
	rpc, err := client.Client()
	if err != nil {
		return &goPluginError{err}
	}
	p.handshake = time.Since(start)
	p.rpc = rpc
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	grpcClient, ok := rpc.(*goplugin.GRPCClient)
	if !ok {
		return fmt.Errorf("the plugin negotiated %T, want gRPC", rpc)
	}
	p.conn = grpcClient.Conn
	p.multiplex, err = pluginutil.MultiplexingSupported(ctx, p.conn, "servetest")
	if err != nil {
		return fmt.Errorf("asking whether the plugin multiplexes: %w", err)
	}
	return nil
}

// stopClient stops the plugin process the way Vault does, through
// go-plugin's Client.Kill: close the RPC connection (go-plugin's server
// then exits), wait up to two seconds, then kill. It returns only once
// the plugin's stderr has been copied to our writer to the last line, so
// Logs and an error's tail are complete without sleeping for it.
//
// That rests on go-plugin's Client.Kill waiting on the client's
// clientWaitGroup (a deferred c.clientWaitGroup.Wait()), which counts
// logStderr, the goroutine copying stderr into ClientConfig.Stderr until
// EOF (Start does clientWaitGroup.Add(1) before go c.logStderr, which
// defers clientWaitGroup.Done). Kill does so also after a failed
// handshake, as the process is recorded before the handshake is read; it
// returns at once only for a process that never started, which wrote
// nothing. The same holds from go.mod's floor, go-plugin v1.6.0, to v1.8.0
// (Start records c.runner before it starts logStderr; Kill returns early
// only without a runner).
func stopClient(client *goplugin.Client) { client.Kill() }

// release undoes launch, last step first, once: Close calls it, a swap
// for the process it replaces, and a failed launch instead of returning
// the child.
func (p *child) release() {
	if p == nil {
		return
	}
	p.releaseOnce.Do(func() {
		for i := len(p.undo) - 1; i >= 0; i-- {
			p.undo[i]()
		}
	})
}

// exited reports whether the process has exited; no process (a Process
// that New or NewDatabase did not make) has none running.
func (p *child) exited() bool { return p == nil || p.client.Exited() }

// open returns an error once the Process is closed.
func (p *Process) open() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("servetest: the plugin is closed")
	}
	return nil
}

// reserve claims a place for one more mount or connection (what): a
// plugin that does not multiplex serves one per process, as in Vault. The
// returned func gives the place back if setting the instance up fails.
func (p *Process) reserve(what, kind string) (unreserve func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, errors.New("servetest: the plugin is closed")
	case !p.serving().multiplex && p.instances > 0:
		return nil, notMultiplexed(what, kind)
	}
	p.instances++
	return func() {
		p.mu.Lock()
		p.instances--
		p.mu.Unlock()
	}, nil
}

// track registers stop, the shutdown of one mount or connection, for
// Close, and returns it made to run once: a later call returns the first
// call's result. Vault shuts an instance down once, and a plugin may
// rightly complain about a second time. stop itself skips an instance
// whose process has exited (a test may kill it): a call to a dead process
// could only fail.
func (p *Process) track(stop func(context.Context) error) func(context.Context) error {
	var once sync.Once
	var err error
	f := func(ctx context.Context) error {
		once.Do(func() { err = stop(ctx) })
		return err
	}
	p.mu.Lock()
	p.closers = append(p.closers, f)
	p.mu.Unlock()
	return f
}

// stopAtEnd shuts an instance down when t ends, once no swap of the
// process is under way.
func (p *Process) stopAtEnd(t testing.TB, stop func(context.Context) error) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		p.swap.RLock()
		defer p.swap.RUnlock()
		_ = stop(ctx)
	})
}

// HostSecrets returns what the host handed the plugin that must never
// appear in the plugin's output or logs: under WithLegacyTLS, the wrapping
// token in VAULT_UNWRAP_TOKEN and the plugin's TLS private key as the
// unwrap endpoint returned it (base64 of its DER form, which is also the
// body of its PEM form), for each process started so far; nil otherwise,
// and always on a real host. It is here so that a plugin author can
// assert that their plugin never logs either, by searching Logs for each:
// only the host knows their values.
func (p *Process) HostSecrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.secrets...)
}

// PID is the id of the plugin process that serves now, for signals and
// for comparing the process that serves two mounts; 0 for a Process that
// New or NewDatabase did not make. On a real host it is the process the
// host runs the plugin's file in now (the lowest id, if it runs several:
// a plugin that does not multiplex runs one per mount), found in /proc;
// 0 when none runs (the host starts the plugin when a mount or a
// connection first needs it, and after a Kill on the next request), and
// always outside Linux.
func (p *Process) PID() int {
	if p.host != nil {
		if pids := p.host.pids(); len(pids) > 0 {
			return pids[0]
		}
		return 0
	}
	if ch := p.serving(); ch != nil {
		return ch.pid
	}
	return 0
}

// HandshakeTime is the time from starting the process that serves now to
// a completed handshake, as the host measures it. It is here because a
// plugin's start is on the path of every Vault mount, unseal and plugin
// reload, and only the host's side of the handshake can time it. On a
// real host, where the handshake is the host's own business, it is the
// time the catalog registration and the first mount took together (the
// mount starts the plugin), or the registration's alone before a mount.
func (p *Process) HandshakeTime() time.Duration {
	if p.host != nil {
		return p.host.reg + time.Duration(p.host.mount.Load())
	}
	if ch := p.serving(); ch != nil {
		return ch.handshake
	}
	return 0
}

// Logs returns the lines the plugin wrote to stderr so far, those of the
// processes it replaced first: stderr is read as the plugin writes it, so
// once Close has returned Logs holds them all. On a real host they are
// the host's log records that name the plugin's catalog entry, in the
// host's JSON form: the plugin's own records, which the host re-logs at
// their level under that name (Level, Message and their fields as the
// plugin wrote them, with the host's @module and @timestamp among the
// Fields, Raw the host's line), and the host's own records about the
// plugin, such as its start.
func (p *Process) Logs() []LogRecord {
	if p.host != nil {
		p.host.srv.log.catchUp()
	}
	p.mu.Lock()
	logs := append([]*lineLog(nil), p.logs...)
	p.mu.Unlock()
	var out []LogRecord
	for _, l := range logs {
		out = append(out, l.records()...)
	}
	return out
}

// Exited reports whether the plugin process that serves now has exited.
// On a real host it reports whether no process runs the plugin now: the
// host starts one again when a request needs it.
func (p *Process) Exited() bool {
	if p.host != nil {
		return len(p.host.pids()) == 0
	}
	return p.serving().exited()
}

// Host says which host runs the plugin: the emulation (Name "servetest",
// the Vault version it plays) or a real Vault or OpenBao, with its
// version, API address and root token.
func (p *Process) Host() Host { return p.info }

// Kill ends the plugin process at once, as a crash would, so a test can
// see what the host sees then: SIGKILL on Unix, TerminateProcess on
// Windows. It returns once the host has seen the process end, as Vault's
// plugin client sees it: Exited reports true, Logs holds the process's
// last lines, and a call to one of its backends fails with the SDK's
// ErrPluginShutdown. The next request through a Mount's request methods
// then starts the binary again, as Vault does (see the package doc's
// section on upgrades); Close is still needed. On a real host it kills
// every process running the plugin's file (found in /proc, so on Linux
// only): the request that next reaches the mount fails (Vault 1.21.0
// answers 500, "rpc error: code = Unavailable"), and the host starts the
// plugin again, as it restarts a plugin that crashed, for the requests
// after (those that come while it starts may fail the same way).
func (p *Process) Kill() error {
	if p.host != nil {
		return p.host.kill()
	}
	ch := p.serving()
	if ch == nil || ch.pid == 0 {
		return errors.New("servetest: no process id")
	}
	proc, err := os.FindProcess(ch.pid)
	if err == nil {
		err = proc.Kill()
		proc.Release() //nolint:errcheck // only frees the handle
	}
	if err != nil {
		return fmt.Errorf("servetest: killing %d: %w", ch.pid, err)
	}
	// go-plugin's Kill on a process that is gone returns once its
	// client saw the exit (its context, which the SDK's clients check,
	// is cancelled by then) and its stderr was read to the end.
	stopClient(ch.client)
	return nil
}

// Close stops the process the way Vault does: each mount's Cleanup or
// each connection's Close, then go-plugin's graceful shutdown, then a kill
// if the process lingers. It returns once the process has exited and its
// stderr has been read. On a real host it disables the mounts (the host
// then stops the plugin), deletes the catalog entry and the binary's copy
// in the plugin directory, and waits for the plugin's process to end,
// killing it after 5 s; the shared server runs on. It is safe to call more than once; the error is
// always nil, and is there so a Process is an io.Closer.
func (p *Process) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		closers := p.closers
		p.closers = nil
		serving := p.serving() // adopt replaces it no more
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		for _, stop := range closers {
			_ = stop(ctx)
		}
		cancel()
		serving.release()
		p.host.release()
	})
	return nil
}

// muxConn sends the instance's multiplexing id with every call, as Vault's
// plugin catalog does for a multiplexed plugin.
type muxConn struct {
	grpc.ClientConnInterface
	id string
}

func (c muxConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	ctx = metadata.AppendToOutgoingContext(ctx, pluginutil.MultiplexingCtxKey, c.id)
	return c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
}

func (c muxConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, pluginutil.MultiplexingCtxKey, c.id)
	return c.ClientConnInterface.NewStream(ctx, desc, method, opts...)
}

// instanceConn is the connection one instance is served over, sending
// its multiplexing id id when the plugin multiplexes.
func (p *child) instanceConn(id string) pluginClient {
	conn := p.conn
	if p.multiplex {
		conn = muxConn{ClientConnInterface: p.conn, id: id}
	}
	return pluginClient{ClientProtocol: p.rpc, conn: conn}
}

// pluginClient is what the SDK's clients need to point a backend or
// database at a (multiplexed) connection.
type pluginClient struct {
	goplugin.ClientProtocol
	conn grpc.ClientConnInterface
}

func (c pluginClient) Conn() grpc.ClientConnInterface { return c.conn }
func (c pluginClient) Reload() error                  { return errors.New("servetest: reload is not supported") }

// Close does nothing: the SDK's clients close their PluginClient when one
// mount or connection closes, but the process and its connection are
// shared by all of them and closed by Process.Close.
func (c pluginClient) Close() error { return nil }

func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("servetest: generating an id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Package servetest starts a Vault plugin binary exactly as Vault does and
// hands back a logical.Backend per mount, so a test drives the binary an
// operator ships, with no Vault installed.
//
//	func TestPlugin(t *testing.T) {
//		bin := servetest.Build(t, "./cmd/my-plugin")
//		p := servetest.Start(t, bin)
//		m, err := p.Mount(context.Background(), nil)
//		if err != nil {
//			t.Fatal(err)
//		}
//		resp, err := m.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "info"})
//		…
//	}
//
// The plugin is started with the handshake cookie, the environment Vault
// 1.21 sets (VAULT_VERSION, VAULT_PLUGIN_AUTOMTLS_ENABLED=true,
// VAULT_PLUGIN_METADATA_MODE=false), the binary's sha256 checked as the
// catalog does, AutoMTLS and protocol 5. Each Mount is a backend instance in
// the same process with its own multiplexing id and in-memory storage,
// served to the plugin through go-plugin's broker as Vault's storage is.
//
// Database plugins start with NewDatabase or StartDatabase and hand out a
// dbplugin.Database per Connect. WithLegacyTLS plays the host of the
// wrap-token TLS path instead of AutoMTLS, so a plugin's TLS provider runs
// against a real unwrap endpoint.
package servetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	"github.com/hashicorp/vault/sdk/logical"
	sdkplugin "github.com/hashicorp/vault/sdk/plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/plugkit/vaultplugin/internal/filehash"
)

// DefaultVaultVersion is the VAULT_VERSION a plugin sees unless
// WithVaultVersion says otherwise: the release the project is proven on.
const DefaultVaultVersion = "1.21.0"

// Option configures New and Start. An invalid option makes New fail.
type Option func(*config) error

type config struct {
	database     bool
	legacyTLS    bool
	metadataMode bool
	noHostMux    bool
	env          []string
	args         []string
	vaultVersion string
	stderr       io.Writer
	logger       hclog.Logger
}

// WithEnv adds "KEY=VALUE" entries to the plugin's environment, as
// `vault plugin register -env` does.
func WithEnv(kv ...string) Option {
	return func(c *config) error {
		for _, e := range kv {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				return fmt.Errorf("WithEnv(%q): want KEY=VALUE", e)
			}
		}
		c.env = append(c.env, kv...)
		return nil
	}
}

// WithArgs sets the plugin's command-line arguments, as
// `vault plugin register -args` does.
func WithArgs(args ...string) Option {
	return func(c *config) error {
		c.args = append(c.args, args...)
		return nil
	}
}

// WithVaultVersion sets the VAULT_VERSION the plugin sees.
func WithVaultVersion(v string) Option {
	return func(c *config) error {
		if v == "" {
			return errors.New("WithVaultVersion: empty version")
		}
		c.vaultVersion = v
		return nil
	}
}

// WithMetadataMode plays a host that starts the plugin only to read its
// metadata (type, version), as Vaults before 1.12 did at registration:
// VAULT_PLUGIN_METADATA_MODE=true, no TLS. The SDK refuses requests in
// this mode; Setup and the version still answer.
func WithMetadataMode() Option {
	return func(c *config) error {
		c.metadataMode = true
		return nil
	}
}

// WithoutHostMultiplexing plays a host that does not multiplex: it offers
// only protocol 4, as Vault does for a plugin it will not share, so the
// plugin serves one backend and every Mount after the first fails.
func WithoutHostMultiplexing() Option {
	return func(c *config) error {
		c.noHostMux = true
		return nil
	}
}

// WithStderr copies the plugin's raw stderr lines to w as well, e.g.
// os.Stderr to watch a plugin's records while a test runs.
func WithStderr(w io.Writer) Option {
	return func(c *config) error {
		if w == nil {
			return errors.New("WithStderr(nil)")
		}
		c.stderr = w
		return nil
	}
}

// WithLogger is the host-side logger, to which go-plugin re-logs the
// plugin's records as Vault does. By default they are only kept for Logs.
func WithLogger(l hclog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("WithLogger(nil)")
		}
		c.logger = l
		return nil
	}
}

// Plugin is a running plugin process, started as Vault starts one.
type Plugin struct {
	client    *goplugin.Client
	rpc       goplugin.ClientProtocol
	conn      grpc.ClientConnInterface
	multiplex bool
	database  bool
	metadata  bool
	cleanup   func()
	pid       int
	handshake time.Duration
	logs      *lineLog
	secrets   []string

	mu     sync.Mutex
	mounts []*Mount
	dbs    []dbplugin.Database
	conns  int
	closed bool
}

// Mount is one backend instance in the plugin process, as one Vault mount.
type Mount struct {
	// Backend is the instance, reached through the gRPC boundary.
	logical.Backend
	// Storage is the mount's storage, which the plugin reads and writes
	// through the broker as it would Vault's; a test may inspect it.
	Storage *logical.InmemStorage
	// ID is the multiplexing id the host sends with every call.
	ID string
}

// LogRecord is one line the plugin wrote to stderr, parsed when it is an
// hclog JSON record.
type LogRecord struct {
	Level, Message string
	Fields         map[string]any
	// Raw is the line as written.
	Raw string
}

// New starts the plugin binary bin as Vault would and waits for its
// handshake. The caller must Close it. A plugin that fails to start gives
// an error holding what Vault would show: go-plugin's message (with the
// plugin's cause line) and the plugin's last stderr lines.
func New(ctx context.Context, bin string, opts ...Option) (*Plugin, error) {
	return start(ctx, bin, &config{vaultVersion: DefaultVaultVersion}, opts)
}

// NewDatabase is New for a database plugin (dbplugin v5): the database
// handshake cookie and protocols 5 and 6; use Connect instead of Mount.
func NewDatabase(ctx context.Context, bin string, opts ...Option) (*Plugin, error) {
	return start(ctx, bin, &config{vaultVersion: DefaultVaultVersion, database: true}, opts)
}

// StartDatabase is NewDatabase for tests, as Start is for New.
func StartDatabase(t testing.TB, bin string, opts ...Option) *Plugin {
	t.Helper()
	p, err := NewDatabase(context.Background(), bin, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func start(ctx context.Context, bin string, c *config, opts []Option) (*Plugin, error) {
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("servetest: %w", err)
		}
	}
	sum, err := filehash.SHA256(bin)
	if err != nil {
		return nil, fmt.Errorf("servetest: %w", err)
	}
	logs := &lineLog{}
	stderr := io.Writer(logs)
	if c.stderr != nil {
		stderr = io.MultiWriter(logs, c.stderr)
	}
	logger := c.logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}

	args := c.args
	autoMTLS := true
	var legacy *legacyHost
	var legacyDir string
	if c.metadataMode {
		if c.legacyTLS {
			return nil, errors.New("servetest: WithMetadataMode and WithLegacyTLS exclude each other: a host in metadata mode sends no token")
		}
		autoMTLS = false
	}
	if c.legacyTLS {
		if c.database {
			return nil, errors.New("servetest: WithLegacyTLS: database plugins use AutoMTLS only")
		}
		if legacyDir, err = os.MkdirTemp("", "servetest-legacy-"); err != nil {
			return nil, fmt.Errorf("servetest: %w", err)
		}
		if legacy, err = newLegacyHost(legacyDir); err != nil {
			os.RemoveAll(legacyDir)
			return nil, fmt.Errorf("servetest: %w", err)
		}
		autoMTLS = false
		args = append([]string{"-ca-cert=" + legacy.caFile}, args...)
	}
	cleanupLegacy := func() {
		if legacy != nil {
			legacy.close()
			os.RemoveAll(legacyDir)
		}
	}

	cmd := exec.Command(bin, args...)
	// As pluginutil's runConfig: the host's environment, then Vault's
	// variables, then the operator's -env entries.
	cmd.Env = append(os.Environ(),
		pluginutil.PluginVaultVersionEnv+"="+c.vaultVersion,
		pluginutil.PluginMetadataModeEnv+"="+strconv.FormatBool(c.metadataMode),
		pluginutil.PluginAutoMTLSEnv+"="+strconv.FormatBool(autoMTLS),
	)
	if legacy != nil {
		cmd.Env = append(cmd.Env, pluginutil.PluginUnwrapTokenEnv+"="+legacy.token)
	}
	cmd.Env = append(cmd.Env, c.env...)

	handshake := sdkplugin.HandshakeConfig
	sets := map[int]goplugin.PluginSet{5: {"backend": &sdkplugin.GRPCBackendPlugin{}}}
	if c.database {
		handshake = dbplugin.HandshakeConfig
		sets = dbplugin.PluginSets
	}
	var clientTLS *tls.Config
	if c.noHostMux && !c.database {
		sets = map[int]goplugin.PluginSet{4: {"backend": &sdkplugin.GRPCBackendPlugin{}}}
	}
	if legacy != nil {
		// Vault takes this path for plugins that offer protocol 4 at most.
		sets = map[int]goplugin.PluginSet{4: {"backend": &sdkplugin.GRPCBackendPlugin{}}}
		clientTLS = legacy.clientTLS
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
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
	})
	start := time.Now()
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		cleanupLegacy()
		// The stderr reader may still be copying the last lines.
		time.Sleep(50 * time.Millisecond)
		return nil, fmt.Errorf("servetest: starting %s: %w%s", bin, err, logs.tail(5))
	}
	p := &Plugin{client: client, rpc: rpc, handshake: time.Since(start), logs: logs, database: c.database, metadata: c.metadataMode, cleanup: cleanupLegacy}
	if legacy != nil {
		p.secrets = []string{legacy.token, legacy.serverKey}
	}
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	grpcClient, ok := rpc.(*goplugin.GRPCClient)
	if !ok {
		client.Kill()
		cleanupLegacy()
		return nil, fmt.Errorf("servetest: %s negotiated %T, want gRPC", bin, rpc)
	}
	p.conn = grpcClient.Conn
	p.multiplex, err = pluginutil.MultiplexingSupported(ctx, p.conn, "servetest")
	if err != nil {
		client.Kill()
		cleanupLegacy()
		return nil, fmt.Errorf("servetest: asking %s whether it multiplexes: %w", bin, err)
	}
	return p, nil
}

// Start is New for tests: it fails t on error and closes the plugin when
// the test ends.
func Start(t testing.TB, bin string, opts ...Option) *Plugin {
	t.Helper()
	p, err := New(context.Background(), bin, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Mount sets up a new backend instance in the plugin, as a new Vault mount
// of it: config is the mount's configuration map. A plugin that does not
// multiplex serves only one mount per process, as in Vault.
func (p *Plugin) Mount(ctx context.Context, config map[string]string) (*Mount, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("servetest: the plugin is closed")
	}
	if p.database {
		p.mu.Unlock()
		return nil, errors.New("servetest: a database plugin has connections, not mounts: use Connect")
	}
	if !p.multiplex && len(p.mounts) > 0 {
		p.mu.Unlock()
		return nil, errors.New("servetest: the plugin does not multiplex: Vault starts one process per mount, so start another Plugin")
	}
	p.mu.Unlock()

	id, err := newID()
	if err != nil {
		return nil, err
	}
	conn := p.conn
	if p.multiplex {
		conn = muxConn{ClientConnInterface: p.conn, id: id}
	}
	be, err := sdkplugin.Dispense(p.rpc, pluginClient{ClientProtocol: p.rpc, conn: conn})
	if err != nil {
		return nil, fmt.Errorf("servetest: dispensing the backend: %w", err)
	}
	storage := &logical.InmemStorage{}
	if config == nil {
		config = map[string]string{}
	}
	err = be.Setup(ctx, &logical.BackendConfig{
		StorageView: storage,
		Logger:      hclog.NewNullLogger(),
		System: logical.StaticSystemView{
			DefaultLeaseTTLVal: time.Hour,
			MaxLeaseTTLVal:     24 * time.Hour,
			VersionString:      DefaultVaultVersion,
		},
		Config:      config,
		BackendUUID: id,
	})
	if err != nil {
		return nil, fmt.Errorf("servetest: setting up the mount: %w", err)
	}
	// A host in metadata mode only sets a backend up to ask for its
	// type and version; the SDK refuses Initialize then.
	if !p.metadata {
		if err := be.Initialize(ctx, &logical.InitializationRequest{Storage: storage}); err != nil {
			be.Cleanup(ctx)
			return nil, fmt.Errorf("servetest: initializing the mount: %w", err)
		}
	}
	m := &Mount{Backend: be, Storage: storage, ID: id}
	p.mu.Lock()
	p.mounts = append(p.mounts, m)
	p.mu.Unlock()
	return m, nil
}

// Connect opens a new connection to a database plugin started with
// NewDatabase, as a new `vault write database/config/NAME` does: its own
// instance in the same process when the plugin multiplexes. The caller
// initializes it with Initialize; Plugin.Close closes every connection.
func (p *Plugin) Connect(ctx context.Context) (dbplugin.Database, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, errors.New("servetest: the plugin is closed")
	case !p.database:
		return nil, errors.New("servetest: Connect is for database plugins (NewDatabase); use Mount")
	case !p.multiplex && p.conns > 0:
		return nil, errors.New("servetest: the plugin does not multiplex: Vault starts one process per connection, so start another Plugin")
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	var conn grpc.ClientConnInterface = p.conn
	if p.multiplex {
		conn = muxConn{ClientConnInterface: p.conn, id: id}
	}
	db, err := dbplugin.NewPluginClient(ctx, runner{client: pluginClient{ClientProtocol: p.rpc, conn: conn}}, pluginutil.PluginClientConfig{Name: "servetest"})
	if err != nil {
		return nil, fmt.Errorf("servetest: dispensing the database: %w", err)
	}
	p.conns++
	p.dbs = append(p.dbs, db)
	return db, nil
}

// runner hands dbplugin.NewPluginClient the already running plugin.
type runner struct {
	pluginutil.RunnerUtil
	client pluginClient
}

func (r runner) NewPluginClient(context.Context, pluginutil.PluginClientConfig) (pluginutil.PluginClient, error) {
	return r.client, nil
}

// HostSecrets returns what the host handed the plugin that must never
// appear in the plugin's output or logs: under WithLegacyTLS, the wrapping
// token in VAULT_UNWRAP_TOKEN and the plugin's TLS private key as the
// unwrap endpoint returned it (base64 of its DER form, which is also the
// body of its PEM form); nil otherwise.
func (p *Plugin) HostSecrets() []string { return append([]string(nil), p.secrets...) }

// PID is the plugin process's id.
func (p *Plugin) PID() int { return p.pid }

// HandshakeTime is the time from starting the process to a completed
// handshake, as the host measures it.
func (p *Plugin) HandshakeTime() time.Duration { return p.handshake }

// Logs returns the lines the plugin wrote to stderr so far: stderr is read
// as the plugin writes it, so once Close has returned Logs holds them all.
func (p *Plugin) Logs() []LogRecord { return p.logs.records() }

// Exited reports whether the plugin process has exited.
func (p *Plugin) Exited() bool { return p.client.Exited() }

// Kill sends SIGKILL to the plugin process at once, as a crash would.
func (p *Plugin) Kill() error {
	if p.pid == 0 {
		return errors.New("servetest: no process id")
	}
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("servetest: killing %d: %w", p.pid, err)
	}
	return nil
}

// Close stops the plugin the way Vault does: each mount's Cleanup, then
// go-plugin's graceful shutdown, then a kill if the process lingers. It
// is safe to call more than once.
func (p *Plugin) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	mounts, dbs := p.mounts, p.dbs
	p.mu.Unlock()
	if !p.client.Exited() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for _, m := range mounts {
			m.Cleanup(ctx)
		}
		cancel()
		for _, db := range dbs {
			_ = db.Close()
		}
	}
	p.client.Kill()
	p.cleanup()
	return nil
}

// muxConn sends the mount's multiplexing id with every call, as Vault's
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

// pluginClient is what sdk/plugin.Dispense needs to point the backend
// client at a (multiplexed) connection.
type pluginClient struct {
	goplugin.ClientProtocol
	conn grpc.ClientConnInterface
}

func (c pluginClient) Conn() grpc.ClientConnInterface { return c.conn }
func (c pluginClient) Reload() error                  { return errors.New("servetest: reload is not supported") }

// Close does nothing: the SDK's clients close their PluginClient when one
// mount or connection closes, but the process and its connection are
// shared by all of them and closed by Plugin.Close.
func (c pluginClient) Close() error { return nil }

func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("servetest: generating an id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// lineLog collects the plugin's stderr. go-plugin writes each line and
// its newline in separate calls, so lines are assembled here.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(b), nil
}

func (l *lineLog) records() []LogRecord {
	l.mu.Lock()
	lines := append([]string(nil), l.lines...)
	l.mu.Unlock()
	out := make([]LogRecord, 0, len(lines))
	for _, line := range lines {
		r := LogRecord{Raw: line}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			r.Level, _ = m["@level"].(string)
			r.Message, _ = m["@message"].(string)
			delete(m, "@level")
			delete(m, "@message")
			r.Fields = m
		} else {
			r.Message = line
		}
		out = append(out, r)
	}
	return out
}

// tail formats the last n lines for an error message.
func (l *lineLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return ""
	}
	return "\nplugin stderr:\n  " + strings.Join(lines, "\n  ")
}

package serve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"
	"google.golang.org/grpc"

	"github.com/plugkit/vaultplugin/compat"
)

// RunDatabase serves a database plugin and exits the process: it never
// returns. factory is the SDK's dbplugin.Factory, so an existing plugin's
// New drops in unchanged:
//
//	func main() { serve.RunDatabase(mydb.New) }
//
// It behaves as Run does (flags, logging, versions, exit codes, stopping
// with its host); in addition, a factory that fails or returns something
// that is not a dbplugin.Database is a startup failure with its cause,
// never a panic, and errors never carry the passwords of the request that
// caused them.
func RunDatabase(factory dbplugin.Factory, opts ...Option) {
	os.Exit(ExitCode(ServeDatabase(context.Background(), factory, opts...)))
}

// ServeDatabase does what RunDatabase does but returns instead of exiting,
// as Serve does for Run.
func ServeDatabase(ctx context.Context, factory dbplugin.Factory, opts ...Option) error {
	if factory == nil {
		opts = append([]Option{func(*config) error { return errors.New("the factory is nil") }}, opts...)
	}
	return newConfig(compat.Database).serve(ctx, databaseKind{factory: factory}, opts)
}

type databaseKind struct{ factory dbplugin.Factory }

func (databaseKind) Kind() compat.Kind { return compat.Database }

// grpcOptions keeps gRPC's defaults, as dbplugin's own serving code does.
func (databaseKind) grpcOptions() []grpc.ServerOption { return nil }

func (databaseKind) probe(context.Context, *config) string { return "database" }

func (d databaseKind) prepare(c *config, plan compat.Plan) (map[int]goplugin.PluginSet, func(time.Duration), error) {
	tr := &dbTracker{c: c, live: make(map[*servedDatabase]struct{})}
	// One instance is built before serving, as dbplugin.ServeMultiplex
	// does, for hosts that speak protocol 5 (one instance per process).
	// Building it here also turns a broken factory into a startup failure
	// with its cause instead of the SDK's line on stdout and a panic.
	first, err := tr.build(d.factory)
	if err != nil {
		return nil, nil, err
	}
	sets := map[int]goplugin.PluginSet{5: {"database": &dbplugin.GRPCDatabasePlugin{Impl: first}}}
	if plan.Multiplex {
		// Protocol 6: the host sends a multiplexing id and the SDK calls
		// the factory once per id; ours never returns a wrong type.
		sets[6] = goplugin.PluginSet{"database": &dbplugin.GRPCDatabasePlugin{FactoryFunc: func() (interface{}, error) {
			db, err := tr.build(d.factory)
			if err != nil {
				c.logger.Error("database factory failed", "error", err)
				return nil, err
			}
			return db, nil
		}}}
	}
	return sets, tr.shutdown, nil
}

// dbTracker builds, counts and stops the served database instances.
type dbTracker struct {
	c        *config
	inflight atomic.Int64
	mu       sync.Mutex
	live     map[*servedDatabase]struct{}
}

// build calls the author's factory safely: a panic or a value of the
// wrong type is an error naming what happened.
func (t *dbTracker) build(factory dbplugin.Factory) (db *servedDatabase, err error) {
	defer func() {
		if r := recover(); r != nil {
			t.c.logger.Error("database factory panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			db, err = nil, fmt.Errorf("database factory panicked: %v", r)
		}
	}()
	raw, err := factory()
	if err != nil {
		return nil, fmt.Errorf("database factory: %w", err)
	}
	impl, ok := raw.(dbplugin.Database)
	if !ok || impl == nil {
		return nil, fmt.Errorf("database factory returned %T, which is not a dbplugin.Database", raw)
	}
	var next dbplugin.Database = impl
	// The SDK's sanitizer removes the connection's secrets from errors
	// when the database can name them (connutil's producers can).
	if sv, ok := impl.(interface{ SecretValues() map[string]string }); ok {
		next = dbplugin.NewDatabaseErrorSanitizerMiddleware(impl, sv.SecretValues)
	}
	if t.c.metrics != nil {
		next = t.c.metrics.Database(next)
	}
	version := t.c.version
	if own := ownVersionOf(impl); own != "" && t.c.versionSource != "WithVersion" {
		version = own
	}
	db = &servedDatabase{next: next, version: version, t: t}
	t.mu.Lock()
	t.live[db] = struct{}{}
	t.mu.Unlock()
	return db, nil
}

func ownVersionOf(v any) string {
	if pv, ok := v.(logical.PluginVersioner); ok {
		return pv.PluginVersion().Version
	}
	return ""
}

func (t *dbTracker) shutdown(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for t.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t.mu.Lock()
	live := make([]*servedDatabase, 0, len(t.live))
	for db := range t.live {
		live = append(live, db)
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, db := range live {
			if err := db.Close(); err != nil {
				t.c.logger.Warn("closing a database instance", "error", err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		t.c.logger.Warn("database Close did not finish before the shutdown timeout", "timeout", timeout.String())
	}
}

// servedDatabase is the database as the host sees it: it reports the
// plugin's version, counts requests in flight, and removes the request's
// own passwords from any error, which would otherwise reach Vault's API
// response and audit log verbatim (a driver that echoes its statement, say).
type servedDatabase struct {
	next    dbplugin.Database
	version string
	t       *dbTracker
	closed  atomic.Bool
}

var (
	_ dbplugin.Database       = (*servedDatabase)(nil)
	_ logical.PluginVersioner = (*servedDatabase)(nil)
)

// PluginVersion reports the version Vault compares with the catalog's.
func (d *servedDatabase) PluginVersion() logical.PluginVersion {
	return logical.PluginVersion{Version: d.version}
}

func (d *servedDatabase) begin() func() {
	d.t.inflight.Add(1)
	return func() { d.t.inflight.Add(-1) }
}

// Initialize passes the connection configuration on; string values whose
// key names a secret are removed from errors.
func (d *servedDatabase) Initialize(ctx context.Context, req dbplugin.InitializeRequest) (resp dbplugin.InitializeResponse, err error) {
	defer d.begin()()
	defer d.t.recoverCall("Initialize", &err)
	resp, err = d.next.Initialize(ctx, req)
	return resp, scrub(err, configSecrets(req.Config)...)
}

// NewUser creates a user; its password never appears in an error.
func (d *servedDatabase) NewUser(ctx context.Context, req dbplugin.NewUserRequest) (resp dbplugin.NewUserResponse, err error) {
	defer d.begin()()
	defer d.t.recoverCall("NewUser", &err)
	resp, err = d.next.NewUser(ctx, req)
	return resp, scrub(err, req.Password)
}

// UpdateUser changes a user; the new password never appears in an error.
func (d *servedDatabase) UpdateUser(ctx context.Context, req dbplugin.UpdateUserRequest) (resp dbplugin.UpdateUserResponse, err error) {
	defer d.begin()()
	defer d.t.recoverCall("UpdateUser", &err)
	resp, err = d.next.UpdateUser(ctx, req)
	var secrets []string
	if req.Password != nil {
		secrets = append(secrets, req.Password.NewPassword)
	}
	return resp, scrub(err, secrets...)
}

// DeleteUser removes a user.
func (d *servedDatabase) DeleteUser(ctx context.Context, req dbplugin.DeleteUserRequest) (resp dbplugin.DeleteUserResponse, err error) {
	defer d.begin()()
	defer d.t.recoverCall("DeleteUser", &err)
	return d.next.DeleteUser(ctx, req)
}

// Type returns the database's type name.
func (d *servedDatabase) Type() (typ string, err error) {
	defer d.t.recoverCall("Type", &err)
	return d.next.Type()
}

// Close closes the instance once; the host closes it when the connection
// is removed, and a graceful stop closes whatever is left.
func (d *servedDatabase) Close() (err error) {
	defer d.t.recoverCall("Close", &err)
	d.t.mu.Lock()
	delete(d.t.live, d)
	d.t.mu.Unlock()
	if d.closed.Swap(true) {
		return nil
	}
	return d.next.Close()
}

// recoverCall is deferred by every servedDatabase method. dbplugin's gRPC
// server does not recover panics, so one bad call would kill the process
// and every connection it serves; instead the panic is logged at ERROR
// with its stack and the call fails. As for backends, the panic value
// stays in the log: the error reaches Vault's API client, and a value
// built from the request could carry its passwords.
func (t *dbTracker) recoverCall(method string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	t.c.logger.Error("database panicked handling a request", "method", method,
		"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*err = fmt.Errorf("internal error: the plugin's database panicked in %s (the stack is in the plugin's log)", method)
}

// scrub replaces every secret in err's message; the error chain is
// dropped on purpose, because a wrapped error would still print the secret.
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}

// configSecrets returns the connection configuration's string values whose
// keys name a secret (password, private_key, token, …).
func configSecrets(config map[string]interface{}) []string {
	var out []string
	for k, v := range config {
		s, ok := v.(string)
		if !ok || s == "" {
			continue
		}
		k = strings.ToLower(k)
		for _, w := range []string{"password", "secret", "private_key", "token", "credential"} {
			if strings.Contains(k, w) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

package dbserve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"

	goplugin "github.com/hashicorp/go-plugin"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"
	"google.golang.org/grpc"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/internal/metrics/dbmetrics"
	"github.com/plugkit/vaultplugin/internal/proctext"
	"github.com/plugkit/vaultplugin/internal/server"
	"github.com/plugkit/vaultplugin/logging"
)

// Run serves a database plugin and exits the process: it never returns.
// factory is the SDK's dbplugin.Factory, so an existing plugin's New drops
// in unchanged:
//
//	func main() { dbserve.Run(mydb.New) }
//
// The exit code is vaultplugin.ExitCode of what Serve would return:
// [vaultplugin.ExitOK], [vaultplugin.ExitFailure] or [vaultplugin.ExitUsage].
func Run(factory dbplugin.Factory, opts ...Option) {
	os.Exit(vaultplugin.ExitCode(Serve(context.Background(), factory, opts...)))
}

// Serve does what Run does but returns instead of exiting, for tests and
// custom mains: nil once the host (or ctx) stopped the plugin or a
// person's -version, -describe or -help was answered, and otherwise the
// cause, wrapping [vaultplugin.ErrUsage] for a bad flag or option. Every
// startup failure has already been reported when Serve returns: under a
// host, an error record on stderr and a cause line on stdout, which
// Vault's API error shows; for a person, one line on stderr.
//
// Once a stop begins, a call that would reach a database is refused with
// an error asking to send it again (Vault's database engine retries no
// error of a plugin's, so the refusal says what happened); the calls in
// flight finish, then every connection is closed.
//
// When Serve returns it has put the process back as it found it:
// os.Stdout and os.Stderr are the files they were (go-plugin points them
// at pipes of its own while serving; those are closed), and every
// goroutine Serve started has ended but one under a host: go-plugin's
// SIGINT receiver, which go-plugin starts with every handshake and gives
// no way to end. It holds no file or connection and receives no signal
// once Serve has returned; each Serve under a host leaves one.
func Serve(ctx context.Context, factory dbplugin.Factory, opts ...Option) error {
	c := server.NewConfig()
	var problems []error
	if factory == nil {
		problems = append(problems, errors.New("the factory is nil"))
	}
	err := server.ApplyOptions(c, opts, Option.apply, problems...)
	return server.Serve(ctx, databasePlugin{factory: factory}, c, err)
}

// databasePlugin serves a dbplugin.Factory.
type databasePlugin struct{ factory dbplugin.Factory }

func (databasePlugin) Kind() hostenv.Kind { return hostenv.Database }

func (d databasePlugin) Factory() any { return d.factory }

// Type is always "database": the cookie says so, and calling the factory
// would gain nothing.
func (databasePlugin) Type(context.Context) string { return "database" }

// HostReloads: Vault's database engine retries no error a database plugin
// returns (see errStopping).
func (databasePlugin) HostReloads() bool { return false }

// GRPCOptions keeps gRPC's defaults, as dbplugin's own serving code does.
func (databasePlugin) GRPCOptions() []grpc.ServerOption { return nil }

func (d databasePlugin) Sets(in *server.Instances, plan server.Plan) (map[int]goplugin.PluginSet, error) {
	// One instance is built before serving, as dbplugin.ServeMultiplex
	// does, for hosts that speak protocol 5 (one instance per process).
	// Building it here also turns a broken factory into a startup failure
	// with its cause instead of the SDK's line on stdout and a panic.
	first, err := build(in, d.factory)
	if err != nil {
		return nil, err
	}
	sets := map[int]goplugin.PluginSet{5: {"database": &dbplugin.GRPCDatabasePlugin{Impl: first}}}
	if plan.Multiplex {
		// Protocol 6: the host sends a multiplexing id and the SDK calls
		// the factory once per id; ours never returns a wrong type.
		sets[6] = goplugin.PluginSet{"database": &dbplugin.GRPCDatabasePlugin{FactoryFunc: func() (interface{}, error) {
			db, err := build(in, d.factory)
			if err != nil {
				in.Logger.Error("database factory failed", "error", err)
				return nil, err
			}
			return db, nil
		}}}
	}
	return sets, nil
}

// errStopping is what a call gets that arrives once the plugin is
// stopping (SIGTERM, its host gone, Serve's context done): it never
// reaches the database, whose Close may already have run.
//
// No error a database plugin returns can make Vault retry: the SDK's gRPC
// server turns every error of Initialize, NewUser, UpdateUser and
// DeleteUser into a codes.Internal status carrying only its text, and
// Vault's database engine closes and reopens a connection only for the
// client's own ErrPluginShutdown, which the client returns once the plugin
// process has exited. So the text says what an operator needs: nothing was
// changed in the database, and the request can be sent again (Vault starts
// a new process for the connection once this one has exited).
//
// Through Vault 1.21.0, four clients rotating static roles while the
// plugin got SIGTERM: the calls refused came back as 500s quoting this
// text (62 of 4,931 sent after the signal; 49 more failed at the
// transport once the process had exited, before Vault's client noticed,
// as they did before this refusal existed), and none reached the
// database after its Close, where 58 of 5,114 had.
var errStopping = errors.New("the database plugin is stopping: the request did not reach the database, send it again")

// build calls the author's factory safely: a panic or a value of the
// wrong type is an error naming what happened. Once the plugin is
// stopping the factory is not called: an instance built then would never
// be closed.
func build(in *server.Instances, factory dbplugin.Factory) (db *servedDatabase, err error) {
	// dbplugin.Factory takes no context: the wait for a stop to finish
	// is bounded by the shutdown timeout.
	end, ok := in.Tracker.Begin(context.Background())
	defer end()
	if !ok {
		return nil, errStopping
	}
	defer func() {
		if r := recover(); r != nil {
			in.Logger.Error("database "+proctext.FactoryPanicked, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			db, err = nil, fmt.Errorf("database %s: %v", proctext.FactoryPanicked, r)
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
	if in.Metrics != nil {
		next = dbmetrics.Wrap(in.Metrics, next)
	}
	version := in.VersionFor(impl, "database")
	db = &servedDatabase{next: next, version: version, t: in.Tracker}
	in.Tracker.Add(db, func(context.Context) error { return db.close() })
	return db, nil
}

// servedDatabase is the database as the host sees it. It reports the
// plugin's version. It counts the calls that reach the database
// (Initialize, NewUser, UpdateUser, DeleteUser) in flight, so that a
// graceful stop closes it only after them, and refuses them once the stop
// began; Type only names the plugin and Close is the stop's own. It
// removes the request's own passwords from any error, which would
// otherwise reach Vault's API response and audit log verbatim (a driver
// that echoes its statement, say).
type servedDatabase struct {
	next    dbplugin.Database
	version string
	t       *server.Tracker
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

// Initialize passes the connection configuration on; string values whose
// key names a secret are removed from errors.
func (d *servedDatabase) Initialize(ctx context.Context, req dbplugin.InitializeRequest) (resp dbplugin.InitializeResponse, err error) {
	end, ok := d.t.Begin(ctx)
	defer end()
	if !ok {
		return resp, errStopping
	}
	defer d.t.Recover("database", "Initialize", &err)
	resp, err = d.next.Initialize(ctx, req)
	return resp, scrub(err, configSecrets(req.Config)...)
}

// NewUser creates a user; its password never appears in an error.
func (d *servedDatabase) NewUser(ctx context.Context, req dbplugin.NewUserRequest) (resp dbplugin.NewUserResponse, err error) {
	end, ok := d.t.Begin(ctx)
	defer end()
	if !ok {
		return resp, errStopping
	}
	defer d.t.Recover("database", "NewUser", &err)
	resp, err = d.next.NewUser(ctx, req)
	return resp, scrub(err, req.Password)
}

// UpdateUser changes a user; the new password never appears in an error.
func (d *servedDatabase) UpdateUser(ctx context.Context, req dbplugin.UpdateUserRequest) (resp dbplugin.UpdateUserResponse, err error) {
	end, ok := d.t.Begin(ctx)
	defer end()
	if !ok {
		return resp, errStopping
	}
	defer d.t.Recover("database", "UpdateUser", &err)
	resp, err = d.next.UpdateUser(ctx, req)
	var secrets []string
	if req.Password != nil {
		secrets = append(secrets, req.Password.NewPassword)
	}
	return resp, scrub(err, secrets...)
}

// DeleteUser removes a user.
func (d *servedDatabase) DeleteUser(ctx context.Context, req dbplugin.DeleteUserRequest) (resp dbplugin.DeleteUserResponse, err error) {
	end, ok := d.t.Begin(ctx)
	defer end()
	if !ok {
		return resp, errStopping
	}
	defer d.t.Recover("database", "DeleteUser", &err)
	return d.next.DeleteUser(ctx, req)
}

// Type returns the database's type name.
func (d *servedDatabase) Type() (typ string, err error) {
	defer d.t.Recover("database", "Type", &err)
	return d.next.Type()
}

// Close closes the instance once; the host closes it when the connection
// is removed, and a graceful stop closes whatever is left.
func (d *servedDatabase) Close() error {
	d.t.Remove(d)
	return d.close()
}

func (d *servedDatabase) close() (err error) {
	defer d.t.Recover("database", "Close", &err)
	if d.closed.Swap(true) {
		return nil
	}
	return d.next.Close()
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
			msg = strings.ReplaceAll(msg, s, logging.Redacted)
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

package servetest

import (
	"context"
	"fmt"
	"testing"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// Database is a database plugin (dbplugin v5) running as Vault's database
// secrets engine runs one: a process that serves a dbplugin.Database per
// connection.
type Database struct {
	// Process is the running process: its id, logs, Kill and Close.
	*Process

	conns *registry[*dbConn] // every connection made, for Upgrade and Reload
}

// NewDatabase is New for a database plugin: the database handshake cookie
// and protocols 5 and 6, AutoMTLS. WithoutHostMultiplexing and
// WithLegacyTLS are refused: Vault plays neither host for a database
// plugin. The caller must Close the Database. A plugin that fails to start
// gives a *StartError, as from New.
func NewDatabase(ctx context.Context, bin string, opts ...Option) (*Database, error) {
	c, err := newConfig(true, opts)
	if err != nil {
		return nil, err
	}
	if c.hostBin() != "" {
		return newDatabaseOnHost(ctx, bin, c)
	}
	proc, err := newProcess(ctx, bin, c)
	if err != nil {
		return nil, err
	}
	return &Database{Process: proc, conns: &registry[*dbConn]{}}, nil
}

// StartDatabase is NewDatabase for tests: it fails t on error and closes
// the plugin when the test ends.
func StartDatabase(t testing.TB, bin string, opts ...Option) *Database {
	t.Helper()
	d, err := NewDatabase(context.Background(), bin, opts...)
	if err != nil {
		skipIfEmulationOnly(t, err)
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// NewConnection opens a new connection to the plugin, as a new
// `vault write database/config/NAME` does: its own instance in the same
// process when the plugin multiplexes; a plugin that does not serves one
// connection per process, as in Vault (a second NewConnection returns an
// error wrapping ErrNotMultiplexed). The caller initializes it with
// Initialize, or with Configure as Vault does. Its Close runs once;
// Database.Close closes those still open.
func (d *Database) NewConnection(ctx context.Context) (*Connection, error) {
	c, err := d.newConnection(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (d *Database) newConnection(ctx context.Context) (*Connection, error) {
	if d.host != nil {
		return d.newConnectionOnHost()
	}
	unreserve, err := d.reserve("connection", "Database")
	if err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		unreserve()
		return nil, err
	}
	d.swap.RLock()
	defer d.swap.RUnlock()
	c := &dbConn{d: d, id: id}
	ch := d.serving()
	db, err := d.openOn(ctx, c, ch, false)
	if err != nil {
		unreserve()
		return nil, fmt.Errorf("servetest: %w", err)
	}
	c.set(db, ch)
	d.conns.add(c)
	return &Connection{Database: c, db: c, close: d.track(func(context.Context) error { return c.shut(true) })}, nil
}

// Connect is NewConnection for tests: it fails t on error and closes the
// connection when the test ends.
func (d *Database) Connect(t testing.TB) *Connection {
	t.Helper()
	c, err := d.newConnection(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.stopAtEnd(t, c.close)
	return c
}

// Connection is one connection to a database plugin: the SDK's client,
// which Vault's database engine holds per `database/config/NAME`, and so a
// dbplugin.Database and, like Vault's client, a logical.PluginVersioner.
// Its methods Configure, NewCredentials, RenewCredentials,
// RotatePassword and Revoke drive the plugin as the engine's endpoints do,
// and open the connection anew, as the engine does, after a call found
// its process gone. Database.Upgrade and Reload replace the instance
// behind it; the Connection stays valid.
type Connection struct {
	dbplugin.Database
	close func(context.Context) error
	db    *dbConn   // Database: the instance serving now; nil on a real host
	host  *hostConn // on a real host; nil in the emulation
}

// Close closes the connection once, whether the test, its cleanup or
// Database.Close calls it first: the SDK's client would send the plugin a
// second Close for an instance it has already dropped. A connection whose
// process has exited has nothing left to close. On a real host it deletes
// the engine's connection (ENGINE/config/NAME).
func (c *Connection) Close() error {
	if c.host != nil {
		return c.close(context.Background())
	}
	c.db.d.swap.RLock()
	defer c.db.d.swap.RUnlock()
	return c.close(context.Background())
}

// PluginVersion is the plugin's version, as the SDK's client reports it
// to Vault (dbplugin.DatabasePluginClient is a logical.PluginVersioner).
func (c *Connection) PluginVersion() logical.PluginVersion {
	if c.host != nil {
		return c.host.pluginVersion()
	}
	if v, ok := c.Database.(logical.PluginVersioner); ok {
		return v.PluginVersion()
	}
	return logical.EmptyPluginVersion
}

// runner hands dbplugin.NewPluginClient the already running plugin.
type runner struct {
	pluginutil.RunnerUtil
	client pluginClient
}

func (r runner) NewPluginClient(context.Context, pluginutil.PluginClientConfig) (pluginutil.PluginClient, error) {
	return r.client, nil
}

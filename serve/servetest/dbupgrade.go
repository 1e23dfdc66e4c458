package servetest

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"path/filepath"
	"sync"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// This file plays what Vault's database secrets engine does when a
// database plugin's process is replaced, as Vault v1.21.0 does it
// (builtin/logical/database: path_config_connection.go reloadPlugin and
// reloadConnection, backend.go GetConnectionWithConfig and
// CloseIfShutdown).

// dbConn is a connection as Vault's database engine holds one (a
// dbPluginInstance per `database/config/NAME`): the SDK's client of the
// instance that serves now, which an upgrade, a reload or a reopening
// replaces, and what the engine stores to open it again: the
// configuration the plugin's last Initialize answered with, and whether
// it asked to verify the connection. Its dbplugin.Database methods are the
// raw calls and never reopen anything.
type dbConn struct {
	d  *Database
	id string // the multiplexing id, the same for every instance

	mu          sync.RWMutex
	cur         dbplugin.Database
	on          *child
	initialized bool
	config      map[string]any
	verify      bool
	dead        bool // a call found its process gone: the engine opens it anew
	closed      bool
}

var (
	_ dbplugin.Database       = (*dbConn)(nil)
	_ logical.PluginVersioner = (*dbConn)(nil)
)

func (c *dbConn) client() dbplugin.Database {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cur
}

func (c *dbConn) set(db dbplugin.Database, on *child) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur, c.on, c.dead = db, on, false
}

func (c *dbConn) wasInitialized() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.initialized
}

// Initialize initializes the instance and, when it succeeds, keeps what
// the engine stores of it: the configuration the plugin answered with
// (path_config_connection.go: ConnectionDetails = initResp.Config) and
// req.VerifyConnection.
func (c *dbConn) Initialize(ctx context.Context, req dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	resp, err := c.client().Initialize(ctx, req)
	if err == nil {
		c.mu.Lock()
		c.initialized, c.config, c.verify = true, resp.Config, req.VerifyConnection
		c.mu.Unlock()
	}
	return resp, err
}

func (c *dbConn) NewUser(ctx context.Context, req dbplugin.NewUserRequest) (dbplugin.NewUserResponse, error) {
	return c.client().NewUser(ctx, req)
}

func (c *dbConn) UpdateUser(ctx context.Context, req dbplugin.UpdateUserRequest) (dbplugin.UpdateUserResponse, error) {
	return c.client().UpdateUser(ctx, req)
}

func (c *dbConn) DeleteUser(ctx context.Context, req dbplugin.DeleteUserRequest) (dbplugin.DeleteUserResponse, error) {
	return c.client().DeleteUser(ctx, req)
}

func (c *dbConn) Type() (string, error) { return c.client().Type() }
func (c *dbConn) Close() error          { return c.client().Close() }

// PluginVersion is the version the instance serving now reports.
func (c *dbConn) PluginVersion() logical.PluginVersion {
	if v, ok := c.client().(logical.PluginVersioner); ok {
		return v.PluginVersion()
	}
	return logical.EmptyPluginVersion
}

// shut closes the connection as the engine does (dbi.Close), unless its
// process is gone, where a call could only fail; done marks it closed for
// good, as a test's Close or the test's end does.
func (c *dbConn) shut(done bool) error {
	c.mu.Lock()
	db, on, dead := c.cur, c.on, c.dead
	if done {
		c.closed = true
	}
	c.mu.Unlock()
	if dead || on.exited() {
		return nil
	}
	return db.Close()
}

// dbShutdown reports whether err is a call's failure because the plugin's
// process is gone, as the engine's CloseIfShutdown tells it.
func dbShutdown(err error) bool {
	return err != nil && (errors.Is(err, dbplugin.ErrPluginShutdown) || err.Error() == rpc.ErrShutdown.Error())
}

// engine makes the call f as Vault's database engine makes it for one of
// its endpoints: on the connection's instance, opened anew first when a
// call found its process gone (GetConnection: a new client, started
// anew if the process serving now is gone too, and initialized with
// what the engine stored), and marking it so when f finds the process
// gone (CloseIfShutdown). That call fails, as in Vault: it is the next
// one that reopens.
func (c *Connection) engine(ctx context.Context, reinit bool, f func(dbplugin.Database) error) error {
	d := c.db.d
	c.db.mu.RLock()
	dead := c.db.dead
	c.db.mu.RUnlock()
	if dead {
		d.swap.Lock()
		err := d.reopen(ctx, c.db, reinit)
		d.swap.Unlock()
		if err != nil {
			return err
		}
	}
	d.swap.RLock()
	err := f(c.db)
	d.swap.RUnlock()
	if dbShutdown(err) {
		c.db.mu.Lock()
		c.db.dead = true
		c.db.mu.Unlock()
	}
	return err
}

// reopen opens the connection c anew after its process died, starting the
// binary again first when the process serving now is gone too; with
// reinit, it initializes it with what the engine stored. The caller holds
// swap for writing.
func (d *Database) reopen(ctx context.Context, c *dbConn, reinit bool) error {
	c.mu.RLock()
	dead, closed := c.dead, c.closed
	c.mu.RUnlock()
	if !dead || closed {
		return nil
	}
	if err := d.open(); err != nil {
		return err
	}
	ch := d.serving()
	if ch.exited() {
		nc, err := launch(ctx, ch.bin, d.conf)
		if err != nil {
			return fmt.Errorf("servetest: restarting the database plugin %s, whose process exited: %w", ch.bin, err)
		}
		if err := d.adopt(nc); err != nil {
			return err
		}
		ch.release()
		ch = nc
	}
	db, err := d.openOn(ctx, c, ch, reinit)
	if err != nil {
		return err
	}
	c.set(db, ch)
	return nil
}

// openOn opens c's instance in the process ch, as the engine's
// GetConnectionWithConfig does: a new client, initialized (with reinit,
// and when c was initialized before) with the configuration the engine
// stored. On failure nothing of it is left.
func (d *Database) openOn(ctx context.Context, c *dbConn, ch *child, reinit bool) (dbplugin.Database, error) {
	db, err := dbplugin.NewPluginClient(ctx, runner{client: ch.instanceConn(c.id)}, pluginutil.PluginClientConfig{Name: "servetest"})
	if err != nil {
		return nil, fmt.Errorf("dispensing the database: %w", err)
	}
	c.mu.RLock()
	initialized, config, verify := c.initialized, c.config, c.verify
	c.mu.RUnlock()
	if reinit && initialized {
		if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: config, VerifyConnection: verify}); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("initializing the connection again: %w", err)
		}
	}
	return db, nil
}

// Upgrade moves every connection of d to the database plugin binary bin,
// as an operator upgrades a database plugin in Vault: register bin, set
// each connection's plugin_version (`vault write database/config/NAME
// plugin_version=…`, which re-initializes the connection) and reload
// (`vault write database/reload/NAME`). In servetest: each connection is
// closed (the plugin's Close), the process stops, bin starts with the
// options d was started with, and each Connection gets a new instance
// there, initialized as Vault's engine initializes it after a reload: with
// the configuration the plugin's last Initialize answered with (what the
// engine stored) and the same VerifyConnection. A connection never
// initialized is left so. The Connection values a test holds stay valid.
// Upgrade waits for the engine calls in flight and holds new ones back
// until it returns. On a real host it returns an error wrapping
// ErrEmulationOnly: it is not played there yet.
//
// If bin does not start, or a connection's Initialize fails there, the
// error names bin and the version it reports (when a connection was
// initialized far enough to tell) and wraps the cause (a *StartError for a
// binary that did not start), and d serves the binary it ran before,
// started again, with every connection opened and initialized anew, as
// Plugin.Upgrade describes. Upgrade with the binary d already runs is
// Reload.
func (d *Database) Upgrade(ctx context.Context, bin string) error {
	return d.replace(ctx, bin)
}

// Reload reloads the plugin's connections, as `vault write
// database/reload/NAME` does: each is closed and opened anew in a process
// of the same binary, started again, and initialized with what the engine
// stored, as Upgrade describes. On a real host it returns an error
// wrapping ErrEmulationOnly, as Upgrade does.
func (d *Database) Reload(ctx context.Context) error {
	return d.replace(ctx, "")
}

// replace is Upgrade to bin, or Reload when bin is "".
func (d *Database) replace(ctx context.Context, bin string) error {
	if d.host != nil {
		// The operator's steps differ from a secrets engine's (each
		// connection's plugin_version is written through the database
		// engine's config endpoint, then database/reload/NAME), and
		// undoing a failed one is not played yet.
		return emulationOnly("Database.Upgrade and Reload", "servetest does not yet play a database plugin's upgrade on a real host (register, write each database/config/NAME's plugin_version, database/reload/NAME, and undo them on failure)")
	}
	d.swap.Lock()
	defer d.swap.Unlock()
	if err := d.open(); err != nil {
		return err
	}
	old := d.serving()
	reload := bin == "" || bin == old.bin
	if reload {
		bin = old.bin
	}
	conns := d.liveConns()
	oldVersion := ""
	for _, c := range conns {
		oldVersion = " (" + describeVersion(c.PluginVersion().Version) + ")"
		break
	}
	for _, c := range conns {
		_ = c.shut(false)
	}
	old.release()

	reported, err := d.startOn(ctx, bin, conns)
	if err == nil {
		return nil
	}
	name := filepath.Base(old.bin)
	what := fmt.Sprintf("upgrading the database plugin %s to %s (%s)", name, bin, reported)
	if reload {
		what = fmt.Sprintf("reloading the database plugin %s (%s)", name, bin)
	}
	if _, backErr := d.startOn(ctx, old.bin, conns); backErr != nil {
		return fmt.Errorf("servetest: %s failed, and starting %s again failed too, so its connections are closed until an engine call opens them (%v): %w", what, old.bin, backErr, err)
	}
	return fmt.Errorf("servetest: %s failed, and it serves %s%s again: %w", what, old.bin, oldVersion, err)
}

// liveConns returns the connections not closed, in the order they were
// made.
func (d *Database) liveConns() []*dbConn {
	var live []*dbConn
	for _, c := range d.conns.all() {
		c.mu.RLock()
		closed := c.closed
		c.mu.RUnlock()
		if !closed {
			live = append(live, c)
		}
	}
	return live
}

// startOn starts bin, opens each of conns on it and initializes them
// again, makes it the process that serves, and points each connection at
// its new instance. It returns what bin reports as its version, as
// errors show it. On failure nothing it
// started is left running, and conns are left as they were. The caller
// holds swap for writing.
func (d *Database) startOn(ctx context.Context, bin string, conns []*dbConn) (string, error) {
	ch, err := launch(ctx, bin, d.conf)
	if err != nil {
		return "version unknown: it did not start", err
	}
	reported := "version unknown: no connection was initialized on it"
	if !ch.multiplex && len(conns) > 1 {
		ch.release()
		return reported, fmt.Errorf("%w: Vault would run a process per connection, and this Database has %d connections", ErrNotMultiplexed, len(conns))
	}
	var clients []dbplugin.Database
	undo := func() {
		for _, db := range clients {
			_ = db.Close()
		}
		ch.release()
	}
	for i, c := range conns {
		db, err := d.openOn(ctx, c, ch, true)
		if err != nil {
			undo()
			return reported, fmt.Errorf("connection %d: %w", i+1, err)
		}
		clients = append(clients, db)
		if c.wasInitialized() {
			if v, ok := db.(logical.PluginVersioner); ok {
				reported = "it reports " + describeVersion(v.PluginVersion().Version)
			}
		}
	}
	if err := d.adopt(ch); err != nil {
		return reported, err
	}
	for i, c := range conns {
		c.set(clients[i], ch)
	}
	return reported, nil
}

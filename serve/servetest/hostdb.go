package servetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"
)

// This file runs a database plugin in a real host's database secrets
// engine: the engine enabled at a path of its own per Database, each
// Connection a `database/config/NAME` of it, and the Connection's helpers
// mapped onto the engine's endpoints.

// newDatabaseOnHost is NewDatabase on a real host: the binary registered
// as a database plugin and the database engine enabled at a path of its
// own, named as the catalog entry.
func newDatabaseOnHost(ctx context.Context, bin string, c *config) (_ *Database, err error) {
	proc, err := launchOnHost(ctx, bin, c, true)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			proc.host.release()
		}
	}()
	h := proc.host
	h.engine = h.name + "/"
	start := time.Now()
	api := h.srv.api
	if _, err := api.call(ctx, "POST", "sys/mounts/"+h.name, map[string]any{"type": "database"}); err != nil {
		return nil, fmt.Errorf("servetest: enabling the database engine at %s on %s: %w", h.engine, h.srv.info.Name, err)
	}
	h.mount.Store(int64(time.Since(start)))
	h.undo = append(h.undo, func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_, _ = api.call(ctx, "DELETE", "sys/mounts/"+h.name, nil)
	})
	return &Database{Process: proc, conns: &registry[*dbConn]{}}, nil
}

// hostConn is a Connection's part on a real host: the engine's connection
// and the leases of the credentials issued through it.
type hostConn struct {
	proc *hostProcess
	name string // the connection's name: ENGINE/config/NAME

	mu     sync.Mutex
	leases map[string]string // lease IDs by username
}

// newConnectionOnHost is newConnection on a real host: a name for a new
// `ENGINE/config/NAME`, which Configure (or Initialize) writes.
func (d *Database) newConnectionOnHost() (*Connection, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, errors.New("servetest: the plugin is closed")
	}
	h := d.host
	hc := &hostConn{proc: h, name: fmt.Sprintf("conn-%d", h.mounts.Add(1)), leases: map[string]string{}}
	c := &Connection{Database: &hostDatabase{conn: hc}, host: hc}
	c.close = d.track(func(ctx context.Context) error {
		_, err := h.srv.api.call(ctx, "DELETE", h.engine+"config/"+hc.name, nil)
		return err
	})
	return c, nil
}

// configure writes the connection's configuration, as `vault write
// ENGINE/config/NAME plugin_name=… allowed_roles=* …` does, and returns
// the connection details the engine stores, as it reads them back.
func (hc *hostConn) configure(ctx context.Context, config map[string]any) (map[string]any, error) {
	h := hc.proc
	body := map[string]any{}
	for k, v := range config {
		body[k] = v
	}
	body["plugin_name"] = h.name
	body["allowed_roles"] = "*"
	if v := h.now().version; v != "" {
		body["plugin_version"] = v
	}
	path := h.engine + "config/" + hc.name
	if _, err := h.srv.api.call(ctx, "PUT", path, body); err != nil {
		return nil, fmt.Errorf("servetest: configuring %s: %w", path, err)
	}
	read, err := hc.read(ctx)
	if err != nil {
		return nil, err
	}
	details, _ := read["connection_details"].(map[string]any)
	return details, nil
}

// read is the connection's configuration as the engine reads it.
func (hc *hostConn) read(ctx context.Context) (map[string]any, error) {
	h := hc.proc
	path := h.engine + "config/" + hc.name
	out, err := h.srv.api.call(ctx, "GET", path, nil)
	if err != nil {
		return nil, fmt.Errorf("servetest: reading %s: %w", path, err)
	}
	data, _ := out["data"].(map[string]any)
	return data, nil
}

// newCredentials defines role for the connection and reads credentials
// of it, as `vault write ENGINE/roles/ROLE db_name=NAME …` and `vault
// read ENGINE/creds/ROLE` do. Roles are the engine's, shared by its
// connections, so a role's definition and its read are done together.
func (hc *hostConn) newCredentials(ctx context.Context, role Role) (Credentials, error) {
	h := hc.proc
	body := map[string]any{
		"db_name":               hc.name,
		"creation_statements":   role.Creation,
		"revocation_statements": role.Revocation,
		"rollback_statements":   role.Rollback,
		"renew_statements":      role.Renewal,
	}
	if role.TTL > 0 {
		body["default_ttl"] = seconds(role.TTL)
	}
	h.roleMu.Lock()
	defer h.roleMu.Unlock()
	api := h.srv.api
	if _, err := api.call(ctx, "PUT", h.engine+"roles/"+role.Name, body); err != nil {
		return Credentials{}, fmt.Errorf("servetest: defining the role %s: %w", role.Name, err)
	}
	start := time.Now()
	out, err := api.call(ctx, "GET", h.engine+"creds/"+role.Name, nil)
	if err != nil {
		return Credentials{}, fmt.Errorf("servetest: reading %screds/%s: %w", h.engine, role.Name, err)
	}
	data, _ := out["data"].(map[string]any)
	username, _ := data["username"].(string)
	password, _ := data["password"].(string)
	lease, _ := out["lease_id"].(string)
	ttl, _ := out["lease_duration"].(float64)
	hc.mu.Lock()
	hc.leases[username] = lease
	hc.mu.Unlock()
	return Credentials{Username: username, Password: password, Expiration: start.Add(time.Duration(ttl) * time.Second)}, nil
}

// lease is the lease of username's credentials.
func (hc *hostConn) lease(username string) (string, error) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	id, ok := hc.leases[username]
	if !ok {
		return "", fmt.Errorf("servetest: %q has no lease: on a real host the engine renews and revokes only the credentials it issued, through their lease, so use what NewCredentials returned", username)
	}
	return id, nil
}

// renewCredentials renews the lease of username's credentials by ttl.
func (hc *hostConn) renewCredentials(ctx context.Context, username string, ttl time.Duration) error {
	id, err := hc.lease(username)
	if err != nil {
		return err
	}
	_, err = hc.proc.srv.api.call(ctx, "PUT", "sys/leases/renew", map[string]any{"lease_id": id, "increment": seconds(ttl)})
	if err != nil {
		return fmt.Errorf("servetest: renewing the lease of %s: %w", username, err)
	}
	return nil
}

// revoke revokes the lease of username's credentials, and so the user.
func (hc *hostConn) revoke(ctx context.Context, username string) error {
	id, err := hc.lease(username)
	if err != nil {
		return err
	}
	_, err = hc.proc.srv.api.call(ctx, "PUT", "sys/leases/revoke", map[string]any{"lease_id": id, "sync": true})
	if err != nil {
		return fmt.Errorf("servetest: revoking the lease of %s: %w", username, err)
	}
	hc.mu.Lock()
	delete(hc.leases, username)
	hc.mu.Unlock()
	return nil
}

// rotatePassword gives username a new password as the engine's static
// roles do: a static role for username, whose creation rotates its
// password, read through static-creds, then deleted, which leaves the
// user as it is.
func (hc *hostConn) rotatePassword(ctx context.Context, username string) (string, error) {
	h := hc.proc
	suffix, err := randomName(6)
	if err != nil {
		return "", err
	}
	role := "rotate-" + suffix
	api := h.srv.api
	body := map[string]any{"db_name": hc.name, "username": username, "rotation_period": "24h"}
	if _, err := api.call(ctx, "PUT", h.engine+"static-roles/"+role, body); err != nil {
		return "", fmt.Errorf("servetest: rotating %s's password through a static role: %w", username, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_, _ = api.call(ctx, "DELETE", h.engine+"static-roles/"+role, nil)
	}()
	out, err := api.call(ctx, "GET", h.engine+"static-creds/"+role, nil)
	if err != nil {
		return "", fmt.Errorf("servetest: reading the rotated password of %s: %w", username, err)
	}
	data, _ := out["data"].(map[string]any)
	password, _ := data["password"].(string)
	return password, nil
}

// pluginVersion is the version the engine reports the connection's plugin
// running, or else the one it is configured with.
func (hc *hostConn) pluginVersion() logical.PluginVersion {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	data, err := hc.read(ctx)
	if err != nil {
		return logical.EmptyPluginVersion
	}
	for _, k := range []string{"running_plugin_version", "plugin_version"} {
		if v, _ := data[k].(string); v != "" {
			return logical.PluginVersion{Version: v}
		}
	}
	return logical.EmptyPluginVersion
}

// hostDatabase is a Connection's dbplugin.Database on a real host, where
// the plugin is reached only through the database engine's endpoints:
// Initialize is the engine's configuration write (see Configure), the
// others return errors wrapping ErrEmulationOnly, naming the method.
type hostDatabase struct{ conn *hostConn }

const hostDatabaseHint = "a real host's database engine calls the plugin itself; use Connection.NewCredentials, RenewCredentials, RotatePassword or Revoke"

// Initialize writes the connection's configuration as the engine does,
// which initializes the plugin with it, and returns the connection
// details the engine stores.
func (d *hostDatabase) Initialize(ctx context.Context, req dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	config := map[string]any{"verify_connection": req.VerifyConnection}
	for k, v := range req.Config {
		config[k] = v
	}
	stored, err := d.conn.configure(ctx, config)
	if err != nil {
		return dbplugin.InitializeResponse{}, err
	}
	return dbplugin.InitializeResponse{Config: stored}, nil
}

func (d *hostDatabase) NewUser(context.Context, dbplugin.NewUserRequest) (dbplugin.NewUserResponse, error) {
	return dbplugin.NewUserResponse{}, emulationOnly("Connection.NewUser", hostDatabaseHint)
}

func (d *hostDatabase) UpdateUser(context.Context, dbplugin.UpdateUserRequest) (dbplugin.UpdateUserResponse, error) {
	return dbplugin.UpdateUserResponse{}, emulationOnly("Connection.UpdateUser", hostDatabaseHint)
}

func (d *hostDatabase) DeleteUser(context.Context, dbplugin.DeleteUserRequest) (dbplugin.DeleteUserResponse, error) {
	return dbplugin.DeleteUserResponse{}, emulationOnly("Connection.DeleteUser", hostDatabaseHint)
}

func (d *hostDatabase) Type() (string, error) {
	return "", emulationOnly("Connection.Type", "a real host's database engine does not show the plugin's type")
}

// Close does nothing: Connection.Close deletes the configuration.
func (d *hostDatabase) Close() error { return nil }

// Package servetest starts a Vault plugin binary exactly as Vault does and
// handles requests to it as Vault's request handling does, so a test drives
// the binary an operator ships, with the race detector on both sides and no
// Vault installed.
//
//	func TestPlugin(t *testing.T) {
//		ctx := context.Background()
//		bin := servetest.Build(t, "./cmd/my-plugin")
//		m := servetest.Start(t, bin).Mount(t, nil)
//		if _, err := m.Write(ctx, "role/demo", map[string]any{"ttl": "1h"}); err != nil {
//			t.Fatal(err)
//		}
//		resp, err := m.Read(ctx, "role/demo")
//		if err != nil {
//			t.Fatal(err)
//		}
//		if resp.Data["ttl"] != float64(3600) {
//			t.Errorf("ttl = %v", resp.Data["ttl"])
//		}
//	}
//
// The plugin is started with the handshake cookie, the environment Vault
// 1.21 sets (VAULT_VERSION, VAULT_PLUGIN_AUTOMTLS_ENABLED=true,
// VAULT_PLUGIN_METADATA_MODE=false), the binary's sha256 checked as the
// catalog does, AutoMTLS and protocol 5. Each Mount is a backend instance in
// the same process with its own multiplexing id and in-memory storage,
// served to the plugin through go-plugin's broker as Vault's storage is.
//
// # Requests as Vault handles them
//
// Mount's Read, Write, List, Delete and Login (and Do, for any
// logical.Request) do what Vault does between its HTTP API and the plugin:
// the existence check that makes a write a create or an update, the list
// path's trailing slash, the refusal of writes to paths ending in "/",
// login paths without a token, the request fields the router sets
// (MountPoint, MountType, MountAccessor, a salted ClientToken, a
// Connection from 127.0.0.1), and the HTTP status Vault maps the outcome to,
// as a *ResponseError. HandleRequest, promoted from the backend, is the raw
// call without any of that. A request gets the same status, data,
// warnings and errors from servetest as from Vault 1.21, apart from the
// known limits below.
//
// # Leases, as Vault's expiration manager plays them
//
// A response with a secret gets a lease, and a login's auth a token, as
// in Vault: Secret.LeaseID is MOUNT_PATH/REQUEST_PATH/ID, the TTL is the
// mount's default when the backend sets none and is capped by the mount's
// max TTL (WithLeaseTTLs; 768h and 768h by default) with Vault's warning.
// Mount.Renew, Revoke and RevokePrefix are `vault lease renew`, `revoke`
// and `revoke -prefix`: they call the backend's secret handlers with the
// secret as Vault stored it, InternalData (and the framework's
// secret_type) included, so a test never rebuilds a secret by hand.
// Mount.RenewToken is `vault token renew` through the auth method's renew
// handler. The host's clock stands still unless the test moves it with
// Plugin.Advance, which revokes what expired, as Vault's timers would:
//
//	resp, _ := m.Read(ctx, "creds/web")        // a lease of the mount's default TTL
//	id := resp.Secret.LeaseID                  // "NAME/creds/web/AbC…"
//	resp, err := m.Renew(ctx, id, time.Hour)   // the backend's renew handler
//	err = p.Advance(ctx, 2*time.Hour)          // past its TTL: its revoke handler
//	_, err = m.Renew(ctx, id, 0)               // 400 "lease not found"
//
// Every failure is a *ResponseError with the status and message Vault's
// API answers; revoking a lease that does not exist succeeds, as in Vault.
//
// The mount's system view answers DefaultLeaseTTL and MaxLeaseTTL
// (WithLeaseTTLs; Vault's 768h by default), VaultVersion and PluginEnv
// (WithVaultVersion), Tainted, CachingDisabled, LocalMount, MlockEnabled
// and ReplicationState as a dev server does, and EntityInfo and
// GroupsForEntity for a token without an entity. It refuses, with an error
// naming the call, what needs parts of Vault servetest does not have:
// ResponseWrapData, GeneratePasswordFromPolicy, and the identity of any
// other entity.
//
// Known limits, where servetest and Vault differ on purpose:
//
//   - A login's token is made as Vault's token store makes one (client
//     token, accessor, TokenPolicies with "default", the TTL capped by the
//     mount's), but the Auth's Policies stay the plugin's, without the
//     "default" that Vault's answer lists (RenewToken's answer has it, as
//     Vault's does). The token is for RenewToken only: requests still
//     carry servetest's root token, and there is no identity store, so the
//     token has no entity.
//   - The host's clock moves only by Plugin.Advance: a lease never expires
//     on its own, where Vault's timer revokes it in real time. The
//     plugin's own clock is not moved.
//   - Cleaning a mount up (Mount.Cleanup, the test's end) drops its leases
//     without calling the backend; Vault's unmount revokes them first.
//     RevokePrefix(ctx, m.MountPoint) does that.
//   - Revoke and RevokePrefix always revoke before they return, as
//     `vault lease revoke -sync`; the CLI without -sync queues the
//     revocation (202) and Vault revokes soon after. A lease whose
//     revocation fails stays and is tried again on each Advance; Vault
//     gives up after six attempts and marks it irrevocable.
//   - When a backend's renew or revoke handler answers with an error
//     response, Vault's message quotes the response as Go prints it
//     ("failed to renew entry: resp: &logical.Response{…}"), which names
//     the fields of the SDK it was built with; servetest prints the test's
//     SDK. An error (not a response) reads the same on both.
//   - Requests carry a root token (display name "token", no entity, no
//     policies checked): ACLs, namespaces, quotas, response wrapping, audit
//     and control groups are Vault's and are not played.
//   - A mount's configuration holds the map given to Mount plus
//     plugin_name; Vault also sets plugin_type, plugin_version and
//     plugin_tier, which servetest cannot know before the backend's Setup.
//   - MountRunningVersion, MountRunningSha256 and MountClass are set on the
//     request but, as in Vault, do not cross the plugin's gRPC boundary.
//   - Request headers are never passed through (a mount without
//     passthrough_request_headers), and responses lose theirs.
//
// # Upgrades, reloads and restarts
//
// What an operator does to a plugin that runs, a test does to a Plugin,
// and keeps using the same Mounts throughout:
//
//	p := servetest.Start(t, servetest.Build(t, "example.com/my-plugin/cmd/my-plugin@v1.4.2")) // what users run today
//	m := p.Mount(t, nil)
//	m.Write(ctx, "role/web", data)
//	err := p.Upgrade(ctx, servetest.Build(t, "./cmd/my-plugin")) // the working tree
//	m.Read(ctx, "role/web")            // v1.4.2's state, read by the new code
//
// Upgrade is what moves a mount to a new binary in Vault: `vault plugin
// register` of its sha256 and version, `vault secrets tune
// -plugin-version` (or `vault auth tune`) of each mount, and `vault
// plugin reload`. Vault's reload, and so servetest's, cleans each mount's
// backend up (Cleanup, with the SDK's reload context), stops the process,
// starts the binary and sets each mount up again: Setup with the mount's
// configuration, then Initialize, on the same storage. A Mount keeps its
// ID, MountPoint, accessor, Storage and leases; its requests carry the new
// binary's version and sha256. Reload is `vault plugin reload` alone. A
// binary built from a module version (Build's "module/cmd/x@v1.4.2") is
// the release users run, to upgrade from.
//
// If the new binary does not start, or cannot set a mount up, Upgrade
// fails with an error naming it and the version it reports (when it got
// far enough to tell), wrapping the *StartError, and the plugin serves the
// old binary again, started anew. Vault gets back to the old binary too,
// but not as cleanly: its registration only logs a warning for a binary
// that does not start (the version check is best-effort), a failed reload
// leaves the mount on its old backend, which starts the old version again
// on the next request, and the new registration and tuned version stay,
// to fail again at the next unseal, until the operator deregisters and
// tunes back.
//
// A plugin process that dies (Process.Kill plays a crash) is restarted by
// Vault on the next request to one of its mounts: the call fails with the
// SDK's ErrPluginShutdown, Vault's plugin backend starts the binary again,
// sets that mount up anew (Setup, Initialize: the dead process's Cleanup
// never runs) and sends the request once more, so the client sees no
// error. servetest does the same in all of Mount's request methods (Read,
// Write, List, Delete, Login, Do, Renew, Revoke, RevokePrefix, RenewToken,
// and the revocations of Plugin.Advance): Kill, then the next request
// restarts the plugin, as Vault does. Each mount moves to the new process
// on its own next request; Exited then reports false again and PID names
// the new process, so a test that must see a crash checks them right after
// the request that could cause it. The Backend's own methods
// (HandleRequest and the rest) are the raw calls and fail after a Kill, as
// the SDK's client does.
//
// Database plugins follow Vault's database engine. Database.Upgrade and
// Reload close each connection (the plugin's Close), start the binary and
// open each Connection anew, initialized with what the engine stored of
// its configuration: the config the plugin's last Initialize answered
// with, and verify_connection. After a Kill the engine fails the call
// that finds the process gone and opens the connection anew on the next
// one: so do a Connection's engine methods (Configure, NewCredentials,
// RenewCredentials, RotatePassword, Revoke); its dbplugin.Database methods
// are the raw calls.
//
// On a reload of a plugin that multiplexes, Vault 1.21 calls the
// plugin's Cleanup itself only for the first mount: the plugin catalog
// kills the process after it. A serve.Run plugin cleans its other mounts
// up in its own stop, so it sees one Cleanup per mount (seen on 1.21.0);
// a bare SDK main sees only the first. servetest calls each mount's
// Cleanup, once.
//
// Secrets engines and auth methods start as a Plugin, which makes Mounts;
// database plugins start as a Database, which makes Connections, with
// helpers for the database engine's sequence (Configure, NewCredentials,
// RenewCredentials, RotatePassword, Revoke). They are different types so
// that mounting a database plugin, which Vault never does, does not
// compile. Both embed the Process, which holds what is common: the process
// id, its logs, Kill and Close; an upgrade, a reload or a restart replaces
// the OS process behind it, not the Process.
//
// Names follow one rule. What takes a testing.TB fails it on error and
// cleans up what it made when the test ends; each has a twin that returns
// an error instead, for code without a testing.TB (Examples, benchmarks,
// commands): Build and Compile, Start and New, StartDatabase and
// NewDatabase, Plugin.Mount and Plugin.NewMount, Database.Connect and
// Database.NewConnection. The twins that start something leave closing it
// to the caller.
//
// Failures have types to decide by: a plugin that does not start gives a
// *StartError (its own cause, its last stderr lines, go-plugin's error),
// and a second mount or connection of a plugin that does not multiplex
// wraps ErrNotMultiplexed. Test for them with errors.As and errors.Is: the
// messages are written for people and may change.
//
// WithLegacyTLS plays the host of the wrap-token TLS path instead of
// AutoMTLS, so a plugin's TLS provider runs against a real unwrap endpoint.
// WithContainerEnv starts the plugin with exactly the environment Vault
// gives a containerized plugin (no HOME, TMPDIR or PATH; a unix socket in
// PLUGIN_UNIX_SOCKET_DIR).
package servetest

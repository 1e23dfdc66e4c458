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
// On a real host (see below) Upgrade takes the operator's steps through
// the host's API and, when they fail, the steps that undo them. It copies
// the new binary into the plugin directory under a file name of its own,
// registers it under the plugin's catalog name with its sha256 and a
// version, tunes each mount's plugin_version to that version, reloads
// (sys/plugins/reload/backend with the plugin's name, which Vault 1.21.0
// and OpenBao 2.6.2 both take) and reads each mount back to see that it
// runs the new sha256; then it deletes the old entry and copy. The
// version is the one the binary reports when that is a semantic version
// (the catalog refuses another for such a binary); otherwise one made up,
// v0.0.0-servetest.N: a mount's plugin_version cannot be tuned to "" (the
// host refuses what is not a semantic version), so an entry without a
// version could not be tuned to, nor back from. Both hosts register a
// binary that cannot start (their version check is best-effort); the
// reload then fails (500, quoting the plugin's "Unrecognized remote
// plugin message"), the mount is left on its old backend, which starts
// the old binary again on the next request, but keeps the new
// plugin_version (measured on Vault 1.21.0). So on any
// failure servetest tunes each mount back, deletes the new entry and
// reloads, and the error names the binary and its version and wraps the
// host's answer: a *StartError whose Cause and Stdout are the plugin's
// line the host quotes, when it quotes one. An old entry without a
// version is registered again under a made-up one to tune back to. Reload
// on a real host is the reload alone. Database.Upgrade and Reload are not
// played on a real host yet and return an error wrapping
// ErrEmulationOnly.
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
// # On a real host
//
// The same tests run against a real Vault or OpenBao when HostEnv
// (VAULTPLUGIN_TEST_HOST) names its binary, or per test with WithHost:
//
//	VAULTPLUGIN_TEST_HOST=~/bin/vault go test ./...
//	VAULTPLUGIN_TEST_HOST=/usr/local/bin/bao go test ./...
//
// Start, New, StartDatabase and NewDatabase then run the plugin inside a
// dev server of that binary (`server -dev` on a free 127.0.0.1 port, a
// random root token, its own HOME and plugin directory), which the test
// binary starts on first use and shares between its tests; it never
// outlives the test binary (on Linux the kernel sends it SIGTERM when the
// test binary ends, however it ends, and it stops its plugins). A host
// that is missing or does not start fails every Start with the host's own
// output; servetest never falls back to the emulation. Each Start copies
// the binary into the plugin directory and registers it under a catalog
// name of its own (its sha256, WithArgs and WithEnv, the version it
// reports), so parallel tests stay independent; NewMount enables it at
// its own path, NAME-XXXXXX/ (auth/NAME-XXXXXX/ for an auth method) with
// "-2", "-3"… for later mounts, where the emulation's is NAME/. To learn
// whether the binary is a secrets engine or an auth method, servetest
// first starts it once in the emulation, in metadata mode, as Vault does
// to learn a binary's type and version. Process.Host tells which host
// runs the test (Name, Version, Real), and its Addr and Token reach the
// host's API for what servetest does not wrap: tokens, policies,
// namespaces, response wrapping.
//
// Requests go through the host's HTTP API with the root token (Login and
// a request with Unauthenticated set, without one) and come back as the
// same types: the *logical.Response the SDK makes of the host's JSON
// (logical.HTTPResponseToLogicalResponse: Data, Warnings, Secret's LeaseID,
// TTL and Renewable, Auth's token fields), and for an error a
// *ResponseError with the host's status and errors, which names the host
// ("Vault answered 404 Not Found"). Alongside it, Do returns an error
// response holding the message when the host answered a 4xx other than
// 404 and 405 with one message that is not its list of errors, as it
// answers a backend's logical.ErrorResponse. What differs, per method:
//
//   - Mount.Do sends req.Operation, Path and Data (the query of a read,
//     list or delete; the JSON body of a write or patch); every other
//     field (the token, Storage, Connection, Headers, MountPoint, ID…) is
//     the host's to set and is ignored. Operations the API does not send
//     to a backend (renew, revoke, rollback) fail with ErrEmulationOnly.
//   - Mount.Backend answers Type and SpecialPaths (from the emulation's
//     start) and, as a logical.PluginVersioner, the mount's
//     running_plugin_version; HandleRequest, HandleExistenceCheck,
//     Initialize and Setup return errors wrapping ErrEmulationOnly, and
//     System, Logger, InvalidateKey and Backend.Cleanup panic naming the
//     method. Mount.Storage is nil, and Mount.ID is "": the storage and
//     the multiplexing id are the host's. MountType and MountAccessor are
//     read from the host.
//   - Renew, Revoke, RevokePrefix and RenewToken are sys/leases/renew,
//     sys/leases/revoke and sys/leases/revoke-prefix (with sync) and
//     auth/token/renew. Leases expire on the host's own clock:
//     Plugin.Advance fails with ErrEmulationOnly; use a short TTL and
//     wait. Mount.Cleanup disables the mount, which revokes its leases.
//   - Process.PID is the process the host runs the plugin's file in now
//     (found in /proc, on Linux), Exited reports that none runs, Kill kills
//     it and the host starts it again on the next request; Logs are the
//     host's log records that name the plugin (its own records re-logged
//     by the host, and the host's about it), which WithStderr and
//     WithHostLogger also receive; HostSecrets is nil; HandshakeTime is
//     what registering and the first mount took. Close disables the
//     mounts, deletes the catalog entry and waits for the plugin's process
//     to end.
//   - Plugin.Upgrade and Reload are the operator's register, tune and
//     reload (see "Upgrades, reloads and restarts"); a Mount's Backend
//     then reports the running version the host reads back. A plugin that
//     does not multiplex is upgraded too: the host runs a process per
//     mount, where the emulation's Upgrade refuses with ErrNotMultiplexed.
//     Database.Upgrade and Reload return errors wrapping ErrEmulationOnly.
//   - A Database enables the database engine at a path of its own and
//     registers the binary as a database plugin; each Connection is a
//     connection of that engine. Configure (and Initialize) writes
//     ENGINE/config/NAME with plugin_name, allowed_roles "*" and the
//     configuration (verify_connection as given) and returns the
//     connection details the engine stores; NewCredentials defines the
//     role and reads ENGINE/creds/ROLE (Expiration is now plus the lease's
//     duration, without the emulation's five seconds); RenewCredentials
//     and Revoke renew and revoke that lease, so they take only usernames
//     NewCredentials issued; RotatePassword creates a static role for the
//     username (whose creation rotates the password), reads its
//     static-creds and deletes it, which leaves the user; Close deletes the
//     connection's configuration; PluginVersion is the engine's
//     running_plugin_version. The raw dbplugin calls (NewUser, UpdateUser,
//     DeleteUser, Type) fail with ErrEmulationOnly: the engine calls the
//     plugin itself.
//
// Options that only the emulation plays (WithLegacyTLS, WithContainerEnv,
// WithMetadataMode, WithoutHostMultiplexing, and WithVaultVersion of
// another version than the host's) make New return an error wrapping
// ErrEmulationOnly and Start skip its test with that message; WithEnv and
// WithArgs are the catalog entry's -env and -args, WithPluginName the
// start of its name, WithLeaseTTLs the mount's default_lease_ttl and
// max_lease_ttl. A test that needs the emulation says so with
// SkipOnRealHost, or runs there with WithHost(""). The Examples document
// the emulation and run only there: run `go test -run '^Test'` with the
// variable.
//
// The cost is the host's: the dev server's start (half a second, once per
// test binary and host) and, per test, about 0.1 s more than the
// emulation, mostly the mount, where the host starts the plugin (see the
// README for measured numbers).
//
// WithLegacyTLS plays the host of the wrap-token TLS path instead of
// AutoMTLS, so a plugin's TLS provider runs against a real unwrap endpoint.
// WithContainerEnv starts the plugin with exactly the environment Vault
// gives a containerized plugin (no HOME, TMPDIR or PATH; a unix socket in
// PLUGIN_UNIX_SOCKET_DIR).
package servetest

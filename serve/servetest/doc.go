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
// Secrets engines and auth methods start as a Plugin, which makes Mounts;
// database plugins start as a Database, which makes Connections, with
// helpers for the database engine's sequence (Configure, NewCredentials,
// RenewCredentials, RotatePassword, Revoke). They are different types so
// that mounting a database plugin, which Vault never does, does not
// compile. Both embed the Process, which holds what is common: the process
// id, its logs, Kill and Close.
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

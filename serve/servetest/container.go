package servetest

import (
	"errors"
	"os"
	"runtime"
	"strconv"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
)

// WithContainerEnv starts the plugin with exactly the environment Vault
// (1.15 and later) gives a plugin it runs in a container, registered with
// `vault plugin register -oci_image=… [-runtime=…]`: none of the host's
// own environment, only go-plugin's variables (the handshake cookie,
// PLUGIN_MIN_PORT and PLUGIN_MAX_PORT, PLUGIN_PROTOCOL_VERSIONS,
// PLUGIN_MULTIPLEX_GRPC=true, PLUGIN_CLIENT_CERT, PLUGIN_UNIX_SOCKET_GROUP
// and PLUGIN_UNIX_SOCKET_DIR), the WithEnv entries, and VAULT_VERSION,
// VAULT_PLUGIN_METADATA_MODE and VAULT_PLUGIN_AUTOMTLS_ENABLED. There is
// no HOME, TMPDIR or PATH. The plugin's socket goes in a new directory of
// mode 0770 owned by this process's group, named by PLUGIN_UNIX_SOCKET_DIR,
// and the socket is made group-writable for the group in
// PLUGIN_UNIX_SOCKET_GROUP (this process's effective group id, which
// Vault adds to the container), as go-plugin does for Vault; the
// directory is removed on Close. gRPC broker connections (the mounts'
// storage) are multiplexed over the plugin's one socket, which go-plugin
// refuses for a plugin built with go-plugin before v1.6.0, as Vault does.
//
// The process still runs on this machine, as this user, with this file
// system and network: what differs in a real container (the image's user,
// no capabilities, gVisor, the socket directory's path inside the container,
// /tmp/go-plugin-container) is not played. Two details follow from that.
// PLUGIN_UNIX_SOCKET_DIR holds the directory's path here. And go-plugin
// appends its variables after the ones given here, where in a container
// they come first: an entry of WithEnv that names one of go-plugin's
// variables overrides it in a container, and not here. When the test binary
// has coverage, GOCOVERDIR is added as well (see Build).
//
// Vault runs containerized plugins on Linux only; this option works on
// every Unix, so that an author on macOS can run the same test, and is an
// error on Windows, where go-plugin's server listens on TCP and ignores a
// socket directory.
//
// It is an error with WithLegacyTLS, in either order: Vault hands a
// wrapping token only to a plugin that offers protocol 4 at most, which is
// built with a go-plugin too old to serve in a container, and such a
// plugin would call the unwrap endpoint from inside the container, where
// this machine's loopback, and so servetest's endpoint, is out of reach.
func WithContainerEnv() Option {
	return optionFunc(func(c *config) error {
		c.container = true
		return nil
	})
}

// containerConflicts says why the host c describes cannot run a
// containerized plugin, if it cannot; newConfig asks once every option is
// applied, so the order of WithContainerEnv and WithLegacyTLS does not
// matter.
//
// WithLegacyTLS: Vault takes the wrap-token TLS path only for a plugin
// that offers protocol 4 at most (vault/plugincatalog/plugin_catalog.go
// runs protocol-5 plugins with AutoMTLS). Those are built on SDKs before
// v0.6.0 (v0.5.3's plugin/serve.go offers protocols 3 and 4; v0.6.0's
// adds 5), which require go-plugin v1.4.3, while a container needs
// go-plugin v1.5.0 (the first to read PLUGIN_UNIX_SOCKET_DIR; Vault's
// documentation, website/content/docs/plugins/containerized-plugins, asks
// for v1.6.0). Vault's code would not stop it (sdk v0.20.0
// helper/pluginutil/run_config.go generateCmd adds VAULT_UNWRAP_TOKEN
// before its branch for an image), but the plugin would then call Vault's
// API address from inside the container, and servetest's unwrap endpoint
// is on this machine's loopback, which a container cannot reach.
func (c *config) containerConflicts() []error {
	if !c.container {
		return nil
	}
	var errs []error
	if runtime.GOOS == "windows" {
		errs = append(errs, errors.New("WithContainerEnv is not supported on Windows: Vault runs containerized plugins on Linux only, and go-plugin's server listens on TCP on Windows, ignoring PLUGIN_UNIX_SOCKET_DIR"))
	}
	if c.legacyTLS {
		errs = append(errs, errors.New("WithContainerEnv and WithLegacyTLS exclude each other: Vault hands a wrapping token only to a plugin that offers protocol 4 at most (built on an SDK before v0.6.0, with go-plugin v1.4), and a containerized plugin needs go-plugin v1.6.0 or later"))
	}
	return errs
}

// containerEnv is the environment Vault gives a containerized plugin,
// before go-plugin appends its own variables, for a host with AutoMTLS on
// or off as autoMTLS says.
//
// In Vault (sdk v0.20.0, helper/pluginutil/run_config.go), generateCmd
// starts from the registration's -env entries (rc.env), appends
// VAULT_PLUGIN_MLOCK_ENABLED when mlock is on (servetest never turns it
// on), VAULT_VERSION, VAULT_PLUGIN_METADATA_MODE and
// VAULT_PLUGIN_AUTOMTLS_ENABLED, and for an image uses that list alone:
// "Containerized plugins do not inherit any env vars from Vault".
// makeConfig hands it to plugincontainer.Config.Env and sets
// UnixSocketConfig{Group: the egid, TempDir: plugin_tmpdir} and
// GRPCBrokerMultiplex. go-secure-stdlib/plugincontainer (v0.4.2,
// container_runner_linux.go) builds the container's environment from
// go-plugin's (the runner's cmd.Env), then
// PLUGIN_UNIX_SOCKET_DIR=/tmp/go-plugin-container, then Config.Env.
// go-plugin's Client.Start (v1.6.0) supplies the cookie, the ports, the
// protocol versions, PLUGIN_MULTIPLEX_GRPC, PLUGIN_CLIENT_CERT,
// PLUGIN_UNIX_SOCKET_GROUP and, with a runner, PLUGIN_UNIX_SOCKET_DIR for
// the directory it made.
func (c *config) containerEnv(autoMTLS bool, socketDir string) []string {
	env := []string{goplugin.EnvUnixSocketDir + "=" + socketDir}
	env = append(env, c.env...)
	env = append(env,
		pluginutil.PluginVaultVersionEnv+"="+c.vaultVersion,
		pluginutil.PluginMetadataModeEnv+"="+strconv.FormatBool(c.metadataMode),
		pluginutil.PluginAutoMTLSEnv+"="+strconv.FormatBool(autoMTLS),
	)
	if dir := coverDir(); dir != "" {
		env = append(env, "GOCOVERDIR="+dir)
	}
	return env
}

// unixSocketConfig is go-plugin's socket settings for the host c: under
// WithContainerEnv the group Vault gives the container, its own effective
// group id (the sdk's run_config.go, makeConfig); otherwise none.
func (c *config) unixSocketConfig() *goplugin.UnixSocketConfig {
	if !c.container {
		return nil
	}
	return &goplugin.UnixSocketConfig{Group: strconv.Itoa(os.Getegid())}
}

// startSocketDir makes the directory for the plugin's sockets as go-plugin
// makes it for a container (Client.Start: os.MkdirTemp in the host's
// plugin_tmpdir, by default the system's, then setGroupWritable with mode
// 0770), and registers its removal, which go-plugin's Client.Kill does in
// Vault. go-plugin makes it only when it runs the plugin through a
// RunnerFunc; servetest starts a command, so that go-plugin reports the
// process id.
func (p *child) startSocketDir() (string, error) {
	dir, err := os.MkdirTemp("", "plugin-dir")
	if err != nil {
		return "", err
	}
	p.undo = append(p.undo, func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, -1, os.Getegid()); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		return "", err
	}
	return dir, nil
}

package servetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// This file is servetest's real-host mode: what New, Start, NewDatabase
// and StartDatabase do when a real Vault or OpenBao runs the plugin
// instead of the emulation, and what the emulation-only parts do there.
// The shared server is in hostserver.go, the requests in hostrequest.go,
// the database engine in hostdb.go.

// HostEnv names the environment variable that runs every servetest test
// of a test binary on a real host: set to the path of a vault or bao
// binary (or a name on PATH), Start, New, StartDatabase and NewDatabase
// run the plugin inside a dev server of that binary instead of the
// emulation, and the requests go through its HTTP API, so the same test
// code proves the plugin against the host operators run. It is a variable,
// and not only an option, so that a CI job or an author switches a whole
// suite without touching a test, as TF_ACC switches Terraform's. WithHost
// does the same for one test, and WithHost("") keeps a test in the
// emulation even when the variable is set.
const HostEnv = "VAULTPLUGIN_TEST_HOST"

// ErrEmulationOnly is wrapped by the error of what only the emulation can
// play, asked of a plugin on a real host: the error names the method or
// option and why, such as Plugin.Advance ("a real host's clock cannot be
// moved"). Start, StartDatabase and the test helpers skip the test with
// that message instead of failing it (see SkipOnRealHost); the functions
// that return errors return it. Test for it with errors.Is.
var ErrEmulationOnly = errors.New("servetest: only the emulation plays this")

// emulationOnly is ErrEmulationOnly for what, with why.
func emulationOnly(what, why string) error {
	return fmt.Errorf("%w: %s: %s", ErrEmulationOnly, what, why)
}

// Host says which host runs a plugin: the emulation, or a real Vault or
// OpenBao, so that a test can skip by version or kind, as Terraform's
// TF_ACC_TERRAFORM_VERSION lets a provider's tests do, or use the real
// host's API for what servetest does not wrap (tokens, ACLs, namespaces,
// response wrapping).
type Host struct {
	// Name is "Vault" or "OpenBao" for a real host, "servetest" for the
	// emulation.
	Name string
	// Version is the host's version without a "v", as "1.21.0"; in the
	// emulation the Vault version it plays (WithVaultVersion).
	Version string
	// Real reports whether a real host runs the plugin.
	Real bool
	// Addr is the real host's API address, as "http://127.0.0.1:PORT",
	// and Token its root token; both are "" in the emulation.
	Addr, Token string
}

// WithHost runs the plugin inside the real host bin, a path to a vault or
// bao binary or a name on PATH, as HostEnv does for every test. WithHost("")
// runs it in the emulation even when HostEnv is set: for a test that needs
// what only the emulation plays (Plugin.Advance, Mount.Storage,
// HandleRequest, WithLegacyTLS…).
func WithHost(bin string) Option {
	return optionFunc(func(c *config) error {
		c.host, c.hostSet = bin, true
		return nil
	})
}

// SkipOnRealHost skips t, saying that feature is played only by the
// emulation, when HostEnv names a real host: for a test that uses
// something no real host offers (Mount.Storage, Plugin.Advance, the raw
// HandleRequest…). A test skipped so says why in `go test -v`, where a
// test that silently passed would claim what it never checked. Tests that
// pass WithHost themselves decide for themselves.
func SkipOnRealHost(t testing.TB, feature string) {
	t.Helper()
	if bin := os.Getenv(HostEnv); bin != "" {
		t.Skipf("servetest: %s is played only by the emulation, and %s=%s names a real host", feature, HostEnv, bin)
	}
}

// hostBin is the real host c names, or "" for the emulation: WithHost's,
// else HostEnv's.
func (c *config) hostBin() string {
	if c.hostSet {
		return c.host
	}
	return os.Getenv(HostEnv)
}

// emulationOnlyOptions says which of c's options only the emulation can
// play, for a plugin about to start on the real host h, each with why;
// nil when there are none. With h nil (the host not started yet) the
// version is not checked. Options that map onto the host (WithEnv,
// WithArgs, WithPluginName, WithLeaseTTLs, WithStderr, WithHostLogger, and
// WithVaultVersion naming the host's own version) are not among them.
func (c *config) emulationOnlyOptions(h *Host) error {
	var why []string
	if c.legacyTLS {
		why = append(why, "WithLegacyTLS: a real host takes the wrap-token TLS path only for a plugin that offers protocol 4 at most, and this one is started with AutoMTLS")
	}
	if c.container {
		why = append(why, "WithContainerEnv: a real host runs a containerized plugin only from an OCI image with a container runtime")
	}
	if c.metadataMode {
		why = append(why, "WithMetadataMode: a real host chooses when to start a plugin in metadata mode")
	}
	if c.noHostMux {
		why = append(why, "WithoutHostMultiplexing: a real host reads its multiplexing opt-out (VAULT_PLUGIN_MULTIPLEXING_OPT_OUT) once, at its start")
	}
	if h != nil && c.versionSet && c.vaultVersion != h.Version {
		why = append(why, fmt.Sprintf("WithVaultVersion(%q): the real host is %s %s", c.vaultVersion, h.Name, h.Version))
	}
	if len(why) == 0 {
		return nil
	}
	return emulationOnly("options", strings.Join(why, "; "))
}

// skipIfEmulationOnly skips t when err says that only the emulation plays
// what the test asked for: the test is not run, and says so, rather than
// failing on a host it was not written for or passing without checking.
func skipIfEmulationOnly(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrEmulationOnly) {
		t.Skip(err.Error())
	}
}

// hostBackend is a Mount's Backend on a real host, where the backend
// instance lives inside the host and is reached only through its HTTP
// API. It answers what the host told about the mount (Type, SpecialPaths,
// PluginVersion); its methods that return errors return ones wrapping
// ErrEmulationOnly, and the others panic naming the method, so a test
// written for the emulation fails there with a reason, never on a nil
// pointer.
type hostBackend struct {
	typ   logical.BackendType
	paths *logical.Paths

	mu      sync.Mutex
	version string // running_plugin_version, as last read
}

// setVersion records the running version the host reports now.
func (b *hostBackend) setVersion(v string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.version = v
}

const hostBackendHint = "a real host's backend is reached only through its HTTP API; use Mount.Do, Read, Write, List, Delete or Login"

func (b *hostBackend) Initialize(context.Context, *logical.InitializationRequest) error {
	return emulationOnly("Mount.Initialize", "a real host initializes a mount when it enables it")
}

func (b *hostBackend) HandleRequest(context.Context, *logical.Request) (*logical.Response, error) {
	return nil, emulationOnly("Mount.HandleRequest", hostBackendHint)
}

func (b *hostBackend) HandleExistenceCheck(context.Context, *logical.Request) (bool, bool, error) {
	return false, false, emulationOnly("Mount.HandleExistenceCheck", hostBackendHint)
}

func (b *hostBackend) Setup(context.Context, *logical.BackendConfig) error {
	return emulationOnly("Mount.Setup", "a real host sets a mount up when it enables it")
}

func (b *hostBackend) SpecialPaths() *logical.Paths { return b.paths }

func (b *hostBackend) Type() logical.BackendType { return b.typ }

// PluginVersion is the version the host reports the mount running
// (running_plugin_version), as the emulation's backend reports the
// plugin's.
func (b *hostBackend) PluginVersion() logical.PluginVersion {
	b.mu.Lock()
	defer b.mu.Unlock()
	return logical.PluginVersion{Version: b.version}
}

func hostPanic(method string) string {
	return fmt.Sprintf("servetest: Mount.%s is played only by the emulation: use Mount.Do/Read/… on a real host", method)
}

func (b *hostBackend) System() logical.SystemView { panic(hostPanic("System")) }
func (b *hostBackend) Logger() hclog.Logger       { panic(hostPanic("Logger")) }
func (b *hostBackend) Cleanup(context.Context) {
	panic(hostPanic("Backend.Cleanup (Mount.Cleanup unmounts)"))
}
func (b *hostBackend) InvalidateKey(context.Context, string) { panic(hostPanic("InvalidateKey")) }

package servetest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/wrapping"
	"github.com/hashicorp/vault/sdk/logical"
)

// DefaultLeaseTTL and DefaultMaxTTL are Vault's own lease TTLs, which a
// mount has unless it is tuned: Vault's default_lease_ttl and
// max_lease_ttl both default to 768h (32 days), and a dev server keeps
// them. The mounts' system view reports them unless WithLeaseTTLs says
// otherwise.
const (
	DefaultLeaseTTL = 768 * time.Hour
	DefaultMaxTTL   = 768 * time.Hour
)

// systemView is what Vault's system view tells a mount, as far as a plugin
// reaches it over gRPC (the SDK's gRPCSystemViewServer). It answers what
// servetest can answer as Vault would, and refuses with an error naming
// the call what only a real Vault can answer, rather than a zero value
// that a plugin would take for Vault's answer.
//
// Answered: DefaultLeaseTTL and MaxLeaseTTL (WithLeaseTTLs), VaultVersion
// and PluginEnv (WithVaultVersion), Tainted, CachingDisabled, LocalMount,
// MlockEnabled and ReplicationState as a `vault server -dev` answers them
// (false, false, false, false, and replication disabled), and EntityInfo and
// GroupsForEntity for the empty entity id of a root token (none).
//
// Refused: ResponseWrapData (servetest has no token store),
// GeneratePasswordFromPolicy (no password policies), and EntityInfo and
// GroupsForEntity for any other entity (no identity store). Calls that SDKs
// newer than the module's floor added (ClusterInfo, GenerateIdentityToken,
// the rotation jobs) get the SDK's StaticSystemView answers, which are
// errors or empty.
type systemView struct {
	logical.StaticSystemView
}

func newSystemView(vaultVersion string, defaultTTL, maxTTL time.Duration) systemView {
	// The SDK's gRPC system view answers VaultVersion from PluginEnv, as
	// Vault's dynamicSystemView fills it (version, prerelease and
	// metadata apart): left nil, a plugin's VaultVersion and PluginEnv
	// calls panic in the SDK.
	release, metadata, _ := strings.Cut(vaultVersion, "+")
	release, prerelease, _ := strings.Cut(release, "-")
	return systemView{logical.StaticSystemView{
		DefaultLeaseTTLVal: defaultTTL,
		MaxLeaseTTLVal:     maxTTL,
		VersionString:      vaultVersion,
		// What Vault without an Enterprise license answers (measured:
		// e2e's differential test).
		ReplicationStateVal: consts.ReplicationPerformanceDisabled | consts.ReplicationDRDisabled,
		PluginEnvironment: &logical.PluginEnvironment{
			VaultVersion:           release,
			VaultVersionPrerelease: prerelease,
			VaultVersionMetadata:   metadata,
		},
	}}
}

func refused(call, why string) error {
	return fmt.Errorf("servetest: the system view's %s is not played by servetest: %s; test it against a real Vault", call, why)
}

func (systemView) ResponseWrapData(context.Context, map[string]any, time.Duration, bool) (*wrapping.ResponseWrapInfo, error) {
	return nil, refused("ResponseWrapData", "it has no token store to wrap a response in")
}

func (systemView) GeneratePasswordFromPolicy(_ context.Context, policy string) (string, error) {
	return "", refused(fmt.Sprintf("GeneratePasswordFromPolicy(%q)", policy), "it has no password policies")
}

func (systemView) EntityInfo(entityID string) (*logical.Entity, error) {
	if entityID == "" {
		return nil, nil
	}
	return nil, refused(fmt.Sprintf("EntityInfo(%q)", entityID), "it has no identity store")
}

func (systemView) GroupsForEntity(entityID string) ([]*logical.Group, error) {
	if entityID == "" {
		return nil, nil
	}
	return nil, refused(fmt.Sprintf("GroupsForEntity(%q)", entityID), "it has no identity store")
}

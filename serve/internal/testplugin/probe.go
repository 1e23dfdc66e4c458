package main

import (
	"context"
	"os"
	"sort"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// probePaths report what the host told the plugin: the request fields its
// request handling set, and its system view's answers. servetest's tests
// and e2e's differential test read them through servetest and through a
// real Vault and compare.
func probePaths(sys logical.SystemView) []*framework.Path {
	echo := func(_ context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
		data := map[string]any{
			"operation":             string(req.Operation),
			"path":                  req.Path,
			"mount_point":           req.MountPoint,
			"mount_type":            req.MountType,
			"mount_accessor":        req.MountAccessor,
			"client_token":          req.ClientToken,
			"client_token_accessor": req.ClientTokenAccessor,
			"display_name":          req.DisplayName,
			"entity_id":             req.EntityID,
			"unauthenticated":       req.Unauthenticated,
			"has_id":                req.ID != "",
			"data_keys":             keys(req.Data),
			"header_keys":           keys(req.Headers),
		}
		if req.Connection != nil {
			data["remote_addr"] = req.Connection.RemoteAddr
			data["has_remote_port"] = req.Connection.RemotePort != 0
		}
		if req.Operation == logical.ListOperation {
			data["keys"] = []string{"a", "b/"}
		}
		return &logical.Response{Data: data}, nil
	}
	ops := map[logical.Operation]framework.OperationHandler{}
	for _, op := range []logical.Operation{logical.ReadOperation, logical.CreateOperation, logical.UpdateOperation, logical.ListOperation, logical.DeleteOperation} {
		ops[op] = &framework.PathOperation{Callback: echo}
	}
	return []*framework.Path{
		{
			// echo/… answers every operation with the request's fields.
			// Its existence check says a path exists when it contains
			// "existing", so a write shows which operation Vault chose.
			Pattern:    "echo(/" + framework.MatchAllRegex("rest") + ")?",
			Fields:     map[string]*framework.FieldSchema{"rest": {Type: framework.TypeString}},
			Operations: ops,
			ExistenceCheck: func(_ context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
				return d.Get("rest").(string) == "existing", nil
			},
		},
		{
			// login is unauthenticated, as an auth method's login is.
			Pattern:    "login",
			Operations: map[logical.Operation]framework.OperationHandler{logical.UpdateOperation: &framework.PathOperation{Callback: echo}},
		},
		{
			// sysview answers with what the system view says.
			Pattern: "sysview",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: func(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
					data := map[string]any{
						"default_lease_ttl": int64(sys.DefaultLeaseTTL().Seconds()),
						"max_lease_ttl":     int64(sys.MaxLeaseTTL().Seconds()),
						"tainted":           sys.Tainted(),
						"caching_disabled":  sys.CachingDisabled(),
						"local_mount":       sys.LocalMount(),
						"mlock_enabled":     sys.MlockEnabled(),
						"replication_state": uint32(sys.ReplicationState()),
						"env_vault_version": os.Getenv("VAULT_VERSION"),
					}
					if v, err := sys.VaultVersion(ctx); err == nil {
						data["vault_version"] = v
					}
					e, err := sys.EntityInfo("")
					data["entity_none"] = e == nil && err == nil
					_, err = sys.GeneratePasswordFromPolicy(ctx, "no-such-policy")
					data["password_policy_error"] = err != nil
					return &logical.Response{Data: data}, nil
				}},
			},
		},
	}
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

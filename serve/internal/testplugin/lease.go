package main

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// leaseSecretType is the type of the leased secrets lease/NAME issues.
const leaseSecretType = "lease"

// leaseSecret is a leased secret whose renew and revoke handlers record
// what the host sent them under lease-log/NAME, so that servetest's tests
// and e2e's differential test can compare a host's expiration manager
// with servetest's.
func leaseSecret() *framework.Secret {
	return &framework.Secret{
		Type: leaseSecretType,
		Renew: func(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
			if err := logLease(ctx, req); err != nil {
				return nil, err
			}
			if req.Secret.InternalData["fail"] == "renew" {
				return nil, errors.New("the renewal was told to fail")
			}
			// As framework.LeaseExtend: the secret back, with the TTL
			// the backend wants (renew_ttl; 0 leaves it to the host).
			ttl, _ := seconds(req.Secret.InternalData["renew_ttl"])
			req.Secret.TTL = ttl
			return &logical.Response{Secret: req.Secret}, nil
		},
		Revoke: func(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
			if err := logLease(ctx, req); err != nil {
				return nil, err
			}
			if req.Secret.InternalData["fail"] == "revoke" {
				return nil, errors.New("the revocation was told to fail")
			}
			return nil, nil
		},
	}
}

// leasePaths issue leased secrets and show what their handlers saw.
func leasePaths(secret *framework.Secret) []*framework.Path {
	return []*framework.Path{
		{
			// lease/NAME issues a leased secret, as a dynamic secrets
			// engine's creds path does: ttl and max_ttl are the secret's
			// (0: the mount's), renewable=false makes it not renewable,
			// renew_ttl is the TTL its renewals answer with, and
			// fail=renew or fail=revoke makes that handler fail.
			Pattern: "lease/" + framework.GenericNameRegex("name"),
			Fields: map[string]*framework.FieldSchema{
				"name":      {Type: framework.TypeString},
				"ttl":       {Type: framework.TypeDurationSecond},
				"max_ttl":   {Type: framework.TypeDurationSecond},
				"renew_ttl": {Type: framework.TypeDurationSecond},
				"renewable": {Type: framework.TypeBool, Default: true},
				"fail":      {Type: framework.TypeString},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: func(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					name := d.Get("name").(string)
					resp := secret.Response(
						map[string]any{"username": name + "-user"},
						map[string]any{"name": name, "renew_ttl": d.Get("renew_ttl").(int), "fail": d.Get("fail").(string)},
					)
					resp.Secret.TTL = time.Duration(d.Get("ttl").(int)) * time.Second
					resp.Secret.MaxTTL = time.Duration(d.Get("max_ttl").(int)) * time.Second
					if !d.Get("renewable").(bool) {
						resp.Secret.Renewable = false
					}
					return resp, nil
				}},
			},
		},
		{
			// lease-log/NAME reads what the renew and revoke handlers of
			// NAME's secrets saw.
			Pattern: "lease-log/" + framework.GenericNameRegex("name"),
			Fields:  map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					e, err := req.Storage.Get(ctx, "lease-log/"+d.Get("name").(string))
					if err != nil || e == nil {
						return nil, err
					}
					var log map[string]any
					if err := json.Unmarshal(e.Value, &log); err != nil {
						return nil, err
					}
					return &logical.Response{Data: log}, nil
				}},
			},
		},
	}
}

// logLease records in lease-log/NAME what a renew or revoke request for
// NAME's secret carried: how many of each came, and the last one's
// fields.
func logLease(ctx context.Context, req *logical.Request) error {
	name, _ := req.Secret.InternalData["name"].(string)
	key := "lease-log/" + name
	log := map[string]any{}
	if e, err := req.Storage.Get(ctx, key); err != nil {
		return err
	} else if e != nil {
		if err := json.Unmarshal(e.Value, &log); err != nil {
			return err
		}
	}
	op := string(req.Operation)
	n, _ := log[op+"_count"].(float64)
	log[op+"_count"] = n + 1
	log["last_"+op] = map[string]any{
		"path":             req.Path,
		"mount_point":      req.MountPoint,
		"secret_type":      req.Secret.InternalData["secret_type"],
		"internal_name":    req.Secret.InternalData["name"],
		"data_username":    req.Data["username"],
		"data_keys":        keys(req.Data),
		"ttl":              int64(req.Secret.TTL / time.Second),
		"max_ttl":          int64(req.Secret.MaxTTL / time.Second),
		"renewable":        req.Secret.Renewable,
		"increment":        int64(req.Secret.Increment / time.Second),
		"has_issue_time":   !req.Secret.IssueTime.IsZero(),
		"has_lease_id":     req.Secret.LeaseID != "",
		"has_client_token": req.ClientToken != "",
		"display_name":     req.DisplayName,
		"mount_accessor":   req.MountAccessor,
		"has_id":           req.ID != "",
		"has_connection":   req.Connection != nil,
	}
	b, err := json.Marshal(log)
	if err != nil {
		return err
	}
	return req.Storage.Put(ctx, &logical.StorageEntry{Key: key, Value: b})
}

// seconds reads a number of seconds from internal data, which crossed
// the host as JSON.
func seconds(v any) (time.Duration, bool) {
	switch n := v.(type) {
	case float64:
		return time.Duration(n) * time.Second, true
	case json.Number:
		f, err := n.Float64()
		return time.Duration(f) * time.Second, err == nil
	case int:
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

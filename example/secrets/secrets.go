// Package secrets is an example secrets engine: a key/value store with
// nested paths, served by vaultplugin. Its whole main is one line:
//
//	func main() { serve.Run(secrets.Factory) }
//
// Paths (relative to the mount):
//
//	data/<path>   create, update, read, delete a secret (any key/value pairs)
//	data/<prefix> list the secrets and folders under a prefix ending in "/"
//	info          read what the engine is
package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Name is the engine's name, as reported by the info path.
const Name = "example-secrets"

// storagePrefix keeps secrets apart from anything else the engine may
// store later (configuration, say).
const storagePrefix = "data/"

// Factory builds the secrets engine for one mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, fmt.Errorf("setting up %s: %w", Name, err)
	}
	return b, nil
}

type backend struct {
	*framework.Backend
}

func newBackend() *backend {
	b := &backend{}
	b.Backend = &framework.Backend{
		Help:        "The example secrets engine stores arbitrary key/value secrets under data/.",
		BackendType: logical.TypeLogical,
		Paths: []*framework.Path{
			{
				Pattern: "data/?$",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ListOperation: &framework.PathOperation{Callback: b.list, Summary: "List the top-level secrets and folders."},
				},
				HelpSynopsis:    "List secrets.",
				HelpDescription: "Lists the secrets and folders (ending in /) at the top level of the mount.",
			},
			{
				Pattern: "data/" + framework.MatchAllRegex("path"),
				Fields: map[string]*framework.FieldSchema{
					"path": {Type: framework.TypeString, Description: "Where the secret lives; may contain slashes."},
				},
				ExistenceCheck: b.exists,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.CreateOperation: &framework.PathOperation{Callback: b.write, Summary: "Store a secret."},
					logical.UpdateOperation: &framework.PathOperation{Callback: b.write, Summary: "Replace a secret."},
					logical.ReadOperation:   &framework.PathOperation{Callback: b.read, Summary: "Read a secret."},
					logical.DeleteOperation: &framework.PathOperation{Callback: b.delete, Summary: "Delete a secret."},
					logical.ListOperation:   &framework.PathOperation{Callback: b.list, Summary: "List the secrets under a folder."},
				},
				HelpSynopsis: "Store, read, delete and list secrets.",
				HelpDescription: "Writing data/<path> stores every key/value pair of the request as one secret, " +
					"replacing what was there. Listing data/<folder>/ shows the secrets and sub-folders under it.",
			},
			{
				Pattern: "info$",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: b.info, Summary: "Describe the engine."},
				},
				HelpSynopsis:    "What this engine is.",
				HelpDescription: "Returns the engine's name and how many secrets the mount holds.",
			},
		},
	}
	return b
}

func (b *backend) exists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	e, err := req.Storage.Get(ctx, storagePrefix+d.Get("path").(string))
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", req.Path, err)
	}
	return e != nil, nil
}

func (b *backend) write(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	path := d.Get("path").(string)
	if strings.HasSuffix(path, "/") {
		return logical.ErrorResponse("a secret's path cannot end in /: that is a folder"), nil
	}
	// The secret is the request body as given; the path comes from the URL.
	data := make(map[string]interface{}, len(req.Data))
	for k, v := range req.Data {
		data[k] = v
	}
	if len(data) == 0 {
		return logical.ErrorResponse("no data provided"), nil
	}
	buf, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding the secret: %w", err)
	}
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: storagePrefix + path, Value: buf, SealWrap: true}); err != nil {
		return nil, fmt.Errorf("storing %s: %w", req.Path, err)
	}
	return nil, nil
}

func (b *backend) read(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, err := req.Storage.Get(ctx, storagePrefix+d.Get("path").(string))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", req.Path, err)
	}
	if e == nil {
		return nil, nil
	}
	var data map[string]interface{}
	if err := e.DecodeJSON(&data); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", req.Path, err)
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) delete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := req.Storage.Delete(ctx, storagePrefix+d.Get("path").(string)); err != nil {
		return nil, fmt.Errorf("deleting %s: %w", req.Path, err)
	}
	return nil, nil
}

func (b *backend) list(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	prefix := ""
	if raw, ok := d.GetOk("path"); ok {
		prefix = raw.(string)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	keys, err := req.Storage.List(ctx, storagePrefix+prefix)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", req.Path, err)
	}
	return logical.ListResponse(keys), nil
}

func (b *backend) info(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	keys, err := logical.CollectKeysWithPrefix(ctx, req.Storage, storagePrefix)
	if err != nil {
		return nil, fmt.Errorf("counting secrets: %w", err)
	}
	return &logical.Response{Data: map[string]interface{}{"name": Name, "secrets": len(keys)}}, nil
}

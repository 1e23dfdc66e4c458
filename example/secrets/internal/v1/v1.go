// Package v1 is v1.0.0 of the example secrets engine, as it was released,
// kept so that a test can upgrade from it: secrets.Factory is v2. Only
// the code that reads and writes storage is kept, which is what an upgrade
// must carry over; help texts and the refusal of odd paths are left out.
//
// v1 stores a secret as the JSON object of its pairs, under data/<path>
// (storage schema 1). v2 stores a record with room beside the pairs
// (schema 2) and reads schema 1 too; see package secrets.
package v1

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Factory returns the v1 engine for one mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{BackendType: logical.TypeLogical}
	b.Paths = []*framework.Path{
		{
			Pattern: "data/?$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: list},
			},
		},
		{
			Pattern:             "data/" + framework.MatchAllRegex("path"),
			Fields:              map[string]*framework.FieldSchema{"path": {Type: framework.TypeString}},
			TakesArbitraryInput: true,
			ExistenceCheck: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
				e, err := req.Storage.Get(ctx, "data/"+d.Get("path").(string))
				return e != nil, err
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{Callback: write},
				logical.UpdateOperation: &framework.PathOperation{Callback: write},
				logical.ReadOperation:   &framework.PathOperation{Callback: read},
				logical.DeleteOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					return nil, req.Storage.Delete(ctx, "data/"+d.Get("path").(string))
				}},
				logical.ListOperation: &framework.PathOperation{Callback: list},
			},
		},
		{
			Pattern: "info$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
					return &logical.Response{Data: map[string]interface{}{"plugin": "example-secrets"}}, nil
				}},
			},
		},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// write stores the request's pairs as they are: schema 1.
func write(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if len(req.Data) == 0 {
		return logical.ErrorResponse("no data provided"), nil
	}
	buf, err := json.Marshal(req.Data)
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Put(ctx, &logical.StorageEntry{Key: "data/" + d.Get("path").(string), Value: buf})
}

func read(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, err := req.Storage.Get(ctx, "data/"+d.Get("path").(string))
	if err != nil || e == nil {
		return nil, err
	}
	var data map[string]interface{}
	if err := e.DecodeJSON(&data); err != nil {
		return nil, err
	}
	return &logical.Response{Data: data}, nil
}

func list(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	raw, _ := d.GetOk("path")
	folder, _ := raw.(string)
	if folder = strings.TrimSuffix(folder, "/"); folder != "" {
		folder += "/"
	}
	keys, err := req.Storage.List(ctx, "data/"+folder)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(keys), nil
}

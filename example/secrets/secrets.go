// Package secrets is an example Vault secrets engine: a key/value store with
// nested paths, written with the SDK's framework package and served by
// vaultplugin. Its plugin binary's whole main is one line:
//
//	package main
//
//	import (
//		"github.com/plugkit/vaultplugin/example/secrets"
//		"github.com/plugkit/vaultplugin/serve"
//	)
//
//	func main() { serve.Run(secrets.Factory) }
//
// Paths, relative to the mount:
//
//	data/<path>    create, update, read or delete a secret: any key/value pairs
//	data/<folder>/ list the secrets and sub-folders (ending in "/") in a folder
//	data/          list the top level
//	meta/<path>    read when a secret was last written, and its storage schema
//	info           read what this engine is, and the storage schema it writes
//
// With the binary registered as vault-plugin-secrets-example:
//
//	vault secrets enable -path=kv vault-plugin-secrets-example
//	vault write kv/data/app/db username=app password=s3cr3t
//	vault read kv/data/app/db
//	vault list kv/data/app
//
// # Upgrading from v1
//
// This is v2 of the engine, whose storage schema differs from v1's. v1
// stored a secret as the JSON object of its pairs (schema 1), which
// leaves no room for anything beside them: any key may be a secret's
// own. v2 stores a record with the pairs and the time they were written
// (schema 2), behind a prefix that no JSON object begins with, so that
// neither schema is ever taken for the other, whatever a secret's keys.
// v2 reads both: it migrates a v1 secret when it reads it, and writes it
// back in schema 2 only when the secret is next written. A read never
// writes: it stays a read wherever Vault serves it, and cannot put back a
// stale copy over a write that raced with it. meta/<path> tells which
// schema a secret is stored in. The v1 engine, as released, is in
// internal/v1; binary_test.go upgrades a mount from it to this one with
// servetest.Plugin.Upgrade.
package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/jsonutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// Name is the engine's name, as the info path reports it.
const Name = "example-secrets"

// Schema is the storage schema this version of the engine writes, as the
// info path reports it: 2. It reads schema 1, v1's, too.
const Schema = 2

// schema2Prefix begins a secret stored in schema 2; its JSON record
// follows. Schema 1 is a bare JSON object, which begins with "{".
const schema2Prefix = "schema2:"

// record is a secret as v2 stores it.
type record struct {
	Data        map[string]interface{} `json:"data"`
	UpdatedTime time.Time              `json:"updated_time"`
}

// decodeSecret reads a stored secret of either schema, and says which:
// v1 stored the pairs alone, and knew no update time.
func decodeSecret(value []byte) (r record, schema int, err error) {
	if rest, ok := bytes.CutPrefix(value, []byte(schema2Prefix)); ok {
		err = jsonutil.DecodeJSON(rest, &r)
		return r, 2, err
	}
	err = jsonutil.DecodeJSON(value, &r.Data)
	return r, 1, err
}

// storagePrefix keeps secrets apart from anything else the engine may come
// to store (configuration, say), so that a secret's path can never collide
// with it.
const storagePrefix = "data/"

const backendHelp = `
The example secrets engine stores arbitrary key/value secrets at paths of
your choosing under data/. A path may contain slashes: each one before the
last names a folder, and listing a folder shows the secrets and sub-folders
(ending in "/") inside it.

Writing a path replaces the whole secret with the key/value pairs of the
request. Secrets are neither versioned nor leased.
`

// Factory returns the secrets engine for one mount, set up with conf. It is
// the logical.Factory that serve.Run serves.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, fmt.Errorf("setting up %s: %w", Name, err)
	}
	return b, nil
}

// backend holds no state of its own: everything lives in the mount's
// storage, so any number of mounts can share one plugin process.
type backend struct {
	*framework.Backend
}

func newBackend() *backend {
	b := &backend{}
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			// Seal-wrapped where the seal supports it: these are secrets.
			SealWrapStorage: []string{storagePrefix},
		},
		Paths: []*framework.Path{
			{
				// Listed before data/<path>, which would match "data/" too
				// (with an empty path): the framework takes the first match.
				Pattern: "data/?$",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ListOperation: &framework.PathOperation{
						Callback: b.list,
						Summary:  "List the secrets and folders at the top level.",
					},
				},
				HelpSynopsis: "List the secrets and folders at the top level.",
				HelpDescription: "Lists the names of the secrets and folders at the top of the mount. " +
					`A folder's name ends in "/"; list data/<folder>/ to see inside it.`,
			},
			{
				Pattern: "data/" + framework.MatchAllRegex("path"),
				Fields: map[string]*framework.FieldSchema{
					"path": {
						Type:        framework.TypeString,
						Description: `Where the secret lives, relative to data/; may contain slashes. A path ending in "/" is a folder, which can only be listed.`,
						Required:    true,
					},
				},
				// The secret is the request's key/value pairs, whatever they
				// are: without this the framework would warn that it ignored
				// every one of them, and OpenAPI would say the path takes none.
				TakesArbitraryInput: true,
				ExistenceCheck:      b.exists,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.CreateOperation: &framework.PathOperation{Callback: b.write, Summary: "Store a secret."},
					logical.UpdateOperation: &framework.PathOperation{Callback: b.write, Summary: "Replace a secret."},
					logical.ReadOperation:   &framework.PathOperation{Callback: b.read, Summary: "Read a secret."},
					logical.DeleteOperation: &framework.PathOperation{Callback: b.delete, Summary: "Delete a secret."},
					logical.ListOperation:   &framework.PathOperation{Callback: b.list, Summary: "List the secrets and folders in a folder."},
				},
				HelpSynopsis: "Store, read, delete and list secrets.",
				HelpDescription: "Writing data/<path> stores every key/value pair of the request as one secret, " +
					"replacing what was there; a write with no pairs is refused. Reading returns the pairs as written. " +
					"Deleting a secret that does not exist succeeds. " +
					`Listing data/<folder>/ returns the secrets and sub-folders (ending in "/") in that folder.`,
			},
			{
				Pattern: "meta/" + framework.MatchAllRegex("path"),
				Fields: map[string]*framework.FieldSchema{
					"path": {Type: framework.TypeString, Description: "The secret's path, relative to data/.", Required: true},
				},
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: b.meta, Summary: "Read a secret's metadata."},
				},
				HelpSynopsis: "When a secret was last written, and how it is stored.",
				HelpDescription: "Returns the storage schema the secret at data/<path> is stored in (1: written by v1, " +
					"rewritten in schema 2 by its next write) and, for schema 2, updated_time: when it was last written. " +
					"It shows none of the secret's pairs.",
			},
			{
				Pattern: "info$",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: b.info, Summary: "Describe the engine."},
				},
				HelpSynopsis: "What this engine is.",
				HelpDescription: "Returns the engine's name under the key plugin, and the storage schema it writes under schema. " +
					"It says nothing about the secrets the mount holds, so that a policy can grant it freely.",
			},
		},
	}
	return b
}

// checkPath refuses, as a 400 naming the problem, a path that is not a
// secret's: a folder, or one that checkNames refuses.
func checkPath(path string) error {
	if strings.HasSuffix(path, "/") {
		return fmt.Errorf("%q ends in /: it names a folder, which can only be listed", path)
	}
	return checkNames(path)
}

// checkNames refuses the keys that storage would refuse, with an error that
// reaches the caller as a 500, and those that would list oddly: an empty
// name shows in a listing as a bare "/".
func checkNames(path string) error {
	if strings.Contains(path, "..") {
		return fmt.Errorf("%q contains \"..\"", path)
	}
	for _, name := range strings.Split(path, "/") {
		if name == "" {
			return fmt.Errorf("%q has an empty name", path)
		}
	}
	return nil
}

func (b *backend) exists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	if checkPath(d.Get("path").(string)) != nil {
		// Not an error here: the write refuses the path with a 400.
		return false, nil
	}
	e, err := req.Storage.Get(ctx, storagePrefix+d.Get("path").(string))
	if err != nil {
		return false, fmt.Errorf("checking whether %s exists: %w", req.Path, err)
	}
	return e != nil, nil
}

func (b *backend) write(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	path := d.Get("path").(string)
	if err := checkPath(path); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if len(req.Data) == 0 {
		return logical.ErrorResponse("no data provided"), nil
	}
	// req.Data, not d: the field data has the URL's path in place of any
	// key named "path" the secret itself may hold.
	buf, err := json.Marshal(record{Data: req.Data, UpdatedTime: time.Now().UTC()})
	if err != nil {
		// The message names the path only: the values are the secret.
		return nil, fmt.Errorf("encoding the secret at %s: %w", req.Path, err)
	}
	buf = append([]byte(schema2Prefix), buf...)
	// A write replaces the whole entry, so two concurrent writes need no
	// lock: the last one wins, whole.
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: storagePrefix + path, Value: buf}); err != nil {
		return nil, fmt.Errorf("storing %s: %w", req.Path, err)
	}
	return nil, nil
}

func (b *backend) read(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	path := d.Get("path").(string)
	if err := checkPath(path); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	e, err := req.Storage.Get(ctx, storagePrefix+path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", req.Path, err)
	}
	if e == nil {
		// Vault turns a nil response to a read into a 404.
		return nil, nil
	}
	r, _, err := decodeSecret(e.Value)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", req.Path, err)
	}
	return &logical.Response{Data: r.Data}, nil
}

func (b *backend) meta(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	path := d.Get("path").(string)
	if err := checkPath(path); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	e, err := req.Storage.Get(ctx, storagePrefix+path)
	if err != nil || e == nil {
		return nil, err
	}
	r, schema, err := decodeSecret(e.Value)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", req.Path, err)
	}
	data := map[string]interface{}{"schema": schema}
	if schema > 1 {
		data["updated_time"] = r.UpdatedTime.Format(time.RFC3339Nano)
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) delete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	path := d.Get("path").(string)
	if err := checkPath(path); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if err := req.Storage.Delete(ctx, storagePrefix+path); err != nil {
		return nil, fmt.Errorf("deleting %s: %w", req.Path, err)
	}
	return nil, nil
}

func (b *backend) list(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	// GetOk, not Get: the top level's path has no "path" field, and Get
	// panics on a field outside the schema.
	raw, _ := d.GetOk("path")
	path, _ := raw.(string)
	// A folder lists the same with or without its trailing "/": Vault's
	// HTTP layer adds one to a LIST, a caller inside the process may not.
	folder := strings.TrimSuffix(path, "/")
	if folder != "" {
		if err := checkNames(folder); err != nil {
			return logical.ErrorResponse(err.Error()), nil
		}
		// Storage lists what is under a prefix ending in "/".
		folder += "/"
	}
	keys, err := req.Storage.List(ctx, storagePrefix+folder)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", req.Path, err)
	}
	return logical.ListResponse(keys), nil
}

func (b *backend) info(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	return &logical.Response{Data: map[string]interface{}{"plugin": Name, "schema": Schema}}, nil
}

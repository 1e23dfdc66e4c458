// Package auth is an example auth method: users with bcrypt-hashed
// passwords log in and get a token with their policies and a TTL. It is
// served by vaultplugin; its whole main is one line:
//
//	func main() { serve.Run(auth.Factory) }
//
// Paths (relative to the mount, e.g. auth/example/):
//
//	users/<name>  create, update, read, delete a user (password, policies, ttl)
//	users/        list users
//	login         log in with username and password (unauthenticated)
package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/policyutil"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/crypto/bcrypt"
)

const userPrefix = "users/"

// dummyHash is compared against when the user does not exist, so that a
// login for an unknown user costs as much as one with a wrong password and
// the timing does not tell which users exist. It is the hash (at
// bcrypt.DefaultCost) of a random password nobody knows, fixed here so
// that the plugin does not spend a bcrypt at every start.
const dummyHash = "$2a$10$Ucy7xjVY6ly.JNRPBtd90O6Kd8kI2f.M8c/2kC0IppIib8wBLrnZO"

// Factory builds the auth method for one mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, fmt.Errorf("setting up the example auth method: %w", err)
	}
	return b, nil
}

// user is what is stored per user; the password only as a bcrypt hash.
type user struct {
	Hash     []byte        `json:"hash"`
	Policies []string      `json:"policies"`
	TTL      time.Duration `json:"ttl"`
}

type backend struct {
	*framework.Backend
}

func newBackend() *backend {
	b := &backend{}
	b.Backend = &framework.Backend{
		Help:        "The example auth method logs users in with a username and a password.",
		BackendType: logical.TypeCredential,
		PathsSpecial: &logical.Paths{
			Unauthenticated: []string{"login"},
			SealWrapStorage: []string{userPrefix},
		},
		AuthRenew: b.renew,
		Paths: []*framework.Path{
			{
				Pattern: "users/?$",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ListOperation: &framework.PathOperation{Callback: b.listUsers, Summary: "List users."},
				},
				HelpSynopsis:    "List users.",
				HelpDescription: "Lists the names of the users who can log in.",
			},
			{
				Pattern: "users/" + framework.GenericNameRegex("name"),
				Fields: map[string]*framework.FieldSchema{
					"name":     {Type: framework.TypeLowerCaseString, Description: "The user's name.", Required: true},
					"password": {Type: framework.TypeString, Description: "The user's password; required when creating the user. Stored only as a bcrypt hash.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
					"policies": {Type: framework.TypeCommaStringSlice, Description: "Policies attached to the user's tokens."},
					"ttl":      {Type: framework.TypeDurationSecond, Description: "TTL of the user's tokens; 0 means the mount's default."},
				},
				ExistenceCheck: b.userExists,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.CreateOperation: &framework.PathOperation{Callback: b.writeUser, Summary: "Create a user."},
					logical.UpdateOperation: &framework.PathOperation{Callback: b.writeUser, Summary: "Update a user's password, policies or TTL."},
					logical.ReadOperation:   &framework.PathOperation{Callback: b.readUser, Summary: "Read a user's policies and TTL."},
					logical.DeleteOperation: &framework.PathOperation{Callback: b.deleteUser, Summary: "Delete a user."},
				},
				HelpSynopsis:    "Manage users.",
				HelpDescription: "A user has a password (never returned), policies and a token TTL.",
			},
			{
				Pattern: "login$",
				Fields: map[string]*framework.FieldSchema{
					"username": {Type: framework.TypeLowerCaseString, Description: "The user's name."},
					"password": {Type: framework.TypeString, Description: "The user's password.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
				},
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.UpdateOperation: &framework.PathOperation{Callback: b.login, Summary: "Log in."},
				},
				HelpSynopsis:    "Log in with a username and a password.",
				HelpDescription: "Returns a token with the user's policies and TTL. A wrong password and an unknown user fail alike.",
			},
		},
	}
	return b
}

func (b *backend) getUser(ctx context.Context, s logical.Storage, name string) (*user, error) {
	e, err := s.Get(ctx, userPrefix+name)
	if err != nil {
		return nil, fmt.Errorf("reading user %q: %w", name, err)
	}
	if e == nil {
		return nil, nil
	}
	var u user
	if err := e.DecodeJSON(&u); err != nil {
		return nil, fmt.Errorf("decoding user %q: %w", name, err)
	}
	return &u, nil
}

func (b *backend) userExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	u, err := b.getUser(ctx, req.Storage, d.Get("name").(string))
	return u != nil, err
}

func (b *backend) writeUser(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	u, err := b.getUser(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		u = &user{}
	}
	if pw, ok := d.GetOk("password"); ok {
		if pw.(string) == "" {
			return logical.ErrorResponse("password cannot be empty"), nil
		}
		u.Hash, err = bcrypt.GenerateFromPassword([]byte(pw.(string)), bcrypt.DefaultCost)
		if err != nil {
			return nil, fmt.Errorf("hashing the password: %w", err)
		}
	}
	if len(u.Hash) == 0 {
		return logical.ErrorResponse("password is required to create a user"), nil
	}
	if p, ok := d.GetOk("policies"); ok {
		u.Policies = policyutil.SanitizePolicies(p.([]string), policyutil.DoNotAddDefaultPolicy)
	}
	if ttl, ok := d.GetOk("ttl"); ok {
		u.TTL = time.Duration(ttl.(int)) * time.Second
	}
	e, err := logical.StorageEntryJSON(userPrefix+name, u)
	if err != nil {
		return nil, fmt.Errorf("encoding user %q: %w", name, err)
	}
	if err := req.Storage.Put(ctx, e); err != nil {
		return nil, fmt.Errorf("storing user %q: %w", name, err)
	}
	return nil, nil
}

func (b *backend) readUser(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	u, err := b.getUser(ctx, req.Storage, d.Get("name").(string))
	if err != nil || u == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		"policies": u.Policies,
		"ttl":      int64(u.TTL / time.Second),
	}}, nil
}

func (b *backend) deleteUser(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := req.Storage.Delete(ctx, userPrefix+name); err != nil {
		return nil, fmt.Errorf("deleting user %q: %w", name, err)
	}
	return nil, nil
}

func (b *backend) listUsers(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, userPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return logical.ListResponse(names), nil
}

func (b *backend) login(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("username").(string)
	password := d.Get("password").(string)
	if name == "" || password == "" {
		return logical.ErrorResponse("username and password are required"), nil
	}
	u, err := b.getUser(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	hash := []byte(dummyHash)
	if u != nil {
		hash = u.Hash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u == nil {
		return nil, logical.ErrPermissionDenied
	}
	return &logical.Response{Auth: &logical.Auth{
		Policies:     u.Policies,
		DisplayName:  name,
		Metadata:     map[string]string{"username": name},
		InternalData: map[string]interface{}{"username": name},
		Alias:        &logical.Alias{Name: name},
		LeaseOptions: logical.LeaseOptions{TTL: u.TTL, Renewable: true},
	}}, nil
}

// renew extends a token only while its user exists with the same policies:
// deleting a user or changing their policies ends their tokens' renewals.
func (b *backend) renew(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if req.Auth == nil {
		return nil, errors.New("renewal request without auth")
	}
	name, _ := req.Auth.InternalData["username"].(string)
	u, err := b.getUser(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return logical.ErrorResponse("user %q no longer exists", name), nil
	}
	if !policyutil.EquivalentPolicies(u.Policies, req.Auth.TokenPolicies) {
		return logical.ErrorResponse("the policies of user %q changed; log in again", name), nil
	}
	return framework.LeaseExtend(u.TTL, 0, b.System())(ctx, req, d)
}

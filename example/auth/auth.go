// Package auth is an example Vault auth method, written with the SDK's
// framework package and served by vaultplugin: users with bcrypt-hashed
// passwords log in and get a token with their policies and TTL. Its plugin
// binary's whole main is one line:
//
//	package main
//
//	import (
//		"github.com/plugkit/vaultplugin/example/auth"
//		"github.com/plugkit/vaultplugin/serve"
//	)
//
//	func main() { serve.Run(auth.Factory) }
//
// Paths, relative to the mount (auth/example/, say):
//
//	users/<name>  create, update, read or delete a user: password, policies, ttl
//	users/        list the users
//	login         log in with username and password (needs no token)
//
// With the binary registered as vault-plugin-auth-example:
//
//	vault auth enable -path=example vault-plugin-auth-example
//	vault write auth/example/users/alice password=... policies=dev,reader ttl=30m
//	vault write auth/example/login username=alice password=...
//
// A password is stored only as a bcrypt hash and never returned. A token's
// renewal fails once its user is deleted or given other policies.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/policyutil"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/crypto/bcrypt"
)

const userPrefix = "users/"

// maxPasswordLen is the most bcrypt hashes: it ignores the bytes after the
// 72nd, so a longer password would let in anyone who knew its beginning.
const maxPasswordLen = 72

// dummyHash is what login compares the password with when the user does not
// exist, so that a login as an unknown user takes as long as one with a
// wrong password, and the time taken does not tell which users exist. Its
// cost must be bcrypt.DefaultCost, the cost of real users' hashes; it is a
// constant so that each mount does not spend a hash at startup. Which
// password it hashes does not matter: login refuses an unknown user
// whatever the comparison says.
const dummyHash = "$2a$10$Ucy7xjVY6ly.JNRPBtd90O6Kd8kI2f.M8c/2kC0IppIib8wBLrnZO"

const backendHelp = `
The example auth method logs users in with a username and a password.

An operator creates users at users/<name>, each with a password, the policies
their tokens get and their tokens' TTL; a user logs in at login. Passwords are
stored only as bcrypt hashes and are never returned. A token can be renewed
while its user exists with the same policies.
`

// Factory returns the auth method for one mount, set up with conf. It is
// the logical.Factory that serve.Run serves.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(bcrypt.DefaultCost, []byte(dummyHash))
	if err := b.Setup(ctx, conf); err != nil {
		return nil, fmt.Errorf("setting up the example auth method: %w", err)
	}
	return b, nil
}

// user is what is stored for each user: the password only as a bcrypt hash.
type user struct {
	Hash     []byte        `json:"hash"`
	Policies []string      `json:"policies"`
	TTL      time.Duration `json:"ttl"`
}

type backend struct {
	*framework.Backend

	// cost is the bcrypt cost of new hashes, and dummyHash's cost. It is
	// bcrypt.DefaultCost but in this package's tests, where a hash at that
	// cost takes over a second under the race detector.
	cost      int
	dummyHash []byte

	// userLock serializes the changes to users. An update reads, changes
	// and writes the user back: without it, a password change racing a
	// policy change would lose one of them, and an update racing a delete
	// could bring the user back.
	userLock sync.Mutex
}

func newBackend(cost int, dummyHash []byte) *backend {
	b := &backend{cost: cost, dummyHash: dummyHash}
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeCredential,
		PathsSpecial: &logical.Paths{
			Unauthenticated: []string{"login"},
			// Seal-wrapped where the seal supports it: these hold the hashes.
			SealWrapStorage: []string{userPrefix},
		},
		AuthRenew: b.renew,
		Paths: []*framework.Path{
			{
				Pattern: "users/?$",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ListOperation: &framework.PathOperation{Callback: b.listUsers, Summary: "List the users."},
				},
				HelpSynopsis:    "List the users.",
				HelpDescription: "Lists the names of the users who can log in.",
			},
			{
				Pattern: userPrefix + framework.GenericNameRegex("name"),
				Fields: map[string]*framework.FieldSchema{
					"name": {
						Type:        framework.TypeLowerCaseString,
						Description: "The user's name, which they log in with. Names are not case-sensitive.",
						Required:    true,
					},
					"password": {
						Type:         framework.TypeString,
						Description:  "The user's password: required to create the user, at most 72 bytes. Stored only as a bcrypt hash, never returned.",
						DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
					},
					"policies": {
						Type:        framework.TypeCommaStringSlice,
						Description: "The policies of the user's tokens, as a list or a comma-separated string. Changing them stops the renewal of the user's existing tokens.",
					},
					"ttl": {
						Type:        framework.TypeDurationSecond,
						Description: "The TTL of the user's tokens, and of each renewal, in seconds or as a duration (30m). Unset or 0: the mount's default. Capped by the mount's maximum.",
					},
				},
				ExistenceCheck: b.userExists,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.CreateOperation: &framework.PathOperation{Callback: b.writeUser, Summary: "Create a user."},
					logical.UpdateOperation: &framework.PathOperation{Callback: b.writeUser, Summary: "Change a user's password, policies or TTL."},
					logical.ReadOperation:   &framework.PathOperation{Callback: b.readUser, Summary: "Read a user's policies and TTL."},
					logical.DeleteOperation: &framework.PathOperation{Callback: b.deleteUser, Summary: "Delete a user."},
				},
				HelpSynopsis: "Manage the users who can log in.",
				HelpDescription: "Creating a user needs a password; an update changes only the fields it gives. " +
					"Reading a user returns their policies and TTL, never the password or its hash. " +
					"Deleting a user stops the renewal of their tokens but does not revoke them.",
			},
			{
				Pattern: "login$",
				Fields: map[string]*framework.FieldSchema{
					"username": {
						Type:        framework.TypeLowerCaseString,
						Description: "The user's name. Not case-sensitive.",
						Required:    true,
					},
					"password": {
						Type:         framework.TypeString,
						Description:  "The user's password.",
						Required:     true,
						DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
					},
				},
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.UpdateOperation: &framework.PathOperation{Callback: b.login, Summary: "Log in with a username and a password."},
					// Vault asks which alias a login is for before the login
					// itself, for login MFA and the entity's rate limits.
					logical.AliasLookaheadOperation: &framework.PathOperation{Callback: b.loginAlias},
				},
				HelpSynopsis: "Log in with a username and a password.",
				HelpDescription: "Returns a renewable token with the user's policies and TTL. " +
					"An unknown user and a wrong password are refused alike, with permission denied.",
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

	// Everything that can be refused is, before the slow hash and the lock.
	rawPolicies, setPolicies := d.GetOk("policies")
	var policies []string
	if setPolicies {
		policies = policyutil.SanitizePolicies(rawPolicies.([]string), policyutil.DoNotAddDefaultPolicy)
		if slices.Contains(policies, "root") {
			// Vault refuses a login that asks for a root token: the user
			// could never log in.
			return logical.ErrorResponse("an auth method cannot grant the root policy"), nil
		}
	}
	// The framework has already refused a negative or malformed ttl.
	ttl, setTTL := d.GetOk("ttl")
	var hash []byte
	if raw, ok := d.GetOk("password"); ok {
		password := raw.(string)
		switch {
		case password == "":
			return logical.ErrorResponse("password cannot be empty"), nil
		case len(password) > maxPasswordLen:
			return logical.ErrorResponse("password is longer than %d bytes, the most bcrypt can hash", maxPasswordLen), nil
		}
		var err error
		if hash, err = bcrypt.GenerateFromPassword([]byte(password), b.cost); err != nil {
			return nil, fmt.Errorf("hashing the password of user %q: %w", name, err)
		}
	}

	b.userLock.Lock()
	defer b.userLock.Unlock()
	// Whether the user exists is decided here, under the lock, rather than
	// by the operation: the existence check ran before it was taken.
	u, err := b.getUser(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		if hash == nil {
			return logical.ErrorResponse("password is required to create a user"), nil
		}
		u = &user{}
	}
	if hash != nil {
		u.Hash = hash
	}
	if setPolicies {
		u.Policies = policies
	}
	if setTTL {
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
	// Listed field by field, so that nothing added to user later (and not
	// the hash) is returned without a decision to.
	return &logical.Response{Data: map[string]interface{}{
		"policies": u.Policies,
		"ttl":      int64(u.TTL / time.Second),
	}}, nil
}

func (b *backend) deleteUser(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	b.userLock.Lock()
	defer b.userLock.Unlock()
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
		// Refused the same for every user: it tells nothing about them.
		return logical.ErrorResponse("username and password are required"), nil
	}
	if len(password) > maxPasswordLen {
		// No stored password is this long, and bcrypt would compare only
		// the first 72 bytes.
		return nil, logical.ErrPermissionDenied
	}
	u, err := b.getUser(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	hash := b.dummyHash
	if u != nil {
		hash = u.Hash
	}
	// Compared even for an unknown user, and checked after, so that both
	// failures cost one bcrypt comparison and look the same.
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u == nil {
		return nil, logical.ErrPermissionDenied
	}
	return &logical.Response{Auth: &logical.Auth{
		Policies:    u.Policies,
		DisplayName: name,
		Metadata:    map[string]string{"username": name},
		// The renewal's only way to know whose token it is: Metadata can
		// be seen by the token's holder, InternalData by no one.
		InternalData: map[string]interface{}{"username": name},
		Alias:        &logical.Alias{Name: name},
		LeaseOptions: logical.LeaseOptions{TTL: u.TTL, Renewable: true},
	}}, nil
}

// loginAlias answers Vault's alias lookahead: which user a login is for,
// before the password is checked. It must not tell whether the user
// exists, so it does not look.
func (b *backend) loginAlias(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("username").(string)
	if name == "" {
		return logical.ErrorResponse("username is required"), nil
	}
	return &logical.Response{Auth: &logical.Auth{Alias: &logical.Alias{Name: name}}}, nil
}

// renew extends a token only while its user exists with the same policies:
// deleting a user or changing their policies ends their tokens' renewals,
// and a renewal gets the user's current TTL.
func (b *backend) renew(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if req.Auth == nil {
		return nil, errors.New("renewal request without auth")
	}
	name, _ := req.Auth.InternalData["username"].(string)
	if name == "" {
		return nil, errors.New("renewal of a token this auth method did not issue: no username in its internal data")
	}
	u, err := b.getUser(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return logical.ErrorResponse("user %q no longer exists", name), nil
	}
	// EquivalentPolicies ignores "default", which Vault adds to the token's
	// policies unless told not to.
	if !policyutil.EquivalentPolicies(u.Policies, req.Auth.TokenPolicies) {
		return logical.ErrorResponse("the policies of user %q have changed: log in again", name), nil
	}
	return framework.LeaseExtend(u.TTL, 0, b.System())(ctx, req, d)
}

package servetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
)

// This file plays Vault's database secrets engine in front of a
// Connection: the requests it makes of a plugin for each of its
// endpoints, as Vault v1.21.0 makes them (builtin/logical/database).

// Role is a database role, as `vault write database/roles/NAME` defines
// one: the statements the plugin runs and the credentials' TTL.
type Role struct {
	// Name is the role's name, which the plugin may put in usernames.
	Name string
	// Creation, Revocation, Rollback and Renewal are the role's
	// creation_statements, revocation_statements, rollback_statements and
	// renew_statements.
	Creation, Revocation, Rollback, Renewal []string
	// TTL is the role's default_ttl; 0 means the mount's, 768h.
	TTL time.Duration
}

// Credentials are what `vault read database/creds/ROLE` returns.
type Credentials struct {
	Username, Password string
	// Expiration is the time the plugin was told the user expires.
	Expiration time.Time
}

// vaultDisplayName is the display name of the token the engine's requests
// carry, which plugins put in usernames: a dev server's root token's.
const vaultDisplayName = "token"

// credentialExpiryBuffer is what path_creds_create.go adds to the TTL of
// a new user: "a small buffer since the TTL will be calculated again".
const credentialExpiryBuffer = 5 * time.Second

// Configure initializes the connection with config, as
// `vault write database/config/NAME` does: with VerifyConnection set, so
// the plugin connects before it answers (unless config holds
// "verify_connection": false, which the engine takes from the request),
// and returns the configuration the plugin wants stored.
func (c *Connection) Configure(ctx context.Context, config map[string]any) (map[string]any, error) {
	if c.host != nil {
		return c.host.configure(ctx, config)
	}
	verify := true
	if v, ok := config["verify_connection"].(bool); ok {
		verify = v
	}
	conf := make(map[string]any, len(config))
	for k, v := range config {
		if k != "verify_connection" {
			conf[k] = v
		}
	}
	var resp dbplugin.InitializeResponse
	err := c.engine(ctx, false, func(db dbplugin.Database) (err error) {
		resp, err = db.Initialize(ctx, dbplugin.InitializeRequest{Config: conf, VerifyConnection: verify})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("servetest: Initialize: %w", err)
	}
	return resp.Config, nil
}

// NewCredentials creates a user for role, as `vault read
// database/creds/ROLE` does: a password made by Vault's default
// password generator (20 characters of letters, digits and "-", at
// least one of each kind), the role's statements, the username metadata
// of a root token, and an expiration of the role's TTL plus the engine's
// five seconds.
func (c *Connection) NewCredentials(ctx context.Context, role Role) (Credentials, error) {
	if c.host != nil {
		return c.host.newCredentials(ctx, role)
	}
	password, err := generatePassword()
	if err != nil {
		return Credentials{}, err
	}
	ttl := role.TTL
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	expiration := time.Now().Add(ttl).Add(credentialExpiryBuffer)
	var resp dbplugin.NewUserResponse
	err = c.engine(ctx, true, func(db dbplugin.Database) (err error) {
		resp, err = db.NewUser(ctx, dbplugin.NewUserRequest{
			UsernameConfig:     dbplugin.UsernameMetadata{DisplayName: vaultDisplayName, RoleName: role.Name},
			Statements:         dbplugin.Statements{Commands: role.Creation},
			RollbackStatements: dbplugin.Statements{Commands: role.Rollback},
			CredentialType:     dbplugin.CredentialTypePassword,
			Password:           password,
			Expiration:         expiration,
		})
		return err
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("servetest: NewUser: %w", err)
	}
	if resp.Username == "" {
		return Credentials{}, errors.New("servetest: NewUser returned no username, which Vault's engine refuses")
	}
	return Credentials{Username: resp.Username, Password: password, Expiration: expiration}, nil
}

// RenewCredentials extends username's expiration to now plus ttl, as
// renewing the lease does, with the role's renew statements.
func (c *Connection) RenewCredentials(ctx context.Context, role Role, username string, ttl time.Duration) error {
	if c.host != nil {
		return c.host.renewCredentials(ctx, username, ttl)
	}
	err := c.engine(ctx, true, func(db dbplugin.Database) error {
		_, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username: username,
			Expiration: &dbplugin.ChangeExpiration{
				NewExpiration: time.Now().Add(ttl),
				Statements:    dbplugin.Statements{Commands: role.Renewal},
			},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("servetest: UpdateUser (expiration): %w", err)
	}
	return nil
}

// RotatePassword gives username a new password made by Vault's default
// generator and returns it, as rotating a static role or the root
// credentials does.
func (c *Connection) RotatePassword(ctx context.Context, username string) (string, error) {
	if c.host != nil {
		return c.host.rotatePassword(ctx, username)
	}
	password, err := generatePassword()
	if err != nil {
		return "", err
	}
	err = c.engine(ctx, true, func(db dbplugin.Database) error {
		_, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username:       username,
			CredentialType: dbplugin.CredentialTypePassword,
			Password:       &dbplugin.ChangePassword{NewPassword: password},
		})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("servetest: UpdateUser (password): %w", err)
	}
	return password, nil
}

// Revoke deletes username with the role's revocation statements, as
// revoking the lease does.
func (c *Connection) Revoke(ctx context.Context, role Role, username string) error {
	if c.host != nil {
		return c.host.revoke(ctx, username)
	}
	err := c.engine(ctx, true, func(db dbplugin.Database) error {
		_, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{
			Username:   username,
			Statements: dbplugin.Statements{Commands: role.Revocation},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("servetest: DeleteUser: %w", err)
	}
	return nil
}

// Vault's default password rules (helper/random DefaultStringGenerator):
// 20 characters from passwordCharset with at least one from each class.
const (
	passwordLength  = 20
	passwordCharset = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

var passwordClasses = []string{"abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "-"}

// generatePassword makes a password as Vault's database engine does
// without a password policy: 20 characters of letters, digits and "-",
// with at least one lowercase and one uppercase letter, one digit and
// one "-". Like Vault, it draws until the rules hold.
func generatePassword() (string, error) {
	max := big.NewInt(int64(len(passwordCharset)))
	b := make([]byte, passwordLength)
	for {
		for i := range b {
			n, err := rand.Int(rand.Reader, max)
			if err != nil {
				return "", fmt.Errorf("servetest: generating a password: %w", err)
			}
			b[i] = passwordCharset[n.Int64()]
		}
		p := string(b)
		ok := true
		for _, class := range passwordClasses {
			ok = ok && strings.ContainsAny(p, class)
		}
		if ok {
			return p, nil
		}
	}
}

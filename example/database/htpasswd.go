// Package htpasswd is an example database plugin: Vault issues short-lived
// HTTP basic-auth users for a web server (Apache's AuthUserFile, nginx's
// auth_basic_user_file) by managing an htpasswd file. Its whole main is one
// line:
//
//	func main() { dbserve.Run(htpasswd.New) }
//
// Configure a connection with the file's path:
//
//	vault write database/config/web plugin_name=vault-plugin-database-htpasswd \
//	    htpasswd_file=/etc/nginx/htpasswd allowed_roles='*'
//
// Passwords are stored as bcrypt hashes. Every change rewrites the file
// atomically (a temporary file renamed over it) under a lock held across
// goroutines and processes, so concurrent requests and a crash mid-write
// never lose a line or leave a torn file. htpasswd has no expiry field:
// Vault deletes the user when the lease ends, and the plugin records the
// expiration it was given as a comment line, which web servers skip.
package htpasswd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/template"
	"golang.org/x/crypto/bcrypt"
)

// TypeName is the database type the plugin reports to Vault.
const TypeName = "htpasswd"

// DefaultUsernameTemplate makes names like "v-web-reader-a1B2c3D4e5": a
// prefix telling an operator Vault made it, the role, and randomness.
// htpasswd user names end at the first ':'; the template never makes one.
const DefaultUsernameTemplate = `{{ printf "v-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) (random 10) | replace ":" "-" | truncate 64 }}`

// DefaultBcryptCost is the cost of the hashes written, Apache htpasswd's
// own default for -B: the web server pays it on every request it
// authenticates, so a cost fit for stored login passwords (10) would make
// each request slow. The passwords are Vault-generated and short-lived.
const DefaultBcryptCost = 5

// DB manages one htpasswd file; Vault builds one per connection.
type DB struct {
	mu       sync.Mutex // guards the fields below, not the file
	file     *File
	template template.StringTemplate
	cost     int
}

var _ dbplugin.Database = (*DB)(nil)

// New returns an uninitialized DB; it is the plugin's dbplugin.Factory.
func New() (interface{}, error) { return &DB{}, nil }

// Initialize reads the connection configuration: htpasswd_file (an
// absolute path, required), username_template and bcrypt_cost (optional). When Vault
// asks it to verify the connection, it checks that the file can be created
// or written and its directory takes the temporary file of an atomic write.
func (db *DB) Initialize(_ context.Context, req dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	path, _ := req.Config["htpasswd_file"].(string)
	if path == "" {
		return dbplugin.InitializeResponse{}, errors.New("htpasswd_file is required: the absolute path of the htpasswd file to manage")
	}
	if !filepath.IsAbs(path) {
		return dbplugin.InitializeResponse{}, fmt.Errorf("htpasswd_file %q must be an absolute path: the plugin's working directory is not Vault's", path)
	}
	raw := DefaultUsernameTemplate
	if t, ok := req.Config["username_template"].(string); ok && t != "" {
		raw = t
	}
	tmpl, err := template.NewTemplate(template.Template(raw))
	if err != nil {
		return dbplugin.InitializeResponse{}, fmt.Errorf("parsing username_template: %w", err)
	}
	cost := DefaultBcryptCost
	if raw, ok := req.Config["bcrypt_cost"]; ok {
		n, err := strconv.Atoi(fmt.Sprint(raw))
		if err != nil || n < bcrypt.MinCost || n > bcrypt.MaxCost {
			return dbplugin.InitializeResponse{}, fmt.Errorf("bcrypt_cost %v must be a whole number from %d to %d", raw, bcrypt.MinCost, bcrypt.MaxCost)
		}
		cost = n
	}
	f := &File{Path: path}
	if req.VerifyConnection {
		if err := f.Verify(); err != nil {
			return dbplugin.InitializeResponse{}, err
		}
	}
	db.mu.Lock()
	db.file, db.template, db.cost = f, tmpl, cost
	db.mu.Unlock()
	return dbplugin.InitializeResponse{Config: req.Config}, nil
}

func (db *DB) state() (*File, template.StringTemplate, int, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.file == nil {
		return nil, template.StringTemplate{}, 0, errors.New("the connection is not initialized")
	}
	return db.file, db.template, db.cost, nil
}

// NewUser adds a user with the password Vault generated.
func (db *DB) NewUser(_ context.Context, req dbplugin.NewUserRequest) (dbplugin.NewUserResponse, error) {
	f, tmpl, cost, err := db.state()
	if err != nil {
		return dbplugin.NewUserResponse{}, err
	}
	if req.CredentialType != dbplugin.CredentialTypePassword {
		return dbplugin.NewUserResponse{}, fmt.Errorf("htpasswd supports only password credentials, not %s", req.CredentialType)
	}
	name, err := tmpl.Generate(req.UsernameConfig)
	if err != nil {
		return dbplugin.NewUserResponse{}, fmt.Errorf("generating a username: %w", err)
	}
	if err := validName(name); err != nil {
		return dbplugin.NewUserResponse{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), cost)
	if err != nil {
		return dbplugin.NewUserResponse{}, fmt.Errorf("hashing the password: %w", err)
	}
	err = f.Update(func(c *Contents) error {
		if c.Has(name) {
			return fmt.Errorf("user %q already exists", name)
		}
		c.Set(name, string(hash))
		c.SetExpiration(name, req.Expiration)
		return nil
	})
	if err != nil {
		return dbplugin.NewUserResponse{}, err
	}
	return dbplugin.NewUserResponse{Username: name}, nil
}

// UpdateUser changes a user's password and records a new expiration.
func (db *DB) UpdateUser(_ context.Context, req dbplugin.UpdateUserRequest) (dbplugin.UpdateUserResponse, error) {
	f, _, cost, err := db.state()
	if err != nil {
		return dbplugin.UpdateUserResponse{}, err
	}
	if req.Password == nil && req.Expiration == nil {
		return dbplugin.UpdateUserResponse{}, errors.New("no change requested: want a new password or expiration")
	}
	var hash []byte
	if req.Password != nil {
		if hash, err = bcrypt.GenerateFromPassword([]byte(req.Password.NewPassword), cost); err != nil {
			return dbplugin.UpdateUserResponse{}, fmt.Errorf("hashing the password: %w", err)
		}
	}
	err = f.Update(func(c *Contents) error {
		if !c.Has(req.Username) {
			return fmt.Errorf("user %q does not exist", req.Username)
		}
		if hash != nil {
			c.Set(req.Username, string(hash))
		}
		if req.Expiration != nil {
			c.SetExpiration(req.Username, req.Expiration.NewExpiration)
		}
		return nil
	})
	return dbplugin.UpdateUserResponse{}, err
}

// DeleteUser removes a user. Removing one that is already gone succeeds:
// Vault retries revocations.
func (db *DB) DeleteUser(_ context.Context, req dbplugin.DeleteUserRequest) (dbplugin.DeleteUserResponse, error) {
	f, _, _, err := db.state()
	if err != nil {
		return dbplugin.DeleteUserResponse{}, err
	}
	return dbplugin.DeleteUserResponse{}, f.Update(func(c *Contents) error {
		c.Delete(req.Username)
		return nil
	})
}

// Type returns TypeName.
func (db *DB) Type() (string, error) { return TypeName, nil }

// Close releases nothing: the file is opened only while it is changed.
func (db *DB) Close() error { return nil }

// validName accepts the names the plugin can write and find again: an
// entry ends its name at the first ':', a line starting with '#' is a
// comment, and the expiration comment separates its fields with white
// space, so a name with a space in it would lose its expiration and leave
// the comment behind when the user is deleted.
func validName(name string) error {
	if name == "" || strings.ContainsAny(name, ":#") || strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		return fmt.Errorf("username %q cannot be used in an htpasswd file (no ':', '#' or white space)", name)
	}
	return nil
}

// expirationPrefix starts the comment line that records a user's
// expiration; web servers skip lines that start with '#'.
const expirationPrefix = "#vault-expires "

// Contents is a parsed htpasswd file. Lines it does not manage (comments,
// blank lines, entries it cannot parse) are kept as they were.
type Contents struct {
	lines []line
}

type line struct {
	user, hash string    // an entry, when user != ""
	expires    time.Time // for an expiration comment
	expUser    string
	raw        string // anything else, kept verbatim
}

// Parse reads an htpasswd file's text. It never fails: what it does not
// understand it keeps.
func Parse(text string) *Contents {
	c := &Contents{}
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, expirationPrefix):
			fields := strings.Fields(strings.TrimPrefix(l, expirationPrefix))
			if len(fields) == 2 {
				if t, err := time.Parse(time.RFC3339, fields[1]); err == nil {
					c.lines = append(c.lines, line{expUser: fields[0], expires: t})
					continue
				}
			}
			c.lines = append(c.lines, line{raw: l})
		case l == "" || strings.HasPrefix(l, "#"):
			c.lines = append(c.lines, line{raw: l})
		default:
			user, hash, ok := strings.Cut(l, ":")
			if !ok || user == "" {
				c.lines = append(c.lines, line{raw: l})
				continue
			}
			c.lines = append(c.lines, line{user: user, hash: hash})
		}
	}
	// A trailing newline parses as one empty last line; String adds it back.
	if n := len(c.lines); n > 0 && c.lines[n-1].raw == "" && c.lines[n-1].user == "" && c.lines[n-1].expUser == "" {
		c.lines = c.lines[:n-1]
	}
	return c
}

// String renders the file's text, one line each, ending in a newline.
func (c *Contents) String() string {
	var b strings.Builder
	for _, l := range c.lines {
		switch {
		case l.user != "":
			b.WriteString(l.user + ":" + l.hash)
		case l.expUser != "":
			b.WriteString(expirationPrefix + l.expUser + " " + l.expires.UTC().Format(time.RFC3339))
		default:
			b.WriteString(l.raw)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Users returns the user names in file order.
func (c *Contents) Users() []string {
	var out []string
	for _, l := range c.lines {
		if l.user != "" {
			out = append(out, l.user)
		}
	}
	return out
}

// Has reports whether user has an entry.
func (c *Contents) Has(user string) bool {
	_, ok := c.Hash(user)
	return ok
}

// Hash returns user's password hash.
func (c *Contents) Hash(user string) (string, bool) {
	for _, l := range c.lines {
		if l.user == user {
			return l.hash, true
		}
	}
	return "", false
}

// Set adds user or replaces their hash.
func (c *Contents) Set(user, hash string) {
	for i := range c.lines {
		if c.lines[i].user == user {
			c.lines[i].hash = hash
			return
		}
	}
	c.lines = append(c.lines, line{user: user, hash: hash})
}

// Expiration returns the expiration recorded for user.
func (c *Contents) Expiration(user string) (time.Time, bool) {
	for _, l := range c.lines {
		if l.expUser == user {
			return l.expires, true
		}
	}
	return time.Time{}, false
}

// SetExpiration records when user expires; the zero time removes it.
func (c *Contents) SetExpiration(user string, t time.Time) {
	for i := range c.lines {
		if c.lines[i].expUser == user {
			if t.IsZero() {
				c.lines = append(c.lines[:i], c.lines[i+1:]...)
			} else {
				c.lines[i].expires = t
			}
			return
		}
	}
	if !t.IsZero() {
		c.lines = append(c.lines, line{expUser: user, expires: t})
	}
}

// Delete removes user's entry and expiration.
func (c *Contents) Delete(user string) {
	kept := c.lines[:0]
	for _, l := range c.lines {
		if l.user != user && l.expUser != user {
			kept = append(kept, l)
		}
	}
	c.lines = kept
}

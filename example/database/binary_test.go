package htpasswd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/crypto/bcrypt"

	htpasswd "github.com/plugkit/vaultplugin/example/database"
	"github.com/plugkit/vaultplugin/serve/servetest"
)

// TestBinaryConcurrentUsers issues 100 users at once through two
// connections multiplexed on one plugin process: the file must end with
// exactly 100 entries, each verifying with its own password.
func TestBinaryConcurrentUsers(t *testing.T) {
	servetest.SkipOnRealHost(t, "a Connection's raw dbplugin calls (NewUser, UpdateUser, DeleteUser, Type)")
	bin := servetest.Build(t, "./cmd/vault-plugin-database-htpasswd")
	p := servetest.StartDatabase(t, bin)
	path := filepath.Join(t.TempDir(), "htpasswd")
	ctx := context.Background()
	var conns []dbplugin.Database
	for range 2 {
		db := p.Connect(t)
		if err := initialize(t, db, path, nil); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, db)
	}
	if typ, err := conns[0].Type(); err != nil || typ != "htpasswd" {
		t.Errorf("Type = %q, %v", typ, err)
	}

	const n = 100
	users := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := conns[i%2].NewUser(ctx, dbplugin.NewUserRequest{
				UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "tok", RoleName: "web"},
				Password:       fmt.Sprintf("password-%d", i),
			})
			if err != nil {
				errs <- err
				return
			}
			users[i] = resp.Username
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	c := htpasswd.Parse(string(b))
	for i, u := range users {
		h, ok := c.Hash(u)
		if !ok || bcrypt.CompareHashAndPassword([]byte(h), []byte(fmt.Sprintf("password-%d", i))) != nil {
			t.Errorf("user %d (%q) does not verify", i, u)
		}
	}
	if v := conns[0].(logical.PluginVersioner).PluginVersion().Version; v != "" {
		t.Logf("reported version %q", v)
	}

	// Rotate and revoke through the binary.
	if _, err := conns[1].UpdateUser(ctx, dbplugin.UpdateUserRequest{Username: users[0], Password: &dbplugin.ChangePassword{NewPassword: "rotated"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := conns[0].DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: users[1]}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	c = htpasswd.Parse(string(b))
	if h, _ := c.Hash(users[0]); bcrypt.CompareHashAndPassword([]byte(h), []byte("rotated")) != nil {
		t.Error("rotated password does not verify")
	}
	if c.Has(users[1]) || len(c.Users()) != n-1 {
		t.Errorf("after delete: %d users, deleted present %v", len(c.Users()), c.Has(users[1]))
	}
}

// TestBinaryInitializeBadPath: a path the plugin cannot write is refused
// at configuration time, and the connection stays unusable.
func TestBinaryInitializeBadPath(t *testing.T) {
	servetest.SkipOnRealHost(t, "a Connection's raw dbplugin calls (NewUser, UpdateUser, DeleteUser, Type)")
	bin := servetest.Build(t, "./cmd/vault-plugin-database-htpasswd")
	p := servetest.StartDatabase(t, bin)
	db := p.Connect(t)
	err := initialize(t, db, "/nonexistent-dir/htpasswd", nil)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent-dir") {
		t.Fatalf("Initialize with a bad path: %v", err)
	}
	if _, err := db.NewUser(context.Background(), dbplugin.NewUserRequest{Password: "x"}); err == nil || !strings.Contains(err.Error(), "not initialized") {
		t.Errorf("NewUser before a successful Initialize: %v", err)
	}
}

// TestBinaryTwoProcesses: two plugin processes (as Vault runs for two
// catalog entries) writing one file concurrently lose nothing: the file
// lock serializes them across processes.
func TestBinaryTwoProcesses(t *testing.T) {
	servetest.SkipOnRealHost(t, "a Connection's raw dbplugin calls (NewUser, UpdateUser, DeleteUser, Type)")
	bin := servetest.Build(t, "./cmd/vault-plugin-database-htpasswd")
	path := filepath.Join(t.TempDir(), "htpasswd")
	ctx := context.Background()
	var conns []dbplugin.Database
	for range 2 {
		p := servetest.StartDatabase(t, bin)
		db := p.Connect(t)
		if err := initialize(t, db, path, nil); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, db)
	}
	const n = 60
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := conns[i%2].NewUser(ctx, dbplugin.NewUserRequest{
				UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "p", RoleName: "r"},
				Password:       "pw",
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, _ := os.ReadFile(path)
	if got := len(htpasswd.Parse(string(b)).Users()); got != n {
		t.Fatalf("%d users in the file, want %d", got, n)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".htpasswd.tmp-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

// TestBinaryEngineSequence drives the plugin as Vault's database engine
// does, through servetest's helpers: configure with a verified
// connection, issue credentials with a Vault-generated password, renew,
// rotate, revoke.
func TestBinaryEngineSequence(t *testing.T) {
	ctx := context.Background()
	conn := servetest.StartDatabase(t, servetest.Build(t, "./cmd/vault-plugin-database-htpasswd")).Connect(t)
	path := filepath.Join(t.TempDir(), "htpasswd")
	stored, err := conn.Configure(ctx, map[string]any{"htpasswd_file": path, "bcrypt_cost": 4})
	if err != nil {
		t.Fatal(err)
	}
	if stored["htpasswd_file"] != path {
		t.Errorf("stored configuration %v, want its path", stored)
	}
	if _, err := conn.Configure(ctx, map[string]any{"htpasswd_file": "/nonexistent-dir/htpasswd"}); err == nil {
		t.Error("a configuration whose connection does not verify was accepted")
	}

	role := servetest.Role{Name: "web", TTL: time.Hour}
	creds, err := conn.NewCredentials(ctx, role)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.Username, "v-token-web-") || len(creds.Password) != 20 {
		t.Errorf("credentials %q / %d characters, want a v-token-web- name and Vault's 20-character password", creds.Username, len(creds.Password))
	}
	verifies := func(user, password string) bool {
		b, _ := os.ReadFile(path)
		h, ok := htpasswd.Parse(string(b)).Hash(user)
		return ok && bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil
	}
	if !verifies(creds.Username, creds.Password) {
		t.Fatal("the issued password does not verify")
	}
	if err := conn.RenewCredentials(ctx, role, creds.Username, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	rotated, err := conn.RotatePassword(ctx, creds.Username)
	if err != nil {
		t.Fatal(err)
	}
	if rotated == creds.Password || !verifies(creds.Username, rotated) {
		t.Error("the rotated password does not verify")
	}
	if err := conn.Revoke(ctx, role, creds.Username); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); htpasswd.Parse(string(b)).Has(creds.Username) {
		t.Error("the revoked user is still in the file")
	}
}

package htpasswd_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"golang.org/x/crypto/bcrypt"

	htpasswd "github.com/plugkit/vaultplugin/example/database"
)

func TestParseKeepsWhatItDoesNotManage(t *testing.T) {
	in := "# managed by hand\nalice:$apr1$x$y\n\nnot an entry\n#vault-expires v-a 2026-01-02T03:04:05Z\nv-a:$2y$05$h\n"
	c := htpasswd.Parse(in)
	if got := c.String(); got != in {
		t.Fatalf("round trip:\n%q\n%q", in, got)
	}
	if u := c.Users(); strings.Join(u, ",") != "alice,v-a" {
		t.Errorf("users = %v", u)
	}
	if exp, ok := c.Expiration("v-a"); !ok || exp.Year() != 2026 {
		t.Errorf("expiration = %v %v", exp, ok)
	}
	c.Delete("v-a")
	if got := c.String(); got != "# managed by hand\nalice:$apr1$x$y\n\nnot an entry\n" {
		t.Errorf("after delete: %q", got)
	}
	if htpasswd.Parse("").String() != "" {
		t.Error("an empty file must stay empty")
	}
}

func initialize(t *testing.T, db dbplugin.Database, path string, extra map[string]any) error {
	t.Helper()
	cfg := map[string]any{"htpasswd_file": path, "bcrypt_cost": 4}
	for k, v := range extra {
		cfg[k] = v
	}
	_, err := db.Initialize(context.Background(), dbplugin.InitializeRequest{Config: cfg, VerifyConnection: true})
	return err
}

func TestInitializeErrors(t *testing.T) {
	raw, _ := htpasswd.New()
	db := raw.(dbplugin.Database)
	for _, tc := range []struct {
		path  string
		extra map[string]any
		want  string
	}{
		{"", nil, "htpasswd_file is required"},
		{"relative/file", nil, "must be an absolute path"},
		{filepath.Join(t.TempDir(), "missing-dir", "htpasswd"), nil, "no such file or directory"},
		{filepath.Join(t.TempDir(), "htpasswd"), map[string]any{"bcrypt_cost": 99}, "bcrypt_cost 99 must be"},
		{filepath.Join(t.TempDir(), "htpasswd"), map[string]any{"username_template": "{{ .Nope"}, "parsing username_template"},
	} {
		if err := initialize(t, db, tc.path, tc.extra); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Initialize(%q, %v) = %v, want %q", tc.path, tc.extra, err, tc.want)
		}
	}
}

func TestUserLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	raw, _ := htpasswd.New()
	db := raw.(dbplugin.Database)
	if err := initialize(t, db, path, map[string]any{"username_template": "{{ .RoleName }}-{{ .DisplayName }}"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	resp, err := db.NewUser(ctx, dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token", RoleName: "web"},
		Password:       "pw-one", Expiration: exp,
	})
	if err != nil || resp.Username != "web-token" {
		t.Fatalf("NewUser = %v, %v", resp, err)
	}
	check := func(pw string) {
		t.Helper()
		b, _ := os.ReadFile(path)
		c := htpasswd.Parse(string(b))
		h, ok := c.Hash("web-token")
		if !ok || bcrypt.CompareHashAndPassword([]byte(h), []byte(pw)) != nil {
			t.Fatalf("%q does not verify in:\n%s", pw, b)
		}
	}
	check("pw-one")
	newExp := exp.Add(time.Hour)
	if _, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{Username: "web-token", Password: &dbplugin.ChangePassword{NewPassword: "pw-two"}, Expiration: &dbplugin.ChangeExpiration{NewExpiration: newExp}}); err != nil {
		t.Fatal(err)
	}
	check("pw-two")
	b, _ := os.ReadFile(path)
	if got, _ := htpasswd.Parse(string(b)).Expiration("web-token"); !got.Equal(newExp) {
		t.Errorf("expiration = %v, want %v", got, newExp)
	}
	if _, err := db.UpdateUser(ctx, dbplugin.UpdateUserRequest{Username: "nobody", Password: &dbplugin.ChangePassword{NewPassword: "x"}}); err == nil {
		t.Error("updating a missing user succeeded")
	}
	for range 2 { // deleting twice succeeds: Vault retries revocations
		if _, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: "web-token"}); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("file after delete: %q", b)
	}
}

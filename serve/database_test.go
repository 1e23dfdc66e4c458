package serve_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/serve/servetest"
)

const testDB = "./internal/testdb"

func dbHostEnv(extra ...string) []string {
	return append([]string{
		hostenv.EnvDatabaseCookie + "=" + hostenv.DatabaseCookieValue,
		"VAULT_VERSION=1.21.0",
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=true",
		"PLUGIN_PROTOCOL_VERSIONS=5,6",
	}, extra...)
}

// A broken database factory is a startup failure with its cause: the SDK
// prints it on stdout and then panics in plugin.Serve(nil).
func TestDatabaseFactoryFailures(t *testing.T) {
	bin := servetest.Build(t, testDB)
	for mode, cause := range map[string]string{
		"factoryerr": "database factory: the factory was told to fail",
		"wrongtype":  "database factory returned string, which is not a dbplugin.Database",
		"panic":      "database factory panicked: the factory panicked on purpose",
	} {
		t.Run(mode, func(t *testing.T) {
			r := run(t, bin, dbHostEnv("TESTDB_MODE="+mode))
			if mode != "panic" {
				assertStartupFailure(t, r, 1, cause)
				return
			}
			// A panic adds one record before the failure: its stack.
			recs := errorRecords(t, r.stderr)
			if r.code != 1 || len(recs) != 2 || recs[0]["stack"] == nil || !strings.Contains(fmt.Sprint(recs[1]["error"]), cause) {
				t.Errorf("exit %d, error records %v", r.code, recs)
			}
			if ls := lines(r.stdout); len(ls) != 1 || !strings.Contains(ls[0], cause) {
				t.Errorf("stdout = %q", r.stdout)
			}
		})
	}
}

func TestDatabaseRunByAPerson(t *testing.T) {
	bin := servetest.Build(t, testDB)
	r := run(t, bin, nil)
	if r.code != 1 || !strings.Contains(r.stderr, "-version=v0.3.0 database ") || !strings.Contains(r.stderr, "vault write database/config/") {
		t.Fatalf("exit %d stderr %s", r.code, r.stderr)
	}
}

func TestDatabaseServed(t *testing.T) {
	bin := servetest.Build(t, testDB)
	p := servetest.StartDatabase(t, bin)
	ctx := context.Background()
	a, b := p.Connect(t), p.Connect(t)
	for _, db := range []dbplugin.Database{a, b} {
		if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{}}); err != nil {
			t.Fatal(err)
		}
		if v := db.(logical.PluginVersioner).PluginVersion().Version; v != "v0.3.0" {
			t.Errorf("version = %q", v)
		}
	}
	// Errors never carry the request's password.
	_, err := a.NewUser(ctx, dbplugin.NewUserRequest{Password: "Sup3r-S3cret-pw"})
	if err == nil || strings.Contains(err.Error(), "Sup3r-S3cret-pw") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("NewUser error = %v", err)
	}
	_, err = b.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{"password": "conn-pw-123"}})
	if err == nil || strings.Contains(err.Error(), "conn-pw-123") {
		t.Errorf("Initialize error = %v", err)
	}
}

package servetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// inits returns what the test database plugin's Initialize calls got, as
// it records them in its TESTDB_INIT_FILE.
func inits(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func initOf(host string, verify bool) map[string]any {
	return map[string]any{"config": map[string]any{"host": host, "stored": true}, "verify": verify}
}

// A database plugin's upgrade re-initializes each connection with what
// Vault's engine stored of its configuration: the config the plugin's
// Initialize answered with, and verify_connection.
func TestDatabaseUpgrade(t *testing.T) {
	v1 := servetest.Build(t, database)
	v2 := copyAs(t, v1, "testdb--v2")
	file := filepath.Join(t.TempDir(), "inits")
	ctx := context.Background()
	d := servetest.StartDatabase(t, v1, servetest.WithEnv("TESTDB_INIT_FILE="+file))
	a, b, never := d.Connect(t), d.Connect(t), d.Connect(t)
	if _, err := a.Configure(ctx, map[string]any{"host": "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Configure(ctx, map[string]any{"host": "b", "verify_connection": false}); err != nil {
		t.Fatal(err)
	}
	if v := a.PluginVersion().Version; v != "v0.3.0" {
		t.Fatalf("v1 reports %q", v)
	}
	pid := d.PID()

	if err := d.Upgrade(ctx, v2); err != nil {
		skipIfEmulationOnly(t, err)
		t.Fatal(err)
	}
	if d.PID() == pid || d.Exited() {
		t.Errorf("PID %d after the upgrade (%d before), exited %v", d.PID(), pid, d.Exited())
	}
	// Configure's two, then the upgrade's: the stored config, the same
	// verify_connection; the connection never configured is not.
	want := []map[string]any{
		{"config": map[string]any{"host": "a"}, "verify": true},
		{"config": map[string]any{"host": "b"}, "verify": false},
		initOf("a", true), initOf("b", false),
	}
	if got := inits(t, file); !reflect.DeepEqual(got, want) {
		t.Errorf("Initialize calls:\n%v\nwant\n%v", got, want)
	}
	for _, c := range []*servetest.Connection{a, b} {
		if v := c.PluginVersion().Version; v != "v0.4.0" {
			t.Errorf("after the upgrade a connection reports %q", v)
		}
		if _, err := c.RotatePassword(ctx, "someone"); err != nil {
			t.Errorf("an engine call after the upgrade: %v", err)
		}
	}
	if _, err := never.Configure(ctx, map[string]any{"host": "later"}); err != nil {
		t.Errorf("configuring after the upgrade: %v", err)
	}
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := inits(t, file); len(got) != 8 || !reflect.DeepEqual(got[5:], []map[string]any{initOf("a", true), initOf("b", false), initOf("later", true)}) {
		t.Errorf("after Reload, Initialize calls: %v", got)
	}
}

// A database upgrade that fails leaves the old binary serving, every
// connection initialized again.
func TestDatabaseUpgradeFails(t *testing.T) {
	v1 := servetest.Build(t, database)
	for _, tc := range []struct {
		name, v2 string
		want     string
	}{
		{"does not start", copyAs(t, v1, "testdb--factoryerr"), "version unknown: it did not start"},
		{"refuses the configuration", copyAs(t, v1, "testdb--initerr"), "this version refuses the configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "inits")
			ctx := context.Background()
			d := servetest.StartDatabase(t, v1, servetest.WithEnv("TESTDB_INIT_FILE="+file))
			a := d.Connect(t)
			if _, err := a.Configure(ctx, map[string]any{"host": "a"}); err != nil {
				t.Fatal(err)
			}
			err := d.Upgrade(ctx, tc.v2)
			skipIfEmulationOnly(t, err)
			if err == nil {
				t.Fatal("the upgrade succeeded")
			}
			for _, want := range []string{"upgrading the database plugin testdb to " + tc.v2, "serves " + v1 + " (v0.3.0) again", tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if v := a.PluginVersion().Version; v != "v0.3.0" {
				t.Errorf("after the failed upgrade a connection reports %q", v)
			}
			if got := inits(t, file); len(got) != 2 || !reflect.DeepEqual(got[1], initOf("a", true)) {
				t.Errorf("Initialize calls: %v, want Configure's and the old binary's again", got)
			}
			if _, err := a.RotatePassword(ctx, "someone"); err != nil {
				t.Errorf("an engine call after the failed upgrade: %v", err)
			}
		})
	}
}

// After a kill, Vault's database engine fails the call that finds the
// process gone and opens the connection anew on the next one, initialized
// with what it stored.
func TestDatabaseKillThenCall(t *testing.T) {
	servetest.SkipOnRealHost(t, "the engine's connection reopened as played here, with the plugin's Initialize calls recorded")
	bin := servetest.Build(t, database)
	file := filepath.Join(t.TempDir(), "inits")
	ctx := context.Background()
	d := servetest.StartDatabase(t, bin, servetest.WithEnv("TESTDB_INIT_FILE="+file))
	a := d.Connect(t)
	if _, err := a.Configure(ctx, map[string]any{"host": "a"}); err != nil {
		t.Fatal(err)
	}
	pid := d.PID()
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotatePassword(ctx, "someone"); err == nil {
		t.Fatal("the first call after the kill succeeded; Vault's engine fails it")
	}
	if _, err := a.RotatePassword(ctx, "someone"); err != nil {
		t.Fatalf("the next call: %v", err)
	}
	if d.PID() == pid || d.Exited() {
		t.Errorf("PID %d after the restart (%d killed), exited %v", d.PID(), pid, d.Exited())
	}
	if got := inits(t, file); len(got) != 2 || !reflect.DeepEqual(got[1], initOf("a", true)) {
		t.Errorf("Initialize calls: %v", got)
	}
}

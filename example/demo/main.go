// Command demo builds the example plugins and serves them the way Vault
// does (handshake cookie, Vault's environment, AutoMTLS, multiplexing ids,
// storage through the broker), then drives them and prints what happened.
//
//	go run ./example/demo
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// plugins are the example mains, by name.
var plugins = []string{
	"./example/secrets/cmd/vault-plugin-secrets-example",
	"./example/auth/cmd/vault-plugin-auth-example",
	"./example/database/cmd/vault-plugin-database-htpasswd",
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "vaultplugin-demo-")
	if err != nil {
		return fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(dir)

	step("building the example plugins")
	bins := map[string]string{}
	for _, pkg := range plugins {
		name := filepath.Base(pkg)
		bin := filepath.Join(dir, name)
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
		bins[name] = bin
		say("built %s in %s", name, time.Since(start).Round(time.Millisecond))
	}

	if err := secretsDemo(ctx, bins["vault-plugin-secrets-example"]); err != nil {
		return err
	}
	if err := authDemo(ctx, bins["vault-plugin-auth-example"]); err != nil {
		return err
	}
	if err := databaseDemo(ctx, bins["vault-plugin-database-htpasswd"], dir); err != nil {
		return err
	}
	if err := opsDemo(ctx, bins["vault-plugin-secrets-example"]); err != nil {
		return err
	}
	if err := personDemo(ctx, bins["vault-plugin-secrets-example"]); err != nil {
		return err
	}
	step("done: every plugin served, answered and stopped cleanly")
	return nil
}

func secretsDemo(ctx context.Context, bin string) error {
	step("secrets engine: one process, two mounts (multiplexed)")
	p, err := servetest.New(ctx, bin)
	if err != nil {
		return fmt.Errorf("starting the secrets engine: %w", err)
	}
	defer p.Close()
	say("plugin pid %d, handshake in %s", p.PID(), p.HandshakeTime().Round(100*time.Microsecond))

	team1, err := p.NewMount(ctx, nil)
	if err != nil {
		return fmt.Errorf("mounting team1/: %w", err)
	}
	team2, err := p.NewMount(ctx, nil)
	if err != nil {
		return fmt.Errorf("mounting team2/: %w", err)
	}
	say("mounted team1/ (id %s) and team2/ (id %s) on pid %d", short(team1.ID), short(team2.ID), p.PID())

	if _, err := request(ctx, team1, logical.CreateOperation, "data/db/creds", map[string]any{"username": "app", "password": "s3cr3t"}); err != nil {
		return err
	}
	say("write team1/data/db/creds  username=app password=…")
	resp, err := request(ctx, team1, logical.ReadOperation, "data/db/creds", nil)
	if err != nil {
		return err
	}
	say("read  team1/data/db/creds  -> username=%v", resp.Data["username"])
	resp, err = request(ctx, team1, logical.ListOperation, "data/", nil)
	if err != nil {
		return err
	}
	say("list  team1/data/          -> %v", resp.Data["keys"])
	resp, err = request(ctx, team2, logical.ReadOperation, "data/db/creds", nil)
	if err != nil {
		return err
	}
	if resp != nil && resp.Data != nil {
		return errors.New("team2 sees team1's data: mounts are not isolated")
	}
	say("read  team2/data/db/creds  -> not found (each mount has its own storage)")
	entries, err := logical.CollectKeys(ctx, team1.Storage)
	if err != nil {
		return err
	}
	say("team1's storage, as Vault holds it: %v", entries)
	if v, ok := team1.Backend.(logical.PluginVersioner); ok {
		ver := v.PluginVersion().Version
		if ver == "" {
			ver = "(none: a development build; serve.WithVersion or go install module@version sets it)"
		}
		say("version reported to Vault: %s", ver)
	}
	if err := p.Close(); err != nil {
		return fmt.Errorf("stopping the secrets engine: %w", err)
	}
	say("stopped the way Vault does (graceful shutdown over gRPC)")
	return nil
}

func authDemo(ctx context.Context, bin string) error {
	step("auth method: create a user, log in")
	p, err := servetest.New(ctx, bin)
	if err != nil {
		return fmt.Errorf("starting the auth method: %w", err)
	}
	defer p.Close()
	say("plugin pid %d, handshake in %s", p.PID(), p.HandshakeTime().Round(100*time.Microsecond))
	m, err := p.NewMount(ctx, nil)
	if err != nil {
		return fmt.Errorf("mounting the auth method: %w", err)
	}
	if _, err := request(ctx, m, logical.CreateOperation, "users/alice", map[string]any{"password": "correct horse", "policies": "dev,reader", "ttl": "30m"}); err != nil {
		return err
	}
	say("write auth/example/users/alice  policies=dev,reader ttl=30m (password stored as a bcrypt hash)")
	resp, err := request(ctx, m, logical.UpdateOperation, "login", map[string]any{"username": "alice", "password": "correct horse"})
	if err != nil {
		return err
	}
	if resp == nil || resp.Auth == nil {
		return errors.New("login returned no auth")
	}
	say("login alice -> policies %v, ttl %s, renewable %v", resp.Auth.Policies, resp.Auth.TTL, resp.Auth.Renewable)
	_, err = request(ctx, m, logical.UpdateOperation, "login", map[string]any{"username": "alice", "password": "wrong"})
	if err == nil {
		return errors.New("a wrong password logged in")
	}
	say("login alice with a wrong password -> %v", err)
	return p.Close()
}

func databaseDemo(ctx context.Context, bin, dir string) error {
	step("database plugin: issue and revoke an htpasswd user")
	p, err := servetest.NewDatabase(ctx, bin)
	if err != nil {
		return fmt.Errorf("starting the database plugin: %w", err)
	}
	defer p.Close()
	say("plugin pid %d, handshake in %s", p.PID(), p.HandshakeTime().Round(100*time.Microsecond))
	db, err := p.NewConnection(ctx)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	file := filepath.Join(dir, "htpasswd")
	if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{"htpasswd_file": file}, VerifyConnection: true}); err != nil {
		return fmt.Errorf("initializing: %w", err)
	}
	say("write database/config/web htpasswd_file=%s", file)
	user, err := db.NewUser(ctx, dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token", RoleName: "web"},
		Password:       "generated-by-vault",
		Expiration:     time.Now().Add(time.Hour),
	})
	if err != nil {
		return fmt.Errorf("issuing a user: %w", err)
	}
	say("read database/creds/web -> username %s", user.Username)
	if err := showFile(file); err != nil {
		return err
	}
	if _, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: user.Username}); err != nil {
		return fmt.Errorf("revoking: %w", err)
	}
	say("lease revoked -> user %s deleted", user.Username)
	if err := showFile(file); err != nil {
		return err
	}
	return p.Close()
}

func showFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) == 0 {
		say("htpasswd file: (empty)")
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			say("htpasswd file: %s", l)
		}
	}
	return nil
}

// opsDemo shows what an operator who registered the plugin with
// -env VAULTPLUGIN_HTTP_ADDR=127.0.0.1:0 finds: the endpoint's address in
// the log, and the requests in the metrics.
func opsDemo(ctx context.Context, bin string) error {
	step("operators: metrics and profiles (-env VAULTPLUGIN_HTTP_ADDR=127.0.0.1:0)")
	p, err := servetest.New(ctx, bin, servetest.WithEnv("VAULTPLUGIN_HTTP_ADDR=127.0.0.1:0"))
	if err != nil {
		return fmt.Errorf("starting the secrets engine: %w", err)
	}
	defer p.Close()
	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, r := range p.Logs() {
			if r.Message == "serving profiles and metrics" {
				addr = fmt.Sprint(r.Fields["addr"])
			}
		}
	}
	if addr == "" {
		return errors.New("the plugin logged no endpoint address")
	}
	say("the plugin's log (INFO): serving profiles and metrics addr=%s", addr)
	m, err := p.NewMount(ctx, nil)
	if err != nil {
		return fmt.Errorf("mounting: %w", err)
	}
	for _, r := range []*logical.Request{
		{Operation: logical.CreateOperation, Path: "data/app", Data: map[string]any{"k": "v"}},
		{Operation: logical.ReadOperation, Path: "data/app"},
		{Operation: logical.ReadOperation, Path: "data/app"},
		{Operation: logical.ReadOperation, Path: "no/such/path"},
	} {
		r.MountPoint = "kv/" // Vault sets the mount point on every request
		_, _ = m.HandleRequest(ctx, r)
	}
	say("made 4 requests on kv/ (one to a path that does not exist); curl http://%s/metrics:", addr)
	body, err := httpGet(ctx, "http://"+addr+"/metrics")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(body, "\n") {
		for _, prefix := range []string{"vaultplugin_requests_total", "vaultplugin_request_errors_total", "vaultplugin_mounts ", "go_goroutines "} {
			if strings.HasPrefix(l, prefix) {
				say("  %s", l)
			}
		}
	}
	say("profiles: go tool pprof http://%s/debug/pprof/heap (or /profile, /goroutine?debug=2)", addr)
	say("a debugger: -env VAULTPLUGIN_DEBUG_WAIT=30s logs `dlv attach PID` and waits for it before serving")
	return p.Close()
}

func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b), nil
}

func personDemo(ctx context.Context, bin string) error {
	step("a person runs the plugin binary by hand")
	cmd := exec.CommandContext(ctx, bin)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		return fmt.Errorf("run by hand: want exit 1, got %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		say("%s", l)
	}
	say("(exit code %d)", ee.ExitCode())
	return nil
}

// request sends one request through the gRPC boundary; a logical error
// response comes back as an error.
func request(ctx context.Context, b logical.Backend, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	resp, err := b.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: data})
	if err != nil {
		return resp, fmt.Errorf("%s %s: %w", op, path, err)
	}
	if resp != nil && resp.IsError() {
		return resp, fmt.Errorf("%s %s: %w", op, path, resp.Error())
	}
	return resp, nil
}

func step(format string, args ...any) { fmt.Printf("\n== "+format+"\n", args...) }
func say(format string, args ...any)  { fmt.Printf("   "+format+"\n", args...) }

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// devMain is the plugin the dev loop serves: answer's value is what the
// test edits, kv/NAME stores what it is given.
const devMain = `package main

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/plugkit/vaultplugin/serve"
)

const answer = "one"

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{
		BackendType: logical.TypeLogical,
		Paths: []*framework.Path{
			{
				Pattern: "answer",
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
						return &logical.Response{Data: map[string]any{"answer": answer}}, nil
					}},
				},
			},
			{
				Pattern: "kv/" + framework.GenericNameRegex("name"),
				Fields:  map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}, "value": {Type: framework.TypeString}},
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.UpdateOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
						return nil, req.Storage.Put(ctx, &logical.StorageEntry{Key: d.Get("name").(string), Value: []byte(d.Get("value").(string))})
					}},
					logical.ReadOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
						e, err := req.Storage.Get(ctx, d.Get("name").(string))
						if err != nil || e == nil {
							return nil, err
						}
						return &logical.Response{Data: map[string]any{"value": string(e.Value)}}, nil
					}},
				},
			},
		},
	}
	return b, b.Setup(ctx, conf)
}

func main() { serve.Run(factory) }
`

// TestDevLoop runs `vaultplugin dev -vault BIN` on a plugin module as its
// author would, in a shell that still holds a stale VAULT_ADDR, edits the
// plugin's source, and checks that dev uses BIN and says so, that the
// change is served after the reload while the mount's data survives, that
// a broken build leaves the old plugin serving, that `vaultplugin
// register` registers another build, and that Ctrl-C leaves nothing
// running or behind.
func TestDevLoop(t *testing.T) {
	record(t, "vaultplugin dev: edit, rebuild, reload; register")
	if h := hostByKey("vault-1.21"); h.skip != "" {
		t.Skipf("%s: %s", h.name(), h.skip)
	}
	dir := t.TempDir()
	tool, err := vaultpluginTool()
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(dir, "devplug")
	if err := os.Mkdir(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod := fmt.Sprintf("module example.com/devplug\n\ngo 1.24\n\nrequire github.com/plugkit/vaultplugin v0.0.0\n\nreplace github.com/plugkit/vaultplugin => %s\n", repoRoot)
	sum, err := os.ReadFile(filepath.Join(repoRoot, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"go.mod": gomod, "go.sum": string(sum), "main.go": devMain} {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := goCmd(mod, 5*time.Minute, "mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}

	cmd := exec.Command(tool, "dev", "-vault", vaultBin, ".")
	cmd.Dir = mod
	// A Vault the shell once used, long stopped: -vault wins over it.
	stale := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cmd.Env = append(withoutVaultEnv(os.Environ()), "VAULT_ADDR="+stale, "VAULT_TOKEN=stale")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var seen []string
	waitFor := func(re string, limit time.Duration) []string {
		t.Helper()
		r := regexp.MustCompile(re)
		deadline := time.After(limit)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("vaultplugin dev ended before printing %q; it printed:\n%s\nstderr:\n%s", re, strings.Join(seen, "\n"), stderr.String())
				}
				seen = append(seen, l)
				t.Logf("dev: %s", l)
				if m := r.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-deadline:
				t.Fatalf("vaultplugin dev did not print %q within %s; it printed:\n%s\nstderr:\n%s", re, limit, strings.Join(seen, "\n"), stderr.String())
			}
		}
	}
	work := waitFor(`^work dir: (.+)$`, time.Minute)[1]
	waitFor(`^ignoring VAULT_ADDR=`+regexp.QuoteMeta(stale)+`: -vault starts a dev server of its own$`, time.Minute)
	server := waitFor(`^vault dev server (\S+) \((Vault v[^\s,)]+)[^)]*\) on (http://127\.0\.0\.1:\d+) \(log: `, time.Minute)
	if server[1] != vaultBin || server[2] != "Vault v"+hostByKey("vault-1.21").actual {
		t.Errorf("dev says it uses %s (%s), want %s (Vault v%s)", server[1], server[2], vaultBin, hostByKey("vault-1.21").actual)
	}
	first := waitFor(`mounted at devplug/, pid (\d+)`, 3*time.Minute)[1]
	addr := waitFor(`export VAULT_ADDR=(\S+)`, time.Minute)[1]
	if addr != server[3] {
		t.Errorf("dev exports VAULT_ADDR=%s, but said its server is on %s", addr, server[3])
	}
	token := waitFor(`export VAULT_TOKEN=(\S+)`, time.Minute)[1]
	waitFor(`^watching`, time.Minute)

	read := func(path string) (int, string) {
		return haAPI(addr, "GET", "devplug/"+path, token, nil)
	}
	if code, body := read("answer"); code != 200 || !strings.Contains(body, `"answer":"one"`) {
		t.Fatalf("answer before the edit: %d %s", code, body)
	}
	if code, body := haAPI(addr, "PUT", "devplug/kv/kept", token, map[string]any{"value": "still here"}); code != 204 {
		t.Fatalf("writing data: %d %s", code, body)
	}

	edit := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(mod, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mod, "main.go"), []byte(strings.Replace(string(b), from, to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit(`answer = "one"`, `answer = "two"`)
	second := waitFor(`^rebuilt in \S+, registered and reloaded in \S+, pid (\d+)`, 3*time.Minute)[1]
	if second == first {
		t.Errorf("the plugin's pid is %s before and after the reload", first)
	}
	if code, body := read("answer"); code != 200 || !strings.Contains(body, `"answer":"two"`) {
		t.Errorf("answer after the edit: %d %s", code, body)
	}
	if code, body := read("kv/kept"); code != 200 || !strings.Contains(body, "still here") {
		t.Errorf("the mount's data after the reload: %d %s", code, body)
	}

	edit(`answer = "two"`, `answer = two`)
	waitFor(`^build failed after \S+; the previous build is still serving`, 3*time.Minute)
	waitFor(`undefined: two`, time.Minute)
	if code, body := read("answer"); code != 200 || !strings.Contains(body, `"answer":"two"`) {
		t.Errorf("answer after a failed build: %d %s", code, body)
	}

	// register, one step of dev, for scripts: another build under another name.
	other := filepath.Join(dir, "devplug-copy")
	copyFile(t, filepath.Join(work, "plugins", "devplug"), other)
	reg := exec.Command(tool, "register", "-plugin-dir", filepath.Join(work, "plugins"), "-version", "v0.1.0", other)
	reg.Env = append(withoutVaultEnv(os.Environ()), "VAULT_ADDR="+addr, "VAULT_TOKEN="+token)
	out, err := reg.CombinedOutput()
	if err != nil {
		t.Fatalf("vaultplugin register: %v\n%s", err, out)
	}
	t.Logf("register: %s", strings.TrimSpace(string(out)))
	code, body := haAPI(addr, "GET", "sys/plugins/catalog/secret/devplug-copy?version=v0.1.0", token, nil)
	var entry struct {
		Data struct{ SHA256, Version string }
	}
	_ = json.Unmarshal([]byte(body), &entry)
	if code != 200 || entry.Data.SHA256 != sha(t, other) || entry.Data.Version != "v0.1.0" {
		t.Errorf("catalog entry after register: %d %s", code, body)
	}

	// Ctrl-C stops everything.
	pluginPIDsBefore := pluginPIDs(filepath.Join(work, "plugins"))
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("vaultplugin dev after Ctrl-C: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("vaultplugin dev did not stop within 60 s of Ctrl-C")
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("the work dir %s is left behind (%v)", work, err)
	}
	if left := alive(pluginPIDsBefore); len(left) > 0 {
		t.Errorf("plugin processes %v outlived vaultplugin dev", left)
	}
	if code, _ := haAPI(addr, "GET", "sys/health", "", nil); code != 0 {
		t.Errorf("the dev server still answers after Ctrl-C (%d)", code)
	}
}

// withoutVaultEnv drops VAULT_ADDR and VAULT_TOKEN, which make dev use a
// running Vault instead of its own.
func withoutVaultEnv(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "VAULT_ADDR=") && !strings.HasPrefix(e, "VAULT_TOKEN=") {
			out = append(out, e)
		}
	}
	return out
}

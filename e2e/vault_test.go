package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// VaultVersion is the release the suite proves the library against.
const VaultVersion = "v1.21.0"

const rootToken = "e2e-root"

var (
	vaultBin string            // the vault binary
	bins     map[string]string // example binaries by name
	repoRoot string
	summary  = &table{}
)

// plugins are the binaries the suite builds from the root module.
var plugins = map[string]string{
	"vault-plugin-secrets-example":   "./example/secrets/cmd/vault-plugin-secrets-example",
	"vault-plugin-auth-example":      "./example/auth/cmd/vault-plugin-auth-example",
	"vault-plugin-database-htpasswd": "./example/database/cmd/vault-plugin-database-htpasswd",
	"testplugin":                     "./serve/internal/testplugin",
}

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	if code == 0 {
		code = m.Run()
		summary.print(os.Stdout)
	}
	os.Exit(code)
}

func setup() (int, error) {
	wd, err := os.Getwd()
	if err != nil {
		return 1, err
	}
	repoRoot = filepath.Dir(wd)
	vaultBin, err = ensureVault()
	if err != nil {
		return 1, err
	}
	dir, err := os.MkdirTemp("", "vaultplugin-e2e-bin-")
	if err != nil {
		return 1, err
	}
	bins = map[string]string{}
	for name, pkg := range plugins {
		out := filepath.Join(dir, name)
		// -buildvcs=true: the binary's version comes from the build info,
		// as it would for a plugin built from a tagged checkout.
		cmd := exec.Command("go", "build", "-buildvcs=true", "-o", out, pkg)
		cmd.Dir = repoRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			return 1, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		bins[name] = out
	}
	return 0, nil
}

// ensureVault returns the cached Vault binary, building it from the Go
// module proxy first if needed (about 6 minutes on 2 cores). The cache is
// outside the repository and keyed by version; VAULTPLUGIN_VAULT_BIN
// overrides it.
func ensureVault() (string, error) {
	if p := os.Getenv("VAULTPLUGIN_VAULT_BIN"); p != "" {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "vaultplugin", "vault-"+VaultVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "e2e: building Vault %s into %s (once; about 6 minutes)\n", VaultVersion, bin)
	start := time.Now()
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-mod=mod", "-o", tmp, "github.com/hashicorp/vault")
	cmd.Dir = filepath.Join(repoRoot, "e2e", "vaultbuild")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building Vault: %w", err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "e2e: built Vault in %s\n", time.Since(start).Round(time.Second))
	return bin, nil
}

// vault is one `vault server -dev` on loopback with its own plugin directory.
type vault struct {
	t         *testing.T
	addr      string
	pluginDir string
	cmd       *exec.Cmd
	log       *syncBuffer
	done      chan struct{}
}

// startVault starts a dev server with the named plugin binaries copied
// into a fresh plugin directory (which the dev server registers at start).
func startVault(t *testing.T, names ...string) *vault {
	t.Helper()
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		copyFile(t, bins[n], filepath.Join(pluginDir, n))
	}
	port := freePort(t)
	v := &vault{t: t, addr: "http://127.0.0.1:" + strconv.Itoa(port), pluginDir: pluginDir, log: &syncBuffer{}, done: make(chan struct{})}
	v.cmd = exec.Command(vaultBin, "server", "-dev",
		"-dev-root-token-id="+rootToken,
		"-dev-listen-address=127.0.0.1:"+strconv.Itoa(port),
		"-dev-plugin-dir="+pluginDir,
		"-log-level=debug")
	v.cmd.Dir = dir
	v.cmd.Env = append(os.Environ(), "HOME="+dir, "VAULT_ADDR="+v.addr)
	v.cmd.Stdout, v.cmd.Stderr = v.log, v.log
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = v.cmd.Wait(); close(v.done) }()
	t.Cleanup(v.stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(v.addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return v
			}
		}
		select {
		case <-v.done:
			t.Fatalf("vault exited at start:\n%s", v.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault did not become healthy:\n%s", v.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (v *vault) stop() {
	select {
	case <-v.done:
	default:
		_ = v.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-v.done:
		case <-time.After(10 * time.Second):
			_ = v.cmd.Process.Kill()
			<-v.done
		}
	}
	if v.t.Failed() {
		v.t.Logf("vault log (tail):\n%s", tail(v.log.String(), 40))
	}
	// Whatever the test did, no plugin it started may outlive it.
	for _, pid := range pluginPIDs(v.pluginDir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// cli runs the vault CLI against this server.
func (v *vault) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, vaultBin, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.addr, "VAULT_TOKEN="+rootToken, "HOME="+v.t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs the CLI and fails the test on error.
func (v *vault) must(args ...string) string {
	v.t.Helper()
	out, err := v.cli(args...)
	if err != nil {
		v.t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// api calls the HTTP API and decodes the JSON answer.
func (v *vault) api(method, path, token string, body any) (int, map[string]any) {
	v.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, v.addr+"/v1/"+path, rd)
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// register copies nothing: the binary is already in the plugin directory.
func (v *vault) register(typ, name, command, version string, extra ...string) (string, error) {
	args := []string{"plugin", "register", "-sha256=" + sha(v.t, filepath.Join(v.pluginDir, command)), "-command=" + command}
	if version != "" {
		args = append(args, "-version="+version)
	}
	args = append(args, extra...)
	args = append(args, typ, name)
	return v.cli(args...)
}

// pluginPIDs lists the processes running a binary from dir.
func pluginPIDs(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || !strings.HasPrefix(exe, dir+string(os.PathSeparator)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue // exited, not yet reaped
			}
		}
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func binVersion(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command(bins[name], "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// eventually retries f until it succeeds or the limit passes.
func eventually(t *testing.T, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// table collects one row per test group for the closing summary.
type table struct {
	mu   sync.Mutex
	rows [][4]string
}

// record adds t's row when it ends.
func record(t *testing.T, group string) {
	start := time.Now()
	t.Cleanup(func() {
		result := "pass"
		switch {
		case t.Failed():
			result = "FAIL"
		case t.Skipped():
			result = "skip" // never shown as a pass: t.Skip's reason is in the -v output
		}
		summary.mu.Lock()
		summary.rows = append(summary.rows, [4]string{group, VaultVersion, result, time.Since(start).Round(100 * time.Millisecond).String()})
		summary.mu.Unlock()
	})
}

func (tb *table) print(w io.Writer) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) == 0 {
		return
	}
	width := len("test group")
	for _, r := range tb.rows {
		width = max(width, len(r[0]))
	}
	fmt.Fprintf(w, "\nproven against a real Vault (%s/%s):\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "  %-*s %-8s %-6s %s\n", width, "test group", "vault", "result", "time")
	for _, r := range tb.rows {
		fmt.Fprintf(w, "  %-*s %-8s %-6s %s\n", width, r[0], r[1], r[2], r[3])
	}
}

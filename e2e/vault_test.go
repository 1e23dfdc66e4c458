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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const rootToken = "e2e-root"

var (
	bins     map[string]string // example binaries by name
	binDir   string            // where they are
	repoRoot string
	summary  = &table{}
)

// plugins are the binaries the suite builds from the root module.
var plugins = map[string]string{
	"vault-plugin-secrets-example":   "./example/secrets/cmd/vault-plugin-secrets-example",
	"vault-plugin-auth-example":      "./example/auth/cmd/vault-plugin-auth-example",
	"vault-plugin-database-htpasswd": "./example/database/cmd/vault-plugin-database-htpasswd",
	"testplugin":                     "./serve/internal/testplugin",
	"probe":                          "./e2e/internal/probe",
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
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func setup() (int, error) {
	wd, err := os.Getwd()
	if err != nil {
		return 1, err
	}
	repoRoot = filepath.Dir(wd)
	if err := resolveHosts(); err != nil {
		return 1, err
	}
	dir, err := os.MkdirTemp("", "vaultplugin-e2e-bin-")
	if err != nil {
		return 1, err
	}
	binDir = dir
	bins = map[string]string{}
	for name, pkg := range plugins {
		out := filepath.Join(dir, name)
		// -buildvcs=true: the binary's version comes from the build info,
		// as it would for a plugin built from a tagged checkout.
		cmd := exec.Command("go", "build", "-buildvcs=true", "-o", out, pkg)
		cmd.Dir = repoRoot
		if strings.HasPrefix(pkg, "./e2e/") {
			cmd.Dir, pkg = wd, "./"+strings.TrimPrefix(pkg, "./e2e/")
			cmd.Args[len(cmd.Args)-1] = pkg
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			return 1, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		bins[name] = out
	}
	return 0, nil
}

// vault is one dev server of a host (`vault server -dev`, `bao server
// -dev`) on loopback with its own plugin directory.
type vault struct {
	t         *testing.T
	h         *host
	addr      string
	pluginDir string
	cmd       *exec.Cmd
	log       *syncBuffer
	done      chan struct{}
}

// startVault starts a dev server of host h with the named plugin binaries
// copied into a fresh plugin directory (which the dev server registers at
// start). OpenBao takes the same dev flags.
func startVault(t *testing.T, h *host, names ...string) *vault {
	t.Helper()
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		copyFile(t, bins[n], filepath.Join(pluginDir, n))
	}
	return launch(t, h, dir, pluginDir, true, "-dev-plugin-dir="+pluginDir)
}

// launch starts a dev server of host h in dir with the extra flags, its
// plugins in pluginDir, and, when healthy is true, waits until it answers
// (failing the test if it exits first). Otherwise the caller waits: for
// its exit (v.done) or its health.
func launch(t *testing.T, h *host, dir, pluginDir string, healthy bool, extra ...string) *vault {
	t.Helper()
	port := freePort(t)
	v := &vault{t: t, h: h, addr: "http://127.0.0.1:" + strconv.Itoa(port), pluginDir: pluginDir, log: &syncBuffer{}, done: make(chan struct{})}
	v.cmd = exec.Command(h.bin, append([]string{"server", "-dev",
		"-dev-root-token-id=" + rootToken,
		"-dev-listen-address=127.0.0.1:" + strconv.Itoa(port),
		"-log-level=debug"}, extra...)...)
	v.cmd.Dir = dir
	v.cmd.Env = append(os.Environ(), "HOME="+dir, "VAULT_ADDR="+v.addr, "BAO_ADDR="+v.addr)
	v.cmd.Stdout, v.cmd.Stderr = v.log, v.log
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = v.cmd.Wait(); close(v.done) }()
	t.Cleanup(v.stop)
	if healthy {
		v.waitHealthy()
	}
	return v
}

// waitHealthy waits until the server answers its health check, and fails
// the test if it exits first or does not answer within a minute.
func (v *vault) waitHealthy() {
	v.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(v.addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-v.done:
			v.t.Fatalf("%s exited at start:\n%s", v.h.name(), v.log.String())
		default:
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("%s did not become healthy:\n%s", v.h.name(), v.log.String())
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
		v.t.Logf("%s log (tail):\n%s", v.h.name(), tail(v.log.String(), 40))
	}
	// Whatever the test did, no plugin it started may outlive it.
	for _, pid := range pluginPIDs(v.pluginDir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// cli runs the host's CLI (the server binary: `vault`, `bao`) against this
// server. OpenBao reads BAO_ADDR and BAO_TOKEN, and VAULT_* when those are
// unset: both are set.
func (v *vault) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, v.h.bin, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.addr, "VAULT_TOKEN="+rootToken, "BAO_ADDR="+v.addr, "BAO_TOKEN="+rootToken, "HOME="+v.t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs the CLI and fails the test on error.
func (v *vault) must(args ...string) string {
	v.t.Helper()
	out, err := v.cli(args...)
	if err != nil {
		v.t.Fatalf("%s: %s %s: %v\n%s", v.h.name(), filepath.Base(v.h.bin), strings.Join(args, " "), err, out)
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

// register registers a binary already in the plugin directory, as an
// operator would with `vault plugin register`; extra are its flags (-env,
// -args). OpenBao's CLI has no -env flag (seen on 2.6.2: "flag provided but
// not defined: -env"), though its API takes env: there the same catalog
// entry is written with `bao write sys/plugins/catalog/TYPE/NAME`, which is
// what an OpenBao operator does.
func (v *vault) register(typ, name, command, version string, extra ...string) (string, error) {
	sum := sha(v.t, filepath.Join(v.pluginDir, command))
	if v.h.openBao() && slices.ContainsFunc(extra, func(e string) bool { return strings.HasPrefix(e, "-env=") }) {
		args := []string{"write", "sys/plugins/catalog/" + typ + "/" + name, "sha256=" + sum, "command=" + command}
		if version != "" {
			args = append(args, "version="+version)
		}
		for _, e := range extra {
			k, val, ok := strings.Cut(strings.TrimPrefix(e, "-"), "=")
			if !ok || (k != "env" && k != "args") {
				v.t.Fatalf("register: no catalog field for %q", e)
			}
			args = append(args, k+"="+val)
		}
		return v.cli(args...)
	}
	args := []string{"plugin", "register", "-sha256=" + sum, "-command=" + command}
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
		if zombie(pid) {
			continue // exited, not yet reaped
		}
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}

// zombie reports whether pid has exited and waits to be reaped: state Z
// in /proc/PID/stat, after the command name (which may hold ')').
func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
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

// table collects one cell per test group and host for the closing summary.
type table struct {
	mu    sync.Mutex
	rows  []string                     // groups, in the order they first ended
	cells map[string]map[string]string // group → host key → "pass 1.2s"
	notes []string                     // why a cell is skip or n/a
	facts map[string]string            // host key → what the probe saw
	// details are words a group adds after a cell's result and time
	// (group → host key → text), for what one word cannot say: a test
	// package's counts, whether the host honoured a variable.
	details map[string]map[string]string
}

// detail sets the words printed after group's cell for host h.
func (tb *table) detail(group string, h *host, s string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.details == nil {
		tb.details = map[string]map[string]string{}
	}
	if tb.details[group] == nil {
		tb.details[group] = map[string]string{}
	}
	tb.details[group][h.key] = s
}

// note adds a line printed under the table.
func (tb *table) note(s string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.notes = append(tb.notes, s)
}

// fact keeps what the compat probe saw on host h, printed with the hosts.
func (tb *table) fact(h *host, s string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.facts == nil {
		tb.facts = map[string]string{}
	}
	tb.facts[h.key] = s
}

// row adds group's row, if new: rows are in the order groups start.
func (tb *table) row(group string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rowLocked(group)
}

func (tb *table) rowLocked(group string) {
	if tb.cells == nil {
		tb.cells = map[string]map[string]string{}
	}
	if tb.cells[group] == nil {
		tb.cells[group] = map[string]string{}
		tb.rows = append(tb.rows, group)
	}
}

func (tb *table) add(group string, h *host, result string, took time.Duration, why string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rowLocked(group)
	cell := result
	if took > 0 {
		cell += " " + took.Round(100*time.Millisecond).String()
	}
	tb.cells[group][h.key] = cell
	if why != "" && result == "n/a" {
		tb.notes = append(tb.notes, fmt.Sprintf("%s on %s: n/a: %s", group, h.name(), why))
	}
}

// record adds t's cell for the newest Vault when it ends: for a group that
// runs on that one host (e.g. the HA cluster), not on every host.
func record(t *testing.T, group string) { recordOn(t, hostByKey("vault-1.21"), group) }

// recordOn adds t's cell for host h when it ends.
func recordOn(t *testing.T, h *host, group string) {
	summary.row(group)
	start := time.Now()
	t.Cleanup(func() {
		result := "pass"
		switch {
		case t.Failed():
			result = "FAIL"
		case t.Skipped():
			result = "skip" // never shown as a pass: t.Skip's reason is in the -v output
		}
		summary.add(group, h, result, time.Since(start), "")
	})
}

// print writes the group × host table, then each host's binary or the
// reason it was skipped, then why any cell is n/a.
func (tb *table) print(w io.Writer) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) == 0 {
		return
	}
	width := len("test group")
	for _, r := range tb.rows {
		width = max(width, len(r))
	}
	cell := func(r string, h *host) string {
		c := tb.cells[r][h.key]
		if c == "" {
			return "-"
		}
		if d := tb.details[r][h.key]; d != "" {
			c += " " + d
		}
		return c
	}
	cols := map[string]int{} // host key → its column's width
	for _, h := range hosts {
		cols[h.key] = max(14, len(h.name()))
		for _, r := range tb.rows {
			cols[h.key] = max(cols[h.key], len(cell(r, h)))
		}
	}
	fmt.Fprintf(w, "\nproven against real hosts (%s/%s):\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "  %-*s", width, "test group")
	for _, h := range hosts {
		fmt.Fprintf(w, " %-*s", cols[h.key], h.name())
	}
	fmt.Fprintln(w)
	for _, r := range tb.rows {
		fmt.Fprintf(w, "  %-*s", width, r)
		for _, h := range hosts {
			fmt.Fprintf(w, " %-*s", cols[h.key], cell(r, h))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "  (- = not run there: a group of one host, or left out by -run)")
	fmt.Fprintln(w, "hosts:")
	for _, h := range hosts {
		if h.skip != "" {
			fmt.Fprintf(w, "  %s (%s): skipped: %s\n", h.name(), h.key, h.skip)
		} else {
			fmt.Fprintf(w, "  %s (%s): %s (%s)\n", h.name(), h.key, h.bin, h.origin)
		}
		if f := tb.facts[h.key]; f != "" {
			fmt.Fprintf(w, "    probe: %s\n", f)
		}
	}
	for _, n := range tb.notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

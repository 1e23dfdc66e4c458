package servetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// hostStartTimeout bounds a dev server's start: one is ready in about a
// second, a cold disk and a busy machine take a few.
const hostStartTimeout = 60 * time.Second

// hostRequestTimeout bounds one call to the host's API that has no
// deadline of its own: a mount or a registration that takes longer is
// stuck, and the test should hear so.
const hostRequestTimeout = 2 * time.Minute

// hostStartAttempts is how often a dev server's start is tried on fresh
// ports when one chosen was taken meanwhile: a free port is found by
// listening on it and closing it, and another process (another package's
// test binary, which go test runs in parallel) may take it, or the one
// after it, before the server binds them.
const hostStartAttempts = 3

// hostServers holds the one dev server per host binary of this test
// process. It is package-level state because the server is shared by
// every test of the binary, whichever package-level function (Start, New,
// StartDatabase, NewDatabase) asks first, and a test binary has no other
// place that outlives one test and no hook at its end: starting a server
// per test would cost a second or more each. The servers end with the
// test binary (see startHostProcess), so nothing outlives it.
var hostServers = struct {
	mu sync.Mutex
	m  map[string]*hostServer
}{m: map[string]*hostServer{}}

// hostServer is one running dev server and what the tests share of it.
type hostServer struct {
	bin  string // the host binary, absolute
	once sync.Once
	err  error // why it did not start; set once

	info      Host
	api       *hostAPI
	dir       string // HOME, plugins/ and the log
	pluginDir string
	pid       int
	exited    <-chan struct{}
	log       *hostLog

	startTook time.Duration // what the start took, for the tests' numbers

	mu     sync.Mutex
	probes map[string]probed // what each binary said of itself, by probeKey
}

// sharedHost returns the dev server of the host binary bin, starting it on
// first use. A server that failed to start fails every later call with
// the same error, its own output included: servetest never falls back to
// the emulation.
func sharedHost(bin string) (*hostServer, error) {
	abs, err := resolveHost(bin)
	if err != nil {
		return nil, err
	}
	hostServers.mu.Lock()
	s := hostServers.m[abs]
	if s == nil {
		s = &hostServer{bin: abs, probes: map[string]probed{}}
		hostServers.m[abs] = s
	}
	hostServers.mu.Unlock()
	s.once.Do(func() {
		start := time.Now()
		s.err = s.start()
		s.startTook = time.Since(start)
	})
	if s.err != nil {
		return nil, s.err
	}
	select {
	case <-s.exited:
		return nil, fmt.Errorf("servetest: the %s dev server (%s) has exited; its log ends:\n%s", s.info.Name, s.bin, s.log.tail())
	default:
	}
	return s, nil
}

// resolveHost is the absolute path of the host binary bin: a path, or a
// name on PATH.
func resolveHost(bin string) (string, error) {
	if strings.HasPrefix(bin, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			bin = filepath.Join(home, bin[2:])
		}
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("servetest: the real host %q (%s or WithHost): %w", bin, HostEnv, err)
	}
	return filepath.Abs(p)
}

// start starts the dev server: its kind and version from `BIN version`,
// then the server on a free loopback port with a random root token, a
// plugin directory and HOME of its own, tried again on other ports if the
// one chosen was taken meanwhile.
func (s *hostServer) start() error {
	info, err := hostVersion(s.bin)
	if err != nil {
		return err
	}
	s.info = info
	removeStaleHostDirs()
	s.dir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", hostDirPrefix, os.Getpid()))
	if err != nil {
		return fmt.Errorf("servetest: a directory for the %s dev server: %w", info.Name, err)
	}
	s.pluginDir = filepath.Join(s.dir, "plugins")
	home := filepath.Join(s.dir, "home")
	for _, d := range []string{s.pluginDir, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("servetest: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		err := s.startOnce(home, attempt)
		if err == nil || attempt == hostStartAttempts || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
	}
}

// hostDirPrefix starts the name of each dev server's directory, followed
// by the test binary's pid, so a later run removes those of test binaries
// that are gone (see removeStaleHostDirs).
const hostDirPrefix = "servetest-host-"

// removeStaleHostDirs removes the directories of dev servers whose test
// binary has exited: the server outlives it by the moment it takes to
// stop, so it cannot remove its directory itself. What is left there is
// small (HOME, the log): each Process removes its binary's copy on Close.
func removeStaleHostDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), hostDirPrefix+"*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), hostDirPrefix)
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(m)
	}
}

// startOnce starts the server once and waits until it answers.
func (s *hostServer) startOnce(home string, attempt int) error {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("servetest: making the dev server's root token: %w", err)
	}
	token := "servetest-" + hex.EncodeToString(b)
	logPath := filepath.Join(s.dir, fmt.Sprintf("server-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("servetest: the dev server's log: %w", err)
	}
	defer logFile.Close() // the server holds its own descriptor
	// Trace, so the plugin's own records at every level reach the log
	// (the host re-logs them at their level); JSON, so Logs parses them
	// as it parses the plugin's stderr in the emulation.
	cmd := exec.Command(s.bin, "server", "-dev", "-dev-root-token-id="+token, "-dev-listen-address="+addr,
		"-dev-plugin-dir="+s.pluginDir, "-log-level=trace", "-log-format=json")
	cmd.Dir = s.dir
	cmd.Env = append(hostServerEnv(os.Environ()), "HOME="+home)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited, err := startHostProcess(cmd)
	if err != nil {
		return fmt.Errorf("servetest: starting %s: %w", s.bin, err)
	}
	s.pid, s.exited = cmd.Process.Pid, exited
	s.log = newHostLog(logPath, exited)
	s.info.Addr, s.info.Token = "http://"+addr, token
	s.api = newHostAPI(s.info)
	ctx, cancel := context.WithTimeout(context.Background(), hostStartTimeout)
	defer cancel()
	for {
		status, _, err := s.api.do(ctx, http.MethodGet, "sys/health", nil, nil, false)
		if err == nil && status == http.StatusOK {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("servetest: the %s dev server (%s) exited at its start; its log ends:\n%s", s.info.Name, s.bin, s.log.tail())
		case <-ctx.Done():
			stopHostProcess(cmd.Process, exited)
			return fmt.Errorf("servetest: the %s dev server (%s) did not answer within %s; its log ends:\n%s", s.info.Name, s.bin, hostStartTimeout, s.log.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopHostProcess stops a server that did not come up: SIGTERM, so it
// stops what it started, then a kill.
func stopHostProcess(p *os.Process, exited <-chan struct{}) {
	terminate(p)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = p.Kill()
		<-exited
	}
}

// freeLoopbackAddr is 127.0.0.1 and a port P that was free a moment
// ago, with P+1 free too: a dev server also binds its cluster listener
// on the API port plus one (Vault's and OpenBao's InitListeners, which
// synthesize the cluster address so; a bind failure there fails the
// start), and two test binaries must not collide on either. Another
// process may still take one before the server binds it; start then
// tries fresh ports.
func freeLoopbackAddr() (string, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("servetest: finding a free port for the dev server: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		cl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			cl.Close()
			return l.Addr().String(), nil
		}
	}
	return "", errors.New("servetest: found no two free neighbouring ports on 127.0.0.1 for the dev server and its cluster listener")
}

// hostServerEnv is env without what points a Vault, an OpenBao or their
// CLIs at another server or token (a shell may hold stale ones), so the
// dev server, its plugins and the addresses it hands them are its own.
// An operator switch such as VAULT_PLUGIN_MULTIPLEXING_OPT_OUT stays: a
// test may set it to see what operators see.
func hostServerEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || k == HostEnv || hostClientVar(k) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// hostClientVar reports whether k points a Vault or OpenBao, or their
// CLI, at a server, a token or a namespace, or sets its log's form.
func hostClientVar(k string) bool {
	for _, prefix := range []string{"VAULT_", "BAO_"} {
		switch strings.TrimPrefix(k, prefix) {
		case "ADDR", "TOKEN", "API_ADDR", "CLUSTER_ADDR", "REDIRECT_ADDR", "NAMESPACE",
			"CACERT", "CAPATH", "CLIENT_CERT", "CLIENT_KEY", "LOG_LEVEL", "LOG_FORMAT":
			if strings.HasPrefix(k, prefix) {
				return true
			}
		}
	}
	return false
}

// hostVersion is what `BIN version` says: "Vault v1.21.0 (…)" or
// "OpenBao v2.6.2 (…)".
func hostVersion(bin string) (Host, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		return Host{}, fmt.Errorf("servetest: the real host %s (%s): %s version: %w: %s", bin, HostEnv, bin, err, line)
	}
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[1], "v") || (f[0] != "Vault" && f[0] != "OpenBao") {
		return Host{}, fmt.Errorf("servetest: the real host %s (%s) is neither Vault nor OpenBao: `%s version` says %q", bin, HostEnv, bin, line)
	}
	return Host{Name: f[0], Version: strings.TrimSuffix(strings.TrimPrefix(f[1], "v"), ","), Real: true}, nil
}

// hostAPI is a real host's HTTP API, as its root token reaches it.
type hostAPI struct {
	info   Host
	client *http.Client
}

func newHostAPI(info Host) *hostAPI {
	return &hostAPI{info: info, client: &http.Client{
		Timeout: hostRequestTimeout,
		// A redirect is an answer to report, as the emulation reports
		// the 307 of a path with "." or "//" in it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends one request to path (below /v1/), with query and a JSON body
// (nil for none), with the root token when token is set, and returns the
// status and the body.
func (a *hostAPI) do(ctx context.Context, method, path string, query url.Values, body any, token bool) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("servetest: %s %s: encoding the request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := a.info.Addr + "/v1/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("servetest: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		}
	}
	if token {
		req.Header.Set("X-Vault-Token", a.info.Token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("servetest: %s %s on %s: %w", method, path, a.info.Name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("servetest: %s %s: %s answered %d, and reading the answer failed: %w", method, path, a.info.Name, resp.StatusCode, err)
	}
	return resp.StatusCode, raw, nil
}

// call is do with the root token for servetest's own requests (catalog,
// mounts, leases): an answer of 300 or more is a *ResponseError, a
// success its JSON object (nil for 204).
func (a *hostAPI) call(ctx context.Context, method, path string, body any) (map[string]any, error) {
	status, raw, err := a.do(ctx, method, path, nil, body, true)
	if err != nil {
		return nil, err
	}
	if status >= 300 {
		return nil, a.responseError(status, raw)
	}
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("servetest: %s %s: %s answered %d, not with JSON: %.200s", method, path, a.info.Name, status, raw)
		}
	}
	return out, nil
}

// hostLog is the dev server's log, which it writes to a file: records that
// name a plugin's catalog entry are handed to that plugin's Process for
// Logs, WithStderr and WithHostLogger, and the last lines are kept for a
// failure's message. A file and not a pipe: a Go program killed by the
// SIGPIPE of a reader that died (the test binary) would leave its plugins
// running.
type hostLog struct {
	path string

	mu      sync.Mutex
	off     int64
	partial []byte
	last    []string
	subs    map[*hostLogSub]struct{}
}

// hostLogSub is one plugin's share of the log: the lines that contain
// match.
type hostLogSub struct {
	match  string
	lines  *lineLog
	stderr io.Writer
	logger hclog.Logger
}

// hostLogTail is how many of the server's last lines a failure shows.
const hostLogTail = 20

func newHostLog(path string, exited <-chan struct{}) *hostLog {
	l := &hostLog{path: path, subs: map[*hostLogSub]struct{}{}}
	// Streams the lines to WithStderr and WithHostLogger while the
	// server runs; Logs reads up to the end itself.
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-exited:
				l.catchUp()
				return
			case <-t.C:
				l.catchUp()
			}
		}
	}()
	return l
}

// catchUp reads what the server wrote since the last call and hands each
// whole line on.
func (l *hostLog) catchUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return
	}
	b, err := io.ReadAll(f)
	if err != nil || len(b) == 0 {
		return
	}
	l.off += int64(len(b))
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.last = append(l.last, line)
		if len(l.last) > hostLogTail {
			l.last = l.last[len(l.last)-hostLogTail:]
		}
		for sub := range l.subs {
			if strings.Contains(line, sub.match) {
				sub.deliver(line)
			}
		}
	}
}

func (sub *hostLogSub) deliver(line string) {
	_, _ = sub.lines.Write([]byte(line + "\n"))
	if sub.stderr != nil {
		_, _ = io.WriteString(sub.stderr, line+"\n")
	}
	if sub.logger != nil {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			sub.logger.Debug(line)
			return
		}
		level := hclog.LevelFromString(fmt.Sprint(rec["@level"]))
		if level == hclog.NoLevel {
			level = hclog.Info
		}
		msg := fmt.Sprint(rec["@message"])
		var args []any
		for k, v := range rec {
			if !strings.HasPrefix(k, "@") {
				args = append(args, k, v)
			}
		}
		sub.logger.Log(level, msg, args...)
	}
}

// subscribe hands the lines containing match to a new sub from now on;
// the returned func ends that, after reading up to the end.
func (l *hostLog) subscribe(sub *hostLogSub) (unsubscribe func()) {
	l.catchUp()
	l.mu.Lock()
	l.subs[sub] = struct{}{}
	l.mu.Unlock()
	return func() {
		l.catchUp()
		l.mu.Lock()
		delete(l.subs, sub)
		l.mu.Unlock()
	}
}

// tail is the server's last lines, read up to the end.
func (l *hostLog) tail() string {
	l.catchUp()
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.last
	if len(l.partial) > 0 {
		lines = append(append([]string(nil), lines...), string(l.partial))
	}
	if len(lines) == 0 {
		return "  (empty)"
	}
	return "  " + strings.Join(lines, "\n  ")
}

// randomName is n random lowercase letters and digits, for the names of
// catalog entries and mounts that parallel tests must not share.
func randomName(n int) (string, error) {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("servetest: generating a name: %w", err)
	}
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b), nil
}

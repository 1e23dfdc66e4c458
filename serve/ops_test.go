package serve_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/plugkit/vaultplugin/internal/promtext"
	"github.com/plugkit/vaultplugin/serve/servetest"
)

func TestOpsSettingsRefused(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // the subtests run after this function returns
	for _, tc := range []struct{ env, cause string }{
		{"VAULTPLUGIN_HTTP_ADDR=0.0.0.0:0", `VAULTPLUGIN_HTTP_ADDR: "0.0.0.0:0" means every interface: only a loopback address is allowed`},
		{"VAULTPLUGIN_HTTP_ADDR=[::]:9100", `VAULTPLUGIN_HTTP_ADDR: "[::]:9100" means every interface`},
		{"VAULTPLUGIN_HTTP_ADDR=:9100", `VAULTPLUGIN_HTTP_ADDR: ":9100" has no host, which means every interface`},
		{"VAULTPLUGIN_HTTP_ADDR=10.1.2.3:9100", `VAULTPLUGIN_HTTP_ADDR: "10.1.2.3:9100" is not a loopback address`},
		{"VAULTPLUGIN_HTTP_ADDR=127.0.0.1", `VAULTPLUGIN_HTTP_ADDR: "127.0.0.1" is not HOST:PORT`},
		{"VAULTPLUGIN_HTTP_ADDR=" + busy.Addr().String(), "VAULTPLUGIN_HTTP_ADDR: listening on " + busy.Addr().String()},
		{"VAULTPLUGIN_DEBUG_WAIT=soon", `VAULTPLUGIN_DEBUG_WAIT="soon": want a duration such as 30s`},
		{"VAULTPLUGIN_DEBUG_WAIT=-5s", `VAULTPLUGIN_DEBUG_WAIT="-5s": the wait must not be negative`},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Parallel()
			r := run(t, bin, hostEnv(tc.env))
			assertStartupFailure(t, r, 1, tc.cause)
			if !strings.Contains(r.stdout, "vault plugin register") && !strings.Contains(r.stdout, "use port 0") {
				t.Errorf("the cause line has no hint: %q", r.stdout)
			}
		})
	}
}

// opsAddr returns the endpoint's address from the plugin's log record.
func opsAddr(t *testing.T, p *servetest.Process) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range p.Logs() {
			if r.Message == "serving profiles and metrics" {
				if r.Level != "info" {
					t.Errorf("the endpoint is logged at %s, want info", r.Level)
				}
				return fmt.Sprint(r.Fields["addr"])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no endpoint record; logs: %v", p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads /metrics, parses it strictly (the format, escapes, each
// family's lines together, histograms whole) and returns each sample's value
// by `name{label="value",…}` with the labels in name order.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	code, body := get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	e, err := promtext.Parse(body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return e.Samples
}

func mountRequest(m *servetest.Mount, mount string, op logical.Operation, path string, data map[string]any) error {
	resp, err := m.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, MountPoint: mount})
	if err == nil && resp.IsError() {
		err = resp.Error()
	}
	return err
}

func TestMetricsAndProfiles(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_MODE=version", "VAULTPLUGIN_HTTP_ADDR=127.0.0.1:0"))
	addr := opsAddr(t, p.Process)
	ctx := context.Background()

	before := scrape(t, addr)
	if before["vaultplugin_mounts"] != 0 || before[`vaultplugin_plugin_info{name="testplugin",version="v1.2.3"}`] != 1 {
		t.Errorf("before any mount: mounts %v, info %v", before["vaultplugin_mounts"], before[`vaultplugin_plugin_info{name="testplugin",version="v1.2.3"}`])
	}
	a := p.Mount(t, nil)
	b := p.Mount(t, nil)
	for _, err := range []error{
		mountRequest(a, "a/", logical.UpdateOperation, "kv/k", map[string]any{"value": "v"}),
		mountRequest(a, "a/", logical.ReadOperation, "kv/k", nil),
		mountRequest(a, "a/", logical.ReadOperation, "info", nil),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := mountRequest(b, "b/", logical.ReadOperation, "no/such/path", nil); err == nil {
		t.Fatal("an unsupported path answered")
	}
	// A mount point is the host's: a quote, a backslash or a newline in it
	// must be escaped, or the whole scrape is unreadable (scrape parses it
	// strictly).
	weird := "q\"\\\n/"
	if err := mountRequest(b, weird, logical.ReadOperation, "info", nil); err != nil {
		t.Fatal(err)
	}

	got := scrape(t, addr)
	for key, want := range map[string]float64{
		`vaultplugin_requests_total{mount="a/",operation="update"}`:                 1,
		`vaultplugin_requests_total{mount="a/",operation="read"}`:                   2,
		`vaultplugin_requests_total{mount="b/",operation="read"}`:                   1,
		`vaultplugin_request_errors_total{mount="a/",operation="read"}`:             0,
		`vaultplugin_request_errors_total{mount="b/",operation="read"}`:             1,
		`vaultplugin_request_duration_seconds_count{mount="a/",operation="read"}`:   2,
		`vaultplugin_request_duration_seconds_count{mount="b/",operation="read"}`:   1,
		`vaultplugin_requests_in_flight`:                                            0,
		`vaultplugin_mounts`:                                                        2,
		`vaultplugin_request_duration_seconds_count{mount="a/",operation="update"}`: 1,
		`vaultplugin_requests_total{mount="q\"\\\n/",operation="read"}`:             1,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	for _, key := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if _, ok := got[key]; !ok {
			t.Errorf("no %s: the runtime and process metrics are missing", key)
		}
	}

	a.Cleanup(ctx)
	if got := scrape(t, addr)["vaultplugin_mounts"]; got != 1 {
		t.Errorf("after one Cleanup: mounts = %v, want 1", got)
	}

	code, body := get(t, "http://"+addr+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") || !strings.Contains(body, "heap") {
		t.Errorf("pprof index: %d %s", code, body)
	}
	code, body = get(t, "http://"+addr+"/debug/pprof/goroutine?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200s", code, body)
	}
	code, body = get(t, "http://"+addr+"/debug/pprof/heap")
	// A protobuf profile is gzipped.
	if code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("heap profile: %d, %d bytes", code, len(body))
	}
	code, _ = get(t, "http://"+addr+"/debug/pprof/profile?seconds=0.2")
	if code != http.StatusOK {
		t.Errorf("CPU profile: %d", code)
	}

	// A page that points a name of its own at 127.0.0.1 is refused.
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Host = "attacker.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("Host attacker.example: %d, want 403", resp.StatusCode)
	}
}

func TestDatabaseMetrics(t *testing.T) {
	bin := servetest.Build(t, testDB)
	p := servetest.StartDatabase(t, bin, servetest.WithEnv("VAULTPLUGIN_HTTP_ADDR=localhost:0"))
	addr := opsAddr(t, p.Process)
	ctx := context.Background()
	a := p.Connect(t)
	if _, err := a.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	_, _ = a.NewUser(ctx, dbplugin.NewUserRequest{Password: "pw"})
	b := p.Connect(t)
	_, _ = b.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{"password": "x"}})
	got := scrape(t, addr)
	for key, want := range map[string]float64{
		`vaultplugin_database_calls_total{method="Initialize"}`:              2,
		`vaultplugin_database_call_errors_total{method="Initialize"}`:        1,
		`vaultplugin_database_calls_total{method="NewUser"}`:                 1,
		`vaultplugin_database_call_errors_total{method="NewUser"}`:           1,
		`vaultplugin_database_call_duration_seconds_count{method="NewUser"}`: 1,
		`vaultplugin_database_connections`:                                   1,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}

// waitingPlugin starts bin as a host would (without a client) and returns
// it with a channel of its stderr records and one that yields the time of
// its handshake line.
func waitingPlugin(t *testing.T, bin string, env ...string) (*exec.Cmd, <-chan map[string]any, <-chan time.Time) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), hostEnv(env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	records := make(chan map[string]any, 100)
	go func() {
		defer close(records)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				records <- m
			}
		}
	}()
	handshake := make(chan time.Time, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.HasPrefix(line, "1|5|unix|") {
			handshake <- time.Now()
		}
		close(handshake)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return cmd, records, handshake
}

// nextRecord returns the next record whose message has prefix.
func nextRecord(t *testing.T, records <-chan map[string]any, prefix string) map[string]any {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-records:
			if !ok {
				t.Fatalf("stderr closed before a %q record", prefix)
			}
			if strings.HasPrefix(fmt.Sprint(m["@message"]), prefix) {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q record", prefix)
		}
	}
}

func TestDebugWait(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	t.Run("expires", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		cmd, records, handshake := waitingPlugin(t, bin, "VAULTPLUGIN_DEBUG_WAIT=1s")
		rec := nextRecord(t, records, "waiting for a debugger")
		if rec["@level"] != "info" || rec["command"] != fmt.Sprintf("dlv attach %d", cmd.Process.Pid) || rec["pid"] != float64(cmd.Process.Pid) {
			t.Errorf("waiting record = %v", rec)
		}
		nextRecord(t, records, "no debugger attached within the wait")
		at, ok := <-handshake
		if !ok {
			t.Fatal("no handshake after the wait expired")
		}
		if took := at.Sub(start); took < time.Second {
			t.Errorf("handshake %s after start, before the 1s wait was over", took)
		}
	})
	t.Run("clamped", func(t *testing.T) {
		t.Parallel()
		_, records, _ := waitingPlugin(t, bin, "VAULTPLUGIN_DEBUG_WAIT=10m")
		rec := nextRecord(t, records, "the debugger wait is longer than")
		if rec["@level"] != "warn" || rec["wait"] != "50s" {
			t.Errorf("clamp record = %v", rec)
		}
	})
	t.Run("attached", func(t *testing.T) {
		t.Parallel()
		cmd, records, handshake := waitingPlugin(t, bin, "VAULTPLUGIN_DEBUG_WAIT=true")
		rec := nextRecord(t, records, "waiting for a debugger")
		if rec["wait"] != "30s" {
			t.Errorf("VAULTPLUGIN_DEBUG_WAIT=true waits %v, want 30s", rec["wait"])
		}
		tracer, detach := attachDebugger(t, cmd.Process.Pid)
		defer detach()
		rec = nextRecord(t, records, "debugger attached")
		if rec["tracer_pid"] != float64(tracer) {
			t.Errorf("attached record = %v, want tracer_pid %d", rec, tracer)
		}
		if _, ok := <-handshake; !ok {
			t.Fatal("no handshake after the debugger attached")
		}
	})
	t.Run("SIGINT ignored, SIGTERM stops", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no SIGINT or SIGTERM can be sent to another process on Windows")
		}
		t.Parallel()
		cmd, records, handshake := waitingPlugin(t, bin, "VAULTPLUGIN_DEBUG_WAIT=30s")
		nextRecord(t, records, "waiting for a debugger")
		// SIGINT is ignored while waiting, as while serving.
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		rec := nextRecord(t, records, "stopped before serving")
		if rec["reason"] != "received terminated" {
			t.Errorf("stop record = %v", rec)
		}
		if _, ok := <-handshake; ok {
			t.Error("a plugin stopped while waiting sent its handshake")
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("stopped while waiting: %v, want exit 0", err)
		}
	})
	t.Run("not asked", func(t *testing.T) {
		t.Parallel()
		for _, v := range []string{"", "false", "0"} {
			_, records, handshake := waitingPlugin(t, bin, "VAULTPLUGIN_DEBUG_WAIT="+v)
			if _, ok := <-handshake; !ok {
				t.Fatalf("VAULTPLUGIN_DEBUG_WAIT=%q: no handshake", v)
			}
			// The records before the handshake are all out by now.
			time.Sleep(50 * time.Millisecond)
			for len(records) > 0 {
				if m := <-records; strings.Contains(fmt.Sprint(m["@message"]), "debugger") {
					t.Errorf("VAULTPLUGIN_DEBUG_WAIT=%q: %v", v, m)
				}
			}
		}
	})
}

func TestHelpListsOpsEnv(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	r := run(t, bin, nil, "-help")
	for _, want := range []string{"VAULTPLUGIN_DEBUG_WAIT", "at most 50s, or true for 30s", "VAULTPLUGIN_HTTP_ADDR"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("-help lacks %q:\n%s", want, r.stdout)
		}
	}
}

// socketGet GETs path from the endpoint on the unix socket sock, with
// whatever Host the client names: a socket has no host to check.
func socketGet(t *testing.T, sock, path string) (int, string) {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://plugin" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// privateDir is a new directory only this user can write to.
func privateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// VAULTPLUGIN_HTTP_ADDR=unix:PATH serves the endpoint on a socket of mode
// 0600 that the plugin removes when it stops.
func TestOpsSocket(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("refused on Windows: TestOpsSocketRefused")
	}
	bin := servetest.Build(t, testPlugin)
	sock := filepath.Join(privateDir(t), "ops.sock")
	p := servetest.Start(t, bin, servetest.WithEnv("VAULTPLUGIN_HTTP_ADDR=unix:"+sock))
	if got := opsAddr(t, p.Process); got != "unix:"+sock {
		t.Errorf("logged addr %q, want unix:%s", got, sock)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %s, want a socket with mode 0600", sock, fi.Mode())
	}
	p.Mount(t, nil)
	if code, body := socketGet(t, sock, "/metrics"); code != http.StatusOK || !strings.Contains(body, "vaultplugin_mounts 1\n") {
		t.Errorf("/metrics: %d %.300s", code, body)
	}
	if code, body := socketGet(t, sock, "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200s", code, body)
	}
	// SECURITY.md says the endpoint does not serve the command line
	// (net/http/pprof's /debug/pprof/cmdline): it may hold -args secrets.
	if code, _ := socketGet(t, sock, "/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/cmdline: %d, want 404", code)
	}

	// A second process cannot take the socket of a live one.
	_, err = servetest.New(context.Background(), bin, servetest.WithEnv("VAULTPLUGIN_HTTP_ADDR=unix:"+sock))
	if err == nil || !strings.Contains(err.Error(), "VAULTPLUGIN_HTTP_ADDR: "+sock+" is in use: another process listens on it") {
		t.Errorf("a second plugin on the same socket: %v", err)
	}

	p.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after the plugin stopped: %v, want the socket gone", err)
	}
}

func TestOpsSocketRefused(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	if runtime.GOOS == "windows" {
		r := run(t, bin, hostEnv(`VAULTPLUGIN_HTTP_ADDR=unix:C:\ops.sock`))
		assertStartupFailure(t, r, 1, "VAULTPLUGIN_HTTP_ADDR: a unix socket is not supported on this system")
		return
	}
	open := privateDir(t)
	if err := os.Chmod(open, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	group := privateDir(t)
	if err := os.Chmod(group, 0o770); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(privateDir(t), "ops.sock")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, cause string }{
		{"unix:" + open + "/ops.sock", "VAULTPLUGIN_HTTP_ADDR: the socket's directory " + open + " can be written by its group and every user (mode -rwxrwxrwx), who could replace the socket: use a directory only the plugin's user can write to (chmod go-w " + open + ", or mkdir -m 0700 a new one)"},
		{group + "/ops.sock", "VAULTPLUGIN_HTTP_ADDR: the socket's directory " + group + " can be written by its group"},
		{"unix:" + file, "VAULTPLUGIN_HTTP_ADDR: " + file + ": it exists and is not a socket (a regular file): remove it or choose another path"},
		{"unix:ops.sock", `VAULTPLUGIN_HTTP_ADDR: "unix:ops.sock" is relative`},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			r := run(t, bin, hostEnv("VAULTPLUGIN_HTTP_ADDR="+tc.addr))
			assertStartupFailure(t, r, 1, tc.cause)
			if !strings.Contains(r.stdout, "(fix or remove the -env setting given to vault plugin register)") {
				t.Errorf("the cause line has not the hint: %q", r.stdout)
			}
		})
	}
}

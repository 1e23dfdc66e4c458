package servetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/internal/procfs"
)

// hostChildEnv tells the test binary, re-executed by
// TestHostEndsWithTestBinary, to start the shared host and a plugin, print
// their process ids and then block ("block") or end ("exit").
const hostChildEnv = "SERVETEST_HOST_CHILD"

// TestHostChild is the re-executed test binary's part of
// TestHostEndsWithTestBinary; run alone it skips.
func TestHostChild(t *testing.T) {
	mode := os.Getenv(hostChildEnv)
	if mode == "" {
		t.Skip("run by TestHostEndsWithTestBinary")
	}
	p := Start(t, Build(t, "../internal/testplugin"))
	p.Mount(t, nil)
	s, err := sharedHost(os.Getenv(HostEnv))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s started in %s; the plugin's registration and first mount took %s", s.info.Name, s.info.Version, s.startTook, p.HandshakeTime())
	fmt.Printf("PIDS %d %d\n", s.pid, p.PID())
	if mode == "block" {
		select {}
	}
}

// live reports whether pid is a process that has not exited: a zombie
// whose parent died waits for a reaper that a container may lack.
func live(pid int) bool { return processAlive(pid) && !procfs.Zombie(pid) }

// The shared dev server and its plugins never outlive the test binary:
// neither when it is killed with SIGKILL (no cleanup of its own runs) nor
// when it ends normally.
func TestHostEndsWithTestBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig and /proc are Linux's")
	}
	if os.Getenv(HostEnv) == "" || os.Getenv(hostChildEnv) != "" {
		t.Skipf("needs a real host: set %s", HostEnv)
	}
	for _, mode := range []string{"block", "exit"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHostChild$", "-test.v")
			cmd.Env = append(os.Environ(), hostChildEnv+"="+mode)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var server, plugin int
			var lines []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if _, err := fmt.Sscanf(sc.Text(), "PIDS %d %d", &server, &plugin); err == nil {
					break
				}
			}
			if server == 0 || plugin == 0 {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("the child printed no process ids:\n%s", strings.Join(lines, "\n"))
			}
			t.Logf("the child said:\n%s", strings.Join(lines, "\n"))
			if !live(server) || !live(plugin) {
				t.Fatalf("server %d (live %v) and plugin %d (live %v) should run while the child does", server, live(server), plugin, live(plugin))
			}
			if mode == "block" {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			go func() {
				for sc.Scan() {
				}
			}()
			err = cmd.Wait()
			t.Logf("child ended: %v; server %d, plugin %d", err, server, plugin)
			// Poll with a generous bound: how fast they go is the host's
			// business; that they go is what is checked.
			deadline := time.Now().Add(60 * time.Second)
			for (live(server) || live(plugin)) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if live(server) || live(plugin) {
				t.Errorf("after the test binary's end: server %d live %v, plugin %d live %v", server, live(server), plugin, live(plugin))
				for _, pid := range []int{server, plugin} {
					_ = killPID(pid)
				}
			}
		})
	}
}

// The emulation's options that no real host plays are refused by name.
func TestEmulationOnlyOptions(t *testing.T) {
	h := Host{Name: "OpenBao", Version: "2.6.2", Real: true}
	c, err := newConfig(false, []Option{WithLegacyTLS(), WithVaultVersion("2.6.2"), WithoutHostMultiplexing()})
	if err != nil {
		t.Fatal(err)
	}
	err = c.emulationOnlyOptions(&h)
	if !errors.Is(err, ErrEmulationOnly) || !strings.Contains(err.Error(), "WithLegacyTLS:") || !strings.Contains(err.Error(), "WithoutHostMultiplexing:") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), "WithVaultVersion") {
		t.Errorf("the host's own version was refused: %v", err)
	}
	c, _ = newConfig(false, []Option{WithVaultVersion("1.21.0"), WithEnv("A=B"), WithArgs("-x"), WithPluginName("n")})
	if err := c.emulationOnlyOptions(nil); err != nil {
		t.Errorf("a version before the host is known: %v", err)
	}
	if err := c.emulationOnlyOptions(&h); err == nil || !strings.Contains(err.Error(), `WithVaultVersion("1.21.0"): the real host is OpenBao 2.6.2`) {
		t.Errorf("another version on a real host: %v", err)
	}
	c, _ = newConfig(false, []Option{WithEnv("A=B"), WithArgs("-x"), WithPluginName("n"), WithLeaseTTLs(time.Hour, time.Hour)})
	if err := c.emulationOnlyOptions(&h); err != nil {
		t.Errorf("options that map onto a host: %v", err)
	}
}

// The dev server gets none of what points a client elsewhere, and keeps
// the operator's switches.
func TestHostServerEnv(t *testing.T) {
	got := hostServerEnv([]string{"VAULT_ADDR=x", "BAO_TOKEN=y", "VAULT_PLUGIN_MULTIPLEXING_OPT_OUT=p", "HOME=/h", HostEnv + "=/v", "PATH=/bin", "VAULT_LOG_LEVEL=error", "MY_ADDR=z"})
	want := []string{"VAULT_PLUGIN_MULTIPLEXING_OPT_OUT=p", "PATH=/bin", "MY_ADDR=z"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A host's error answers become what the emulation returns.
func TestHostResponses(t *testing.T) {
	a := &hostAPI{info: Host{Name: "Vault"}}
	for _, tc := range []struct {
		status    int
		body      string
		msg       string
		errorResp bool
		is        error
	}{
		{404, `{"errors":[]}`, "Vault answered 404 Not Found", false, nil},
		{404, `{"errors":["1 error occurred:\n\t* unsupported path\n\n"]}`, "Vault answered 404 Not Found: 1 error occurred:\n\t* unsupported path\n\n", false, logical.ErrUnsupportedPath},
		{400, `{"errors":["cannot write to a path ending in '/'"]}`, "Vault answered 400 Bad Request: cannot write to a path ending in '/'", true, nil},
		{403, `{"errors":["permission denied"]}`, "Vault answered 403 Forbidden: permission denied", true, logical.ErrPermissionDenied},
		{500, `{"errors":["1 error occurred:\n\t* internal error\n\n"]}`, "Vault answered 500 Internal Server Error: 1 error occurred:\n\t* internal error\n\n", false, nil},
		{307, `<a href="/v1/x">Temporary Redirect</a>.`, "Vault answered 307 Temporary Redirect", false, nil},
	} {
		_, err := a.response("GET", "x", tc.status, []byte(tc.body))
		var re *ResponseError
		if !errors.As(err, &re) || re.StatusCode != tc.status || err.Error() != tc.msg {
			t.Errorf("%d %s: %v, want %q", tc.status, tc.body, err, tc.msg)
			continue
		}
		if resp := alongside(err); (resp != nil) != tc.errorResp || (resp != nil && !resp.IsError()) {
			t.Errorf("%d %s: response alongside %v, want one %v", tc.status, tc.body, resp, tc.errorResp)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%d %s: not %v", tc.status, tc.body, tc.is)
		}
	}
	resp, err := a.response("GET", "x", http.StatusOK, []byte(`{"lease_id":"m/creds/x/abc","renewable":true,"lease_duration":3600,"data":{"n":1},"warnings":["w"],"mount_type":"m"}`))
	if err != nil || resp.Secret == nil || resp.Secret.LeaseID != "m/creds/x/abc" || resp.Secret.TTL != time.Hour || resp.Data["n"] != float64(1) || len(resp.Warnings) != 1 {
		t.Errorf("a secret's answer: %+v, %v", resp, err)
	}
	if resp, err := a.response("DELETE", "x", http.StatusNoContent, nil); resp != nil || err != nil {
		t.Errorf("204: %v, %v", resp, err)
	}
}

// A host that is missing fails the start, naming itself, and never falls
// back to the emulation; WithHost("") keeps a test in the emulation.
func TestHostMissing(t *testing.T) {
	t.Setenv(HostEnv, "/nonexistent/vault")
	_, err := New(context.Background(), "/nonexistent")
	if err == nil || !strings.Contains(err.Error(), HostEnv) || !strings.Contains(err.Error(), "/nonexistent/vault") {
		t.Errorf("err = %v", err)
	}
	_, err = NewDatabase(context.Background(), "/nonexistent")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/vault") {
		t.Errorf("NewDatabase: err = %v", err)
	}
	p := Start(t, Build(t, "../internal/testplugin"), WithHost(""))
	if h := p.Host(); h.Real || h.Name != "servetest" || h.Version != DefaultVaultVersion || h.Addr != "" {
		t.Errorf("Host() = %+v in the emulation", h)
	}
}

// On a real host, Logs and WithStderr get the host's records that name
// the plugin, its own among them, and Close leaves no process running its
// copy.
func TestHostLogs(t *testing.T) {
	if os.Getenv(HostEnv) == "" {
		t.Skipf("needs a real host: set %s", HostEnv)
	}
	var out lockedWriter
	p := Start(t, Build(t, "../internal/testplugin"), WithStderr(&out))
	m := p.Mount(t, nil)
	if _, err := m.Read(context.Background(), "info"); err != nil {
		t.Fatal(err)
	}
	file := p.host.now().file
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var named int
	for _, r := range p.Logs() {
		if mod, _ := r.Fields["@module"].(string); strings.Contains(mod, p.host.name) && r.Level != "" && r.Message != "" {
			named++
		}
	}
	if named == 0 {
		t.Errorf("no record under the plugin's name in %d records", len(p.Logs()))
	}
	if !strings.Contains(out.String(), p.host.name) {
		t.Errorf("WithStderr got %q", out.String())
	}
	if pids := procfs.Running(file); len(pids) != 0 {
		t.Errorf("processes %v still run %s after Close", pids, file)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the binary's copy is still there: %v", err)
	}
}

// lockedWriter is a strings.Builder the log's goroutine may write while
// the test reads it.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

package servetest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// processEnv reads the environment a process was started with, from
// /proc/PID/environ: the plugin's own view, with nothing of the test's.
func processEnv(t *testing.T, pid int) map[string]string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reading another process's environment needs /proc/PID/environ (Linux)")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
		k, v, _ := strings.Cut(string(kv), "=")
		env[k] = v
	}
	return env
}

// The plugin gets exactly what Vault gives a containerized plugin, serves
// with no HOME, TMPDIR or PATH, and its socket directory is gone after Close.
func TestContainerEnv(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("WithContainerEnv is refused on Windows")
	}
	servetest.SkipOnRealHost(t, "WithContainerEnv")
	for _, k := range []string{"HOME", "PATH"} {
		if os.Getenv(k) == "" {
			t.Fatalf("the test's own environment has no %s, so its absence in the plugin's proves nothing", k)
		}
	}
	bin := servetest.Build(t, plugin)
	p, err := servetest.New(context.Background(), bin, servetest.WithContainerEnv(), servetest.WithEnv("TESTPLUGIN_MODE=version"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	env := processEnv(t, p.PID())
	dir := env["PLUGIN_UNIX_SOCKET_DIR"]
	for _, k := range []string{"HOME", "TMPDIR", "PATH"} {
		if v, ok := env[k]; ok {
			t.Errorf("the plugin has %s=%s", k, v)
		}
	}
	want := []string{
		// go-plugin's
		"VAULT_BACKEND_PLUGIN", "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT", "PLUGIN_PROTOCOL_VERSIONS",
		"PLUGIN_MULTIPLEX_GRPC", "PLUGIN_CLIENT_CERT", "PLUGIN_UNIX_SOCKET_GROUP", "PLUGIN_UNIX_SOCKET_DIR",
		// the operator's -env
		"TESTPLUGIN_MODE",
		// Vault's
		"VAULT_VERSION", "VAULT_PLUGIN_METADATA_MODE", "VAULT_PLUGIN_AUTOMTLS_ENABLED",
	}
	if testing.CoverMode() != "" {
		want = append(want, "GOCOVERDIR")
	}
	var got []string
	for k := range env {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the plugin's environment has\n\t%v\nwant\n\t%v", got, want)
	}
	for k, v := range map[string]string{
		"VAULT_BACKEND_PLUGIN":          "6669da05-b1c8-4f49-97d9-c8e5bed98e20",
		"VAULT_VERSION":                 servetest.DefaultVaultVersion,
		"VAULT_PLUGIN_AUTOMTLS_ENABLED": "true",
		"VAULT_PLUGIN_METADATA_MODE":    "false",
		"PLUGIN_MULTIPLEX_GRPC":         "true",
		"PLUGIN_UNIX_SOCKET_GROUP":      strconv.Itoa(os.Getegid()),
	} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}

	// The directory is go-plugin's for a container: 0770, this group.
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, gid := ids(fi); fi.Mode().Perm() != 0o770 || gid != os.Getegid() {
		t.Errorf("socket directory %s: mode %s gid %d, want 0770 and %d", dir, fi.Mode().Perm(), gid, os.Getegid())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Type() != fs.ModeSocket {
		t.Errorf("socket directory holds %v, want the plugin's socket", entries)
	}

	// It serves: two mounts, each with its storage reached through the
	// multiplexed broker.
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		m := p.Mount(t, nil)
		if _, err := m.HandleRequest(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: "kv/k", Storage: m.Storage, Data: map[string]any{"value": name}}); err != nil {
			t.Fatal(err)
		}
		resp, err := m.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "kv/k", Storage: m.Storage})
		if err != nil || resp == nil || resp.Data["value"] != name {
			t.Fatalf("mount %s read back %v, %v", name, resp, err)
		}
	}

	p.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after Close the socket directory is still there: %v", err)
	}
}

// A database plugin is served there too (Vault runs database plugins in
// containers as well).
func TestContainerEnvDatabase(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("WithContainerEnv is refused on Windows")
	}
	bin := servetest.Build(t, database)
	p := servetest.StartDatabase(t, bin, servetest.WithContainerEnv())
	if _, ok := processEnv(t, p.PID())["HOME"]; ok {
		t.Error("the database plugin inherited HOME")
	}
}

// WithContainerEnv and WithLegacyTLS are refused together in either
// order, before anything starts (the binary is not even looked at).
func TestContainerEnvConflicts(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Run("Windows", func(t *testing.T) {
			_, err := servetest.New(context.Background(), "/nonexistent", servetest.WithContainerEnv())
			if err == nil || !strings.Contains(err.Error(), "WithContainerEnv is not supported on Windows") {
				t.Errorf("err = %v", err)
			}
		})
		return
	}
	const want = "servetest: WithContainerEnv and WithLegacyTLS exclude each other: Vault hands a wrapping token only to a plugin that offers protocol 4 at most (built on an SDK before v0.6.0, with go-plugin v1.4), and a containerized plugin needs go-plugin v1.6.0 or later"
	for name, opts := range map[string][]servetest.Option{
		"legacy first":    {servetest.WithLegacyTLS(), servetest.WithContainerEnv()},
		"container first": {servetest.WithContainerEnv(), servetest.WithLegacyTLS()},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := servetest.New(context.Background(), "/nonexistent", opts...)
			if err == nil {
				p.Close()
				t.Fatal("started")
			}
			if err.Error() != want {
				t.Errorf("err = %v\nwant %s", err, want)
			}
		})
	}
}

// The operator's switches inside a container: the endpoint on a socket in
// the container's socket directory (the one place the host can reach it)
// or on the container's loopback, and the debugger wait.
func TestContainerEnvOps(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("WithContainerEnv is refused on Windows")
	}
	bin := servetest.Build(t, plugin)
	t.Run("endpoint on a socket", func(t *testing.T) {
		p := servetest.Start(t, bin, servetest.WithContainerEnv(), servetest.WithEnv("VAULTPLUGIN_HTTP_ADDR=unix:ops.sock"))
		path, ok := strings.CutPrefix(endpointAddr(t, p.Process), "unix:")
		if !ok {
			t.Fatalf("the endpoint is not on a socket: %s", path)
		}
		dir := processEnv(t, p.PID())["PLUGIN_UNIX_SOCKET_DIR"]
		if path != filepath.Join(dir, "ops.sock") {
			t.Errorf("socket %s, want ops.sock in the socket directory %s", path, dir)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if uid, _ := ids(fi); fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 || uid != os.Geteuid() {
			t.Errorf("%s: mode %s uid %d, want a socket, 0600, uid %d", path, fi.Mode(), uid, os.Geteuid())
		}
		p.Mount(t, nil)
		if code, body := socketGet(t, path, "/metrics"); code != http.StatusOK || !strings.Contains(body, "vaultplugin_mounts 1\n") {
			t.Errorf("/metrics: %d %.300s", code, body)
		}
	})
	t.Run("endpoint on loopback", func(t *testing.T) {
		p := servetest.Start(t, bin, servetest.WithContainerEnv(), servetest.WithEnv("VAULTPLUGIN_HTTP_ADDR=127.0.0.1:0"))
		resp, err := http.Get("http://" + endpointAddr(t, p.Process) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/metrics: %d", resp.StatusCode)
		}
	})
	t.Run("debugger wait", func(t *testing.T) {
		p := servetest.Start(t, bin, servetest.WithContainerEnv(), servetest.WithEnv("VAULTPLUGIN_DEBUG_WAIT=1s"))
		if p.HandshakeTime() < time.Second {
			t.Errorf("handshake after %s, before the 1s wait was over", p.HandshakeTime())
		}
		var waited, served bool
		for _, r := range p.Logs() {
			switch r.Message {
			case "waiting for a debugger before serving":
				waited = r.Fields["command"] == fmt.Sprintf("dlv attach %d", p.PID())
			case "no debugger attached within the wait; serving":
				served = true
			}
		}
		if !waited || !served {
			t.Errorf("waited %v (with this pid), served %v; logs: %v", waited, served, p.Logs())
		}
	})
}

// endpointAddr is the address the plugin logged for its endpoint.
func endpointAddr(t *testing.T, p *servetest.Process) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, r := range p.Logs() {
			if r.Message == "serving profiles and metrics" {
				return fmt.Sprint(r.Fields["addr"])
			}
		}
	}
	t.Fatalf("no endpoint record; logs: %v", p.Logs())
	return ""
}

// socketGet GETs path from the endpoint on the unix socket sock.
func socketGet(t *testing.T, sock, path string) (int, string) {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://localhost" + path)
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

// ids is the owner and group of the file fi describes, read from its
// syscall.Stat_t by name so that this file also compiles for Windows,
// which has none (the tests that call it skip there).
func ids(fi fs.FileInfo) (uid, gid int) {
	v := reflect.ValueOf(fi.Sys()).Elem()
	return int(v.FieldByName("Uid").Uint()), int(v.FieldByName("Gid").Uint())
}

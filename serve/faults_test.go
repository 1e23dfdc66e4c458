package serve_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/serve/servetest"
)

// waitRecord waits for the plugin's stderr record with message msg at
// level, which go-plugin may deliver a little after the call that caused it.
func waitRecord(t *testing.T, p *servetest.Process, level, msg string) servetest.LogRecord {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		for _, r := range p.Logs() {
			if r.Level == level && r.Message == msg {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s record %q; logs: %v", level, msg, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noRawPanic fails t if the plugin wrote a plain-text panic dump, which
// Vault would log at DEBUG only.
func noRawPanic(t *testing.T, p *servetest.Process) {
	t.Helper()
	for _, r := range p.Logs() {
		if r.Fields == nil && (strings.HasPrefix(r.Raw, "panic:") || strings.HasPrefix(r.Raw, "goroutine ")) {
			t.Errorf("raw panic output on stderr: %s", r.Raw)
		}
	}
}

// assertStack checks that a record carries a goroutine stack naming the
// function that panicked.
func assertStack(t *testing.T, r servetest.LogRecord, frame string) {
	t.Helper()
	stack, _ := r.Fields["stack"].(string)
	if !strings.Contains(stack, "goroutine ") || !strings.Contains(stack, frame) {
		t.Errorf("record %q has no stack through %s: %v", r.Message, frame, r.Fields)
	}
}

// TestFactoryPanic: a secrets or auth factory runs per mount, after serving
// started, so its panic fails that mount's setup and nothing else.
func TestFactoryPanic(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin)
	ctx := context.Background()
	good := p.Mount(t, nil)
	_, err := p.NewMount(ctx, map[string]string{"fault": "factory-panic"})
	if err == nil || !strings.Contains(err.Error(), "backend factory panicked: the factory was told to panic") {
		t.Fatalf("Mount with a panicking factory: %v", err)
	}
	r := waitRecord(t, p.Process, "error", "backend factory panicked")
	if r.Fields["panic"] != "the factory was told to panic" {
		t.Errorf("panic field = %v", r.Fields["panic"])
	}
	assertStack(t, r, "main.main.func")
	noRawPanic(t, p.Process)
	if p.Exited() {
		t.Fatal("the process exited")
	}
	// The mount set up before still serves, and new mounts can be made.
	write(t, good, "kv/k", map[string]any{"value": "still here"})
	if got := read(t, good, "kv/k")["value"]; got != "still here" {
		t.Errorf("read back %v", got)
	}
	later := p.Mount(t, nil)
	read(t, later, "info")
}

// TestRequestPanic: a backend that panics inside a request fails that
// request; the process, the mount and the other mounts keep serving.
func TestRequestPanic(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin)
	ctx := context.Background()
	a := p.Mount(t, nil)
	b := p.Mount(t, nil)
	write(t, b, "kv/k", map[string]any{"value": "in b"})

	for range 3 {
		resp, err := a.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "panic"})
		if err == nil || !strings.Contains(err.Error(), `internal error: the plugin's backend panicked handling read "panic"`) {
			t.Fatalf("the panicking request: resp %v, err %v", resp, err)
		}
		if strings.Contains(err.Error(), "the handler was told to panic") {
			t.Errorf("the panic value reached the API client: %v", err)
		}
	}
	r := waitRecord(t, p.Process, "error", "backend panicked handling a request")
	if r.Fields["panic"] != "the handler was told to panic" || r.Fields["path"] != "panic" {
		t.Errorf("record fields = %v", r.Fields)
	}
	assertStack(t, r, "main.newBackend.func")
	noRawPanic(t, p.Process)
	if p.Exited() {
		t.Fatal("the process exited")
	}
	read(t, a, "info")
	if got := read(t, b, "kv/k")["value"]; got != "in b" {
		t.Errorf("b: read back %v", got)
	}
}

// TestDatabasePanics: the database wrapper recovers a panic inside a call,
// and a factory that panics for a connection made after serving started
// fails that connection only.
func TestDatabasePanics(t *testing.T) {
	bin := servetest.Build(t, testDB)
	ctx := context.Background()
	t.Run("in a call", func(t *testing.T) {
		p := servetest.StartDatabase(t, bin)
		a, b := p.Connect(t), p.Connect(t)
		for _, db := range []dbplugin.Database{a, b} {
			if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{}}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := a.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: "panic"})
		if err == nil || !strings.Contains(err.Error(), "internal error: the plugin's database panicked in DeleteUser") {
			t.Fatalf("DeleteUser: %v", err)
		}
		r := waitRecord(t, p.Process, "error", "database panicked")
		assertStack(t, r, "main.echoDB.DeleteUser")
		noRawPanic(t, p.Process)
		for _, db := range []dbplugin.Database{a, b} {
			if _, err := db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: "someone"}); err != nil {
				t.Errorf("DeleteUser after the panic: %v", err)
			}
		}
	})
	t.Run("factory, per connection", func(t *testing.T) {
		p := servetest.StartDatabase(t, bin, servetest.WithEnv("TESTDB_MODE=panic-later"))
		db := p.Connect(t)
		_, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{}})
		if err == nil || !strings.Contains(err.Error(), "database factory panicked: the factory panicked on purpose, after serving started") {
			t.Fatalf("Initialize: %v", err)
		}
		r := waitRecord(t, p.Process, "error", "database factory panicked")
		assertStack(t, r, "main.main.func")
		noRawPanic(t, p.Process)
		if p.Exited() {
			t.Fatal("the process exited")
		}
	})
}

// unwrapHost is the environment of a host on the legacy TLS path.
func unwrapHost(token string, extra ...string) []string {
	env := hostEnv(append([]string{"VAULT_UNWRAP_TOKEN=" + token}, extra...)...)
	env[2] = "VAULT_PLUGIN_AUTOMTLS_ENABLED=false"
	return env
}

// TestUnwrapDeadline: every way the legacy TLS path's unwrap call can fail
// ends the plugin within the unwrap timeout (1 s here, WithUnwrapTimeout)
// with its cause on stdout and stderr and exit 1; the token never shows.
func TestUnwrapDeadline(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	// Generous: the process's own start and the exit take time under -race.
	const limit = 1*time.Second + 4*time.Second

	check := func(t *testing.T, r result, tok, cause string) {
		t.Helper()
		assertStartupFailure(t, r, 1, cause)
		if r.took > limit {
			t.Errorf("took %s, want under %s with a 1s unwrap timeout", r.took, limit)
		}
		if strings.Contains(r.stdout+r.stderr, tok) {
			t.Error("the wrapping token was printed")
		}
		t.Logf("exit %d after %s: %s", r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.stdout))
	}

	t.Run("untrusted certificate", func(t *testing.T) {
		srv := quietTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("the plugin sent a request over an unverified connection: %s", r.URL)
		})
		tok := wrapToken(t, srv.URL)
		r := run(t, bin, unwrapHost(tok, "TESTPLUGIN_MODE=unwrap1s"))
		check(t, r, tok, "certificate signed by unknown authority")
		if !strings.Contains(r.stdout, "-ca-cert") {
			t.Errorf("no hint to pass -ca-cert: %q", r.stdout)
		}
	})

	t.Run("unreadable -ca-cert", func(t *testing.T) {
		srv := quietTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("the plugin called Vault with an unreadable -ca-cert: %s", r.URL)
		})
		tok := wrapToken(t, srv.URL)
		missing := filepath.Join(t.TempDir(), "no-such-ca.pem")
		r := run(t, bin, unwrapHost(tok, "TESTPLUGIN_MODE=unwrap1s"), "-ca-cert="+missing)
		check(t, r, tok, "-ca-cert "+missing+" cannot be read")
		if !strings.Contains(r.stdout, "no such file or directory") || !strings.Contains(r.stdout, "fix the path in the -args") {
			t.Errorf("the cause line does not say why nor what to fix: %q", r.stdout)
		}
	})

	t.Run("expired token", func(t *testing.T) {
		// Vault answers an expired (or already used) wrapping token so.
		srv := quietTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":["wrapping token is not valid or does not exist"]}`))
		})
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		tok := expiredWrapToken(t, srv.URL)
		r := run(t, bin, unwrapHost(tok, "TESTPLUGIN_MODE=unwrap1s"), "-ca-cert="+ca)
		check(t, r, tok, "wrapping token is not valid or does not exist")
	})

	t.Run("closed port", func(t *testing.T) {
		addr := closedAddr(t)
		tok := wrapToken(t, addr)
		r := run(t, bin, unwrapHost(tok, "TESTPLUGIN_MODE=unwrap1s"))
		check(t, r, tok, "unwrapping the TLS certificate from Vault at "+addr)
	})

	t.Run("closed port, default timeout", func(t *testing.T) {
		// The API client retries a refused connection twice, a second or
		// so apart, then names the cause: well within DefaultUnwrapTimeout.
		addr := closedAddr(t)
		tok := wrapToken(t, addr)
		r := run(t, bin, unwrapHost(tok))
		assertStartupFailure(t, r, 1, "unwrapping the TLS certificate from Vault at "+addr)
		if r.took > vaultplugin.DefaultUnwrapTimeout+4*time.Second {
			t.Errorf("took %s, want under DefaultUnwrapTimeout (%s)", r.took, vaultplugin.DefaultUnwrapTimeout)
		}
		t.Logf("exit %d after %s: %s", r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.stdout))
		if !strings.Contains(r.stdout, "connect: connection refused") {
			t.Errorf("the cause does not say the connection was refused: %q", r.stdout)
		}
	})

	t.Run("garbage token", func(t *testing.T) {
		tok := "s.garbage-token-value"
		r := run(t, bin, unwrapHost(tok, "TESTPLUGIN_MODE=unwrap1s"))
		check(t, r, tok, "reading the wrapping token in VAULT_UNWRAP_TOKEN: not an ES512-signed JWT")
	})
}

// quietTLSServer is an httptest TLS server that does not log the
// handshake errors a plugin refusing its certificate causes.
func quietTLSServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// expiredWrapToken is a token shaped like Vault's whose exp claim is past.
func expiredWrapToken(t *testing.T, addr string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES512, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(map[string]any{
		"addr": addr, "jti": "s.expiredwrappingtoken", "exp": time.Now().Add(-time.Hour).Unix(),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// closedAddr returns the URL of a loopback port nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	return addr
}

// TestBackendMethodPanics: a panic in the backend's other entry points
// (the existence check, Initialize, InvalidateKey, Cleanup) is recovered as
// in HandleRequest: logged with its stack, the call fails where it can
// return an error, and the process keeps serving its other mounts.
func TestBackendMethodPanics(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin)
	ctx := context.Background()
	ok := p.Mount(t, nil)
	write(t, ok, "kv/k", map[string]any{"value": "kept"})

	_, _, err := ok.HandleExistenceCheck(ctx, &logical.Request{Operation: logical.CreateOperation, Path: "panic-exists", Storage: ok.Storage})
	if err == nil || !strings.Contains(err.Error(), "internal error: the plugin's backend panicked in HandleExistenceCheck") {
		t.Errorf("existence check: %v", err)
	}
	if _, err := p.NewMount(ctx, map[string]string{"fault": "initialize-panic"}); err == nil || !strings.Contains(err.Error(), "panicked in Initialize") {
		t.Errorf("mount whose Initialize panics: %v", err)
	}
	ok.InvalidateKey(ctx, "panic")
	bad := p.Mount(t, map[string]string{"fault": "cleanup-panic"})
	bad.Cleanup(ctx)

	for _, method := range []string{"HandleExistenceCheck", "Initialize", "InvalidateKey", "Cleanup"} {
		var found bool
		deadline := time.Now().Add(5 * time.Second)
		for !found && time.Now().Before(deadline) {
			for _, r := range p.Logs() {
				if r.Level == "error" && r.Message == "backend panicked" && r.Fields["method"] == method {
					found = true
					assertStack(t, r, "main.")
				}
			}
			if !found {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if !found {
			t.Errorf("no error record for a panic in %s", method)
		}
	}
	noRawPanic(t, p.Process)
	if p.Exited() {
		t.Fatal("the process exited")
	}
	if got := read(t, ok, "kv/k")["value"]; got != "kept" {
		t.Errorf("read back %v after the panics", got)
	}
}

// TestPeriodicFuncPanic: Vault runs a backend's periodic function through a
// rollback request, so the request wrapper recovers its panic too; the
// mount and the process keep serving.
func TestPeriodicFuncPanic(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin)
	ctx := context.Background()
	m := p.Mount(t, map[string]string{"fault": "periodic-panic"})
	_, err := m.HandleRequest(ctx, &logical.Request{Operation: logical.RollbackOperation, Path: "", Storage: m.Storage})
	if err == nil || !strings.Contains(err.Error(), "internal error: the plugin's backend panicked handling rollback") {
		t.Fatalf("the rollback request: %v", err)
	}
	r := waitRecord(t, p.Process, "error", "backend panicked handling a request")
	if r.Fields["panic"] != "PeriodicFunc was told to panic" {
		t.Errorf("record fields = %v", r.Fields)
	}
	noRawPanic(t, p.Process)
	if p.Exited() {
		t.Fatal("the process exited")
	}
	read(t, m, "info")
}

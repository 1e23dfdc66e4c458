package serve_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/serve/servetest"
)

const testPlugin = "./internal/testplugin"

// result is what a plugin process did when run directly.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// hostEnv is the environment Vault 1.21 gives a plugin it starts with
// AutoMTLS, without the certificate go-plugin adds.
func hostEnv(extra ...string) []string {
	return append([]string{
		hostenv.EnvBackendCookie + "=" + hostenv.BackendCookieValue,
		"VAULT_VERSION=1.21.0",
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=true",
		"VAULT_PLUGIN_METADATA_MODE=false",
		"PLUGIN_PROTOCOL_VERSIONS=3,4,5",
	}, extra...)
}

// run starts bin with exactly env (plus PATH and TMPDIR) and waits.
func run(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running %s: %v", bin, err)
	}
	return r
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// errorRecords returns the stderr JSON records at error level.
func errorRecords(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range lines(stderr) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("stderr line is not a JSON record: %q", l)
			continue
		}
		if m["@level"] == "error" {
			out = append(out, m)
		}
	}
	return out
}

// assertStartupFailure checks the three ways a startup failure is reported.
func assertStartupFailure(t *testing.T, r result, code int, cause string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if ls := lines(r.stdout); len(ls) != 1 || !strings.Contains(ls[0], cause) {
		t.Errorf("stdout must be one cause line containing %q, got %q", cause, r.stdout)
	}
	recs := errorRecords(t, r.stderr)
	if len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["error"]), cause) {
		t.Errorf("stderr must hold one error record containing %q, got %q", cause, r.stderr)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestRunByAPerson(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	r := run(t, bin, []string{"TESTPLUGIN_MODE=version"})
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing on stdout", r.code, r.stdout)
	}
	name := filepath.Base(bin)
	sum := fileSHA256(t, bin)
	for _, want := range []string{
		name + " v1.2.3 is a Vault secrets engine plugin",
		"sha256: " + sum,
		"vault plugin register -sha256=" + sum + " -version=v1.2.3 secret " + name,
		"vault secrets enable -path=" + name + " " + name,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestBadFlag(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	t.Run("person", func(t *testing.T) {
		r := run(t, bin, nil, "-tls-skip-verify", "-ca-certs=/tmp/ca.pem")
		if r.code != 2 || r.stdout != "" || len(lines(r.stderr)) != 1 || !strings.Contains(r.stderr, "flag provided but not defined: -ca-certs") {
			t.Fatalf("exit %d stdout %q stderr %q; want 2 and one stderr line naming -ca-certs", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("host", func(t *testing.T) {
		r := run(t, bin, hostEnv(), "-ca-certs=/tmp/ca.pem")
		assertStartupFailure(t, r, 2, "flag provided but not defined: -ca-certs")
	})
	t.Run("bad value", func(t *testing.T) {
		r := run(t, bin, hostEnv(), "-tls-skip-verify=maybe")
		assertStartupFailure(t, r, 2, "-tls-skip-verify")
	})
	t.Run("positional", func(t *testing.T) {
		r := run(t, bin, hostEnv(), "serve")
		assertStartupFailure(t, r, 2, `unexpected argument "serve"`)
	})
	t.Run("half a client certificate", func(t *testing.T) {
		r := run(t, bin, hostEnv(), "-client-cert=/tmp/c.pem")
		assertStartupFailure(t, r, 2, "-client-cert and -client-key must be given together")
	})
}

func TestInvalidOptions(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	r := run(t, bin, hostEnv("TESTPLUGIN_MODE=badversion"))
	assertStartupFailure(t, r, 2, `WithVersion("not-a-version"): "not-a-version" is not a semantic version`)

	r = run(t, bin, hostEnv("TESTPLUGIN_MODE=dupflag"))
	assertStartupFailure(t, r, 2, "flag redefined: ca-cert")
}

func TestVersionDescribeHelp(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	if r := run(t, bin, []string{"TESTPLUGIN_MODE=version"}, "-version"); r.code != 0 || r.stdout != "v1.2.3\n" || r.stderr != "" {
		t.Errorf("-version: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r := run(t, bin, []string{"TESTPLUGIN_MODE=version"}, "-describe")
	var d struct {
		Schema                                 int
		Name, Version, Type, SHA256, GoVersion string
		SDK                                    string `json:"sdk_version"`
		VersionSource                          string `json:"version_source"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.code != 0 {
		t.Fatalf("-describe: exit %d, %v: %q", r.code, err, r.stdout)
	}
	if d.Name != filepath.Base(bin) || d.Version != "v1.2.3" || d.Type != "secret" || d.SHA256 != fileSHA256(t, bin) || d.SDK == "" {
		t.Errorf("-describe = %+v", d)
	}
	if d.Schema != 1 || d.VersionSource != "WithVersion" {
		t.Errorf("-describe = %+v, want schema 1 and version_source WithVersion", d)
	}
	r = run(t, bin, nil, "-help")
	if r.code != 0 || !strings.Contains(r.stdout, "-ca-cert file") || !strings.Contains(r.stdout, "CA certificate that signed Vault's API certificate") || !strings.Contains(r.stdout, "VAULTPLUGIN_LOG_LEVEL") {
		t.Errorf("-help: exit %d stdout %q", r.code, r.stdout)
	}
	// -help names the type the factory builds, as the text a person
	// sees without flags does.
	if !strings.Contains(r.stdout, "is a Vault secrets engine plugin") {
		t.Errorf("-help does not say what the plugin is: %q", r.stdout)
	}
}

// A build with no version (this one: go build -buildvcs=false, a main in
// this module) prints "(unknown)" for scripts and says why on stderr.
func TestVersionUnknown(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	r := run(t, bin, nil, "-version")
	if r.code != 0 || r.stdout != "(unknown)\n" {
		t.Fatalf("-version: exit %d stdout %q", r.code, r.stdout)
	}
	for _, want := range []string{"this build has no version", "-buildvcs=false", "serve.WithVersion", "go install"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %q", want, r.stderr)
		}
	}
	r = run(t, bin, nil, "-describe")
	// The package doc promises the key with "" (tools read it without
	// checking for its presence), not a missing key.
	for _, want := range []string{`"version_source": "none"`, `"version": ""`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("-describe lacks %s: %s", want, r.stdout)
		}
	}
}

// A person who runs a binary whose main passes an invalid option reads
// one plain line on stderr, as for a bad flag, and nothing on stdout.
func TestInvalidOptionsByAPerson(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	r := run(t, bin, []string{"TESTPLUGIN_MODE=badversion"})
	if r.code != 2 || r.stdout != "" || len(lines(r.stderr)) != 1 || strings.HasPrefix(r.stderr, "{") ||
		!strings.Contains(r.stderr, `WithVersion("not-a-version")`) {
		t.Fatalf("exit %d stdout %q stderr %q; want 2 and one plain stderr line", r.code, r.stdout, r.stderr)
	}
}

// wrapToken makes a token shaped like Vault's: an ES512 JWT whose addr
// claim is Vault's api_addr.
func wrapToken(t *testing.T, addr string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES512, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(map[string]any{"addr": addr, "jti": "s.secretwrappingtoken"}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestUnwrapFailures(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	legacy := func(token string) []string {
		env := hostEnv("VAULT_UNWRAP_TOKEN=" + token)
		env[2] = "VAULT_PLUGIN_AUTOMTLS_ENABLED=false"
		return env
	}
	t.Run("garbage token", func(t *testing.T) {
		r := run(t, bin, legacy("garbage-token-value"))
		assertStartupFailure(t, r, 1, "reading the wrapping token in VAULT_UNWRAP_TOKEN: not an ES512-signed JWT")
		if strings.Contains(r.stdout+r.stderr, "garbage-token-value") {
			t.Error("the token was printed")
		}
	})
	t.Run("closed port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := "http://" + l.Addr().String()
		l.Close()
		tok := wrapToken(t, addr)
		r := run(t, bin, legacy(tok))
		assertStartupFailure(t, r, 1, "unwrapping the TLS certificate from Vault at "+addr)
		if !strings.Contains(r.stdout, "api_addr") {
			t.Errorf("no hint: %q", r.stdout)
		}
		if strings.Contains(r.stdout+r.stderr, tok) {
			t.Error("the token was printed")
		}
	})
	t.Run("no answer", func(t *testing.T) {
		// A listener that accepts and never answers: the deadline must end it.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		addr := "http://" + l.Addr().String()
		r := run(t, bin, append(legacy(wrapToken(t, addr)), "TESTPLUGIN_MODE=unwrap1s"))
		assertStartupFailure(t, r, 1, "no answer within 1s")
		if r.took > 10*time.Second {
			t.Errorf("took %s with a 1s unwrap timeout", r.took)
		}
	})
}

func TestListenerFailure(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	r := run(t, bin, hostEnv("PLUGIN_UNIX_SOCKET_DIR="+filepath.Join(t.TempDir(), "missing")))
	assertStartupFailure(t, r, 1, "creating the plugin's listener")
}

func TestServeMultiplexed(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_MODE=version"))
	ctx := context.Background()
	a := p.Mount(t, nil)
	b := p.Mount(t, nil)
	write(t, a, "kv/k", map[string]any{"value": "in a"})
	if got := read(t, a, "kv/k")["value"]; got != "in a" {
		t.Errorf("a: kv/k = %v", got)
	}
	if got := read(t, b, "kv/k"); got != nil {
		t.Errorf("b sees a's data: %v", got)
	}
	if e, _ := a.Storage.Get(ctx, "k"); e == nil || string(e.Value) != "in a" {
		t.Errorf("a's storage = %v", e)
	}
	pidA, pidB := read(t, a, "info")["pid"], read(t, b, "info")["pid"]
	if pidA != strconv.Itoa(p.PID()) || pidB != pidA {
		t.Errorf("pids: a %v b %v plugin %d; want one process", pidA, pidB, p.PID())
	}
	for _, m := range []*servetest.Mount{a, b} {
		if v := m.Backend.(logical.PluginVersioner).PluginVersion().Version; v != "v1.2.3" {
			t.Errorf("reported version = %q, want v1.2.3", v)
		}
	}
}

func TestWithoutMultiplexing(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_MODE=nomux"))
	ctx := context.Background()
	a := p.Mount(t, nil)
	write(t, a, "kv/k", map[string]any{"value": "v"})
	if _, err := p.NewMount(ctx, nil); err == nil {
		t.Fatal("a second mount on a plugin served WithoutMultiplexing must fail")
	}
}

func TestWithFlags(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_MODE=flags"), servetest.WithArgs("-greeting=hi", "-tls-skip-verify"))
	m := p.Mount(t, nil)
	if g := read(t, m, "info")["greeting"]; g != "hi" {
		t.Errorf("greeting = %v", g)
	}
	warned := false
	for _, r := range p.Logs() {
		warned = warned || (r.Level == "warn" && strings.Contains(r.Message, "-tls-skip-verify"))
	}
	if !warned {
		t.Errorf("-tls-skip-verify must log a warning; logs: %v", p.Logs())
	}
}

func TestFactoryError(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_MODE=factoryerr"))
	_, err := p.NewMount(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "the factory was told to fail") {
		t.Fatalf("Mount error = %v", err)
	}
	if p.Exited() {
		t.Error("a factory error must fail the mount, not the process")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, r := range p.Logs() {
			if r.Level == "error" && r.Message == "backend factory failed" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no error record; logs: %v", p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func write(t *testing.T, b logical.Backend, path string, data map[string]any) {
	t.Helper()
	resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data, Storage: nil})
	if err != nil || resp.IsError() {
		t.Fatalf("write %s: %v %v", path, resp, err)
	}
}

func read(t *testing.T, b logical.Backend, path string) map[string]any {
	t.Helper()
	resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: path})
	if err != nil || resp.IsError() {
		t.Fatalf("read %s: %v %v", path, resp, err)
	}
	if resp == nil {
		return nil
	}
	return resp.Data
}

// TestLegacyTLS serves over the wrap-token TLS path: servetest plays
// Vault's unwrap endpoint, so the TLS provider runs for real.
func TestLegacyTLS(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin, servetest.WithLegacyTLS(), servetest.WithEnv("VAULTPLUGIN_LOG_LEVEL=debug"))
	m := p.Mount(t, nil)
	write(t, m, "kv/k", map[string]any{"value": "over legacy TLS"})
	if got := read(t, m, "kv/k")["value"]; got != "over legacy TLS" {
		t.Errorf("read back %v", got)
	}
	unwrapped := false
	for _, r := range p.Logs() {
		unwrapped = unwrapped || r.Message == "unwrapped the TLS certificate"
		// The token is a JWT: base64url JSON always starts with "eyJ".
		if strings.Contains(r.Raw, "eyJ") {
			t.Errorf("a log line carries the wrapping token: %s", r.Raw)
		}
	}
	if !unwrapped {
		t.Errorf("no unwrap record; logs: %v", p.Logs())
	}
	if _, err := p.NewMount(context.Background(), nil); err == nil {
		t.Error("a protocol-4 host serves one mount per process")
	}
}

// VAULT_SKIP_VERIFY in the plugin's environment turns off verification on
// the unwrap call as -tls-skip-verify does, so it warns as loudly.
func TestSkipVerifyEnvWarns(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin, servetest.WithLegacyTLS(), servetest.WithEnv("VAULT_SKIP_VERIFY=true"))
	_ = p.Close()
	for _, r := range p.Logs() {
		if r.Level == "warn" && strings.HasPrefix(r.Message, "VAULT_SKIP_VERIFY is set") {
			return
		}
	}
	t.Errorf("no warning about VAULT_SKIP_VERIFY; logs: %v", p.Logs())
}

package serve_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// recorder wraps a plugin binary in a script that copies every byte the
// process writes to its stdout and stderr into files, then execs it (same
// pid, same parent, same signals), so a test sees exactly what the host
// received on both descriptors.
type recorder struct {
	bin, stdout, stderr string
}

func newRecorder(t *testing.T, bin string) *recorder {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash for the recording wrapper")
	}
	dir := t.TempDir()
	r := &recorder{
		bin:    filepath.Join(dir, filepath.Base(bin)),
		stdout: filepath.Join(dir, "stdout"),
		stderr: filepath.Join(dir, "stderr"),
	}
	script := "#!/usr/bin/env bash\n" +
		"exec > >(tee -a '" + r.stdout + "') 2> >(tee -a '" + r.stderr + "' >&2)\n" +
		"exec '" + bin + "' \"$@\"\n"
	if err := os.WriteFile(r.bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

// output returns what was recorded once the copies have drained.
func (r *recorder) output(t *testing.T) (stdout, stderr string) {
	t.Helper()
	var last int
	for range 50 {
		o, _ := os.ReadFile(r.stdout)
		e, _ := os.ReadFile(r.stderr)
		if n := len(o) + len(e); n > 0 && n == last {
			return string(o), string(e)
		} else {
			last = n
		}
		time.Sleep(50 * time.Millisecond)
	}
	o, _ := os.ReadFile(r.stdout)
	e, _ := os.ReadFile(r.stderr)
	return string(o), string(e)
}

// pieces returns s and its parts a leak might print on their own: the
// dot-separated parts of a JWT and 24-character runs (a PEM body line, a
// key cut by a log line's width).
func pieces(s string) []string {
	out := []string{s}
	for _, part := range strings.Split(s, ".") {
		if len(part) >= 16 {
			out = append(out, part)
		}
	}
	for i := 0; i+24 <= len(s); i += 24 {
		out = append(out, s[i:i+24])
	}
	return out
}

func assertAbsent(t *testing.T, where, text string, secrets map[string]string) {
	t.Helper()
	for what, s := range secrets {
		for _, p := range pieces(s) {
			if strings.Contains(text, p) {
				t.Errorf("%s carries the %s (%q)", where, what, p)
				break
			}
		}
	}
}

// TestNoSecretsInOutput records everything a plugin writes during a full
// run on the legacy TLS path (the unwrap, -tls-skip-verify, mounts,
// requests carrying secrets, a failing request, a panicking one, shutdown)
// at the most verbose log level, and a database plugin's run with
// passwords; none of the secrets the host or the requests handed the
// plugin may appear on its stdout or stderr.
func TestNoSecretsInOutput(t *testing.T) {
	ctx := context.Background()
	t.Run("backend, legacy TLS", func(t *testing.T) {
		rec := newRecorder(t, servetest.Build(t, testPlugin))
		p, err := servetest.New(ctx, rec.bin, servetest.WithLegacyTLS(),
			servetest.WithArgs("-tls-skip-verify"), servetest.WithEnv("VAULTPLUGIN_LOG_LEVEL=trace"))
		if err != nil {
			t.Fatal(err)
		}
		secrets := map[string]string{
			"wrapping token":      p.HostSecrets()[0],
			"TLS server key":      p.HostSecrets()[1],
			"request password":    "pw-Zq8rT2vL9xKc4mN7",
			"request secret data": "data-Hf3kWp9sQ2vXe6Ty",
		}
		m := p.Mount(t, map[string]string{"api_key": "cfg-Gt5yHn8uJm2kLo4P"})
		secrets["mount config value"] = "cfg-Gt5yHn8uJm2kLo4P"
		write(t, m, "kv/password", map[string]any{"value": secrets["request password"]})
		write(t, m, "kv/data", map[string]any{"value": secrets["request secret data"]})
		if got := read(t, m, "kv/password")["value"]; got != secrets["request password"] {
			t.Fatalf("read back %v", got)
		}
		// A request the backend rejects, carrying the secret, and one
		// that panics.
		_, _ = m.HandleRequest(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: "info",
			Data: map[string]any{"password": secrets["request password"]}})
		_, _ = m.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "panic",
			Data: map[string]any{"password": secrets["request password"]}})
		warned := false
		for _, r := range p.Logs() {
			warned = warned || (r.Level == "warn" && strings.Contains(r.Message, "-tls-skip-verify"))
		}
		if !warned {
			t.Error("-tls-skip-verify did not log a warning")
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}

		stdout, stderr := rec.output(t)
		if ls := lines(stdout); len(ls) != 1 || !strings.HasPrefix(ls[0], "1|4|unix|") {
			t.Errorf("stdout must hold only the handshake line, got %q", stdout)
		}
		if !strings.Contains(stderr, "unwrapped the TLS certificate") || !strings.Contains(stderr, "backend panicked handling a request") {
			t.Errorf("the recording misses records it should have:\n%s", stderr)
		}
		assertAbsent(t, "stdout", stdout, secrets)
		assertAbsent(t, "stderr", stderr, secrets)
		t.Logf("recorded %d bytes of stdout, %d of stderr (%d records)", len(stdout), len(stderr), len(lines(stderr)))
	})

	t.Run("database", func(t *testing.T) {
		rec := newRecorder(t, servetest.Build(t, testDB))
		p, err := servetest.NewDatabase(ctx, rec.bin, servetest.WithEnv("VAULTPLUGIN_LOG_LEVEL=trace"))
		if err != nil {
			t.Fatal(err)
		}
		secrets := map[string]string{
			"connection password": "conn-Pw4sXz7cVb1nMq9R",
			"user password":       "user-Pw8kLj3hGf6dSa2W",
			"new password":        "new-Pw5tRe2wQa9zXc7V",
		}
		db := p.Connect(t)
		_, _ = db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{"password": secrets["connection password"]}})
		if _, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{}}); err != nil {
			t.Fatal(err)
		}
		_, _ = db.NewUser(ctx, dbplugin.NewUserRequest{Password: secrets["user password"]})
		_, _ = db.UpdateUser(ctx, dbplugin.UpdateUserRequest{Username: "u", Password: &dbplugin.ChangePassword{NewPassword: secrets["new password"]}})
		_, _ = db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: "panic"})
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		stdout, stderr := rec.output(t)
		if ls := lines(stdout); len(ls) != 1 || !strings.HasPrefix(ls[0], "1|6|unix|") {
			t.Errorf("stdout must hold only the handshake line, got %q", stdout)
		}
		assertAbsent(t, "stdout", stdout, secrets)
		assertAbsent(t, "stderr", stderr, secrets)
		t.Logf("recorded %d bytes of stdout, %d of stderr (%d records)", len(stdout), len(stderr), len(lines(stderr)))
	})
}

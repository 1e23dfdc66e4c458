package logging_test

import (
	"bytes"
	"encoding/json"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/plugkit/vaultplugin/logging"
)

func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON record: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestJSONAndLevelFromEnv(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&logging.Options{Output: &buf, Lookup: env(map[string]string{logging.LevelEnv: "warning"})})
	l.Info("dropped")
	l.Warn("kept", "k", "v")
	rs := records(t, &buf)
	if len(rs) != 1 || rs[0]["@level"] != "warn" || rs[0]["@message"] != "kept" || rs[0]["k"] != "v" {
		t.Fatalf("records = %v", rs)
	}
}

func TestDefaultLevelIsTrace(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&logging.Options{Output: &buf, Lookup: env(nil)})
	l.Trace("t")
	if rs := records(t, &buf); len(rs) != 1 || rs[0]["@level"] != "trace" {
		t.Fatalf("records = %v", rs)
	}
}

func TestBadLevelWarnsAndUsesDefault(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&logging.Options{Output: &buf, Lookup: env(map[string]string{logging.LevelEnv: "loud"})})
	if !l.IsTrace() {
		t.Error("want the default level")
	}
	rs := records(t, &buf)
	if len(rs) != 1 || rs[0]["@level"] != "warn" || !strings.Contains(rs[0]["error"].(string), `"loud"`) {
		t.Fatalf("records = %v", rs)
	}
	if _, err := logging.LevelFromEnv(env(map[string]string{logging.LevelEnv: "off"})); err != nil {
		t.Errorf("off: %v", err)
	}
}

func TestRedact(t *testing.T) {
	var buf bytes.Buffer
	const secret = "s.eyJhbGciOiJFUzUxMiJ9.secret-token"
	l := logging.New(&logging.Options{Output: &buf, Redact: []string{secret, ""}, Level: hclog.Info})
	l.Info("unwrap failed: "+secret, "token", secret, "err", "PUT with "+secret)
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("secret printed: %s", out)
	}
	if strings.Count(out, logging.Redacted) != 3 {
		t.Fatalf("want 3 redactions: %s", out)
	}
}

func TestRouteStdLog(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&logging.Options{Output: &buf, Level: hclog.Trace})
	restore := logging.RouteStdLog(l)
	log.Printf("[ERROR] database unreachable")
	log.Printf("plain line")
	restore()
	log.SetOutput(os.Stderr)
	rs := records(t, &buf)
	if len(rs) != 2 || rs[0]["@level"] != "error" || rs[0]["@message"] != "database unreachable" || rs[1]["@level"] != "info" {
		t.Fatalf("records = %v", rs)
	}
}

func ExampleNew() {
	logger := logging.New(&logging.Options{
		Output:      os.Stdout, // a plugin leaves it nil: os.Stderr, which Vault reads
		Level:       hclog.Info,
		Redact:      []string{"hunter2"},
		DisableTime: true, // only to make this example's output stable
	})
	logger.Debug("not shown at info")
	logger.Info("login", "user", "alice", "password", "hunter2")
	// Output:
	// {"@level":"info","@message":"login","password":"[redacted]","user":"alice"}
}

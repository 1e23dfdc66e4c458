package servetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// lockedBuffer is a bytes.Buffer that go-plugin's goroutines may write
// while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WithHostLogger is the host's log: the plugin's stderr records arrive
// there at their own level, as Vault re-logs them.
func TestWithHostLogger(t *testing.T) {
	bin := servetest.Build(t, plugin)
	var out lockedBuffer
	host := hclog.New(&hclog.LoggerOptions{Name: "vault", Output: &out, JSONFormat: true, Level: hclog.Trace})
	p := servetest.Start(t, bin, servetest.WithHostLogger(host), servetest.WithLegacyTLS(), servetest.WithArgs("-tls-skip-verify"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, line := range strings.Split(out.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		msg, _ := rec["@message"].(string)
		if strings.HasPrefix(msg, "-tls-skip-verify is set") {
			found = true
			if rec["@level"] != "warn" {
				t.Errorf("the plugin's warning reached the host's log at %v, want warn: %s", rec["@level"], line)
			}
		}
	}
	if !found {
		t.Errorf("the plugin's warning is not in the host's log:\n%s", out.String())
	}

	_, err := servetest.New(context.Background(), "/nonexistent", servetest.WithHostLogger(nil))
	if want := "servetest: WithHostLogger(nil): want a logger"; err == nil || err.Error() != want {
		t.Errorf("WithHostLogger(nil): %v, want %s", err, want)
	}
}

package servetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
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

// Every problem with the options is reported in one error, before
// anything starts: each option's own and the conflicts between them, in
// whatever order the options came.
func TestOptionConflictsReportedAtOnce(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("WithContainerEnv is refused on Windows")
	}
	for name, opts := range map[string][]servetest.Option{
		"conflicting options first": {servetest.WithContainerEnv(), servetest.WithMetadataMode(), servetest.WithLegacyTLS(), servetest.WithEnv("NOEQUALS")},
		"conflicting options last":  {servetest.WithEnv("NOEQUALS"), servetest.WithLegacyTLS(), servetest.WithMetadataMode(), servetest.WithContainerEnv()},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := servetest.New(context.Background(), "/nonexistent", opts...)
			if err == nil {
				t.Fatal("no error")
			}
			want := "servetest: 3 invalid options:" +
				"\n\t* " + `WithEnv("NOEQUALS"): want KEY=VALUE` +
				"\n\t* WithMetadataMode and WithLegacyTLS exclude each other: a host in metadata mode sends no wrapping token" +
				"\n\t* WithContainerEnv and WithLegacyTLS exclude each other: "
			if !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "\n\t* ") != 3 {
				t.Errorf("err =\n%v\nwant it to start\n%s", err, want)
			}
		})
	}
}

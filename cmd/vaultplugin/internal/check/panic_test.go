package check

import (
	"context"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/internal/proctext"
	"github.com/plugkit/vaultplugin/serve/servetest"
)

// A factory panic that serve.Run or dbserve.Run recovered reaches the
// check only as the text of an error that crossed the plugin's gRPC
// boundary. It names proctext.FactoryPanicked, the phrase the check looks
// for, and the type check then sends the author to the panic's stack.
// This is the test that fails if serve or dbserve reword their error
// without the shared phrase.
func TestRecoveredFactoryPanic(t *testing.T) {
	const fix = "fix the panic in the factory: its stack is in the plugin's error log"
	t.Run("backend", func(t *testing.T) {
		p := servetest.Start(t, servetest.Build(t, "../../../../serve/internal/testplugin"))
		_, err := p.NewMount(context.Background(), map[string]string{"fault": "factory-panic"})
		if err == nil || !strings.Contains(err.Error(), proctext.FactoryPanicked) {
			t.Fatalf("NewMount: %v, want an error naming %q", err, proctext.FactoryPanicked)
		}
		s := &session{kind: kinds()[0], instErr: err, logs: p.Logs()}
		if r := s.typeResult(); r.Status != Fail || r.Fix != fix {
			t.Errorf("type: %s %q, fix %q; want %s with fix %q", r.Status, r.Detail, r.Fix, Fail, fix)
		}
	})
	t.Run("database", func(t *testing.T) {
		d := servetest.StartDatabase(t, servetest.Build(t, "../../../../serve/internal/testdb"), servetest.WithEnv("TESTDB_MODE=panic-later"))
		_, err := d.Connect(t).Type()
		if err == nil || !strings.Contains(err.Error(), proctext.FactoryPanicked) {
			t.Fatalf("Type: %v, want an error naming %q", err, proctext.FactoryPanicked)
		}
	})
}

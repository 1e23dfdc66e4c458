package serve_test

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"go.uber.org/goleak"

	"github.com/plugkit/vaultplugin/dbserve"
	"github.com/plugkit/vaultplugin/serve"
)

// goPluginSIGINT is the one goroutine Serve leaves, as serve.Serve's doc
// says: go-plugin's loop that receives SIGINT and logs it, which has no
// way out (it runs outside go-plugin's test mode, which a host's
// handshake rules out). It holds no file or connection, and Serve drops
// its signal registration on return.
var goPluginSIGINT = goleak.IgnoreTopFunction("github.com/hashicorp/go-plugin.Serve.func3")

// TestServeLeavesNothing: serve.Serve, run in this process under a
// host's handshake cookie and stopped by its context, leaves the process
// as it found it: os.Stdout and os.Stderr are the files they were, and no
// goroutine it started is left (so go-plugin's stdio pipes were closed:
// its goroutines copying from them end only at their EOF).
func TestServeLeavesNothing(t *testing.T) {
	setEnv(t, hostEnv())
	factory := func(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
		b := &framework.Backend{BackendType: logical.TypeLogical}
		return b, b.Setup(ctx, conf)
	}
	serveInProcess(t, func(ctx context.Context) error {
		return serve.Serve(ctx, factory, serve.WithArgs(), serve.WithLogger(hclog.NewNullLogger()))
	})
}

// TestDatabaseServeLeavesNothing is TestServeLeavesNothing for
// dbserve.Serve, whose first instance is built before serving and must be
// closed.
func TestDatabaseServeLeavesNothing(t *testing.T) {
	setEnv(t, dbHostEnv())
	db := &closeCounter{}
	serveInProcess(t, func(ctx context.Context) error {
		return dbserve.Serve(ctx, func() (interface{}, error) { return db, nil },
			dbserve.WithArgs(), dbserve.WithLogger(hclog.NewNullLogger()))
	})
	if db.closed != 1 {
		t.Errorf("the database was closed %d times, want 1", db.closed)
	}
}

func setEnv(t *testing.T, env []string) {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// closeCounter is a database that counts its Close calls; Serve returns
// before the count is read, so it needs no lock.
type closeCounter struct {
	dbplugin.Database
	closed int
}

func (c *closeCounter) Type() (string, error) { return "counter", nil }
func (c *closeCounter) Close() error          { c.closed++; return nil }

// serveInProcess runs serve until it printed its handshake line, cancels
// its context, and checks what it left behind.
func serveInProcess(t *testing.T, serve func(context.Context) error) {
	t.Helper()
	// The handshake line goes to os.Stdout: a pipe of the test's, so that
	// it stays out of the test's output and tells when serving began.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	origStdout, origStderr := os.Stdout, os.Stderr
	os.Stdout = w
	t.Cleanup(func() {
		os.Stdout, os.Stderr = origStdout, origStderr
		w.Close()
		r.Close()
	})
	// Everything running now (the test runner, earlier tests' stragglers)
	// may stay; anything Serve starts must end.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goPluginSIGINT)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "1|") {
		cancel()
		t.Fatalf("handshake line %q, %v (Serve: %v)", line, err, <-done)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if os.Stdout != w {
		t.Errorf("os.Stdout is %q after Serve, want the file it was", os.Stdout.Name())
	}
	if os.Stderr != origStderr {
		t.Errorf("os.Stderr is %q after Serve, want the file it was (%s)", os.Stderr.Name(), origStderr.Name())
	}
}

//go:build unix

package serve_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// stopTally counts how the requests sent around a stop ended.
type stopTally struct {
	ok, refused, other atomic.Int64
	firstOther         atomic.Value // string
}

// add counts err: nil, errStopping's text (which Vault retries on a new
// process), or anything else (the server stopped under the request, or
// the process was gone).
// It reports whether err was another failure.
func (s *stopTally) add(err error, refusedText string) (other bool) {
	switch {
	case err == nil:
		s.ok.Add(1)
	case strings.Contains(err.Error(), refusedText):
		s.refused.Add(1)
	default:
		s.other.Add(1)
		s.firstOther.CompareAndSwap(nil, err.Error())
		return true
	}
	return false
}

// stream sends requests with clients goroutines until stop is called; a
// client that fails otherwise than refused stops early: the server is
// gone, and its next requests would only fail the same way.
func stream(clients int, send func(client int) error, tally *stopTally, refusedText string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := send(c); tally.add(err, refusedText) {
					return
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

// stopUnderLoad sends SIGTERM to pid once at least warm requests
// succeeded, waits for the process to be gone, then stops the stream.
func stopUnderLoad(t *testing.T, pid int, tally *stopTally, warm int64, stopStream func()) {
	t.Helper()
	for tally.ok.Load() < warm {
		time.Sleep(time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid, 30*time.Second)
	stopStream()
}

// violations returns what the plugin recorded in file: calls that reached
// an instance after (or during) its Cleanup or Close.
func violations(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestNoRequestAfterCleanup: a SIGTERM under a steady stream of requests
// over two mounts. Once the stop begins no new request may reach a
// backend (they are held back, then refused with net/rpc's ErrShutdown
// text, which Vault retries on a new process), those in flight finish,
// and only then is every backend cleaned up. The test plugin's Cleanup
// sets a flag and takes 50 ms; its handler records a violation if it
// starts, or is still running, once the flag is set. Repeated, because
// the window is a race.
func TestNoRequestAfterCleanup(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	const iterations, clients = 5, 8
	for i := range iterations {
		file := filepath.Join(t.TempDir(), "violations")
		p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_STOP_FILE="+file, "TESTPLUGIN_MODE=stop1s"))
		mounts := []*servetest.Mount{p.Mount(t, nil), p.Mount(t, nil)}
		var tally stopTally
		ctx := context.Background()
		stopStream := stream(clients, func(c int) error {
			_, err := mounts[c%len(mounts)].Read(ctx, "work")
			return err
		}, &tally, "connection is shut down")
		stopUnderLoad(t, p.PID(), &tally, 200, stopStream)
		if v := violations(t, file); v != "" {
			t.Fatalf("iteration %d: %s(%d requests answered, %d refused, %d other errors)", i, v, tally.ok.Load(), tally.refused.Load(), tally.other.Load())
		}
		t.Logf("iteration %d: %d requests answered, %d refused as stopping, %d failed otherwise (first: %v)",
			i, tally.ok.Load(), tally.refused.Load(), tally.other.Load(), tally.firstOther.Load())
	}
}

// TestNoDatabaseCallAfterClose is TestNoRequestAfterCleanup for a database
// plugin: UpdateUser calls over two connections, SIGTERM mid-stream; the
// test database's Close sets a flag and takes 50 ms, and an UpdateUser
// that starts or still runs once it is set is a violation.
func TestNoDatabaseCallAfterClose(t *testing.T) {
	bin := servetest.Build(t, testDB)
	const iterations, clients = 5, 8
	for i := range iterations {
		file := filepath.Join(t.TempDir(), "violations")
		p := servetest.StartDatabase(t, bin, servetest.WithEnv("TESTDB_STOP_FILE="+file))
		ctx := context.Background()
		conns := []*servetest.Connection{p.Connect(t), p.Connect(t)}
		for _, c := range conns {
			if _, err := c.Initialize(ctx, dbplugin.InitializeRequest{Config: map[string]any{}}); err != nil {
				t.Fatal(err)
			}
		}
		var tally stopTally
		stopStream := stream(clients, func(c int) error {
			_, err := conns[c%len(conns)].UpdateUser(ctx, dbplugin.UpdateUserRequest{
				Username: "user", Password: &dbplugin.ChangePassword{NewPassword: "Pw-0123456789"},
			})
			return err
		}, &tally, "the database plugin is stopping")
		stopUnderLoad(t, p.PID(), &tally, 200, stopStream)
		if v := violations(t, file); v != "" {
			t.Fatalf("iteration %d: %s(%d calls answered, %d refused, %d other errors)", i, v, tally.ok.Load(), tally.refused.Load(), tally.other.Load())
		}
		t.Logf("iteration %d: %d calls answered, %d refused as stopping, %d failed otherwise (first: %v)",
			i, tally.ok.Load(), tally.refused.Load(), tally.other.Load(), tally.firstOther.Load())
	}
}

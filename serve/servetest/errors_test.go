package servetest_test

import (
	"context"
	"errors"
	"io/fs"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// startError fails t unless err is a *servetest.StartError for bin.
func startError(t *testing.T, err error, bin string) *servetest.StartError {
	t.Helper()
	var se *servetest.StartError
	if !errors.As(err, &se) {
		t.Fatalf("%T %v, want a *servetest.StartError", err, err)
	}
	if se.Binary != bin {
		t.Errorf("Binary = %q, want %q", se.Binary, bin)
	}
	return se
}

// A plugin that explains its failure on stdout, where Vault reads the
// handshake, gives its line as Stdout and Cause, and its stderr.
func TestStartErrorFields(t *testing.T) {
	bin := servetest.Build(t, plugin)
	_, err := servetest.New(context.Background(), bin, servetest.WithArgs("-no-such-flag"))
	se := startError(t, err, bin)
	const cause = "testplugin: flag provided but not defined: -no-such-flag"
	if !strings.HasPrefix(se.Stdout, cause) || se.Cause != se.Stdout {
		t.Errorf("Stdout %q, Cause %q: want both to be the plugin's line %q…", se.Stdout, se.Cause, cause)
	}
	if se.Exited {
		t.Error("Exited, for a plugin that printed a line where its handshake belonged")
	}
	if len(se.Stderr) == 0 || !strings.Contains(se.Stderr[len(se.Stderr)-1], `"@level":"error"`) {
		t.Errorf("Stderr = %q, want the plugin's error record last", se.Stderr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("a plugin that failed at once is reported as out of time")
	}
}

// A binary that ends without a word, on stdout or stderr, is Exited with
// no Cause.
func TestStartErrorExited(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs a program that exits at once, silently")
	}
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	_, err = servetest.New(context.Background(), bin)
	se := startError(t, err, bin)
	if !se.Exited || se.Cause != "" || se.Stdout != "" || len(se.Stderr) != 0 {
		t.Errorf("Exited %v, Cause %q, Stdout %q, Stderr %q: want exited without a word", se.Exited, se.Cause, se.Stdout, se.Stderr)
	}
}

// A plugin that gives no handshake before ctx's deadline is a StartError
// that is context.DeadlineExceeded, whatever go-plugin calls it.
func TestStartErrorDeadline(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs sleep(1)")
	}
	bin, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = servetest.New(ctx, bin, servetest.WithArgs("60"))
	se := startError(t, err, bin)
	if !errors.Is(err, context.DeadlineExceeded) || se.Exited {
		t.Errorf("%v (Exited %v): want context.DeadlineExceeded, not exited", err, se.Exited)
	}
}

// A binary that cannot be read is a StartError wrapping the file system's
// error.
func TestStartErrorNoBinary(t *testing.T) {
	_, err := servetest.NewDatabase(context.Background(), "/nonexistent")
	startError(t, err, "/nonexistent")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v: want fs.ErrNotExist", err)
	}
}

// Invalid options are not a start failure: nothing was started.
func TestInvalidOptionsAreNoStartError(t *testing.T) {
	_, err := servetest.New(context.Background(), "/nonexistent", servetest.WithEnv("NOEQUALS"))
	var se *servetest.StartError
	if err == nil || errors.As(err, &se) {
		t.Errorf("%v: want an error that is no *StartError", err)
	}
}

// A second mount of a plugin that does not multiplex is ErrNotMultiplexed
// (a database's second connection takes the same path).
func TestErrNotMultiplexed(t *testing.T) {
	p := servetest.Start(t, servetest.Build(t, plugin), servetest.WithoutHostMultiplexing())
	p.Mount(t, nil)
	if _, err := p.NewMount(context.Background(), nil); !errors.Is(err, servetest.ErrNotMultiplexed) {
		t.Errorf("second NewMount: %v, want ErrNotMultiplexed", err)
	}
}

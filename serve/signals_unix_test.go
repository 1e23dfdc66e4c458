//go:build unix

package serve_test

// The tests that send signals, or read how a signal ended a process: Unix
// only. On Windows there is no SIGINT or SIGTERM to deliver to another
// process (os.Process.Signal supports only Kill there) and no SIGPIPE.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// TestClosedStdio: a host that stops reading the plugin's stdout or stderr
// is gone or broken. The plugin must neither hang nor dump a panic: its
// next write to that stream kills it with SIGPIPE, the Go runtime's rule
// for descriptors 1 and 2 (and what any Unix program does), before it
// serves anyone. A descriptor that is closed outright is reopened on
// /dev/null by the Go runtime at start, so that case is a plugin writing
// to /dev/null and needs nothing.
func TestClosedStdio(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	for _, stream := range []string{"stdout", "stderr"} {
		t.Run(stream, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			pr.Close() // the reader is gone
			defer pw.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir()}, hostEnv()...)
			var other strings.Builder
			if stream == "stdout" {
				cmd.Stdout, cmd.Stderr = pw, &other
			} else {
				cmd.Stdout, cmd.Stderr = &other, pw
			}
			start := time.Now()
			err = cmd.Run()
			took := time.Since(start)
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("the plugin exited with %v, want death by SIGPIPE", err)
			}
			ws := ee.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
				t.Errorf("exit status %v, want killed by SIGPIPE; the other stream: %s", ws, other.String())
			}
			if ctx.Err() != nil {
				t.Errorf("the plugin hung until the test's timeout")
			}
			if strings.Contains(other.String(), "panic:") || strings.Contains(other.String(), "goroutine ") {
				t.Errorf("panic output: %s", other.String())
			}
			t.Logf("%s closed: %v after %s", stream, ws.Signal(), took.Round(time.Millisecond))
		})
	}
}

// TestSIGINTKeepsServing: Vault's terminal sends SIGINT to the whole
// process group; the plugin must ignore it and go on serving.
func TestSIGINTKeepsServing(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin)
	m := p.Mount(t, nil)
	for range 3 {
		if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if p.Exited() {
		t.Fatal("SIGINT stopped the plugin")
	}
	write(t, m, "kv/k", map[string]any{"value": "after SIGINT"})
	if got := read(t, m, "kv/k")["value"]; got != "after SIGINT" {
		t.Errorf("read back %v", got)
	}
}

// TestSIGINTAtHandshake: go-plugin starts ignoring SIGINT only after it
// printed the handshake, so a SIGINT sent as soon as the host reads that
// line used to kill the plugin about one time in three.
func TestSIGINTAtHandshake(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	for i := range 15 {
		cmd := handshake(t, bin)
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("start %d: SIGINT right after the handshake stopped the plugin: %v", i, err)
		case <-time.After(100 * time.Millisecond):
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := <-done; err != nil {
			t.Fatalf("start %d: SIGTERM: %v, want exit 0", i, err)
		}
	}
}

// handshake starts bin as a host would, without a client, and returns once
// the handshake line is out.
func handshake(t *testing.T, bin string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), hostEnv(env...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "1|5|unix|") {
		t.Fatalf("handshake line %q, %v; stderr %s", line, err, stderr.String())
	}
	return cmd
}

func TestSIGTERM(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	t.Run("exit 0", func(t *testing.T) {
		cmd := handshake(t, bin)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("after SIGTERM: %v, want exit 0", err)
		}
	})
	t.Run("SIGINT ignored", func(t *testing.T) {
		cmd := handshake(t, bin)
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("SIGINT stopped the plugin: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	})
	t.Run("cleanup called", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "cleanup")
		p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_CLEANUP_FILE="+marker))
		for range 2 {
			p.Mount(t, nil)
		}
		if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitGone(t, p.PID(), 3*time.Second)
		b, _ := os.ReadFile(marker)
		if got := strings.Count(string(b), "cleanup"); got != 2 {
			t.Errorf("Cleanup called %d times, want 2 (one per mount)", got)
		}
	})
}

// waitGone waits until pid no longer runs (a zombie counts as gone) and
// returns how long that took.
func waitGone(t *testing.T, pid int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return time.Since(start)
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d still runs after %s", pid, limit)
	return 0
}

package check

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/pluginutil"

	"github.com/plugkit/vaultplugin/internal/wraphost"
)

// rawProcess is a plugin started with os/exec rather than go-plugin's
// client, for what servetest hides: the stdout lines before the handshake,
// signals and the exit status. It gets Vault's environment with AutoMTLS
// (or, on the legacy path, a wrapping token whose unwrap endpoint
// answers) but nobody connects: reading the handshake line is enough.
type rawProcess struct {
	cmd    *exec.Cmd
	stderr *tailWriter
	// release frees what the start needed besides the process (the
	// legacy path's unwrap endpoint) once it has exited; nil for nothing.
	release func()

	handshook chan struct{} // closed when the handshake line was read
	done      chan struct{} // closed when the process has exited and been reaped

	mu        sync.Mutex
	before    []string // stdout lines before the handshake line
	handshake handshakeLine
	state     *os.ProcessState
}

// startRaw starts the plugin as Vault would start a plugin of kind k,
// offering protocols, with extra environment entries after Vault's (and
// before the operator's). On the legacy path each start gets a wrapping
// token of its own, as under Vault: a token answers once. The caller must
// stop it.
func (h *host) startRaw(k kind, protocols string, extraEnv ...string) (*rawProcess, error) {
	args := h.Args
	var release func()
	if h.legacy {
		dir, err := os.MkdirTemp(h.tmp, "wrap-")
		if err != nil {
			return nil, fmt.Errorf("creating a directory for the unwrap endpoint's CA: %w", err)
		}
		wh, err := wraphost.Start(dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("starting the unwrap endpoint: %w", err)
		}
		release = func() { wh.Close(); os.RemoveAll(dir) }
		// As servetest.WithLegacyTLS: the endpoint's CA first, then the
		// operator's arguments.
		args = append([]string{"-ca-cert=" + wh.CAFile}, args...)
		extraEnv = append([]string{pluginutil.PluginUnwrapTokenEnv + "=" + wh.Token}, extraEnv...)
	}
	cmd := exec.Command(h.Binary, args...)
	cmd.Env = h.env(k, protocols, extraEnv...)
	p, err := startProcess(cmd, release)
	if err != nil && release != nil {
		release()
	}
	return p, err
}

// startProcess starts cmd with its stdout read line by line and its
// stderr's tail kept; release, if not nil, runs once it has exited.
func startProcess(cmd *exec.Cmd, release func()) (*rawProcess, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the stdout pipe: %w", err)
	}
	p := &rawProcess{cmd: cmd, stderr: &tailWriter{}, release: release, handshook: make(chan struct{}), done: make(chan struct{})}
	cmd.Stdout = w
	cmd.Stderr = p.stderr
	// A child of the plugin may hold stderr open; Wait must not wait
	// for it.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	w.Close()
	read := make(chan struct{})
	go func() {
		defer close(read)
		p.readStdout(r)
	}()
	go func() {
		_ = cmd.Wait()
		// The last lines written before exiting (a cause line) are
		// still in the pipe: let the reader have them, unless a child
		// of the plugin holds the pipe open.
		select {
		case <-read:
		case <-time.After(time.Second):
		}
		r.Close()
		<-read
		if p.release != nil {
			p.release()
		}
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// readStdout records the lines before the handshake line, then the
// handshake, and discards the rest.
func (p *rawProcess) readStdout(r *os.File) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	found := false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if found {
			continue
		}
		if hs, ok := parseHandshake(line); ok {
			p.mu.Lock()
			p.handshake = hs
			p.mu.Unlock()
			found = true
			close(p.handshook)
			continue
		}
		p.mu.Lock()
		p.before = append(p.before, line)
		p.mu.Unlock()
	}
}

// noHandshake is awaitHandshake's error when the plugin exited, or the
// bound passed, without a handshake line.
type noHandshake struct {
	exit  string // how it exited; "" when the bound passed
	bound time.Duration
}

func (e *noHandshake) Error() string {
	if e.exit != "" {
		return "exited before its handshake (" + e.exit + ")"
	}
	return fmt.Sprintf("no handshake within %s", e.bound)
}

// awaitHandshake waits up to bound for the handshake line.
func (p *rawProcess) awaitHandshake(ctx context.Context, bound time.Duration) error {
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-p.handshook:
		return nil
	case <-p.done:
		// It may have printed the line and exited at once.
		select {
		case <-p.handshook:
			return nil
		default:
		}
		return &noHandshake{exit: p.exitStatus()}
	case <-t.C:
		return &noHandshake{bound: bound}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop kills the process, if it still runs, and waits until it is reaped.
func (p *rawProcess) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// exitStatus describes how the process ended: "exit status 1",
// "signal: terminated"; "" while it runs.
func (p *rawProcess) exitStatus() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return ""
	}
	return p.state.String()
}

// stdoutBefore returns the stdout lines read before the handshake line.
func (p *rawProcess) stdoutBefore() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.before...)
}

// handshakeLine is go-plugin's handshake, the first line a plugin prints:
// CORE-PROTOCOL|APP-PROTOCOL|NETWORK|ADDRESS|PROTOCOL[|SERVER-CERT].
type handshakeLine struct {
	raw     string
	app     int    // the protocol version the plugin chose
	network string // "unix" or "tcp"
}

// parseHandshake parses line as go-plugin's client does (client.go, Start):
// at least four fields, core protocol version 1.
func parseHandshake(line string) (handshakeLine, bool) {
	parts := strings.Split(strings.TrimSpace(line), "|")
	if len(parts) < 4 || parts[0] != "1" {
		return handshakeLine{}, false
	}
	app, err := strconv.Atoi(parts[1])
	if err != nil {
		return handshakeLine{}, false
	}
	return handshakeLine{raw: line, app: app, network: parts[2]}, true
}

// tailWriter keeps the last lines written to it.
type tailWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines []string
}

const tailLines = 50

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
		if len(w.lines) > tailLines {
			w.lines = w.lines[len(w.lines)-tailLines:]
		}
	}
	return len(b), nil
}

// Lines returns the lines kept, with a last unterminated one.
func (w *tailWriter) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := append([]string(nil), w.lines...)
	if len(w.buf) > 0 {
		lines = append(lines, string(w.buf))
	}
	return lines
}

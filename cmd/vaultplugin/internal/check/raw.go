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
)

// rawProcess is a plugin started with os/exec rather than go-plugin's
// client, for what servetest hides: the stdout lines before the handshake,
// signals and the exit status. It gets Vault's environment with AutoMTLS
// but nobody connects: reading the handshake line is enough.
type rawProcess struct {
	cmd    *exec.Cmd
	stderr *tailWriter

	handshook chan struct{} // closed when the handshake line was read
	done      chan struct{} // closed when the process has exited and been reaped

	mu        sync.Mutex
	before    []string // stdout lines before the handshake line
	handshake handshakeLine
	state     *os.ProcessState
}

// startRaw starts the plugin as Vault would start a plugin of kind k,
// offering protocols, with extra environment entries after Vault's (and
// before the operator's). The caller must stop it.
func (h *host) startRaw(k kind, protocols string, extraEnv ...string) (*rawProcess, error) {
	cmd := exec.Command(h.Binary, h.Args...)
	cmd.Env = h.env(k, protocols, extraEnv...)
	return startProcess(cmd)
}

// startProcess starts cmd with its stdout read line by line and its
// stderr's tail kept.
func startProcess(cmd *exec.Cmd) (*rawProcess, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the stdout pipe: %w", err)
	}
	p := &rawProcess{cmd: cmd, stderr: &tailWriter{}, handshook: make(chan struct{}), done: make(chan struct{})}
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

package check

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// HostCommand is the hidden vaultplugin subcommand with which the
// host-death and mlock checks run vaultplugin itself as a short-lived
// host: a process that starts the plugin as Vault does and that the check
// can then kill, as Vault may be killed, or start without CAP_IPC_LOCK.
const HostCommand = "_host"

// hostReport is the one JSON line the host prints once the plugin started,
// or failed to.
type hostReport struct {
	PID   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	// Failure is what the failed start (or first mount) showed, set with
	// Error unless the host's own command line was wrong: a
	// servetest.StartError does not cross processes, its fields do.
	Failure *startFailure `json:"failure,omitempty"`
	// CapDropped is true when the host dropped CAP_IPC_LOCK before it
	// started the plugin; DropError says why it could not.
	CapDropped bool   `json:"cap_dropped,omitempty"`
	DropError  string `json:"drop_error,omitempty"`
}

// Host runs HostCommand with its arguments:
//
//	_host [-database] [-legacy-tls] [-mount] [-no-ipc-lock] [-env K=V]... [-args ARG]... BINARY
//
// It starts BINARY through servetest as Vault does (on the legacy TLS path
// with -legacy-tls; and sets up one mount or connection with -mount),
// prints one hostReport line on stdout, then
// holds the plugin until stdin closes, when it closes the plugin and
// exits 0, or until it is killed. With -no-ipc-lock it first drops
// CAP_IPC_LOCK (Linux), so that the plugin runs as under a Vault that has
// the capability itself but does not pass it on.
func Host(args []string, stdin io.Reader, stdout io.Writer) int {
	fs := flag.NewFlagSet(HostCommand, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	database := fs.Bool("database", false, "")
	mount := fs.Bool("mount", false, "")
	legacy := fs.Bool("legacy-tls", false, "")
	noIPCLock := fs.Bool("no-ipc-lock", false, "")
	var env, pluginArgs listFlag
	fs.Var(&env, "env", "")
	fs.Var(&pluginArgs, "args", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintf(stdout, "{\"error\":%q}\n", fmt.Sprintf("usage: %s [flags] BINARY (%v)", HostCommand, err))
		return 2
	}
	var rep hostReport
	if *noIPCLock {
		// Before anything else on this goroutine: the plugin must be
		// started from the thread that dropped the capability.
		if err := dropIPCLock(); err != nil {
			rep.DropError = err.Error()
		} else {
			rep.CapDropped = true
		}
	}
	opts := []servetest.Option{servetest.WithEnv(env...)}
	if *legacy {
		opts = append(opts, servetest.WithLegacyTLS())
	}
	if len(pluginArgs) > 0 {
		opts = append(opts, servetest.WithArgs(pluginArgs...))
	}
	closer, pid, err := hostStart(*database, *mount, fs.Arg(0), opts)
	if err != nil {
		rep.Error = err.Error()
		f := newStartFailure(err)
		rep.Failure = &f
	}
	rep.PID = pid
	line, _ := json.Marshal(rep)
	fmt.Fprintf(stdout, "%s\n", line)
	if err != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, stdin)
	_ = closer.Close()
	return 0
}

// hostStart starts bin, with a first mount or connection when mount is set.
func hostStart(database, mount bool, bin string, opts []servetest.Option) (io.Closer, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeBound+RequestBound)
	defer cancel()
	if database {
		d, err := servetest.NewDatabase(ctx, bin, opts...)
		if err != nil {
			return nil, 0, err
		}
		if mount {
			if _, err := d.NewConnection(ctx); err != nil {
				_ = d.Close()
				return nil, 0, err
			}
		}
		return d, d.PID(), nil
	}
	p, err := servetest.New(ctx, bin, opts...)
	if err != nil {
		return nil, 0, err
	}
	if mount {
		if _, err := p.NewMount(ctx, nil); err != nil {
			_ = p.Close()
			return nil, 0, err
		}
	}
	return p, p.PID(), nil
}

// failure is what the host's failure showed: Failure, or for a host
// that could not even read its command line, its error alone.
func (r hostReport) failure() startFailure {
	if r.Failure != nil {
		return *r.Failure
	}
	return startFailure{Reason: firstLine(r.Error)}
}

// hostProcess is a running HostCommand, seen from the check.
type hostProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailWriter
}

// startHost runs vaultplugin's HostCommand for a plugin of kind k, with
// extraEnv before the operator's entries, and waits for its report.
func (h *host) startHost(ctx context.Context, k kind, mount, noIPCLock bool, extraEnv ...string) (*hostProcess, hostReport, error) {
	args := []string{HostCommand}
	if k.name == "database" {
		args = append(args, "-database")
	}
	if h.legacy {
		args = append(args, "-legacy-tls")
	}
	if mount {
		args = append(args, "-mount")
	}
	if noIPCLock {
		args = append(args, "-no-ipc-lock")
	}
	env := append(append([]string{"TMPDIR=" + h.tmp}, extraEnv...), h.Env...)
	for _, e := range env {
		args = append(args, "-env", e)
	}
	for _, a := range h.Args {
		args = append(args, "-args", a)
	}
	args = append(args, "--", h.Binary)

	cmd := exec.Command(h.Self, args...)
	hp := &hostProcess{cmd: cmd, stderr: &tailWriter{}}
	cmd.Stderr = hp.stderr
	cmd.WaitDelay = time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, hostReport{}, fmt.Errorf("host stdin: %w", err)
	}
	hp.stdin = stdin
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, hostReport{}, fmt.Errorf("host stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, hostReport{}, fmt.Errorf("starting %s %s: %w", h.Self, HostCommand, err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	bound := time.NewTimer(HandshakeBound + RequestBound + 5*time.Second)
	defer bound.Stop()
	var rep hostReport
	select {
	case line, ok := <-lines:
		if !ok {
			hp.kill()
			return nil, rep, fmt.Errorf("the host printed nothing: %s", strings.Join(hp.stderr.Lines(), " / "))
		}
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			hp.kill()
			return nil, rep, fmt.Errorf("the host's report %q: %w", line, err)
		}
		return hp, rep, nil
	case <-bound.C:
		hp.release(time.Second)
		return nil, rep, errors.New("the host did not report in time")
	case <-ctx.Done():
		// Not a kill: a host that has started the plugin then closes it
		// when it sees its stdin closed, where a killed one would leave
		// the plugin behind.
		hp.release(HandshakeBound + RequestBound)
		return nil, rep, ctx.Err()
	}
}

// kill ends the host at once, as SIGKILL ends Vault, and reaps it.
func (hp *hostProcess) kill() {
	_ = hp.cmd.Process.Kill()
	_ = hp.cmd.Wait()
}

// release lets the host close its plugin and exit, and waits up to bound
// for that before killing it.
func (hp *hostProcess) release(bound time.Duration) {
	_ = hp.stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = hp.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(bound):
		_ = hp.cmd.Process.Kill()
		<-done
	}
}

// listFlag is a flag that may be given many times, each value kept as is:
// like Vault's -args and -env, it does not split at commas.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

package server

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// stopListener hears what asks the plugin to stop from outside: SIGTERM
// from a supervisor, and its host's death. Reasons yields why, once.
type stopListener struct {
	Reasons <-chan string
	release func()
}

// listenForStop starts listening, until release is called. Serve calls it
// once, before the debugger wait and the handshake, so that a SIGTERM is
// handled from the first moment the host could send one.
//
// It also makes the process ignore SIGINT: a Ctrl-C in the host's terminal
// reaches the whole process group, and go-plugin starts eating SIGINT only
// after it has printed the handshake, so without this a Ctrl-C in that
// window (or while the plugin waits for a debugger) would kill the plugin.
// go-plugin's own signal.Notify for SIGINT then takes over from the ignore.
// Ignoring is one system call, where catching costs a round trip to the
// runtime's signal thread (about 0.1 ms measured here, more on first use,
// when the runtime starts that thread).
func listenForStop() *stopListener {
	interruptWasIgnored := signal.Ignored(os.Interrupt)
	signal.Ignore(os.Interrupt)
	ctx, cancel := context.WithCancel(context.Background())
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	hostGone := watchParent(ctx, os.Getppid())
	why := make(chan string, 1)
	go func() {
		select {
		case s := <-term:
			why <- "received " + s.String()
		case <-hostGone:
			why <- "host process exited"
		case <-ctx.Done():
		}
	}()
	return &stopListener{Reasons: why, release: func() {
		cancel()
		signal.Stop(term)
		if !interruptWasIgnored {
			// Serve returned: a caller that goes on (a test, a custom
			// main) gets SIGINT's default back.
			signal.Reset(os.Interrupt)
		}
	}}
}

// parentPollInterval is how often the plugin checks that its host still
// runs. A host killed with SIGKILL cannot tell its plugins, and go-plugin
// does not notice: the plugin is re-parented and would run forever. Polling
// getppid is portable across Unixes and, unlike PR_SET_PDEATHSIG, is not
// fooled by the host's forking thread exiting while the host lives. At
// 250 ms the plugin is gone well within two seconds, for one cheap system
// call four times a second.
const parentPollInterval = 250 * time.Millisecond

// watchParent returns a channel closed when the parent process, whose pid
// was ppid when the plugin started, is gone (the plugin was re-parented).
func watchParent(ctx context.Context, ppid int) <-chan struct{} {
	ch := make(chan struct{})
	if ppid <= 1 {
		// Started by init, or the host is PID 1 in a container: there is
		// no re-parenting to observe.
		return ch
	}
	go func() {
		t := time.NewTicker(parentPollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != ppid {
					close(ch)
					return
				}
			}
		}
	}()
	return ch
}

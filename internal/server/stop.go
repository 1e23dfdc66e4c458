package server

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// listenForStop listens, until release is called, for what asks the
// plugin to stop from outside: SIGTERM from a supervisor, and its host's
// death. The channel then yields why, once. It also catches SIGINT and
// drops it: a Ctrl-C in the host's terminal reaches the whole process
// group, and go-plugin starts ignoring SIGINT only after it has printed the
// handshake, so without this a Ctrl-C in that window (or while the plugin
// waits for a debugger) would kill the plugin.
func listenForStop() (reasons <-chan string, release func()) {
	ctx, cancel := context.WithCancel(context.Background())
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	interrupt := make(chan os.Signal, 1) // never read: the signal is dropped
	signal.Notify(interrupt, os.Interrupt)
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
	return why, func() {
		cancel()
		signal.Stop(term)
		signal.Stop(interrupt)
	}
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

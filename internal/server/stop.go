package server

import (
	"context"
	"os"
	"os/signal"
	"syscall"
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
	// syscall.SIGTERM exists on Windows too, but no host can send it
	// there: a Windows host stops a plugin by killing it, and the plugin
	// sees its host gone below. The Go runtime only maps console close,
	// logoff and shutdown events to it. Keeping the Notify keeps one code
	// path.
	signal.Notify(term, syscall.SIGTERM)
	// How the host's death is seen depends on the OS: on Linux, macOS and
	// the BSDs the orphaned plugin is re-parented, which polling getppid
	// every parentPollInterval (250 ms) notices (stop_unix.go); on Windows
	// a process is never re-parented, so the plugin waits on its parent's
	// process handle instead (stop_windows.go).
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
		// Serve returned: a caller that goes on (a test, a custom main)
		// gets SIGINT back as it was. Both calls also drop go-plugin's
		// signal.Notify for SIGINT, which would otherwise keep catching
		// it for a goroutine that is no longer serving anything.
		if interruptWasIgnored {
			signal.Ignore(os.Interrupt)
		} else {
			signal.Reset(os.Interrupt)
		}
	}}
}

//go:build !windows

package server

import (
	"context"
	"os"
	"time"
)

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

//go:build windows

package server

import (
	"context"

	"golang.org/x/sys/windows"
)

// watchParent returns a channel closed when the parent process, whose pid
// was ppid when the plugin started, has exited.
//
// Windows never re-parents a process, so getppid polling (stop_unix.go)
// would not notice anything there. Instead the parent is opened once, at
// start, with SYNCHRONIZE access, and a goroutine waits on that handle,
// which is signalled when the process exits, together with an event set
// when ctx is done. Holding the handle also keeps the parent's pid from
// being reused while the plugin runs, so the wait cannot follow another
// process. If the parent cannot be opened (it already exited, or access is
// denied), nothing is logged and the returned channel never closes: the
// plugin then stops only when asked, as it did before this watch existed.
func watchParent(ctx context.Context, ppid int) <-chan struct{} {
	ch := make(chan struct{})
	if ppid <= 0 {
		return ch
	}
	parent, err := windows.OpenProcess(windows.SYNCHRONIZE, false, uint32(ppid))
	if err != nil {
		return ch
	}
	// Manual reset, initially not set: set once, when ctx is done.
	stop, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		windows.CloseHandle(parent) //nolint:errcheck // nothing to do about it
		return ch
	}
	setDone := make(chan struct{})
	stopSetting := context.AfterFunc(ctx, func() {
		windows.SetEvent(stop) //nolint:errcheck // the handle is open until setDone
		close(setDone)
	})
	go func() {
		ev, err := windows.WaitForMultipleObjects([]windows.Handle{parent, stop}, false, windows.INFINITE)
		if err == nil && ev == windows.WAIT_OBJECT_0 {
			close(ch)
		}
		if !stopSetting() {
			// The AfterFunc has started: let it finish with stop first.
			<-setDone
		}
		windows.CloseHandle(stop)   //nolint:errcheck // nothing to do about it
		windows.CloseHandle(parent) //nolint:errcheck // nothing to do about it
	}()
	return ch
}

package serve_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// attachDebugger attaches to pid with ptrace, as dlv attach does, and lets
// it run on (forwarding the signals the Go runtime sends itself) until the
// returned function detaches. ptrace requests must come from one thread,
// so the tracer is a goroutine locked to its thread; tracer is that
// thread's id, which the tracee sees as its TracerPid.
func attachDebugger(t *testing.T, pid int) (tracer int, detach func()) {
	t.Helper()
	var stopping atomic.Bool
	ready, done := make(chan error, 1), make(chan struct{})
	var tid int
	go func() {
		defer close(done)
		// Never unlocked: the thread, which is the tracer, ends with
		// the goroutine.
		runtime.LockOSThread()
		tid = syscall.Gettid()
		if err := syscall.PtraceAttach(pid); err != nil {
			ready <- fmt.Errorf("PTRACE_ATTACH %d: %w", pid, err)
			return
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			ready <- fmt.Errorf("wait4 after attach: %w", err)
			return
		}
		if err := syscall.PtraceCont(pid, 0); err != nil {
			ready <- fmt.Errorf("PTRACE_CONT: %w", err)
			return
		}
		ready <- nil
		for {
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.Exited() || ws.Signaled() {
				return
			}
			if !ws.Stopped() {
				continue
			}
			sig := ws.StopSignal()
			if sig == syscall.SIGSTOP && stopping.Load() {
				_ = syscall.PtraceDetach(pid)
				return
			}
			// Deliver the signal (SIGURG preemption, say) as if no one
			// had been watching.
			_ = syscall.PtraceCont(pid, int(sig))
		}
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	return tid, func() {
		stopping.Store(true)
		// The tracee must be stopped to be detached.
		_ = syscall.Tgkill(pid, pid, syscall.SIGSTOP)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the tracer did not detach")
		}
	}
}

package servetest

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// startHostProcess starts the dev server so that it never outlives this
// process: with Pdeathsig set to SIGTERM, the kernel signals the server
// when the thread that started it ends, and a Vault or OpenBao given
// SIGTERM stops its plugins before it exits. That thread is locked to a
// goroutine that waits for the server for its whole life, so it ends only
// with the process: at a normal exit, a panic, or a SIGKILL of the test
// binary. Nothing can send a SIGKILL after that (the parent is gone), so a
// server that ignored SIGTERM would stay; Vault and OpenBao do not. The
// returned channel is closed when the server has exited.
func startHostProcess(cmd *exec.Cmd) (<-chan struct{}, error) {
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// Never unlocked: Pdeathsig fires when this thread exits, and
		// the runtime ends a thread whose goroutine returns locked.
		runtime.LockOSThread()
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}

// terminate asks p to stop as Vault is stopped: SIGTERM.
func terminate(p *os.Process) { _ = p.Signal(syscall.SIGTERM) }

// processAlive reports whether a process pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

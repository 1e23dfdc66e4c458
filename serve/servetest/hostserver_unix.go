//go:build unix && !linux

package servetest

import (
	"os"
	"os/exec"
	"syscall"
)

// startHostProcess starts the dev server so that it does not outlive this
// process by more than a moment. Outside Linux there is no Pdeathsig, so
// the server runs under a small sh watchdog that reads its stdin, a pipe
// whose write end only this process holds: when this process ends, however
// it ends, the read returns and the watchdog sends the server SIGTERM,
// which stops its plugins. The returned channel is closed when the
// watchdog (and so the server) has exited.
func startHostProcess(cmd *exec.Cmd) (<-chan struct{}, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	script := `"$0" "$@" <&- & pid=$!; trap 'kill -TERM $pid' TERM INT; read _ || true; kill -TERM $pid 2>/dev/null; wait $pid`
	args := append([]string{"-c", script}, cmd.Args...)
	cmd.Args = append([]string{"/bin/sh"}, args...)
	cmd.Path = "/bin/sh"
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	r.Close()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		// w stays open while the server runs: its close is the
		// watchdog's signal.
		w.Close()
		close(exited)
	}()
	return exited, nil
}

// terminate asks p (the watchdog, which passes it on) to stop: SIGTERM.
func terminate(p *os.Process) { _ = p.Signal(syscall.SIGTERM) }

// processAlive reports whether a process pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

package servetest

import (
	"os"
	"os/exec"
)

// startHostProcess starts the dev server. On Windows nothing ties its life
// to this process's: a test binary that exits leaves the server (and its
// plugins) running until they are ended by hand. Run real-host tests on
// Linux or another Unix, where the server ends with the test binary.
func startHostProcess(cmd *exec.Cmd) (<-chan struct{}, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return exited, nil
}

// terminate ends p: Windows has no SIGTERM to send.
func terminate(p *os.Process) { _ = p.Kill() }

// processAlive reports whether a process pid exists.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}

//go:build !windows

package check

import (
	"errors"
	"syscall"

	"github.com/plugkit/vaultplugin/internal/procfs"
)

// alive reports whether the process pid still runs. A zombie, which has
// exited but waits for its new parent to reap it, does not.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	return !procfs.Zombie(pid)
}

// kill ends the process pid at once.
func kill(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

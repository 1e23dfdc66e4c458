package metrics

import (
	"os"
	"syscall"
)

// readProcess reads what needs no cgo or sysctl structure: the CPU time
// from getrusage(2), the open descriptors from /dev/fd and the limits from
// getrlimit(2). client_golang also reports the memory sizes (through cgo)
// and the start time (through the kern.proc.pid sysctl).
func readProcess(p *process) {
	readRusage(p)
	if d, err := os.Open("/dev/fd"); err == nil {
		// Readdirnames, not ReadDir: that would stat(2) each descriptor.
		if names, err := d.Readdirnames(-1); err == nil {
			p.openFDs = float64(len(names) - 1) // less the one reading them
			p.has |= hasOpenFDs
		}
		d.Close()
	}
	if v, ok := softLimit(syscall.RLIMIT_NOFILE); ok {
		p.maxFDs = v
		p.has |= hasMaxFDs
	}
	if v, ok := softLimit(syscall.RLIMIT_AS); ok {
		p.virtualMaxBytes = v
		p.has |= hasVirtualMax
	}
}

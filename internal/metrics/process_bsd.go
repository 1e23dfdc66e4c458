//go:build unix && !linux && !darwin

package metrics

import "syscall"

// readProcess reads what every Unix offers the same way: the CPU time from
// getrusage(2) and the descriptor limit from getrlimit(2).
func readProcess(p *process) {
	readRusage(p)
	if v, ok := softLimit(syscall.RLIMIT_NOFILE); ok {
		p.maxFDs = v
		p.has |= hasMaxFDs
	}
}

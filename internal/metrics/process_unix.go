//go:build unix

package metrics

import "syscall"

// readRusage reads the CPU time the process used, user and system, from
// getrusage(2), to the microsecond.
func readRusage(p *process) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		p.cpuSeconds = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
		p.has |= hasCPU
	}
}

// softLimit returns the soft limit of a resource, as getrlimit(2) gives it
// (RLIM_INFINITY is the largest value its type holds, as client_golang
// reports it).
func softLimit(resource int) (float64, bool) {
	var rl syscall.Rlimit
	if syscall.Getrlimit(resource, &rl) != nil {
		return 0, false
	}
	return float64(rl.Cur), true
}

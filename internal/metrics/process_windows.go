package metrics

import "syscall"

// readProcess reads the CPU time and the start time from
// GetProcessTimes. client_golang also reports the memory sizes and the
// handle count, from functions package syscall does not offer.
func readProcess(p *process) {
	h, err := syscall.GetCurrentProcess()
	if err != nil {
		return
	}
	var creation, exit, kernel, user syscall.Filetime
	if syscall.GetProcessTimes(h, &creation, &exit, &kernel, &user) != nil {
		return
	}
	// A FILETIME counts 100 ns; creation's counts from 1601, which
	// Nanoseconds converts to the Unix epoch.
	ticks := func(t syscall.Filetime) float64 { return float64(uint64(t.HighDateTime)<<32 | uint64(t.LowDateTime)) }
	p.cpuSeconds = (ticks(kernel) + ticks(user)) / 1e7
	p.startTime = float64(creation.Nanoseconds()) / 1e9
	p.has |= hasCPU | hasStart
}

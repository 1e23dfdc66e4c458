package metrics

// process holds the process metrics this OS offers (see readProcess in the
// build-tagged files); has marks the ones read.
type process struct {
	cpuSeconds, startTime       float64
	openFDs, maxFDs             float64
	residentBytes, virtualBytes float64
	virtualMaxBytes             float64
	has                         processMetric
}

type processMetric uint8

const (
	hasCPU processMetric = 1 << iota
	hasStart
	hasOpenFDs
	hasMaxFDs
	hasResident
	hasVirtual
	hasVirtualMax
)

// writeProcessMetrics writes the process metrics this OS offers, read now,
// with the names, types and help texts of prometheus/client_golang's
// process collector, in name order.
func writeProcessMetrics(e *expo) {
	var p process
	readProcess(&p)
	for _, m := range [...]struct {
		has        processMetric
		name, help string
		v          float64
	}{
		{hasCPU, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", p.cpuSeconds},
		{hasMaxFDs, "process_max_fds", "Maximum number of open file descriptors.", p.maxFDs},
		{hasOpenFDs, "process_open_fds", "Number of open file descriptors.", p.openFDs},
		{hasResident, "process_resident_memory_bytes", "Resident memory size in bytes.", p.residentBytes},
		{hasStart, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", p.startTime},
		{hasVirtual, "process_virtual_memory_bytes", "Virtual memory size in bytes.", p.virtualBytes},
		{hasVirtualMax, "process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", p.virtualMaxBytes},
	} {
		if p.has&m.has == 0 {
			continue
		}
		if m.has == hasCPU {
			e.counter(m.name, m.help, m.v)
		} else {
			e.gauge(m.name, m.help, m.v)
		}
	}
}

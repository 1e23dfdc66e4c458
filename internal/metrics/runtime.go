package metrics

import (
	"runtime"
	"runtime/debug"
	"time"
)

// writeGoMetrics writes the Go runtime metrics prometheus/client_golang's Go
// collector exposes by default, with its names, types and help texts (so
// dashboards built on it work), read now: runtime.ReadMemStats and
// debug.ReadGCStats, not runtime/metrics, whose package initialization
// every plugin would pay. The families are in name order, as client_golang
// gathers them. Left out: go_gc_gogc_percent (the runtime offers no way to
// read GOGC without setting it).
func writeGoMetrics(e *expo) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var gc debug.GCStats
	var quantiles [5]time.Duration // min, 25%, 50%, 75%, max
	gc.PauseQuantiles = quantiles[:]
	debug.ReadGCStats(&gc)

	const gcName = "go_gc_duration_seconds"
	e.family(gcName, "summary", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.")
	for i, q := range [...]string{`quantile="0"`, `quantile="0.25"`, `quantile="0.5"`, `quantile="0.75"`, `quantile="1"`} {
		e.float(gcName, q, quantiles[i].Seconds())
	}
	e.float(gcName+"_sum", "", gc.PauseTotal.Seconds())
	e.uint(gcName+"_count", "", uint64(gc.NumGC))

	e.gauge("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.",
		float64(debug.SetMemoryLimit(-1))) // a negative limit only reads it
	e.gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	e.family("go_info", "gauge", "Information about the Go environment.")
	e.float("go_info", labels("version", runtime.Version()), 1)

	mem := func(name, help string, v uint64) {
		e.gauge("go_memstats_"+name, help, float64(v))
	}
	memTotal := func(name, help string, v uint64) {
		e.counter("go_memstats_"+name, help, float64(v))
	}
	mem("alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", ms.Alloc)
	memTotal("alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", ms.TotalAlloc)
	mem("buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", ms.BuckHashSys)
	memTotal("frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", ms.Frees)
	mem("gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", ms.GCSys)
	mem("heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", ms.HeapAlloc)
	mem("heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", ms.HeapIdle)
	mem("heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", ms.HeapInuse)
	mem("heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", ms.HeapObjects)
	mem("heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", ms.HeapReleased)
	mem("heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", ms.HeapSys)
	e.gauge("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", float64(ms.LastGC)/1e9)
	memTotal("mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", ms.Mallocs)
	mem("mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", ms.MCacheInuse)
	mem("mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", ms.MCacheSys)
	mem("mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", ms.MSpanInuse)
	mem("mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", ms.MSpanSys)
	mem("next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", ms.NextGC)
	mem("other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", ms.OtherSys)
	mem("stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", ms.StackInuse)
	mem("stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", ms.StackSys)
	mem("sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", ms.Sys)

	e.gauge("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", float64(runtime.GOMAXPROCS(0)))
	threads, _ := runtime.ThreadCreateProfile(nil)
	e.gauge("go_threads", "Number of OS threads created.", float64(threads))
}

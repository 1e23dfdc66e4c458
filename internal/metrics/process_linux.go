package metrics

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// userHZ is the unit of the times in /proc/<pid>/stat: 1/100 s on every
// Linux (USER_HZ), as procfs and client_golang assume too.
const userHZ = 100

// startTime caches the process's start time, read once, on the first
// scrape: it depends on the boot time in /proc/stat, a long file.
var startTime struct {
	once sync.Once
	v    float64
	ok   bool
}

// readProcess reads the CPU time from getrusage(2), the memory sizes and
// start from /proc/self/stat, the open descriptors from /proc/self/fd and
// the limits from getrlimit(2).
func readProcess(p *process) {
	readRusage(p)
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		// The fields after the command, which is in parentheses and may
		// hold anything, parentheses and blanks included; the first of them
		// is field 3 of proc_pid_stat(5).
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
			f := bytes.Fields(stat[i+1:])
			field := func(n int) (uint64, bool) {
				if n-3 >= len(f) {
					return 0, false
				}
				v, err := strconv.ParseUint(string(f[n-3]), 10, 64)
				return v, err == nil
			}
			if v, ok := field(23); ok {
				p.virtualBytes = float64(v)
				p.has |= hasVirtual
			}
			if v, ok := field(24); ok {
				p.residentBytes = float64(v) * float64(os.Getpagesize())
				p.has |= hasResident
			}
			if v, ok := field(22); ok {
				startTime.once.Do(func() {
					if boot, ok := bootTime(); ok {
						startTime.v, startTime.ok = boot+float64(v)/userHZ, true
					}
				})
				if startTime.ok {
					p.startTime = startTime.v
					p.has |= hasStart
				}
			}
		}
	}
	if n, ok := openFDs(); ok {
		p.openFDs = float64(n)
		p.has |= hasOpenFDs
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

// bootTime returns the btime line of /proc/stat: the boot time, in seconds
// since the epoch.
func bootTime() (float64, bool) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(stat) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return float64(n), err == nil
		}
	}
	return 0, false
}

// openFDs counts the process's open file descriptors: the size of
// /proc/self/fd where the kernel gives it (Linux 6.2 and later), else its
// entries, less the one reading them.
func openFDs() (int, bool) {
	if fi, err := os.Stat("/proc/self/fd"); err == nil && fi.Size() > 0 {
		return int(fi.Size()), true
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, false
	}
	return len(names) - 1, true
}

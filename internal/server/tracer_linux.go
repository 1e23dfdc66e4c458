package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// errNoTracerInfo means the system cannot tell whether a debugger is
// attached.
var errNoTracerInfo = errors.New("no tracer information on this system")

// tracerPID returns the process id of the debugger (ptrace tracer)
// attached to this process, or 0, from the TracerPid line of
// /proc/self/status.
func tracerPID() (int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNoTracerInfo, err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("TracerPid:")); ok {
			pid, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return 0, fmt.Errorf("%w: TracerPid %q", errNoTracerInfo, bytes.TrimSpace(v))
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("%w: no TracerPid in /proc/self/status", errNoTracerInfo)
}

// ptraceHint says what stands between an operator and `dlv attach` when
// the Yama security module restricts ptrace, or "".
func ptraceHint() string {
	b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	if err != nil {
		return ""
	}
	switch string(bytes.TrimSpace(b)) {
	case "1":
		return "kernel.yama.ptrace_scope=1: run dlv as root (or with CAP_SYS_PTRACE)"
	case "2":
		return "kernel.yama.ptrace_scope=2: only root (CAP_SYS_PTRACE) may attach"
	case "3":
		return "kernel.yama.ptrace_scope=3: no process may attach a debugger on this host"
	}
	return ""
}

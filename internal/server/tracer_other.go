//go:build !linux

package server

import "errors"

// errNoTracerInfo means the system cannot tell whether a debugger is
// attached.
var errNoTracerInfo = errors.New("no tracer information on this system")

// tracerPID cannot learn the tracer outside Linux (there is no portable
// interface), so a plugin asked to wait for a debugger waits the whole
// time there.
func tracerPID() (int, error) { return 0, errNoTracerInfo }

// ptraceHint has nothing to say outside Linux.
func ptraceHint() string { return "" }

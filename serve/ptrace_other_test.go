//go:build !linux

package serve_test

import "testing"

// attachDebugger is Linux-only: elsewhere the plugin cannot see a
// debugger attach, so there is nothing to test.
func attachDebugger(t *testing.T, pid int) (tracer int, detach func()) {
	t.Skip("ptrace attach is exercised on Linux only")
	return 0, nil
}

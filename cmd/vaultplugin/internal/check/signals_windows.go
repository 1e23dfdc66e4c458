//go:build windows

package check

import "context"

// checkSignals reports the signal checks as skipped: Windows has no
// SIGINT or SIGTERM that one process can send another, and a Windows host
// stops its plugins by killing them (see host-death).
func (h *host) checkSignals(context.Context, kind) []Result {
	const why = "Windows has no signals to send a plugin: a Windows host stops its plugins by killing them"
	return []Result{{ID: idSIGINT, Status: Skip, Detail: why}, {ID: idSIGTERM, Status: Skip, Detail: why}}
}

package check

import (
	"context"
	"fmt"
	"time"
)

// checkHostDeath starts the plugin, with a mount, from a short-lived host
// (vaultplugin's HostCommand), kills that host at once, as a SIGKILL or
// an out-of-memory kill ends Vault, and watches whether the plugin, now an
// orphan, exits within HostDeathBound. A plugin that does not is killed by
// the check.
func (h *host) checkHostDeath(ctx context.Context, k kind) Result {
	hp, rep, err := h.startHost(ctx, k, true, false)
	if err != nil {
		return Result{ID: idHostDeath, Status: Skip, Detail: "could not start a host for it: " + err.Error()}
	}
	if rep.Error != "" {
		hp.release(time.Second)
		return Result{ID: idHostDeath, Status: Skip, Detail: "the host could not start it: " + rep.failure().why()}
	}
	hp.kill()
	start := time.Now()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for alive(rep.PID) {
		if time.Since(start) > HostDeathBound || ctx.Err() != nil {
			kill(rep.PID)
			return Result{ID: idHostDeath, Status: Fail,
				Detail: fmt.Sprintf("still running %s after its host was killed: an orphan that would run forever (pid %d, killed by the check)", HostDeathBound, rep.PID),
				Fix: "use serve.Run: it watches its parent and exits when its host dies; go-plugin does not, " +
					"so a bare SDK main must itself exit when os.Getppid() changes (or set PR_SET_PDEATHSIG on Linux)"}
		}
		<-t.C
	}
	return Result{ID: idHostDeath, Status: Pass,
		Detail: fmt.Sprintf("exited %s after its host was killed", time.Since(start).Round(time.Millisecond))}
}

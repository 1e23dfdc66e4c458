package check

import (
	"context"

	"github.com/hashicorp/vault/sdk/helper/pluginutil"
)

// checkMlock starts the plugin as a Vault with mlock enabled does (Vault
// sets VAULT_PLUGIN_MLOCK_ENABLED=true unless its configuration has
// disable_mlock) and without CAP_IPC_LOCK, as under Vault's container
// image, where the vault binary has the capability but does not pass it
// on. The SDK then calls mlockall, which without the capability fails
// once the plugin's memory exceeds RLIMIT_MEMLOCK (a few MiB by default).
// The check passes when the plugin starts, or when its failure names the
// missing capability, so that the operator knows what to grant.
func (h *host) checkMlock(ctx context.Context, k kind) Result {
	hp, rep, err := h.startHost(ctx, k, false, true, pluginutil.PluginMlockEnabled+"=true")
	if err != nil {
		return Result{ID: idMlock, Status: Skip, Detail: "could not start a host for it: " + err.Error()}
	}
	defer hp.release(RequestBound)
	how := "with " + pluginutil.PluginMlockEnabled + "=true"
	if rep.CapDropped {
		how += " and without CAP_IPC_LOCK"
	}
	if rep.Error != "" {
		f := rep.failure()
		if line := f.lineWith(ipcLockName); line != "" {
			return Result{ID: idMlock, Status: Pass, Detail: how + ", it cannot start and says what to grant: " + quoteAround(line, ipcLockName)}
		}
		// Whatever it says, it cannot start there: the grant is the
		// operator's. What it says decides how long they search.
		return Result{ID: idMlock, Status: Warn,
			Detail: how + ", it cannot start and does not say what to grant: " + quote(f.why()),
			Fix: "when locking memory fails, say what to grant: CAP_IPC_LOCK (setcap cap_ipc_lock=+ep PLUGIN) or disable_mlock in Vault; " +
				"a bare SDK main gets mlock's error back from ServeMultiplex and can add that, serve.Run does"}
	}
	detail := "starts " + how
	if st := memoryStatus(rep.PID); st != "" {
		detail += " (" + st + ")"
	}
	if rep.DropError != "" {
		detail += "; the check could not run it without the capability: " + rep.DropError
	}
	return Result{ID: idMlock, Status: Pass, Detail: detail}
}

// ipcLockName is the capability mlock needs, as an operator grants it
// (setcap cap_ipc_lock=+ep, a container's IPC_LOCK): a plugin that cannot
// lock its memory passes the check when it names it.
const ipcLockName = "IPC_LOCK"

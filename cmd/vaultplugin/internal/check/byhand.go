package check

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// checkByHand runs the binary as a person would, with no handshake cookie,
// no arguments and no input, and judges what that person sees. It passes
// when the binary exits non-zero within ByHandBound and its output says it
// is a Vault plugin; go-plugin's generic "This binary is a plugin" text
// warns, because it names neither Vault nor what to do with the binary.
// Nothing here changes what Vault does with it, so it never fails.
func (h *host) checkByHand(ctx context.Context) Result {
	ctx, cancel := context.WithTimeout(ctx, ByHandBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Binary)
	cmd.Env = baseEnv()
	cmd.WaitDelay = ByHandBound
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	first := firstLine(text)
	const fix = "say what the binary is: a bare SDK main can check that VAULT_BACKEND_PLUGIN is unset before serving and print that it is a Vault plugin " +
		"and how to register it; serve.Run names the plugin, its sha256 and the `vault plugin register` line to paste"
	switch {
	case ctx.Err() != nil:
		return Result{ID: idByHand, Status: Warn, Detail: fmt.Sprintf("still running %s after being started by hand (killed)", ByHandBound),
			Fix: "exit when no handshake cookie is set (go-plugin's Serve and serve.Run do): nobody can connect to it"}
	case err == nil:
		return Result{ID: idByHand, Status: Warn, Detail: "exits 0, saying " + quote(first),
			Fix: "exit non-zero when run without Vault: it served nothing (go-plugin's Serve exits 1, serve.Run too)"}
	case strings.Contains(text, goPluginNotAPlugin):
		return Result{ID: idByHand, Status: Warn, Detail: err.Error() + " with go-plugin's generic text: " + quote(first), Fix: fix}
	case !strings.Contains(strings.ToLower(text), "vault"):
		return Result{ID: idByHand, Status: Warn, Detail: err.Error() + " without saying it is a Vault plugin: " + quote(first), Fix: fix}
	}
	said := first
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(strings.ToLower(l), "vault") {
			said = l
			break
		}
	}
	return Result{ID: idByHand, Status: Pass, Detail: err.Error() + ", saying " + quote(said)}
}

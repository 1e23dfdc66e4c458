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
// fails, because it names neither Vault nor what to do with the binary.
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
	const fix = "use serve.Run: run by hand, it names the plugin, its sha256 and the `vault plugin register` line to paste"
	switch {
	case ctx.Err() != nil:
		return Result{ID: idByHand, Status: Fail, Detail: fmt.Sprintf("still running %s after being started by hand (killed)", ByHandBound),
			Fix: "exit when no handshake cookie is set (go-plugin's Serve does): nobody can connect to it"}
	case err == nil:
		return Result{ID: idByHand, Status: Fail, Detail: "exits 0, saying " + quote(first),
			Fix: "exit non-zero when run without Vault: it served nothing (serve.Run exits 1)"}
	case strings.Contains(text, goPluginNotAPlugin):
		return Result{ID: idByHand, Status: Fail, Detail: err.Error() + " with go-plugin's generic text: " + quote(first), Fix: fix}
	case !strings.Contains(strings.ToLower(text), "vault"):
		return Result{ID: idByHand, Status: Fail, Detail: err.Error() + " without saying it is a Vault plugin: " + quote(first), Fix: fix}
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

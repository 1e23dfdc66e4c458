package check

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// protocolProbe is which protocol versions the plugin serves, offered one
// at a time: go-plugin's server picks the newest version it has among
// those offered, and otherwise answers with its oldest, so the version in
// its handshake line says whether it serves the one offered.
type protocolProbe struct {
	served []int
}

func (h *host) probeProtocols(ctx context.Context, k kind) protocolProbe {
	var probe protocolProbe
	for _, v := range k.probes {
		p, err := h.startRaw(k, strconv.Itoa(v))
		if err != nil {
			continue
		}
		err = p.awaitHandshake(ctx, HandshakeBound)
		p.stop()
		if err == nil && p.handshake.app == v {
			probe.served = append(probe.served, v)
		}
	}
	return probe
}

// protocolResult is the protocol check: the versions served, and whether
// one process serves two mounts (connections).
func (s *session) protocolResult(probe protocolProbe) Result {
	var offered []string
	for _, v := range s.kind.probes {
		offered = append(offered, strconv.Itoa(v))
	}
	versions := "none of " + strings.Join(offered, ", ")
	if len(probe.served) > 0 {
		vs := make([]string, len(probe.served))
		for i, v := range probe.served {
			vs[i] = strconv.Itoa(v)
		}
		versions = strings.Join(vs, ", ")
	}
	serves := "serves protocol " + versions
	what, instances := "mount", "mounts"
	if s.kind.name == "database" {
		what, instances = "connection", "connections"
	}
	switch {
	case s.instErr != nil:
		return Result{ID: idProtocol, Status: Skip, Detail: serves + "; multiplexing needs a " + what + " (see type)"}
	case s.muxErr != nil:
		return Result{ID: idProtocol, Status: Fail,
			Detail: serves + "; the second " + what + " in the process failed: " + firstLine(s.muxErr.Error()),
			Fix:    "a multiplexed plugin must serve many " + instances + " at once: keep no per-" + what + " state in globals"}
	case s.multiplex:
		return Result{ID: idProtocol, Status: Pass,
			Detail: fmt.Sprintf("%s; multiplexed: two %s, one process (pid %d)", serves, instances, s.proc.PID())}
	case !slices.Contains(probe.served, 5):
		// Vault then falls back to the legacy TLS path (see handshake).
		return Result{ID: idProtocol, Status: Warn, Detail: serves + ", not 5, which Vault 1.12+ needs for AutoMTLS and multiplexing",
			Fix: "upgrade github.com/hashicorp/vault/sdk to ≥ v0.5.4 and serve with plugin.ServeMultiplex, or use serve.Run"}
	case s.legacy:
		return Result{ID: idProtocol, Status: Info,
			Detail: fmt.Sprintf("%s; on the legacy TLS path Vault offers 3 and 4 and starts a process for each of its %s (see handshake)", serves, instances)}
	}
	return Result{ID: idProtocol, Status: Info,
		Detail: fmt.Sprintf("%s; not multiplexed: Vault starts a process for each of its %s (serve.Run multiplexes by default)", serves, instances)}
}

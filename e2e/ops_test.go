package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestOperability: the operator switches, set with `vault plugin register
// -env`, inside a real Vault. Vault fills in each request's mount point,
// which servetest cannot prove.
func TestOperability(t *testing.T) {
	eachHost(t, "operability: metrics, loopback only, debugger wait", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "vault-plugin-secrets-example")

		t.Run("metrics by mount", func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			if out, err := v.register("secret", "observed", "vault-plugin-secrets-example", "", "-env=VAULTPLUGIN_HTTP_ADDR="+addr); err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			v.must("secrets", "enable", "-path=obs1", "observed")
			v.must("secrets", "enable", "-path=obs2", "observed")
			v.must("write", "obs1/data/k", "v=1")
			v.must("read", "obs1/data/k")
			_, _ = v.cli("list", "obs2/data/") // empty: "No value found", exit 2, still a request
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := string(b)
			for _, want := range []string{
				`vaultplugin_requests_total{mount="obs1/",operation="read"} 1`,
				`vaultplugin_requests_total{mount="obs2/",operation="list"} 1`,
				"vaultplugin_mounts 2",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("/metrics lacks %q:\n%s", want, grep(body, "vaultplugin_"))
				}
			}
		})

		t.Run("not loopback", func(t *testing.T) {
			if out, err := v.register("secret", "exposed", "vault-plugin-secrets-example", "", "-env=VAULTPLUGIN_HTTP_ADDR=0.0.0.0:9100"); err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			out, err := v.cli("secrets", "enable", "exposed")
			if err == nil || !strings.Contains(out, `VAULTPLUGIN_HTTP_ADDR: "0.0.0.0:9100" means every interface`) {
				t.Errorf("enable with 0.0.0.0: %v\n%s", err, out)
			}
		})

		t.Run("debugger wait expires", func(t *testing.T) {
			if out, err := v.register("secret", "waits", "vault-plugin-secrets-example", "", "-env=VAULTPLUGIN_DEBUG_WAIT=2s"); err != nil {
				t.Fatalf("register: %v\n%s", err, out)
			}
			start := time.Now()
			v.must("secrets", "enable", "-path=waits", "waits")
			if took := time.Since(start); took < 2*time.Second {
				t.Errorf("enable took %s with a 2s debugger wait", took)
			}
			if log := v.log.String(); !strings.Contains(log, "waiting for a debugger before serving") || !strings.Contains(log, "dlv attach") {
				t.Errorf("Vault's log does not show the wait:\n%s", grep(log, "debugger"))
			}
		})
	})
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

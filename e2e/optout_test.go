package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The operator's emergency switch: a host started with
// VAULT_PLUGIN_MULTIPLEXING_OPT_OUT=NAME,… runs those plugins as one
// process per mount even though they multiplex. The host reads it, not
// the plugin: Vault's plugin catalog asks pluginutil.MultiplexingSupported
// (sdk helper/pluginutil/multiplexing.go, the same in sdk v0.6.2 and
// v0.20.0) with the catalog entry's name, which answers false without
// asking the plugin when the name is in the list
// (vault/plugincatalog/plugin_catalog.go in Vault 1.21.0). OpenBao 2.6.2
// has the same code (vault/plugin_catalog.go) reading
// BAO_PLUGIN_MULTIPLEXING_OPT_OUT through api.ReadBaoVariable, which falls
// back to the VAULT_ name when the BAO_ one is unset. So every host the
// suite runs should honour the variable: one that does not fails.

const (
	optOutVault = "VAULT_PLUGIN_MULTIPLEXING_OPT_OUT"
	optOutBao   = "BAO_PLUGIN_MULTIPLEXING_OPT_OUT"
	optOutGroup = "multiplexing opt-out: 1 process per mount"
	example     = "vault-plugin-secrets-example"
)

// TestMultiplexingOptOut starts each host without and with the opt-out
// variable, mounts our secrets example twice and counts its processes (1
// without, 2 with), and checks that the library serves each mount from
// its own process and leaves none behind, after an unmount or after the
// host stops. On OpenBao it does so for both names of the variable.
func TestMultiplexingOptOut(t *testing.T) {
	eachHost(t, optOutGroup, nil, func(t *testing.T, h *host) {
		var facts []string

		t.Run("without the variable", func(t *testing.T) {
			for _, name := range []string{optOutVault, optOutBao} {
				if v, ok := os.LookupEnv(name); ok {
					t.Skipf("%s=%s is set in the test's environment, which the host inherits", name, v)
				}
			}
			v := startVault(t, h, example)
			useTwoMounts(t, v, "mux")
			pids := waitPIDs(t, v.pluginDir, example, 1)
			t.Logf("%s without %s: 2 mounts of %s in %d process %v", h.name(), optOutVault, example, len(pids), pids)
		})

		vars := []string{optOutVault}
		if h.openBao() {
			vars = append(vars, optOutBao)
		}
		for _, name := range vars {
			t.Run(name, func(t *testing.T) {
				honoured := optOut(t, h, name)
				facts = append(facts, fmt.Sprintf("%s %s", name, map[bool]string{true: "honoured", false: "ignored"}[honoured]))
			})
		}

		// Our library's side under the opt-out: each of the processes
		// notices its host died and exits, as a multiplexed one does
		// (TestHostKilled).
		t.Run("host SIGKILLed: no plugin left", func(t *testing.T) {
			if len(facts) == 0 || !strings.HasSuffix(facts[0], "honoured") {
				t.Skipf("%s did not run or was not honoured", optOutVault)
			}
			t.Setenv(optOutVault, example)
			v := startVault(t, h, example)
			useTwoMounts(t, v, "k")
			pids := waitPIDs(t, v.pluginDir, example, 2)
			if err := v.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-v.done
			start := time.Now()
			eventually(t, 10*time.Second, func() error {
				if left := pluginPIDs(v.pluginDir); len(left) != 0 {
					return fmt.Errorf("plugin processes %v of %v still run after %s was SIGKILLed", left, pids, h.name())
				}
				return nil
			})
			t.Logf("the %d processes %v of the opted-out plugin exited %s after %s was SIGKILLed", len(pids), pids, time.Since(start).Round(time.Millisecond), h.name())
		})

		t.Logf("%s: %s", h.name(), strings.Join(facts, "; "))
		summary.note(fmt.Sprintf("%s on %s: %s", optOutGroup, h.name(), strings.Join(facts, "; ")))
		short := "honoured"
		for _, f := range facts {
			if strings.HasSuffix(f, "ignored") {
				short = "IGNORED"
			}
		}
		if len(facts) > 0 {
			summary.detail(optOutGroup, h, short)
		}
	})
}

// optOut starts h with the variable name naming our secrets example and
// the probe (a list, as operators write it), and reports whether the host
// honoured it. The probe is also registered under a second catalog name
// the list does not hold, whose mounts must still share a process: the
// host matches the catalog entry's name, not the binary.
func optOut(t *testing.T, h *host, name string) (honoured bool) {
	if other := map[string]string{optOutVault: optOutBao, optOutBao: optOutVault}[name]; other != "" {
		if v, ok := os.LookupEnv(other); ok {
			t.Skipf("%s=%s is set in the test's environment, which the host inherits", other, v)
		}
	}
	t.Setenv(name, example+",probe")
	v := startVault(t, h, example, "probe")
	if out, err := v.register("secret", "probe-muxed", "probe", probeVersion); err != nil {
		t.Fatalf("register probe-muxed: %v\n%s", err, out)
	}

	useTwoMounts(t, v, "opt")
	for _, m := range []string{"p1", "p2"} {
		v.must("secrets", "enable", "-path="+m, "-plugin-version="+probeVersion, "probe")
	}
	for _, m := range []string{"m1", "m2"} {
		v.must("secrets", "enable", "-path="+m, "-plugin-version="+probeVersion, "probe-muxed")
	}

	// Registration may have started a plugin to read its version; those
	// exit on their own, so the count settles.
	var pids []int
	eventually(t, 10*time.Second, func() error {
		pids = pidsOf(v.pluginDir, example)
		if len(pids) != 1 && len(pids) != 2 {
			return fmt.Errorf("2 mounts of %s run in %d processes %v", example, len(pids), pids)
		}
		return nil
	})
	honoured = len(pids) == 2
	t.Logf("%s started with %s=%s: 2 mounts of %s in %d processes %v", h.name(), name, example+",probe", example, len(pids), pids)
	if !honoured {
		// Both hosts' sources read the variable (see the top of this
		// file): a host that does not honour it is a finding.
		t.Errorf("%s did not honour %s: 2 mounts of %s share process %v", h.name(), name, example, pids)
		return false
	}

	t.Run("each process serves its mount", func(t *testing.T) {
		p1, p2 := probePID(t, v, "p1"), probePID(t, v, "p2")
		m1, m2 := probePID(t, v, "m1"), probePID(t, v, "m2")
		t.Logf("probe (opted out): p1 in %d, p2 in %d; probe-muxed (not in the list): m1 in %d, m2 in %d", p1, p2, m1, m2)
		if p1 == p2 {
			t.Errorf("two mounts of the opted-out probe are served by one process %d", p1)
		}
		if m1 != m2 {
			t.Errorf("two mounts of probe-muxed, not in the list, are served by processes %d and %d: the host opted out a name it was not given", m1, m2)
		}
		running := pidsOf(v.pluginDir, "probe")
		for _, pid := range []int{p1, p2, m1} {
			if !slices.Contains(running, pid) {
				t.Errorf("process %d that served a mount is not among the probe's processes %v", pid, running)
			}
		}
		if len(running) != 3 {
			t.Errorf("the probe runs in %d processes %v, want 3 (p1, p2, and m1 with m2)", len(running), running)
		}
		// The example's two processes hold their own data.
		for i, m := range []string{"opt1", "opt2"} {
			if got := strings.TrimSpace(v.must("read", "-field=mount", m+"/data/k")); got != fmt.Sprint(i+1) {
				t.Errorf("%s/data/k mount = %q, want %d", m, got, i+1)
			}
		}
	})

	t.Run("unmount stops the mount's process", func(t *testing.T) {
		before := pidsOf(v.pluginDir, example)
		v.must("secrets", "disable", "opt1")
		left := waitPIDs(t, v.pluginDir, example, 1)
		if !slices.Contains(before, left[0]) {
			t.Errorf("after unmounting opt1 %s runs in %v, not one of %v", example, left, before)
		}
		// The other mount is served as before, by the process that stayed.
		if got := strings.TrimSpace(v.must("read", "-field=mount", "opt2/data/k")); got != "2" {
			t.Errorf("opt2 after unmounting opt1: mount = %q", got)
		}
		if now := pidsOf(v.pluginDir, example); !slices.Equal(now, left) {
			t.Errorf("reading opt2 started another process: %v, was %v", now, left)
		}

		p1 := probePID(t, v, "p1")
		v.must("secrets", "disable", "p1")
		eventually(t, 10*time.Second, func() error {
			if slices.Contains(pidsOf(v.pluginDir, "probe"), p1) {
				return fmt.Errorf("p1's process %d still runs after p1 was unmounted", p1)
			}
			return nil
		})
		t.Logf("after unmounting opt1 and p1: %s in %v, probe in %v", example, left, pidsOf(v.pluginDir, "probe"))
	})

	t.Run("no plugin left after the host stops", func(t *testing.T) {
		running := pluginPIDs(v.pluginDir)
		if err := v.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-v.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop within 30 s of SIGTERM", h.name())
		}
		start := time.Now()
		// The host stops its plugins as it shuts down; one that outlives
		// it would be orphaned. (v.stop kills any left at the test's end,
		// so this must look first.)
		eventually(t, 5*time.Second, func() error {
			if left := pluginPIDs(v.pluginDir); len(left) != 0 {
				return fmt.Errorf("plugin processes %v of %v still run after %s stopped", left, running, h.name())
			}
			return nil
		})
		t.Logf("%d plugin processes %v gone %s after the host exited", len(running), running, time.Since(start).Round(time.Millisecond))
	})
	return true
}

// useTwoMounts enables our secrets example at PREFIX1 and PREFIX2 and
// writes and reads a value in each.
func useTwoMounts(t *testing.T, v *vault, prefix string) {
	t.Helper()
	for i := 1; i <= 2; i++ {
		m := fmt.Sprintf("%s%d", prefix, i)
		v.must("secrets", "enable", "-path="+m, example)
		v.must("write", m+"/data/k", fmt.Sprintf("mount=%d", i))
	}
	for i := 1; i <= 2; i++ {
		m := fmt.Sprintf("%s%d", prefix, i)
		if got := strings.TrimSpace(v.must("read", "-field=mount", m+"/data/k")); got != fmt.Sprint(i) {
			t.Errorf("%s/data/k mount = %q, want %d", m, got, i)
		}
	}
}

// waitPIDs waits until name runs in want processes from dir and returns
// them; it fails t if the count does not settle there within 10 s.
func waitPIDs(t *testing.T, dir, name string, want int) []int {
	t.Helper()
	var pids []int
	eventually(t, 10*time.Second, func() error {
		if pids = pidsOf(dir, name); len(pids) != want {
			return fmt.Errorf("%s runs in %d processes %v, want %d", name, len(pids), pids, want)
		}
		return nil
	})
	return pids
}

// pidsOf lists the processes running the binary dir/name.
func pidsOf(dir, name string) []int {
	var pids []int
	for _, pid := range pluginPIDs(dir) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == filepath.Join(dir, name) {
			pids = append(pids, pid)
		}
	}
	return pids
}

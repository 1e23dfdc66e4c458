package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/internal/server"
)

// probeVersion is the version e2e/internal/probe reports.
const probeVersion = "v0.1.0"

// probeRecord is one line of the probe's log (e2e/internal/probe).
type probeRecord struct {
	Event       string            `json:"event"`
	PID         int               `json:"pid"`
	PPID        int               `json:"ppid"`
	Time        time.Time         `json:"time"`
	Args        []string          `json:"args"`
	Env         map[string]string `json:"env"`
	EnvNames    []string          `json:"env_names"`
	BackendUUID string            `json:"backend_uuid"`
}

// goPluginOnly are variables a host sets that package compat does not
// read, with the reason it need not.
var goPluginOnly = map[string]string{
	"PLUGIN_MIN_PORT": "go-plugin's port range for a TCP listener; go-plugin reads it",
	"PLUGIN_MAX_PORT": "go-plugin's port range for a TCP listener; go-plugin reads it",
}

// compatNames are the variables package compat reads.
var compatNames = []string{
	hostenv.EnvBackendCookie, hostenv.EnvDatabaseCookie, hostenv.EnvVaultVersion, hostenv.EnvAutoMTLS,
	hostenv.EnvMetadataMode, hostenv.EnvMlock, hostenv.EnvUnwrapToken, hostenv.EnvProtocolVersions,
	hostenv.EnvClientCert, hostenv.EnvOpenBaoVersion,
}

// TestCompatOnHost checks package compat against each real host. The
// probe plugin records what the host really sets when it starts the
// plugin, at `vault plugin register -version` and for a mount; the test
// reads that environment with hostenv.FromEnv, decides the serving plan
// as serve does (internal/server.NewPlan), and compares both with what
// the host is and does: its version, OpenBao or not, AutoMTLS, whether
// two mounts share one process (multiplexing), and metadata mode at
// registration. Every variable the host sets must be one compat reads or
// one listed in goPluginOnly; OpenBao's BAO_* names must be copies of
// the VAULT_* ones compat reads.
func TestCompatOnHost(t *testing.T) {
	eachHost(t, "compat: what the host sets = what compat says", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "probe")
		logPath := filepath.Join(t.TempDir(), "probe.jsonl")

		if out, err := v.register("secret", "probe", "probe", probeVersion, "-env=VAULTPLUGIN_PROBE_LOG="+logPath); err != nil {
			t.Fatalf("register: %v\n%s", err, out)
		}
		atRegister := readProbe(t, logPath)
		v.must("secrets", "enable", "-path=probe1", "-plugin-version="+probeVersion, "probe")
		v.must("secrets", "enable", "-path=probe2", "-plugin-version="+probeVersion, "probe")
		pid1, pid2 := probePID(t, v, "probe1"), probePID(t, v, "probe2")
		all := readProbe(t, logPath)
		atMount := all[len(atRegister):]

		// The server's own environment reaches the plugin too (go-plugin
		// appends it): those names are not the host's settings.
		inherited := map[string]bool{}
		for _, kv := range v.cmd.Env {
			k, _, _ := strings.Cut(kv, "=")
			inherited[k] = true
		}
		inherited["VAULTPLUGIN_PROBE_LOG"] = true // the operator's -env

		var facts, sets []string
		check := func(when string, recs []probeRecord, wantMetadata bool) {
			t.Helper()
			starts := 0
			for _, r := range recs {
				if r.Event != "start" {
					continue
				}
				starts++
				lookup := func(k string) (string, bool) { v, ok := r.Env[k]; return v, ok }
				got := hostenv.FromEnv(lookup)
				plan := server.NewPlan(got, hostenv.Backend, true)
				t.Logf("%s: pid %d: hostenv.FromEnv: %s, AutoMTLS=%t (set %t) MetadataMode=%t Mlock=%t WrapToken=%t ClientCert=%t ProtocolVersions=%v Problems=%v; plan: TLSProvider=%t Multiplex=%t Reasons=%q",
					when, r.PID, got, got.AutoMTLS, got.AutoMTLSSet, got.MetadataMode, got.Mlock, got.WrapToken, got.ClientCert, got.ProtocolVersions, got.Problems, plan.TLSProvider, plan.Multiplex, plan.Reasons)
				if len(got.Problems) > 0 {
					t.Errorf("%s: compat found problems in what %s set: %v", when, h.name(), got.Problems)
				}
				if !got.Started(hostenv.Backend) {
					t.Errorf("%s: compat does not see a backend host (cookie %s=%q)", when, hostenv.EnvBackendCookie, r.Env[hostenv.EnvBackendCookie])
				}
				if got.OpenBao != h.openBao() {
					t.Errorf("%s: compat says OpenBao=%t on %s", when, got.OpenBao, h.name())
				}
				if got.Version == nil || got.Version.String() != h.actual {
					t.Errorf("%s: compat reads the host's version as %v (%s=%q, %s=%q); the host is %s",
						when, got.Version, hostenv.EnvVaultVersion, r.Env[hostenv.EnvVaultVersion], hostenv.EnvOpenBaoVersion, r.Env[hostenv.EnvOpenBaoVersion], h.name())
				}
				if got.MetadataMode != wantMetadata {
					t.Errorf("%s: %s=%q, want %t", when, hostenv.EnvMetadataMode, r.Env[hostenv.EnvMetadataMode], wantMetadata)
				}
				// Every host here has AutoMTLS for backends (compat's table:
				// since 1.12; OpenBao forked later): the plan must not take
				// the legacy TLS path, and the host must send what AutoMTLS
				// needs and no wrapping token.
				if plan.TLSProvider || got.WrapToken || !got.AutoMTLSSet || !got.AutoMTLS || !got.ClientCert {
					t.Errorf("%s: AutoMTLS: %s=%q, client certificate %t, wrapping token %t; plan.TLSProvider=%t",
						when, hostenv.EnvAutoMTLS, r.Env[hostenv.EnvAutoMTLS], got.ClientCert, got.WrapToken, plan.TLSProvider)
				}
				// ... and multiplexing: the plan has no reason to warn.
				if len(plan.Reasons) > 0 {
					t.Errorf("%s: the plan expects a host without a feature it has: %q", when, plan.Reasons)
				}
				if !slices.Contains(got.ProtocolVersions, 5) {
					t.Errorf("%s: the host offers protocols %v, without 5 (AutoMTLS, multiplexing)", when, got.ProtocolVersions)
				}
				// Every variable the host set is one compat reads, one it
				// need not, or on OpenBao a BAO_* copy of a VAULT_* one.
				var set []string
				for k, val := range r.Env {
					if inherited[k] {
						continue
					}
					set = append(set, k)
					switch {
					case slices.Contains(compatNames, k), goPluginOnly[k] != "":
					case strings.HasPrefix(k, "BAO_") && h.openBao():
						twin := "VAULT_" + strings.TrimPrefix(k, "BAO_")
						if !slices.Contains(compatNames, twin) {
							t.Errorf("%s: %s sets %s, whose VAULT_ twin %s compat does not read", when, h.name(), k, twin)
						} else if r.Env[twin] != val {
							t.Errorf("%s: %s=%q but %s=%q: not a copy", when, k, val, twin, r.Env[twin])
						}
					default:
						t.Errorf("%s: %s sets %s=%q, which compat does not know", when, h.name(), k, val)
					}
				}
				sort.Strings(set)
				if starts == 1 {
					facts = append(facts, fmt.Sprintf("%s: metadata mode %s, protocols %s", when, r.Env[hostenv.EnvMetadataMode], r.Env[hostenv.EnvProtocolVersions]))
					if s := strings.Join(set, " "); !slices.Contains(sets, s) {
						sets = append(sets, s)
					}
				}
			}
			if starts == 0 {
				t.Errorf("%s: the host did not start the probe", when)
			}
		}
		// At registration with -version the host starts the plugin to ask
		// its version: Vault's catalog (getBackendRunningVersion) does so
		// with metadata mode off and AutoMTLS on for a protocol-5 plugin.
		check("register", atRegister, false)
		check("mount", atMount, false)

		// Multiplexing: both mounts answer from one process.
		if pid1 != pid2 {
			t.Errorf("two mounts of the probe run in processes %d and %d: not multiplexed", pid1, pid2)
		}
		facts = append(facts, fmt.Sprintf("two mounts: pids %d %d (multiplexed: %t)", pid1, pid2, pid1 == pid2))
		facts = append(facts, "sets: "+strings.Join(sets, " | "))
		// The version the plugin reports reaches the host.
		var mounts map[string]struct {
			RunningPluginVersion string `json:"running_plugin_version"`
		}
		if err := json.Unmarshal([]byte(v.must("secrets", "list", "-detailed", "-format=json")), &mounts); err != nil {
			t.Fatal(err)
		}
		if got := mounts["probe1/"].RunningPluginVersion; got != probeVersion {
			t.Errorf("running_plugin_version = %q, want %q", got, probeVersion)
		}
		t.Logf("%s facts:\n  %s", h.name(), strings.Join(facts, "\n  "))
		summary.fact(h, strings.Join(facts, "; "))
	})
}

// readProbe reads the probe's log.
func readProbe(t *testing.T, path string) []probeRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the probe left no log: %v", err)
	}
	defer f.Close()
	var recs []probeRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r probeRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("probe log: %v: %s", err, sc.Bytes())
		}
		recs = append(recs, r)
	}
	return recs
}

// probePID reads the process id that serves the probe's mount.
func probePID(t *testing.T, v *vault, mount string) int {
	t.Helper()
	var r struct {
		Data struct {
			PID int `json:"pid"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(v.must("read", "-format=json", mount+"/pid")), &r); err != nil {
		t.Fatal(err)
	}
	return r.Data.PID
}

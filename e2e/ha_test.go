package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestHACluster proves the library in the shape operators run Vault: a
// three-node integrated-storage (raft) cluster on 127.0.0.1. It measures
// requests through the active node and through standbys, a global plugin
// reload, a rolling upgrade of the plugin under load (this library's main
// and the docs' bare-SDK main side by side), and the loss of the active
// node.
func TestHACluster(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("skipped: the cluster test finds plugin processes through /proc")
	}
	builds := buildHAPlugins(t)
	// The newest Vault and OpenBao: the hosts operators run clusters of
	// that this suite can build. Either one missing is a skip with its
	// reason, shown in the summary.
	for _, key := range []string{"vault-1.21", "openbao-2.6"} {
		h := hostByKey(key)
		if h == nil {
			continue
		}
		t.Run(key, func(t *testing.T) {
			recordOn(t, h, "HA: 3 raft nodes, reload, upgrade under load, failover")
			if h.skip != "" {
				t.Skip("skipped: " + h.skip)
			}
			testHACluster(t, h, builds)
		})
	}
}

// reloadIsLocal reports whether h reloads a plugin only on the node that
// handles the reload. OpenBao 2.6.2 ignores "scope" (vault/
// logical_system.go handlePluginReloadUpdate reloads through
// reloadMatchingPlugin on that node alone), and its standbys run plugins
// of their own to serve reads.
func reloadIsLocal(h *host) bool { return h.openBao() }

func testHACluster(t *testing.T, h *host, builds map[string]string) {
	c := startCluster(t, h.bin, builds)

	// ha-ours is served by this library, ha-bare by the docs' main; both
	// are the example secrets engine.
	for _, p := range []struct{ name, command string }{{"ha-ours", "ours-v1"}, {"ha-bare", "bare-v1"}} {
		c.cli(t, c.active(t), "plugin", "register", "-sha256="+sha(t, builds[p.command]), "-command="+p.command, "-version=v1.0.0", "secret", p.name)
		mount := strings.TrimPrefix(p.name, "ha-")
		c.cli(t, c.active(t), "secrets", "enable", "-path="+mount, "-plugin-version=v1.0.0", p.name)
	}

	t.Run("requests through every node", func(t *testing.T) {
		for i, n := range c.nodes {
			key := fmt.Sprintf("ours/data/node/%d", i)
			start := time.Now()
			if code, body := haAPI(n.addr, "PUT", key, c.token, map[string]any{"v": n.id}); code != 204 {
				t.Fatalf("write through %s (%s): %d %s", n.id, n.role(), code, body)
			}
			written := time.Since(start)
			// A standby that serves reads itself (OpenBao) may not have
			// applied the write yet: read until it has, and say how long.
			code, body, tries := readUntil(n.addr, key, c.token, n.id, 5*time.Second)
			if code != 200 || !strings.Contains(body, n.id) {
				t.Fatalf("read through %s (%s): %d %s", n.id, n.role(), code, body)
			}
			t.Logf("%s (%s): write %s, read back after %s (%d tries)", n.id, n.role(), written.Round(time.Millisecond), (time.Since(start) - written).Round(time.Millisecond), tries)
		}
		c.logPIDs(t, "after requests")
	})

	t.Run("global reload", func(t *testing.T) {
		before := c.pids()
		if code, body := haAPI(c.active(t).addr, "PUT", "sys/plugins/reload/backend", c.token, map[string]any{"plugin": "ha-ours", "scope": "global"}); code >= 300 {
			t.Fatalf("global reload: %d %s", code, body)
		}
		// A reload restarts the plugin lazily: the next request starts it.
		// Nodes other than the active one may reload later than it
		// answers: give them a bound, read through each, and measure.
		start := time.Now()
		active := c.active(t)
		mustChange := func(n *haNode) bool { return len(before[n.id]) > 0 && (n == active || !reloadIsLocal(h)) }
		var after map[string][]int
		for {
			for _, n := range c.nodes {
				if code, body := haAPI(n.addr, "GET", "ours/data/node/0", c.token, nil); code != 200 {
					t.Fatalf("read through %s after the reload: %d %s", n.id, code, body)
				}
			}
			after = c.pids()
			stale := false
			for _, n := range c.nodes {
				stale = stale || (mustChange(n) && intersect(before[n.id], after[n.id]))
			}
			if !stale || time.Since(start) > globalReloadLimit {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, n := range c.nodes {
			t.Logf("%s (%s): plugin processes %v -> %v", n.id, n.role(), before[n.id], after[n.id])
			switch {
			case mustChange(n) && intersect(before[n.id], after[n.id]):
				t.Errorf("%s: a plugin process survived the global reload by %s: %v -> %v", n.id, globalReloadLimit, before[n.id], after[n.id])
			case !mustChange(n) && len(before[n.id]) > 0:
				t.Logf("%s: %s reloads only on the node that handles the reload, so this standby keeps its plugin process (as predicted)", n.id, h.name())
			}
		}
		t.Logf("the plugin processes that had to be replaced were replaced %s after the reload was acknowledged", time.Since(start).Round(time.Millisecond))
	})

	t.Run("rolling upgrade under load", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		results := map[string]*loadResult{}
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		for _, mount := range []string{"ours", "bare"} {
			r := &loadResult{acked: map[string]string{}}
			results[mount] = r
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.load(ctx, c.nodes[w%len(c.nodes)].addr, mount, w, r)
				}()
			}
		}
		time.Sleep(2 * time.Second)
		c.logPIDs(t, "before the upgrade")
		beforeUpgrade := c.pids()
		upgradeStart := time.Now()
		for _, p := range []struct{ name, mount, command string }{{"ha-ours", "ours", "ours-v2"}, {"ha-bare", "bare", "bare-v2"}} {
			n := c.active(t)
			c.cli(t, n, "plugin", "register", "-sha256="+sha(t, builds[p.command]), "-command="+p.command, "-version=v2.0.0", "secret", p.name)
			c.cli(t, n, "secrets", "tune", "-plugin-version=v2.0.0", p.mount+"/")
			// The API, not the CLI: Vault 1.21's `plugin reload -mounts=…
			// -scope=global` sends PUT sys/plugins/reload/unknown (404),
			// and OpenBao's CLI has no -type.
			if code, body := haAPI(n.addr, "PUT", "sys/plugins/reload/backend", c.token, map[string]any{"mounts": []string{p.mount + "/"}, "scope": "global"}); code >= 300 {
				t.Fatalf("reloading %s/: %d %s", p.mount, code, body)
			}
		}
		upgraded := time.Since(upgradeStart)
		time.Sleep(3 * time.Second)
		c.logPIDs(t, "after the upgrade")
		for _, n := range c.nodes {
			if old := beforeUpgrade[n.id]; len(old) > 0 && intersect(old, c.pids()[n.id]) {
				if !reloadIsLocal(h) || n.role() == "active" {
					t.Errorf("%s (%s) still runs the v1 plugin process %v after the upgrade", n.id, n.role(), old)
				} else {
					t.Logf("%s (%s) still runs the v1 plugin process %v after the upgrade: %s reloads only on the node that handles the reload, so reads this standby serves itself come from v1 until it restarts (as predicted)", n.id, n.role(), old, h.name())
				}
			}
		}
		cancel()
		wg.Wait()

		var mounts map[string]struct {
			RunningPluginVersion string `json:"running_plugin_version"`
		}
		if err := json.Unmarshal([]byte(c.cli(t, c.active(t), "secrets", "list", "-format=json")), &mounts); err != nil {
			t.Fatal(err)
		}
		for _, mount := range []string{"ours", "bare"} {
			r := results[mount]
			lost := r.verify(c.nodes[0].addr, c.token, mount)
			t.Logf("%s: running %s after the upgrade (%s of register, tune, reload); %d requests, %d failed, longest gap between successes %s, %d acknowledged writes, %d lost, %d reads through a standby saw the write only on a retry; failures: %s",
				mount, mounts[mount+"/"].RunningPluginVersion, upgraded.Round(time.Millisecond), r.requests, r.failed, r.longestGap().Round(time.Millisecond), len(r.acked), lost, r.stale, r.failureSummary())
			if got := mounts[mount+"/"].RunningPluginVersion; got != "v2.0.0" {
				t.Errorf("%s runs %q after the upgrade, want v2.0.0", mount, got)
			}
			if lost > 0 {
				t.Errorf("%s: %d acknowledged writes did not read back", mount, lost)
			}
		}
		if ours, bare := results["ours"].failed, results["bare"].failed; ours > bare {
			t.Errorf("this library's plugin failed %d requests during the upgrade, the bare SDK main %d: %s", ours, bare, results["ours"].failureSummary())
		}
	})

	t.Run("active node killed", func(t *testing.T) {
		dead := c.active(t)
		orphans := map[string][]int{}
		for _, kind := range []string{"ours", "bare"} {
			orphans[kind] = pluginPIDsOf(dead.pluginDir, kind)
		}
		t.Logf("killing %s (active), its plugin processes: ours %v, bare %v", dead.id, orphans["ours"], orphans["bare"])
		killedAt := time.Now()
		_ = dead.cmd.Process.Signal(syscall.SIGKILL)
		<-dead.done

		var took time.Duration
		var via string
		for deadline := time.Now().Add(60 * time.Second); ; {
			for _, n := range c.nodes {
				if n == dead {
					continue
				}
				code, _ := haAPI(n.addr, "PUT", "ours/data/after-failover", c.token, map[string]any{"v": "1"})
				if code == 204 {
					if code, _ := haAPI(n.addr, "GET", "ours/data/after-failover", c.token, nil); code == 200 {
						took, via = time.Since(killedAt), n.id
					}
				}
				if took > 0 {
					break
				}
			}
			if took > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no request on the plugin's mount succeeded within 60 s of killing the active node")
			}
			time.Sleep(100 * time.Millisecond)
		}
		newActive := c.active(t)
		t.Logf("%s is the new active node; a write and read on ours/ succeeded through %s %s after the kill", newActive.id, via, took.Round(time.Millisecond))

		for _, kind := range []string{"ours", "bare"} {
			gone := waitGone(orphans[kind], 10*time.Second)
			t.Logf("%s's %s plugin processes after its death: %v gone within %s, %v left", dead.id, kind, len(orphans[kind])-len(alive(orphans[kind])), gone.Round(time.Millisecond), alive(orphans[kind]))
			if kind == "ours" && len(alive(orphans[kind])) > 0 {
				t.Errorf("this library's plugin processes %v outlived their Vault node", alive(orphans[kind]))
			}
		}
	})
}

// buildHAPlugins builds the two plugins in two versions each: v1 and v2
// differ in their version (ours) or a linked string (bare), so each build
// has its own sha256, as a real new release has.
func buildHAPlugins(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, b := range []struct{ name, pkg, ldflags string }{
		{"ours-v1", "./internal/haplugin/ours", "-X main.version=v1.0.0"},
		{"ours-v2", "./internal/haplugin/ours", "-X main.version=v2.0.0"},
		{"bare-v1", "./internal/haplugin/bare", "-X main.variant=v1"},
		{"bare-v2", "./internal/haplugin/bare", "-X main.variant=v2"},
	} {
		out[b.name] = filepath.Join(dir, b.name)
		cmd := exec.Command("go", "build", "-ldflags="+b.ldflags, "-o", out[b.name], b.pkg)
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, o)
		}
	}
	return out
}

// haNode is one Vault server of the cluster.
type haNode struct {
	id, dir, pluginDir, addr string
	cmd                      *exec.Cmd
	log                      *syncBuffer
	done                     chan struct{}
}

func (n *haNode) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// role is "active", "standby" or why neither, from sys/health.
func (n *haNode) role() string {
	if !n.alive() {
		return "dead"
	}
	code, _ := haAPI(n.addr, "GET", "sys/health", "", nil)
	switch code {
	case 200:
		return "active"
	case 429:
		return "standby"
	default:
		return "health " + strconv.Itoa(code)
	}
}

type haCluster struct {
	server     string // the vault or bao binary, server and CLI
	nodes      []*haNode
	token, key string
}

// startCluster starts three raft nodes with the builds in every node's
// plugin directory, initializes the first, and joins the others to it.
func startCluster(t *testing.T, server string, builds map[string]string) *haCluster {
	t.Helper()
	c := &haCluster{server: server}
	base := t.TempDir()
	for i := range 3 {
		n := &haNode{id: fmt.Sprintf("node%d", i+1), dir: filepath.Join(base, fmt.Sprintf("node%d", i+1)), log: &syncBuffer{}, done: make(chan struct{})}
		n.pluginDir = filepath.Join(n.dir, "plugins")
		for _, d := range []string{filepath.Join(n.dir, "data"), n.pluginDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, path := range builds {
			copyFile(t, path, filepath.Join(n.pluginDir, name))
		}
		api, cluster := freePort(t), freePort(t)
		n.addr = "http://127.0.0.1:" + strconv.Itoa(api)
		c.nodes = append(c.nodes, n)
		join := ""
		if i > 0 {
			join = fmt.Sprintf("  retry_join {\n    leader_api_addr = %q\n  }\n", c.nodes[0].addr)
		}
		conf := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = %q
  # Vault's production setting: raft's timeouts unscaled (the default, 0,
  # means 5, tuned for slow development machines).
  performance_multiplier = 1
%s}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr         = %q
cluster_addr     = "https://127.0.0.1:%d"
disable_mlock    = true
plugin_directory = %q
log_level        = "debug"
`, filepath.Join(n.dir, "data"), n.id, join, api, cluster, n.addr, cluster, n.pluginDir)
		if err := os.WriteFile(filepath.Join(n.dir, "vault.hcl"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { c.stop(t) })

	first := c.nodes[0]
	c.start(t, first)
	var init struct {
		Keys  []string `json:"unseal_keys_b64"`
		Token string   `json:"root_token"`
	}
	if err := json.Unmarshal([]byte(c.cli(t, first, "operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json")), &init); err != nil {
		t.Fatal(err)
	}
	c.key, c.token = init.Keys[0], init.Token
	c.cli(t, first, "operator", "unseal", c.key)
	c.waitRole(t, first, "active")
	// Autopilot makes a joined node a voter once it has been healthy for
	// the stabilization time (10 s by default); 2 s keeps the test short.
	c.cli(t, first, "operator", "raft", "autopilot", "set-config", "-server-stabilization-time=2s")
	for _, n := range c.nodes[1:] {
		c.start(t, n)
		// retry_join joins a node once it is unsealed with the cluster's key.
		eventually(t, 60*time.Second, func() error {
			_, err := c.run(n, "operator", "unseal", c.key)
			if err != nil {
				return err
			}
			if r := n.role(); r != "standby" {
				return fmt.Errorf("%s is %s, want standby", n.id, r)
			}
			return nil
		})
	}
	// Only voters can elect a new leader when the active node dies.
	var peers string
	eventually(t, 60*time.Second, func() error {
		peers = c.cli(t, first, "operator", "raft", "list-peers")
		if n := strings.Count(peers, "true"); n != 3 {
			return fmt.Errorf("%d of 3 nodes are voters:\n%s", n, peers)
		}
		return nil
	})
	t.Logf("raft peers:\n%s", peers)
	return c
}

func (c *haCluster) start(t *testing.T, n *haNode) {
	t.Helper()
	n.cmd = exec.Command(c.server, "server", "-config="+filepath.Join(n.dir, "vault.hcl"))
	n.cmd.Dir = n.dir
	n.cmd.Env = append(os.Environ(), "HOME="+n.dir)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	eventually(t, 60*time.Second, func() error {
		if !n.alive() {
			t.Fatalf("%s exited at start:\n%s", n.id, tail(n.log.String(), 30))
		}
		if code, _ := haAPI(n.addr, "GET", "sys/health", "", nil); code == 0 {
			return fmt.Errorf("%s does not answer yet", n.id)
		}
		return nil
	})
}

// stop stops every node, then any plugin process left in their plugin
// directories: the bare SDK main outlives a killed node.
func (c *haCluster) stop(t *testing.T) {
	for _, n := range c.nodes {
		if n.cmd == nil || !n.alive() {
			continue
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	}
	for _, n := range c.nodes {
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", n.id, tail(n.log.String(), 25))
		}
		for _, pid := range pluginPIDs(n.pluginDir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (c *haCluster) waitRole(t *testing.T, n *haNode, role string) {
	t.Helper()
	eventually(t, 60*time.Second, func() error {
		if r := n.role(); r != role {
			return fmt.Errorf("%s is %s, want %s", n.id, r, role)
		}
		return nil
	})
}

// active is the node that is active now.
func (c *haCluster) active(t *testing.T) *haNode {
	t.Helper()
	var found *haNode
	eventually(t, 60*time.Second, func() error {
		for _, n := range c.nodes {
			if n.alive() && n.role() == "active" {
				found = n
				return nil
			}
		}
		return fmt.Errorf("no active node")
	})
	return found
}

func (c *haCluster) run(n *haNode, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.server, args...)
	// OpenBao's CLI reads BAO_*, Vault's VAULT_*.
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+n.addr, "VAULT_TOKEN="+c.token, "BAO_ADDR="+n.addr, "BAO_TOKEN="+c.token, "HOME="+n.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vault %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c *haCluster) cli(t *testing.T, n *haNode, args ...string) string {
	t.Helper()
	out, err := c.run(n, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pids are the plugin processes of each node, by node id.
func (c *haCluster) pids() map[string][]int {
	m := map[string][]int{}
	for _, n := range c.nodes {
		m[n.id] = pluginPIDsOf(n.pluginDir, "ours")
	}
	return m
}

func (c *haCluster) logPIDs(t *testing.T, when string) {
	for _, n := range c.nodes {
		t.Logf("%s %s (%s): ours %v, bare %v", when, n.id, n.role(), pluginPIDsOf(n.pluginDir, "ours"), pluginPIDsOf(n.pluginDir, "bare"))
	}
}

// pluginPIDsOf lists the processes running a build of kind (ours, bare)
// from dir.
func pluginPIDsOf(dir, kind string) []int {
	var pids []int
	for _, pid := range pluginPIDs(dir) {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if strings.HasPrefix(filepath.Base(exe), kind+"-") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// loadResult is what a load generator saw on one mount.
type loadResult struct {
	mu        sync.Mutex
	stale     int // reads that saw the write only on a retry
	requests  int
	failed    int
	failures  map[string]int
	successes []time.Time
	acked     map[string]string // key -> value of every acknowledged write
}

func (r *loadResult) record(ok bool, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if ok {
		r.successes = append(r.successes, time.Now())
		return
	}
	r.failed++
	if r.failures == nil {
		r.failures = map[string]int{}
	}
	r.failures[why]++
}

func (r *loadResult) longestGap() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := append([]time.Time(nil), r.successes...)
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	var gap time.Duration
	for i := 1; i < len(s); i++ {
		gap = max(gap, s[i].Sub(s[i-1]))
	}
	return gap
}

func (r *loadResult) failureSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failures) == 0 {
		return "none"
	}
	var parts []string
	for why, n := range r.failures {
		parts = append(parts, fmt.Sprintf("%d× %s", n, why))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// verify reads every acknowledged write back through addr and returns how
// many are missing or wrong.
func (r *loadResult) verify(addr, token, mount string) int {
	lost := 0
	for key, want := range r.acked {
		code, body := haAPI(addr, "GET", mount+"/data/"+key, token, nil)
		if code != 200 || !strings.Contains(body, strconv.Quote(want)) {
			lost++
		}
	}
	return lost
}

// load writes and reads back keys on mount through addr until ctx ends,
// bounded to one request at a time per worker.
func (c *haCluster) load(ctx context.Context, addr, mount string, worker int, r *loadResult) {
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("load/w%d-%d", worker, i)
		val := fmt.Sprintf("value-%d-%d", worker, i)
		code, body := haAPI(addr, "PUT", mount+"/data/"+key, c.token, map[string]any{"v": val})
		if code != 204 {
			r.record(false, fmt.Sprintf("write %d %s", code, firstError(body)))
			time.Sleep(20 * time.Millisecond)
			continue
		}
		r.mu.Lock()
		r.acked[key] = val
		r.mu.Unlock()
		r.record(true, "")
		code, body, tries := readUntil(addr, mount+"/data/"+key, c.token, val, staleReadLimit)
		if tries > 1 {
			r.mu.Lock()
			r.stale++
			r.mu.Unlock()
		}
		if code != 200 {
			r.record(false, fmt.Sprintf("read %d %s", code, firstError(body)))
			continue
		}
		r.record(true, "")
	}
}

// globalReloadLimit bounds how long after a global reload is acknowledged
// every node's plugin processes must have been replaced: a standby that
// runs plugins (OpenBao) applies the reload asynchronously.
const globalReloadLimit = 15 * time.Second

// staleReadLimit bounds how long a read through a standby that serves
// reads itself (OpenBao) may lag the write it follows before it counts
// as failed: raft applies an entry on followers within a heartbeat.
const staleReadLimit = 2 * time.Second

// readUntil reads path through addr until the answer holds want, a 404
// turns into something else, or limit passes; it returns the last answer
// and the number of reads.
func readUntil(addr, path, token, want string, limit time.Duration) (int, string, int) {
	deadline := time.Now().Add(limit)
	for tries := 1; ; tries++ {
		code, body := haAPI(addr, "GET", path, token, nil)
		if (code == 200 && strings.Contains(body, want)) || (code != 200 && code != 404) || time.Now().After(deadline) {
			return code, body, tries
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func firstError(body string) string {
	var e struct{ Errors []string }
	if json.Unmarshal([]byte(body), &e) == nil && len(e.Errors) > 0 {
		s := strings.ReplaceAll(e.Errors[0], "\n", " ")
		if len(s) > 120 {
			s = s[:120] + "…"
		}
		return s
	}
	return ""
}

// haAPI calls a node's HTTP API; the status is 0 when it does not answer.
func haAPI(addr, method, path, token string, body any) (int, string) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, addr+"/v1/"+path, rd)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func intersect(a, b []int) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func alive(pids []int) []int {
	var out []int
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// waitGone waits up to limit for pids to exit and returns how long it
// took (limit if some remain).
func waitGone(pids []int, limit time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < limit {
		if len(alive(pids)) == 0 {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return limit
}

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestCheckVerdict holds `vaultplugin check` to what real hosts do with
// the same binaries: for each binary of check's test set, check's overall
// verdict must agree with the host's. A host serves a binary when it
// registers it, enables a mount of it and answers one request through it
// (the root path's help); it loses a process when, after it is SIGKILLed,
// the binary's process still runs orphanHold later. Check passes
// (✓, warnings or not) exactly the binaries a host serves without losing
// a process; a ✗ is a binary the host does not serve, or serves and
// orphans. Where the host serves it and its log names the protocol it
// settled on, check's "tls" must agree too: "legacy" exactly when the host
// fell back to protocol 4. The table, with what was measured for each ✗,
// is in the test log and under the summary.
func TestCheckVerdict(t *testing.T) {
	set, err := checkSet()
	if err != nil {
		t.Fatal(err)
	}
	verdicts, err := checkVerdicts(set)
	if err != nil {
		t.Fatal(err)
	}
	eachHost(t, fmt.Sprintf("vaultplugin check's verdict = the host's (%d binaries)", len(set)), nil, func(t *testing.T, h *host) {
		served := hostVerdicts(t, h, set)
		var rows [][3]string
		for _, c := range set {
			if c.skip != "" {
				rows = append(rows, [3]string{c.what, "-", "not built: " + c.skip})
				continue
			}
			cv, hv := verdicts[c.name], served[c.name]
			rows = append(rows, [3]string{c.what, cv.String(), hv.String()})
			if cv.passed != hv.servesWhole() {
				t.Errorf("%s: check says %s, but %s %s", c.what, cv, h.name(), hv)
			}
			if hv.serves() && hv.protocol != 0 && (cv.tls == "legacy") != (hv.protocol == 4) {
				t.Errorf("%s: check's tls is %q, but %s settled on protocol %d", c.what, cv.tls, h.name(), hv.protocol)
			}
		}
		table := verdictTable(h, rows)
		t.Logf("\n%s", table)
		summary.note(strings.ReplaceAll(strings.TrimRight(table, "\n"), "\n", "\n  "))
	})
}

// orphanHold is how long a plugin may outlive its killed host before it
// counts as orphaned: check's own bound (host-death, 5 s).
const orphanHold = 5 * time.Second

// checkCase is one binary of check's test set.
type checkCase struct {
	name string // its file and catalog name
	what string // what it is, for the table
	bin  string
	skip string // why it could not be built here; "" when built
}

// checkSet builds check's test set once per run: this module's example
// (serve.Run), the bare SDK main of cmd/vaultplugin/testdata/bare with
// vault/api at the module's floor and at the newest release, the example
// built with cgo, a plugin that prints on stdout before its handshake, one
// whose factory panics, and one that answers another host's cookie. The
// bare mains are temporary copies of that module with vault/api replaced
// (go mod edit -replace), built from the module cache and the proxy.
var checkSet = sync.OnceValues(func() ([]checkCase, error) {
	dir := filepath.Join(binDir, "checkset")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	newest, err := newestAPI()
	if err != nil {
		return nil, err
	}
	cases := []checkCase{
		{name: "ours", what: "serve.Run (the secrets example)"},
		{name: "bare-api-floor", what: "bare SDK main, vault/api v1.5.0"},
		{name: "bare-api-newest", what: "bare SDK main, vault/api " + newest},
		{name: "cgo", what: "serve.Run built with CGO_ENABLED=1"},
		{name: "stdout", what: "prints on stdout before its handshake"},
		{name: "panic", what: "bare SDK, its factory panics"},
		{name: "cookie", what: "go-plugin with another host's cookie"},
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []string
	build := func(i int, f func(out string) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(dir, cases[i].name)
			if err := f(out); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s: %v", cases[i].name, err))
				mu.Unlock()
				return
			}
			cases[i].bin = out
		}()
	}
	build(0, func(out string) error {
		return goBuildIn(repoRoot, []string{"CGO_ENABLED=0"}, "-o", out, "./example/secrets/cmd/vault-plugin-secrets-example")
	})
	build(1, func(out string) error { return buildBare(out, "v1.5.0") })
	build(2, func(out string) error { return buildBare(out, newest) })
	if _, err := exec.LookPath("gcc"); err != nil {
		cases[3].skip = "no gcc: cannot build with cgo"
	} else {
		build(3, func(out string) error {
			return goBuildIn(repoRoot, []string{"CGO_ENABLED=1"}, "-o", out, "./example/secrets/cmd/vault-plugin-secrets-example")
		})
	}
	for i, pkg := range map[int]string{4: "stdout", 5: "panic", 6: "cookie"} {
		build(i, func(out string) error {
			return goBuildIn(repoRoot, []string{"CGO_ENABLED=0"}, "-o", out, "./cmd/vaultplugin/internal/testplugins/"+pkg)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, fmt.Errorf("building check's test set:\n%s", strings.Join(errs, "\n"))
	}
	return cases, nil
})

// newestAPI is the newest github.com/hashicorp/vault/api release the
// module proxy serves.
func newestAPI() (string, error) {
	out, err := goCmd(filepath.Join(repoRoot, "cmd", "vaultplugin", "testdata", "bare"), 2*time.Minute, "list", "-m", "-f", "{{.Version}}", "github.com/hashicorp/vault/api@latest")
	if err != nil {
		return "", fmt.Errorf("go list github.com/hashicorp/vault/api@latest: %v\n%s", err, goError(out))
	}
	return strings.TrimSpace(out), nil
}

// buildBare builds the bare SDK main of cmd/vaultplugin/testdata/bare into
// out with vault/api replaced by version api, in a copy of that module.
func buildBare(out, api string) error {
	src := filepath.Join(repoRoot, "cmd", "vaultplugin", "testdata", "bare")
	mod, err := os.MkdirTemp(binDir, "bare-")
	if err != nil {
		return err
	}
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(mod, f), b, 0o644); err != nil {
			return err
		}
	}
	if out, err := goCmd(mod, time.Minute, "mod", "edit", "-replace=github.com/hashicorp/vault/api=github.com/hashicorp/vault/api@"+api); err != nil {
		return fmt.Errorf("go mod edit: %v\n%s", err, out)
	}
	return goBuildIn(mod, []string{"CGO_ENABLED=0"}, "-o", out, ".")
}

// goBuildIn runs go build in dir with extra environment entries, as a
// plugin author builds: -mod=mod, so a copied module resolves.
func goBuildIn(dir string, env []string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-mod=mod"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, goError(string(b)))
	}
	return nil
}

// vaultpluginTool builds the vaultplugin command once per run.
var vaultpluginTool = sync.OnceValues(func() (string, error) {
	out := filepath.Join(binDir, "vaultplugin")
	if b, err := goCmd(repoRoot, 5*time.Minute, "build", "-o", out, "./cmd/vaultplugin"); err != nil {
		return "", fmt.Errorf("go build ./cmd/vaultplugin: %v\n%s", err, b)
	}
	return out, nil
})

// checkVerdict is what `vaultplugin check -json` said of a binary.
type checkVerdict struct {
	passed      bool
	tls         string
	fails, warn []string // check ids
}

func (v checkVerdict) String() string {
	s := "✓"
	if !v.passed {
		s = "✗ " + strings.Join(v.fails, ", ")
	}
	if len(v.warn) > 0 {
		s += "; ! " + strings.Join(v.warn, ", ")
	}
	if v.tls == "legacy" {
		s += " (legacy TLS path)"
	}
	return s
}

// checkVerdicts runs check on every built binary of the set, two at a
// time: each run starts a dozen processes and waits out its bounds.
func checkVerdicts(set []checkCase) (map[string]checkVerdict, error) {
	tool, err := vaultpluginTool()
	if err != nil {
		return nil, err
	}
	out := map[string]checkVerdict{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []string
	sem := make(chan struct{}, 2)
	for _, c := range set {
		if c.skip != "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			v, err := runCheck(tool, c.bin)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", c.name, err))
				return
			}
			out[c.name] = v
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("vaultplugin check:\n%s", strings.Join(errs, "\n"))
	}
	return out, nil
}

// runCheck runs `vaultplugin check -json bin` and reads its report; exit
// 1 is a failed check, any other failure is an error.
func runCheck(tool, bin string) (checkVerdict, error) {
	cmd := exec.Command(tool, "check", "-json", bin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		return checkVerdict{}, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var rep struct {
		Passed bool   `json:"passed"`
		TLS    string `json:"tls"`
		Checks []struct{ ID, Status string }
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return checkVerdict{}, fmt.Errorf("its report: %v\n%s", err, out)
	}
	v := checkVerdict{passed: rep.Passed, tls: rep.TLS}
	for _, c := range rep.Checks {
		switch c.Status {
		case "fail":
			v.fails = append(v.fails, c.ID)
		case "warn":
			v.warn = append(v.warn, c.ID)
		}
	}
	if v.passed != (len(v.fails) == 0) {
		return v, fmt.Errorf("passed is %v with failures %v", v.passed, v.fails)
	}
	return v, nil
}

// hostVerdict is what a host did with a binary.
type hostVerdict struct {
	failed   string // the step that failed and the host's answer; "" when it served
	protocol int    // the protocol the host's log says it settled on; 0 when unknown
	orphaned []int  // its processes still running orphanHold after the host's SIGKILL
}

func (v hostVerdict) serves() bool      { return v.failed == "" }
func (v hostVerdict) servesWhole() bool { return v.serves() && len(v.orphaned) == 0 }

func (v hostVerdict) String() string {
	if !v.serves() {
		return "does not serve: " + v.failed
	}
	s := "serves"
	if v.protocol != 0 {
		s += fmt.Sprintf(" (protocol %d)", v.protocol)
	}
	if len(v.orphaned) > 0 {
		s += fmt.Sprintf("; orphaned: pid %v still runs %s after the host's SIGKILL", v.orphaned, orphanHold)
	}
	return s
}

// hostVerdicts registers, mounts and sends one request to each built
// binary of the set on a dev server of host h, then kills the server with
// SIGKILL and sees which binaries' processes outlive it.
func hostVerdicts(t *testing.T, h *host, set []checkCase) map[string]hostVerdict {
	v := startVault(t, h)
	out := map[string]hostVerdict{}
	for _, c := range set {
		if c.skip == "" {
			copyFile(t, c.bin, filepath.Join(v.pluginDir, c.name))
			out[c.name] = serve(v, c.name)
		}
	}
	// Only what serves has a process to lose. Vault may still be
	// stopping a failed start's process: those are not counted.
	procs := pluginProcs(v.pluginDir)
	if err := v.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-v.done
	var pids []int
	for _, ps := range procs {
		pids = append(pids, ps...)
	}
	waitGone(pids, orphanHold)
	for name, ps := range procs {
		hv := out[name]
		if !hv.serves() {
			continue
		}
		hv.orphaned = alive(ps)
		out[name] = hv
	}
	for _, pid := range alive(pids) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return out
}

// serve registers name as a secrets engine, enables it at name/ and asks
// it for its root path's help, which Vault's router hands the plugin.
func serve(v *vault, name string) hostVerdict {
	sum := sha(v.t, filepath.Join(v.pluginDir, name))
	if code, resp := v.api("PUT", "sys/plugins/catalog/secret/"+name, rootToken, map[string]any{"sha256": sum, "command": name}); code >= 300 {
		return hostVerdict{failed: fmt.Sprintf("register: %d %s", code, apiErrors(resp))}
	}
	if code, resp := v.api("POST", "sys/mounts/"+name, rootToken, map[string]any{"type": name}); code >= 300 {
		return hostVerdict{failed: fmt.Sprintf("enable: %d %s", code, apiErrors(resp))}
	}
	if code, resp := v.api("GET", name+"/?help=1", rootToken, nil); code != 200 {
		return hostVerdict{failed: fmt.Sprintf("GET %s/?help=1: %d %s", name, code, apiErrors(resp))}
	}
	return hostVerdict{protocol: settledProtocol(v.log.String(), name)}
}

// apiErrors is a host's error answer on one line, shortened for the
// table.
func apiErrors(resp map[string]any) string {
	s := strings.Join(strings.Fields(fmt.Sprint(resp["errors"])), " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120]) + "…"
	}
	return s
}

// settledProtocol reads from a host's debug log the protocol version
// go-plugin's client last settled on for the mount of name
// ("secrets.NAME.…: using plugin: version=4"); 0 when the log names none.
func settledProtocol(log, name string) int {
	re := regexp.MustCompile(`secrets\.` + regexp.QuoteMeta(name) + `\.\S*: using plugin: version=(\d+)`)
	m := re.FindAllStringSubmatch(log, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// pluginProcs maps each binary of dir to its running processes.
func pluginProcs(dir string) map[string][]int {
	out := map[string][]int{}
	for _, pid := range pluginPIDs(dir) {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		name := filepath.Base(exe)
		out[name] = append(out[name], pid)
	}
	return out
}

// verdictTable lays out the rows (binary, check's verdict, the host's) for
// the log.
func verdictTable(h *host, rows [][3]string) string {
	head := [3]string{"binary", "vaultplugin check", h.name()}
	rows = slices.Insert(rows, 0, head)
	// fmt pads to a width in runes.
	var w [2]int
	for _, r := range rows {
		w[0], w[1] = max(w[0], len([]rune(r[0]))), max(w[1], len([]rune(r[1])))
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s | %-*s | %s\n", w[0], r[0], w[1], r[1], r[2])
	}
	return b.String()
}

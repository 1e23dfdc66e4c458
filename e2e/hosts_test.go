package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The hosts the suite proves the library on. Each existing group runs on
// each host as a subtest named by the host's key, so
//
//	go test -run 'TestExamplePlugins/vault-1.19' ./...
//
// runs one group on one host. e2e/README.md documents the variables.

// VaultVersion is the newest Vault the suite builds: CI always runs it.
const VaultVersion = "v1.21.0"

// hostSpec is one host line: how to find, build and start it.
type hostSpec struct {
	key     string // subtest name and VAULTPLUGIN_HOSTS name, e.g. "vault-1.19"
	product string // "Vault" or "OpenBao"
	version string // the release built from the recipe, e.g. "1.19.5"
	binEnv  string // the variable that points the suite at a user's binary
	// required hosts are built when not cached (VAULTPLUGIN_BUILD=required,
	// the default, and CI); the others run only when cached or given. Only
	// the newest Vault and OpenBao are: building a Vault release takes
	// 10-15 minutes of CI's 60-minute budget on 2 cores.
	required bool
	why      string // what the line is to operators
	// unbuildable says why no recipe builds this line from the module
	// proxy: the host runs only when given.
	unbuildable string
}

var hostSpecs = []hostSpec{
	{key: "vault-1.16", product: "Vault", version: "1.16.3", binEnv: "VAULTPLUGIN_VAULT_BIN_1_16", why: "Enterprise LTS"},
	{key: "vault-1.19", product: "Vault", version: "1.19.5", binEnv: "VAULTPLUGIN_VAULT_BIN_1_19", why: "Enterprise LTS"},
	{key: "vault-1.20", product: "Vault", version: "1.20.4", binEnv: "VAULTPLUGIN_VAULT_BIN_1_20", why: "previous minor",
		unbuildable: "Vault 1.20.4, the only 1.20 release the module proxy serves, does not build from it: its in-tree sdk sits between tags " +
			"(with sdk v0.18.0, which its go.mod names: plugin.Download undefined, undefined: keysutil.KeyType_SLH_DSA; " +
			"with v0.19.0: not enough arguments in call to connutil.GetCloudSQLAuthOptions, KeyType.IsPQC undefined; " +
			"the proxy refuses the sdk at the release's commit)"},
	{key: "vault-1.21", product: "Vault", version: strings.TrimPrefix(VaultVersion, "v"), binEnv: "VAULTPLUGIN_VAULT_BIN_1_21", required: true, why: "newest"},
	{key: "openbao-2.6", product: "OpenBao", version: "2.6.2", binEnv: "VAULTPLUGIN_OPENBAO_BIN", required: true, why: "the open-source fork"},
}

// host is a host line resolved for this run.
type host struct {
	hostSpec
	bin    string // the server binary; "" when skipped
	actual string // the version the binary reports, e.g. "1.19.5"
	origin string // where bin came from: cached, built, or a variable
	skip   string // why the host does not run; "" when it does
}

// name is the host as a person names it: "Vault 1.19.5".
func (h *host) name() string {
	v := h.actual
	if v == "" {
		v = h.version
	}
	return h.product + " " + v
}

// openBao reports whether the host is OpenBao.
func (h *host) openBao() bool { return h.product == "OpenBao" }

// line is the host's major.minor, e.g. "1.19".
func (h *host) line() string {
	p := strings.SplitN(h.version, ".", 3)
	return p[0] + "." + p[1]
}

// hosts are this run's hosts, in hostSpecs' order; setup fills it.
var hosts []*host

// vaultBin is the newest Vault's binary ("" when that host is skipped),
// for tests that need one Vault rather than every host.
var vaultBin string

// hostByKey returns the host with the given key, or nil.
func hostByKey(key string) *host {
	for _, h := range hosts {
		if h.key == key {
			return h
		}
	}
	return nil
}

// resolveHosts decides each host's binary: given by its variable, cached,
// built now (required hosts, or all with VAULTPLUGIN_BUILD=all), or
// skipped with the reason. A given binary that is not the host it claims
// to be, and a recipe that fails to build for any reason but an
// unreachable module proxy, are errors: they must not become skips.
func resolveHosts() error {
	selected, err := selectedHosts(os.Getenv("VAULTPLUGIN_HOSTS"))
	if err != nil {
		return err
	}
	build := os.Getenv("VAULTPLUGIN_BUILD")
	switch build {
	case "":
		build = "required"
	case "required", "all", "none":
	default:
		return fmt.Errorf("VAULTPLUGIN_BUILD=%q: want required (the default), all or none", build)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return err
	}
	cache = filepath.Join(cache, "vaultplugin")

	hosts = nil
	for _, spec := range hostSpecs {
		h := &host{hostSpec: spec}
		hosts = append(hosts, h)
		given := os.Getenv(spec.binEnv)
		if given == "" && spec.key == "vault-1.21" {
			given = os.Getenv("VAULTPLUGIN_VAULT_BIN") // the variable's older name
		}
		switch {
		case !selected[spec.key]:
			h.skip = "not in VAULTPLUGIN_HOSTS=" + os.Getenv("VAULTPLUGIN_HOSTS")
			continue
		case given != "":
			// A name on PATH or a relative path: the servers run elsewhere.
			path, err := exec.LookPath(given)
			if err == nil {
				path, err = filepath.Abs(path)
			}
			if err != nil {
				return fmt.Errorf("%s=%s: %w", spec.binEnv, given, err)
			}
			h.bin, h.origin = path, spec.binEnv+"="+given
			if h.actual, err = hostVersion(path); err != nil {
				return fmt.Errorf("%s=%s: %w", spec.binEnv, given, err)
			}
			if !strings.HasPrefix(h.actual, h.line()+".") {
				return fmt.Errorf("%s=%s is %s %s, not %s %s.x", spec.binEnv, given, productOf(given), h.actual, spec.product, h.line())
			}
			continue
		}
		out := filepath.Join(cache, strings.ToLower(spec.product)+"-v"+spec.version)
		if v, err := hostVersion(out); err == nil {
			h.bin, h.actual, h.origin = out, v, "cached"
			continue
		}
		if spec.unbuildable != "" {
			h.skip = spec.unbuildable + "; give " + spec.binEnv + " to run it"
			continue
		}
		if !(build == "all" || build == "required" && spec.required) {
			h.skip = fmt.Sprintf("not cached at %s, and VAULTPLUGIN_BUILD=%s builds %s (build it with VAULTPLUGIN_BUILD=all, or give %s)",
				out, build, requiredKeys(build), spec.binEnv)
			continue
		}
		took, skip, err := buildHost(h, out)
		switch {
		case err != nil:
			return fmt.Errorf("building %s: %w", h.name(), err)
		case skip != "":
			h.skip = skip
			continue
		}
		if h.actual, err = hostVersion(out); err != nil {
			return fmt.Errorf("the %s just built at %s: %w", h.name(), out, err)
		}
		h.bin, h.origin = out, "built in "+took.Round(time.Second).String()
	}
	if h := hostByKey("vault-1.21"); h != nil {
		vaultBin = h.bin
	}
	for _, h := range hosts {
		if h.skip != "" {
			fmt.Fprintf(os.Stderr, "e2e: host %-13s skipped: %s\n", h.name(), h.skip)
		} else {
			fmt.Fprintf(os.Stderr, "e2e: host %-13s %s (%s)\n", h.name(), h.bin, h.origin)
		}
	}
	return nil
}

// selectedHosts parses VAULTPLUGIN_HOSTS: host keys or their unique
// prefixes or suffixes ("1.19", "openbao"), comma-separated; "" or "all"
// selects every host.
func selectedHosts(v string) (map[string]bool, error) {
	sel := map[string]bool{}
	if v == "" || v == "all" {
		for _, s := range hostSpecs {
			sel[s.key] = true
		}
		return sel, nil
	}
	for _, w := range strings.Split(v, ",") {
		w = strings.TrimSpace(strings.ToLower(w))
		var match []string
		for _, s := range hostSpecs {
			if s.key == w || strings.HasPrefix(s.key, w) || strings.HasSuffix(s.key, "-"+w) || w == s.version {
				match = append(match, s.key)
			}
		}
		if len(match) != 1 {
			var keys []string
			for _, s := range hostSpecs {
				keys = append(keys, s.key)
			}
			return nil, fmt.Errorf("VAULTPLUGIN_HOSTS: %q names %d hosts; the hosts are %s", w, len(match), strings.Join(keys, ", "))
		}
		sel[match[0]] = true
	}
	return sel, nil
}

func requiredKeys(build string) string {
	if build == "none" {
		return "nothing"
	}
	// build == "required": "all" never gets here.
	var keys []string
	for _, s := range hostSpecs {
		if s.required {
			keys = append(keys, s.key)
		}
	}
	return "only " + strings.Join(keys, ", ")
}

// versionRE finds the version in `vault version` ("Vault v1.19.5+ent
// (…)") and `bao version` ("OpenBao v2.6.2 (…)").
var versionRE = regexp.MustCompile(`\b(Vault|OpenBao) v(\d+\.\d+\.\d+[0-9A-Za-z.+-]*)`)

// hostVersion runs `BIN version` and returns the version it prints.
func hostVersion(bin string) (string, error) {
	if _, err := os.Stat(bin); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s version: %w\n%s", bin, err, out)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("%s version printed no Vault or OpenBao version: %q", bin, out)
	}
	return m[2], nil
}

func productOf(bin string) string {
	out, _ := exec.Command(bin, "version").CombinedOutput()
	if m := versionRE.FindStringSubmatch(string(out)); m != nil {
		return m[1]
	}
	return "unknown"
}

// buildHost builds h into out and returns how long it took. It returns
// skip (not an error) when the sources cannot be had at all: the module
// proxy is unreachable, or ../shared/hosts is missing for OpenBao. A lock
// next to out makes a second test process wait for the first one's build
// instead of building the same host again.
func buildHost(h *host, out string) (took time.Duration, skip string, err error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return 0, "", err
	}
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return 0, "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return 0, "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := hostVersion(out); err == nil {
		return 0, "", nil // another process built it while we waited
	}

	logPath := out + ".build.log"
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, "", err
	}
	defer logf.Close()
	var cmd *exec.Cmd
	if h.openBao() {
		script := filepath.Join(repoRoot, "..", "shared", "hosts", "openbao", "build.sh")
		if _, err := os.Stat(script); err != nil {
			return 0, fmt.Sprintf("no OpenBao sources: %s is missing (the shared folder beside the repository holds them)", script), nil
		}
		cmd = exec.Command("bash", script, out)
		cmd.Env = os.Environ()
	} else {
		recipe := filepath.Join(repoRoot, "e2e", "vaultbuild", "v"+h.version)
		tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
		defer os.Remove(tmp)
		cmd = exec.Command("go", "build", "-mod=mod", "-trimpath", "-ldflags=-s -w", "-o", tmp, "github.com/hashicorp/vault")
		cmd.Dir = recipe
		cmd.Env = append(os.Environ(),
			"GOFLAGS=-buildvcs=false", "CGO_ENABLED=0", "GOWORK=off",
			// Missing from the checksum database: snowflake v0.13.1
			// (Vault 1.16.3, 1.19.5) and openldap v0.16.1 (1.20.4). The
			// recipe's go.sum has their hashes.
			"GONOSUMDB=github.com/hashicorp/vault-plugin-database-snowflake,github.com/hashicorp/vault-plugin-secrets-openldap")
		defer func() {
			if err == nil && skip == "" {
				err = os.Rename(tmp, out)
			}
		}()
	}
	fmt.Fprintf(os.Stderr, "e2e: building %s into %s (once; 5-15 minutes on 2 cores; log: %s)\n", h.name(), out, logPath)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &teeWriter{logf, &buf}, &teeWriter{logf, &buf}
	start := time.Now()
	runErr := cmd.Run()
	took = time.Since(start)
	if runErr != nil {
		msg := goError(buf.String())
		if unreachable(msg) {
			return took, fmt.Sprintf("cannot fetch its sources (no Go module proxy?): %s", firstLines(msg, 3)), nil
		}
		return took, "", fmt.Errorf("%w after %s (full log: %s):\n%s", runErr, took.Round(time.Second), logPath, lastLines(msg, 30))
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", h.name(), took.Round(time.Second))
	return took, "", nil
}

type teeWriter struct {
	a, b interface{ Write([]byte) (int, error) }
}

func (w *teeWriter) Write(p []byte) (int, error) {
	_, _ = w.b.Write(p)
	return w.a.Write(p)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// eachHost runs f on every host as a subtest named by the host's key, and
// records the group's cell for each. A host that does not run is a skip
// with its reason, never a pass. naOn, when not nil, returns why the
// group does not apply to a host ("" when it does): the cell says n/a.
func eachHost(t *testing.T, group string, naOn func(h *host) string, f func(t *testing.T, h *host)) {
	t.Helper()
	for _, h := range hosts {
		summary.row(group)
		t.Run(h.key, func(t *testing.T) {
			if h.skip != "" {
				summary.add(group, h, "skip", 0, h.skip)
				t.Skipf("%s: %s", h.name(), h.skip)
			}
			if naOn != nil {
				if why := naOn(h); why != "" {
					summary.add(group, h, "n/a", 0, why)
					t.Skipf("n/a on %s: %s", h.name(), why)
				}
			}
			recordOn(t, h, group)
			f(t, h)
		})
	}
}

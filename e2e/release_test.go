package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// `vaultplugin release` proven on the hosts: OpenBao 2.6 downloads and
// registers the images from a real registry (go-containerregistry's
// pkg/registry, served on 127.0.0.1 over HTTP, which OpenBao's downloader
// speaks to a loopback registry: name.Registry.Scheme), Vault installs
// the binaries from the release directory with the register line as the
// release wrote it, and two releases of one commit are the same bytes.

// released is one `vaultplugin release` run: its directory and summary.
type released struct {
	dir string
	sum struct {
		Version  string
		Type     string
		Binaries []struct{ File, OS, Arch, SHA256, Version string }
		Images   struct {
			Image string
			Index string `json:"index_digest"`
		}
		Registration struct {
			Vault []struct{ OS, Arch, Command string }
		}
		Millis int64 `json:"duration_ms"`
	}
}

// block is the OpenBao plugin block the release wrote for arch.
func (r *released) block(t *testing.T, arch string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "openbao_linux_"+arch+".hcl"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// vaultLine is the register line the release wrote for linux/amd64.
func (r *released) vaultLine(t *testing.T) string {
	t.Helper()
	for _, l := range r.sum.Registration.Vault {
		if l.OS == "linux" && l.Arch == "amd64" {
			return l.Command
		}
	}
	t.Fatal("no linux/amd64 register line")
	return ""
}

// releaseSet is the release fixture: the registry, and the releases
// every group uses, made once per test process.
type releaseSet struct {
	once     sync.Once
	err      error
	registry string // host:port
	secretV1 *released
	secretV2 *released
	again    *released // secretV1's release run a second time
	database *released
}

var releases releaseSet

const (
	secretPkg   = "./example/secrets/cmd/vault-plugin-secrets-example"
	databasePkg = "./example/database/cmd/vault-plugin-database-htpasswd"
)

// releaseFixture starts the registry and runs the releases, once.
func releaseFixture(t *testing.T) *releaseSet {
	t.Helper()
	releases.once.Do(func() { releases.err = makeReleases() })
	if releases.err != nil {
		t.Fatal(releases.err)
	}
	return &releases
}

func makeReleases() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// Served until the test process exits: every group pulls from it.
	go func() { _ = http.Serve(l, registry.New(registry.Logger(log.New(io.Discard, "", 0)))) }()
	releases.registry = l.Addr().String()

	vp := filepath.Join(binDir, "vaultplugin")
	if out, err := goCmd(repoRoot, 5*time.Minute, "build", "-o", vp, "./cmd/vaultplugin"); err != nil {
		return fmt.Errorf("go build ./cmd/vaultplugin: %w\n%s", err, out)
	}
	// A developer's tree may have changes; CI's clone has none, and so
	// runs the release as an author would, without the flag.
	var allow []string
	if st, err := exec.Command("git", "-C", repoRoot, "status", "--porcelain").Output(); err != nil || len(st) > 0 {
		allow = []string{"-allow-dirty"}
	}
	run := func(version, pkg string, extra ...string) (*released, error) {
		r := &released{dir: filepath.Join(binDir, "release-"+filepath.Base(pkg)+"-"+version+fmt.Sprint(time.Now().UnixNano()))}
		args := append([]string{"release", "-json", "-version", version, "-o", r.dir,
			"-push", releases.registry + "/" + filepath.Base(pkg)}, allow...)
		args = append(append(args, extra...), pkg)
		cmd := exec.Command(vp, args...)
		cmd.Dir = repoRoot
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("vaultplugin %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
		}
		if err := json.Unmarshal(out, &r.sum); err != nil {
			return nil, fmt.Errorf("vaultplugin %s -json: %w\n%s", strings.Join(args, " "), err, out)
		}
		fmt.Fprintf(os.Stderr, "e2e: released %s %s for %d platforms in %s\n", filepath.Base(pkg), version, len(r.sum.Binaries), time.Duration(r.sum.Millis)*time.Millisecond)
		return r, nil
	}
	if releases.secretV1, err = run("v1.0.0", secretPkg); err != nil {
		return err
	}
	if releases.again, err = run("v1.0.0", secretPkg); err != nil {
		return err
	}
	if releases.secretV2, err = run("v2.0.0", secretPkg, "-platforms", "linux/amd64,linux/arm64"); err != nil {
		return err
	}
	releases.database, err = run("v1.0.0", databasePkg, "-platforms", "linux/amd64,linux/arm64")
	return err
}

// Two releases of one commit are byte for byte the same: the binaries
// (SHA256SUMS) and the images (the index digest, which covers every
// manifest, config and layer); sha256sum -c reads SHA256SUMS.
func TestReleaseReproducible(t *testing.T) {
	rs := releaseFixture(t)
	a, b := rs.secretV1, rs.again
	sa, err := os.ReadFile(filepath.Join(a.dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := os.ReadFile(filepath.Join(b.dir, "SHA256SUMS"))
	if string(sa) != string(sb) || strings.Count(string(sa), "\n") != 6 {
		t.Errorf("SHA256SUMS differ between two releases of one commit:\n%s---\n%s", sa, sb)
	}
	if a.sum.Images.Index == "" || a.sum.Images.Index != b.sum.Images.Index {
		t.Errorf("image index digests differ: %s and %s", a.sum.Images.Index, b.sum.Images.Index)
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Fatalf("sha256sum is not on PATH: %v", err)
	}
	cmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = a.dir
	if out, err := cmd.CombinedOutput(); err != nil || strings.Count(string(out), ": OK\n") != 6 {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}
	summary.note(fmt.Sprintf("release: vaultplugin release of 6 platforms took %s, then %s for the same commit; index %s in both",
		time.Duration(a.sum.Millis)*time.Millisecond, time.Duration(b.sum.Millis)*time.Millisecond, a.sum.Images.Index))
}

// Vault (and OpenBao, whose CLI takes the same line) installs the plugin
// from the release directory: the linux/amd64 binary copied into an empty
// plugin directory, the register line run as the release wrote it; the
// mount reports the release's version as its running version.
func TestReleaseInstallFromFiles(t *testing.T) {
	eachHost(t, "release: install from the release directory", nil, func(t *testing.T, h *host) {
		r := releaseFixture(t).secretV1
		dir := t.TempDir()
		pluginDir := filepath.Join(dir, "plugins")
		if err := os.Mkdir(pluginDir, 0o755); err != nil {
			t.Fatal(err)
		}
		v := launch(t, h, dir, pluginDir, true, "-dev-plugin-dir="+pluginDir)
		line := strings.Fields(r.vaultLine(t))
		copyFile(t, filepath.Join(r.dir, strings.TrimPrefix(line[len(line)-3], "-command=")), filepath.Join(pluginDir, strings.TrimPrefix(line[len(line)-3], "-command=")))
		if line[0] != "vault" {
			t.Fatalf("the register line does not start with vault: %q", line)
		}
		v.must(line[1:]...)
		name := line[len(line)-1]
		v.must("secrets", "enable", "-path=rel", "-plugin-version=v1.0.0", name)
		v.must("write", "rel/data/k", "v=one")
		if out := v.must("read", "-field=v", "rel/data/k"); strings.TrimSpace(out) != "one" {
			t.Errorf("read = %q", out)
		}
		if got := runningVersion(t, v, "rel/"); got != "v1.0.0" {
			t.Errorf("running_plugin_version = %q, want v1.0.0", got)
		}
	})
}

// runningVersion is the running_plugin_version of a secrets mount.
func runningVersion(t *testing.T, v *vault, mount string) string {
	t.Helper()
	var mounts map[string]struct {
		RunningVersion string `json:"running_plugin_version"`
	}
	if err := json.Unmarshal([]byte(v.must("secrets", "list", "-detailed", "-format=json")), &mounts); err != nil {
		t.Fatal(err)
	}
	return mounts[mount].RunningVersion
}

// notOpenBao says why a group of OpenBao's declarative plugins does not
// apply to Vault.
func notOpenBao(h *host) string {
	if h.openBao() {
		return ""
	}
	return "Vault has no declarative plugins: OpenBao 2.5+ downloads plugin images itself (plugin blocks with image); Vault installs files or runs images under its container runtime"
}

// openBaoConfig writes a server configuration with OpenBao's declarative
// plugins into dir and returns its path and plugin directory.
func openBaoConfig(t *testing.T, dir string, blocks ...string) (path, pluginDir string) {
	t.Helper()
	pluginDir = filepath.Join(dir, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "plugins.hcl")
	writeConfig(t, path, pluginDir, blocks...)
	return path, pluginDir
}

func writeConfig(t *testing.T, path, pluginDir string, blocks ...string) {
	t.Helper()
	cfg := fmt.Sprintf("plugin_directory = %q\nplugin_auto_download = true\nplugin_auto_register = true\n\n%s", pluginDir, strings.Join(blocks, "\n"))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// OpenBao 2.6 installs the released images from the registry with the
// blocks the release wrote and nothing else: no register call. The
// secrets engine mounts and answers, the database plugin issues
// credentials; then v2 is published and the configuration updated, and
// after a SIGHUP the upgrade reaches the mount with its data kept.
func TestReleaseOpenBaoFromRegistry(t *testing.T) {
	eachHost(t, "release: OpenBao installs from a registry", notOpenBao, func(t *testing.T, h *host) {
		rs := releaseFixture(t)
		dir := t.TempDir()
		cfg, pluginDir := openBaoConfig(t, dir, rs.secretV1.block(t, "amd64"), rs.database.block(t, "amd64"))
		start := time.Now()
		v := launch(t, h, dir, pluginDir, true, "-config="+cfg)
		name := "vault-plugin-secrets-example"
		v.must("secrets", "enable", "-path=rel", "-plugin-version=v1.0.0", name)
		v.must("write", "rel/data/k", "v=one")
		if out := v.must("read", "-field=v", "rel/data/k"); strings.TrimSpace(out) != "one" {
			t.Fatalf("read = %q", out)
		}
		summary.note(fmt.Sprintf("release: from starting %s to the auto-registered plugin answering: %s", h.name(), time.Since(start).Round(time.Millisecond)))
		if got := runningVersion(t, v, "rel/"); got != "v1.0.0" {
			t.Errorf("running_plugin_version = %q, want v1.0.0", got)
		}
		if !strings.Contains(v.log.String(), "successfully downloaded and validated plugin") {
			t.Errorf("no download in the log:\n%s", tail(v.log.String(), 30))
		}

		t.Run("database", func(t *testing.T) {
			htpasswd := filepath.Join(t.TempDir(), "htpasswd")
			v.must("secrets", "enable", "database")
			v.must("write", "database/config/web", "plugin_name=vault-plugin-database-htpasswd", "plugin_version=v1.0.0", "htpasswd_file="+htpasswd, "allowed_roles=*")
			v.must("write", "database/roles/web", "db_name=web", "default_ttl=1h", "max_ttl=2h")
			var creds struct{ Data struct{ Username string } }
			if err := json.Unmarshal([]byte(v.must("read", "-format=json", "database/creds/web")), &creds); err != nil || creds.Data.Username == "" {
				t.Fatalf("creds: %v %+v", err, creds)
			}
			if b, _ := os.ReadFile(htpasswd); !strings.Contains(string(b), creds.Data.Username+":$2") {
				t.Errorf("user %s not in the htpasswd file:\n%s", creds.Data.Username, b)
			}
		})

		t.Run("upgrade", func(t *testing.T) {
			writeConfig(t, cfg, pluginDir, rs.secretV2.block(t, "amd64"), rs.database.block(t, "amd64"))
			if err := v.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, func() error {
				out, err := v.cli("plugin", "info", "-version=v2.0.0", "secret", name)
				if err != nil {
					return fmt.Errorf("v2.0.0 not registered after SIGHUP: %v %s", err, out)
				}
				return nil
			})
			v.must("secrets", "tune", "-plugin-version=v2.0.0", "rel")
			v.must("plugin", "reload", "-mounts=rel")
			eventually(t, 10*time.Second, func() error {
				if got := runningVersion(t, v, "rel/"); got != "v2.0.0" {
					return fmt.Errorf("running_plugin_version = %q after the upgrade, want v2.0.0", got)
				}
				return nil
			})
			if out := v.must("read", "-field=v", "rel/data/k"); strings.TrimSpace(out) != "one" {
				t.Errorf("after the upgrade read = %q, want the value written under v1", out)
			}
		})
	})
}

// What OpenBao does with a block that cannot be installed, under each
// plugin_download_behavior: a sha256sum that is not the binary's, and a
// registry that is down. With "fail" (the default) the server stops at
// start and says why. With "continue" it logs the same as a warning and
// goes on, but 2.6.2's plugin_auto_register then registers the block
// without a binary and its unseal fails (seen here: the dev server exits
// with "failed to register new plugin: error while validating the command
// path"). Nothing is registered and no binary is left in either case.
func TestReleaseOpenBaoRefusals(t *testing.T) {
	eachHost(t, "release: OpenBao refuses a wrong sha256sum, reports a registry down", notOpenBao, func(t *testing.T, h *host) {
		rs := releaseFixture(t)
		good := rs.secretV1.block(t, "amd64")
		var sum string
		for _, b := range rs.secretV1.sum.Binaries {
			if b.OS == "linux" && b.Arch == "amd64" {
				sum = b.SHA256
			}
		}
		wrong := strings.Repeat("0", 64)
		down := "127.0.0.1:" + fmt.Sprint(freePort(t))
		for _, c := range []struct {
			name, block, why string
		}{
			{"wrong sha256sum", strings.Replace(good, sum, wrong, 1), "plugin hash mismatch: expected " + wrong + ", got " + sum},
			{"registry down", strings.Replace(good, rs.registry, down, 1), "failed to download OCI image"},
		} {
			for _, behavior := range []string{"fail", "continue"} {
				t.Run(c.name+"/"+behavior, func(t *testing.T) {
					dir := t.TempDir()
					cfg, pluginDir := openBaoConfig(t, dir, c.block)
					b, _ := os.ReadFile(cfg)
					if err := os.WriteFile(cfg, append([]byte(fmt.Sprintf("plugin_download_behavior = %q\n", behavior)), b...), 0o644); err != nil {
						t.Fatal(err)
					}
					v := launch(t, h, dir, pluginDir, false, "-config="+cfg)
					select {
					case <-v.done:
					case <-time.After(60 * time.Second):
						t.Fatalf("still running a minute after start:\n%s", tail(v.log.String(), 20))
					}
					logs := v.log.String()
					code := v.cmd.ProcessState.ExitCode()
					if behavior == "fail" {
						// The download's failure stops the server before
						// the catalog exists.
						if code == 0 || !strings.Contains(logs, "Error downloading plugins: failed to download plugin \"secret-vault-plugin-secrets-example\": ") || !strings.Contains(logs, c.why) {
							t.Errorf("exit %d, want a failure saying %q:\n%s", code, c.why, tail(logs, 20))
						}
					} else {
						// OpenBao 2.6.2 warns and goes on, but
						// plugin_auto_register then registers the
						// block anyway, finds no binary, and the
						// unseal fails: the dev server exits.
						if !strings.Contains(logs, "failed to download plugin") || !strings.Contains(logs, c.why) {
							t.Errorf("no warning saying %q:\n%s", c.why, tail(logs, 20))
						}
						if code == 0 || !strings.Contains(logs, "failed to register new plugin: error while validating the command path") {
							t.Errorf("exit %d; want the declarative registration to fail for want of the binary:\n%s", code, tail(logs, 20))
						}
					}
					entries, _ := os.ReadDir(pluginDir)
					for _, e := range entries {
						if e.Name() != ".oci-cache" {
							t.Errorf("the plugin directory holds %s", e.Name())
						}
					}
				})
			}
		}
	})
}

// Vault's container runtime runs the released image under gVisor, where
// this machine has a Docker daemon and runsc; elsewhere the group is
// skipped with the reason.
func TestReleaseContainerRuntime(t *testing.T) {
	eachHost(t, "release: Vault's container runtime", func(h *host) string {
		if h.openBao() {
			return "OpenBao has no container runtime for plugins"
		}
		return ""
	}, func(t *testing.T, h *host) {
		if why := containerRuntimeMissing(); why != "" {
			summary.note(fmt.Sprintf("release: Vault's container runtime on %s: skip: %s", h.name(), why))
			t.Skip(why)
		}
		rs := releaseFixture(t)
		image := rs.registry + "/vault-plugin-secrets-example:v1.0.0"
		if out, err := exec.Command("docker", "pull", "--platform=linux/amd64", image).CombinedOutput(); err != nil {
			t.Fatalf("docker pull %s: %v\n%s", image, err, out)
		}
		b, err := os.ReadFile(filepath.Join(rs.secretV1.dir, "registration.txt"))
		if err != nil {
			t.Fatal(err)
		}
		var runtimeLine, registerLine string
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			switch {
			case strings.HasPrefix(l, "vault plugin runtime register"):
				runtimeLine = l
			case strings.Contains(l, "-oci_image=") && i > 0 && lines[i-1] == "# linux/amd64":
				registerLine = l
			}
		}
		if runtimeLine == "" || registerLine == "" {
			t.Fatalf("registration.txt lacks the container registration:\n%s", b)
		}
		v := startVault(t, h)
		v.must(strings.Fields(runtimeLine)[1:]...)
		v.must(strings.Fields(registerLine)[1:]...)
		v.must("secrets", "enable", "-path=ctr", "-plugin-version=v1.0.0", "vault-plugin-secrets-example")
		v.must("write", "ctr/data/k", "v=one")
		if out := v.must("read", "-field=v", "ctr/data/k"); strings.TrimSpace(out) != "one" {
			t.Errorf("read = %q", out)
		}
	})
}

// containerRuntimeMissing says what this machine lacks to run Vault's
// container runtime: a Docker daemon that answers and gVisor's runsc.
func containerRuntimeMissing() string {
	var missing []string
	if _, err := exec.LookPath("docker"); err != nil {
		missing = append(missing, "no docker on PATH")
	} else if out, err := exec.Command("docker", "info", "--format", "{{json .Runtimes}}").Output(); err != nil {
		why := err.Error()
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && len(ee.Stderr) > 0 {
			why = firstLines(strings.TrimSpace(string(ee.Stderr)), 1)
		}
		missing = append(missing, "no Docker daemon (docker info: "+why+")")
	} else if !strings.Contains(string(out), "runsc") {
		missing = append(missing, "the Docker daemon has no runsc runtime")
	}
	if _, err := exec.LookPath("runsc"); err != nil && !errors.Is(err, exec.ErrDot) {
		missing = append(missing, "no runsc (gVisor) on PATH")
	}
	return strings.Join(missing, "; ")
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The -enable figure: what release builds change where operators feel it,
// the time from `vault secrets enable` to the plugin's first answer
// through a real Vault 1.21.0. Vault hashes the whole binary before it
// starts the process, then the plugin starts, handshakes and sets up the
// mount; a smaller binary hashes sooner.
//
// Three builds of serve.Run's example engine (bench/internal/ours) are
// registered in one dev server: a plain `go build`; the build `vaultplugin
// release` makes (its flags, as cmd/vaultplugin/internal/release's
// buildFlags writes them: -trimpath, -s -w and the version stamp; the VCS
// stamp, a few hundred bytes, is left out, so that a dirty tree builds);
// and the same with the lean tag vaultplugin_noendpoint. Each
// round enables one fresh mount of each, back to back, the order rotating,
// times the enable and the first write through it, and disables it, which
// stops the plugin's process; each ratio is the median of the rounds'
// ratios to the plain build.

// enableBuilds are the builds compared; the first is the baseline.
var enableBuilds = []struct {
	name  string
	flags []string
}{
	{"go build", nil},
	{"release", []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w -X github.com/plugkit/vaultplugin/internal/server.releaseVersion=vaultplugin-release(v1.0.0)"}},
	{"release, lean", []string{"-trimpath", "-buildvcs=false", "-tags=vaultplugin_noendpoint", "-ldflags=-s -w -X github.com/plugkit/vaultplugin/internal/server.releaseVersion=vaultplugin-release(v1.0.0)"}},
}

// vaultBinary finds Vault 1.21.0 as the e2e suite does: given, or cached.
func vaultBinary() (string, error) {
	if b := os.Getenv("VAULTPLUGIN_VAULT_BIN_1_21"); b != "" {
		return b, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	b := filepath.Join(cache, "vaultplugin", "vault-v1.21.0")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("no Vault 1.21.0 at %s (the e2e suite builds it; or give VAULTPLUGIN_VAULT_BIN_1_21): %w", b, err)
	}
	return b, nil
}

func runEnable(rounds int) error {
	vaultBin, err := vaultBinary()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vaultplugin-bench-enable-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		return err
	}
	var names []string
	sizes := map[string]float64{}
	for i, b := range enableBuilds {
		name := fmt.Sprintf("example-%d", i)
		size, err := build("", filepath.Join(pluginDir, name), "./bench/internal/ours", append([]string{modfile}, b.flags...)...)
		if err != nil {
			return err
		}
		if err := recache(filepath.Join(pluginDir, name)); err != nil {
			return err
		}
		names = append(names, name)
		sizes[b.name] = size
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(vaultBin, "server", "-dev", "-dev-root-token-id=bench", "-dev-listen-address="+addr, "-dev-plugin-dir="+pluginDir, "-log-level=warn")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "HOME="+dir)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	v := &vaultAPI{addr: "http://" + addr, token: "bench"}
	deadline := time.Now().Add(time.Minute)
	for v.call("GET", "sys/health", nil) != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("vault did not start:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	ms := make([][]float64, len(names))
	ratios := make([][]float64, len(names))
	for r := 0; r < rounds; r++ {
		took := make([]float64, len(names))
		for k := range names {
			i := (k + r) % len(names)
			path := fmt.Sprintf("m%d-%d", i, r)
			start := time.Now()
			if err := v.call("POST", "sys/mounts/"+path, map[string]any{"type": names[i]}); err != nil {
				return fmt.Errorf("enabling %s: %w", names[i], err)
			}
			if err := v.call("PUT", path+"/data/k", map[string]any{"v": "x"}); err != nil {
				return fmt.Errorf("writing through %s: %w", names[i], err)
			}
			took[i] = float64(time.Since(start).Microseconds()) / 1000
			if err := v.call("DELETE", "sys/mounts/"+path, nil); err != nil {
				return fmt.Errorf("disabling %s: %w", path, err)
			}
		}
		for i := range names {
			ms[i] = append(ms[i], took[i])
			ratios[i] = append(ratios[i], took[i]/took[0])
		}
	}
	fmt.Printf("%-58s %12s %12s %8s\n", "secrets enable to first answer, Vault 1.21.0", "size (MiB)", "median (ms)", "ratio")
	for i, b := range enableBuilds {
		fmt.Printf("%-58s %12.2f %12.2f %8.3f\n", b.name, sizes[b.name], median(ms[i]), median(ratios[i]))
	}
	fmt.Printf("\nratio = the build / go build, the median of %d rounds' ratios; lower is better.\n", rounds)
	return nil
}

// vaultAPI calls a Vault's HTTP API.
type vaultAPI struct{ addr, token string }

func (v *vaultAPI) call(method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, v.addr+"/v1/"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", v.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s %s", method, path, strconv.Itoa(resp.StatusCode), b)
	}
	return nil
}

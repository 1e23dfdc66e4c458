package dev

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/plugkit/vaultplugin/internal/procfs"
)

// vaultStartTimeout bounds the dev server's start; a dev server is ready in
// about a second, a cold disk and a busy machine take a few.
const vaultStartTimeout = 60 * time.Second

// stopTimeout is what the dev server gets to shut down after SIGTERM
// before it is killed: it stops its plugins first, and they get 2 s each
// from go-plugin.
const stopTimeout = 15 * time.Second

// startVault starts a dev server on a free loopback port with its own
// root token and this session's plugin directory, and waits until it
// answers.
func (s *session) startVault(ctx context.Context, bin string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("finding a free port for the dev server: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("making the dev server's root token: %w", err)
	}
	token := "dev-" + hex.EncodeToString(b)
	logFile, err := os.Create(filepath.Join(s.work, "vault.log"))
	if err != nil {
		return fmt.Errorf("creating the dev server's log: %w", err)
	}
	fmt.Fprintf(s.out, "vault dev server %s (%s) on http://%s (log: %s)\n", bin, binVersion(ctx, bin), addr, logFile.Name())
	s.server = exec.Command(bin, "server", "-dev", "-dev-root-token-id="+token, "-dev-listen-address="+addr, "-dev-plugin-dir="+s.pluginDir)
	s.server.Dir = s.work
	s.server.Env = append(serverEnv(os.Environ()), "HOME="+s.work)
	s.server.Stdout, s.server.Stderr = logFile, logFile
	// Its own process group, so the terminal's Ctrl-C reaches only us and
	// we stop the server in order.
	setProcessGroup(s.server)
	if err := s.server.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	s.serverEnd = make(chan struct{})
	go func() { _ = s.server.Wait(); logFile.Close(); close(s.serverEnd) }()
	s.vault = &vault{addr: "http://" + addr, token: token, client: &http.Client{Timeout: requestTimeout}}
	deadline := time.Now().Add(vaultStartTimeout)
	for {
		if _, err := s.vault.call(ctx, "GET", "sys/health", nil); err == nil {
			return nil
		}
		select {
		case <-s.serverEnd:
			return fmt.Errorf("the Vault dev server exited at start; its log:\n%s", tailFile(logFile.Name(), 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Vault dev server did not answer within %s; its log:\n%s", vaultStartTimeout, tailFile(logFile.Name(), 20))
		}
	}
}

// serverEnv is env without the variables that point a Vault, or its CLI,
// at an address or a token: a shell may hold stale ones from another
// Vault. The dev server gets none of them, so that it, its plugins and the
// wrapping tokens it hands them (whose addr claim is its api_addr) name
// its own address.
func serverEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "VAULT_ADDR", "VAULT_TOKEN", "VAULT_API_ADDR", "VAULT_CLUSTER_ADDR", "VAULT_REDIRECT_ADDR":
		default:
			out = append(out, kv)
		}
	}
	return out
}

// binVersion is the first line of `bin version`: "Vault v1.21.0 (…)",
// or why it is unknown.
func binVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	switch {
	case err != nil:
		return fmt.Sprintf("version unknown: %s version: %v", bin, err)
	case line == "":
		return "version unknown: " + bin + " version printed nothing"
	}
	return line
}

// cleanup stops what the session started: the dev server (which stops its
// plugins), any plugin process still running from the plugin directory,
// and the session's directory.
func (s *session) cleanup() {
	if s.server != nil && s.server.Process != nil {
		select {
		case <-s.serverEnd:
		default:
			if err := s.server.Process.Signal(syscall.SIGTERM); err != nil {
				// No SIGTERM (Windows): kill at once.
				_ = s.server.Process.Kill()
			}
			select {
			case <-s.serverEnd:
			case <-time.After(stopTimeout):
				_ = s.server.Process.Kill()
				<-s.serverEnd
			}
		}
	}
	if s.server != nil && s.binary != "" {
		for _, pid := range procfs.Running(s.binary) {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}
	if s.work != "" {
		os.RemoveAll(s.work)
	}
}

// findVault is the vault binary to start: given, on PATH, or the one the
// e2e suite builds into the user cache directory.
func findVault(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if p, err := exec.LookPath("vault"); err == nil {
		return p, nil
	}
	if cache, err := os.UserCacheDir(); err == nil {
		matches, _ := filepath.Glob(filepath.Join(cache, "vaultplugin", "vault-v*"))
		sort.Strings(matches)
		for i := len(matches) - 1; i >= 0; i-- {
			if st, err := os.Stat(matches[i]); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return matches[i], nil
			}
		}
	}
	return "", errors.New("no vault binary: give -vault, put vault on PATH, or set VAULT_ADDR (with -plugin-dir) to use a running Vault")
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

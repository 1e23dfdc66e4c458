package dev

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/procfs"
)

// pollInterval is how often dev looks at the package's Go files for a
// change: often enough that a save feels noticed at once, rarely enough
// that stat-ing a package's files costs nothing.
const pollInterval = 300 * time.Millisecond

// settleTime is how long the files must stay unchanged before a rebuild,
// so that an editor saving several files, or a formatter rewriting one
// after the save, gives one build rather than two.
const settleTime = 200 * time.Millisecond

// vaultStartTimeout bounds the dev server's start; a dev server is ready in
// about a second, a cold disk and a busy machine take a few.
const vaultStartTimeout = 60 * time.Second

// stopTimeout is what the dev server gets to shut down after SIGTERM
// before it is killed: it stops its plugins first, and they get 2 s each
// from go-plugin.
const stopTimeout = 15 * time.Second

// Dev is `vaultplugin dev`: build the plugin package, serve it from a
// Vault dev server (or the Vault at VAULT_ADDR), mount it, and rebuild,
// re-register and reload it on every change to its Go files until
// interrupted. It returns the exit code.
func Dev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vaultBin := fs.String("vault", "", "the vault binary for the dev server (default: vault from PATH, else the e2e suite's cached build)")
	mountPath := fs.String("path", "", "where to mount the plugin (default: its name)")
	pluginDir := fs.String("plugin-dir", "", "with VAULT_ADDR set: the plugin directory of that Vault, to copy the binary into")
	typ := fs.String("type", "", "secret or auth, for a plugin that does not answer -describe")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: vaultplugin dev [flags] [PACKAGE]\n\nBuilds the plugin PACKAGE (default .), serves it from a Vault dev server on 127.0.0.1 (or the\nVault at VAULT_ADDR, with -plugin-dir), mounts it, and rebuilds, re-registers and reloads it on\nevery change to its Go files. Ctrl-C stops everything it started.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	pkg := "."
	switch fs.NArg() {
	case 0:
	case 1:
		pkg = fs.Arg(0)
	default:
		fs.Usage()
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &session{out: stdout, pkg: pkg, typ: *typ, mountPath: *mountPath}
	err := s.run(ctx, *vaultBin, *pluginDir)
	s.cleanup()
	var usage usageError
	switch {
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "vaultplugin dev: %v\n", err)
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "vaultplugin dev: %v\n", err)
		return exitFailed
	}
	return 0
}

type usageError struct{ error }

// session is one dev loop and what it started.
type session struct {
	out                 io.Writer
	pkg, typ, mountPath string

	work      string // the session's directory, removed at the end
	pluginDir string
	binary    string // the plugin's path in pluginDir
	vault     *vault
	server    *exec.Cmd
	serverEnd chan struct{}
	plugin    plugin
}

func (s *session) run(ctx context.Context, vaultBin, pluginDir string) error {
	name, dirs, err := packageInfo(s.pkg)
	if err != nil {
		return usageError{err}
	}
	if s.work, err = os.MkdirTemp("", "vaultplugin-dev-"); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "work dir: %s\n", s.work)

	// The Vault: the one at VAULT_ADDR, or a dev server of our own.
	if os.Getenv("VAULT_ADDR") != "" {
		if pluginDir == "" {
			return usageError{errors.New("VAULT_ADDR is set: give -plugin-dir, that Vault's plugin_directory, to copy the plugin into")}
		}
		if s.vault, err = vaultFromEnv(); err != nil {
			return usageError{err}
		}
		s.pluginDir = pluginDir
	} else {
		if s.pluginDir = filepath.Join(s.work, "plugins"); os.Mkdir(s.pluginDir, 0o755) != nil {
			return fmt.Errorf("creating %s", s.pluginDir)
		}
		bin, err := findVault(vaultBin)
		if err != nil {
			return usageError{err}
		}
		if err := s.startVault(ctx, bin); err != nil {
			return err
		}
	}
	s.binary = filepath.Join(s.pluginDir, name)

	before := snapshot(dirs)
	took, out, err := s.build(ctx)
	if err != nil {
		return fmt.Errorf("building %s: %v\n%s", s.pkg, err, out)
	}
	if s.plugin, err = describe(s.binary, name, s.typ, ""); err != nil {
		return usageError{err}
	}
	if s.mountPath == "" {
		s.mountPath = s.plugin.name
	}
	if err := s.vault.register(ctx, s.plugin); err != nil {
		return err
	}
	if err := s.vault.mount(ctx, s.plugin, s.mountPath); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "built in %s; %s plugin %s %s mounted at %s/, pid %s\n", round(took), s.plugin.typ, s.plugin.name, orNone(s.plugin.version), s.mountPrefix(), s.pid())
	fmt.Fprintf(s.out, "in another terminal:\n  export VAULT_ADDR=%s\n  export VAULT_TOKEN=%s\n", s.vault.addr, s.vault.token)
	fmt.Fprintf(s.out, "watching %d package directories for changes; Ctrl-C stops\n", len(dirs))

	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(s.out, "stopping")
			return nil
		case <-s.serverEnd:
			return errors.New("the Vault dev server exited; its log: " + filepath.Join(s.work, "vault.log"))
		case <-tick.C:
		}
		now := snapshot(dirs)
		if now == before {
			continue
		}
		// Let the editor finish.
		for {
			time.Sleep(settleTime)
			if again := snapshot(dirs); again != now {
				now = again
				continue
			}
			break
		}
		before = now
		s.cycle(ctx)
	}
}

// cycle rebuilds, and on success re-registers and reloads, printing one
// status line. A failed build leaves the old plugin serving.
func (s *session) cycle(ctx context.Context) {
	took, out, err := s.build(ctx)
	if err != nil {
		fmt.Fprintf(s.out, "build failed after %s; the previous build is still serving:\n%s\n", round(took), strings.TrimSpace(out))
		return
	}
	p, err := describe(s.binary, s.plugin.name, s.plugin.typ, "")
	if err != nil {
		fmt.Fprintf(s.out, "built in %s, but: %v\n", round(took), err)
		return
	}
	start := time.Now()
	if err := s.vault.register(ctx, p); err != nil {
		fmt.Fprintf(s.out, "built in %s, but registering failed: %v\n", round(took), err)
		return
	}
	if p.version != s.plugin.version {
		// A new version must be the mount's too, or the reload starts
		// the old entry's binary again.
		body := map[string]any{"plugin_version": p.version}
		path := "sys/mounts/" + s.mountPath + "/tune"
		if p.typ == "auth" {
			path = "sys/auth/" + s.mountPath + "/tune"
		}
		if _, err := s.vault.call(ctx, "POST", path, body); err != nil {
			fmt.Fprintf(s.out, "built in %s, but tuning the mount to %s failed: %v\n", round(took), p.version, err)
			return
		}
	}
	if err := s.vault.reload(ctx, p.name, ""); err != nil {
		fmt.Fprintf(s.out, "built in %s, but reloading failed: %v\n", round(took), err)
		return
	}
	s.plugin = p
	fmt.Fprintf(s.out, "rebuilt in %s, registered and reloaded in %s, pid %s\n", round(took), round(time.Since(start)), s.pid())
}

// build compiles the package into the plugin directory, through a
// temporary file and a rename, so a failed build leaves the binary that
// serves untouched.
func (s *session) build(ctx context.Context) (time.Duration, string, error) {
	start := time.Now()
	tmp := s.binary + ".new"
	out, err := exec.CommandContext(ctx, "go", "build", "-o", tmp, s.pkg).CombinedOutput()
	if err == nil {
		err = os.Rename(tmp, s.binary)
	}
	os.Remove(tmp)
	return time.Since(start), string(out), err
}

// pid is the process id of the plugin serving the mount, as far as this
// system tells (Linux's /proc), after a request to the mount has made
// Vault start it.
func (s *session) pid() string {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	// Any answer will do: the request only makes Vault start the plugin.
	_, _ = s.vault.call(ctx, "GET", s.mountPrefix()+"/", nil)
	pids := procfs.Running(s.binary)
	if len(pids) == 0 {
		return "unknown"
	}
	strs := make([]string, len(pids))
	for i, p := range pids {
		strs[i] = strconv.Itoa(p)
	}
	return strings.Join(strs, ",")
}

// mountPrefix is the mount's path in Vault's API: auth methods live under
// auth/.
func (s *session) mountPrefix() string {
	if s.plugin.typ == "auth" {
		return "auth/" + s.mountPath
	}
	return s.mountPath
}

// startVault starts a dev server on a free loopback port with its own
// root token and this session's plugin directory, and waits until it
// answers.
func (s *session) startVault(ctx context.Context, bin string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	token := "dev-" + hex.EncodeToString(b)
	logFile, err := os.Create(filepath.Join(s.work, "vault.log"))
	if err != nil {
		return err
	}
	s.server = exec.Command(bin, "server", "-dev", "-dev-root-token-id="+token, "-dev-listen-address="+addr, "-dev-plugin-dir="+s.pluginDir)
	s.server.Dir = s.work
	s.server.Env = append(os.Environ(), "HOME="+s.work)
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
			fmt.Fprintf(s.out, "vault dev server %s on %s (log: %s)\n", bin, s.vault.addr, logFile.Name())
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

// packageInfo is the plugin's name (the last element of its import path)
// and the directories of its main module's packages it is built from,
// which dev watches.
func packageInfo(pkg string) (name string, dirs []string, err error) {
	out, err := exec.Command("go", "list", "-f", "{{.Name}} {{.ImportPath}}", pkg).Output()
	if err != nil {
		return "", nil, fmt.Errorf("go list %s: %v%s", pkg, err, stderrOf(err))
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[0] != "main" {
		return "", nil, fmt.Errorf("%s is not a main package (a plugin's command)", pkg)
	}
	name = f[1][strings.LastIndex(f[1], "/")+1:]
	out, err = exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", pkg).Output()
	if err != nil {
		return "", nil, fmt.Errorf("go list -deps %s: %v%s", pkg, err, stderrOf(err))
	}
	for _, d := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return name, dirs, nil
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return "\n" + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// snapshot fingerprints the Go files in dirs (names, sizes, times), so
// that a change to any of them changes it.
func snapshot(dirs []string) string {
	var b strings.Builder
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			fmt.Fprintf(&b, "%s/%s %d %d\n", d, e.Name(), info.Size(), info.ModTime().UnixNano())
		}
	}
	return b.String()
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

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

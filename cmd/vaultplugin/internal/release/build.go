package release

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/plugkit/vaultplugin/internal/server"
)

// Platform is one GOOS/GOARCH target.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// DefaultPlatforms are the targets a release builds unless -platforms
// says otherwise: the systems Vault and OpenBao ship for.
var DefaultPlatforms = []Platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// parsePlatforms reads -platforms: OS/ARCH entries, comma-separated.
func parsePlatforms(s string) ([]Platform, error) {
	var ps []Platform
	seen := map[Platform]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		os, arch, ok := strings.Cut(f, "/")
		p := Platform{os, arch}
		known := false
		for _, d := range DefaultPlatforms {
			known = known || d == p
		}
		switch {
		case !ok || os == "" || arch == "":
			return nil, fmt.Errorf("-platforms: %q is not OS/ARCH (e.g. linux/amd64)", f)
		case !known:
			return nil, fmt.Errorf("-platforms: %s is not one of %s", f, platformList(DefaultPlatforms))
		case seen[p]:
			return nil, fmt.Errorf("-platforms: %s given twice", f)
		}
		seen[p] = true
		ps = append(ps, p)
	}
	return ps, nil
}

func platformList(ps []Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

// pkgInfo is what go list says of the plugin's main package.
type pkgInfo struct {
	importPath string
	name       string // the binary's name: the import path's last element
	module     string
	moduleDir  string
}

// goList learns the main package and checks that it is served by this
// module's serve or dbserve, whose version the release stamps.
func goList(ctx context.Context, pkg string) (pkgInfo, error) {
	out, err := goCmd(ctx, nil, "list", "-f", "{{.Name}}\t{{.ImportPath}}\t{{with .Module}}{{.Path}}\t{{.Dir}}{{end}}", pkg)
	if err != nil {
		return pkgInfo{}, err
	}
	f := strings.Split(strings.TrimSpace(out), "\t")
	if len(f) != 4 {
		return pkgInfo{}, fmt.Errorf("%s is not a package of a Go module (go list: %q)", pkg, strings.TrimSpace(out))
	}
	if f[0] != "main" {
		return pkgInfo{}, fmt.Errorf("%s is package %s, not a main package (a plugin's command)", pkg, f[0])
	}
	p := pkgInfo{importPath: f[1], name: f[1][strings.LastIndex(f[1], "/")+1:], module: f[2], moduleDir: f[3]}
	deps, err := goCmd(ctx, nil, "list", "-deps", pkg)
	if err != nil {
		return pkgInfo{}, err
	}
	stampPkg, _, _ := strings.Cut(server.ReleaseVersionSymbol, ".releaseVersion")
	if !strings.Contains("\n"+deps, "\n"+stampPkg+"\n") {
		return pkgInfo{}, fmt.Errorf("%s does not serve with serve.Run or dbserve.Run (it does not link %s), so a release cannot stamp its version: serve it with github.com/plugkit/vaultplugin/serve or dbserve", pkg, stampPkg)
	}
	return p, nil
}

// buildEnv is the environment of every go command the release runs:
// this one without GOFLAGS (a release depends on its own flags, not on
// the shell's) and with CGO off; then extra.
func buildEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOFLAGS", "CGO_ENABLED", "GOOS", "GOARCH", "GOAMD64", "GOARM64":
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "GOFLAGS=", "CGO_ENABLED=0"), extra...)
}

// goCmd runs the go command with the release's environment plus env and
// returns its stdout; its error carries stderr.
func goCmd(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = buildEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// gitState is the source tree's state: its revision, and the changes
// that make it dirty ("" when clean or when not in a git checkout).
type gitState struct {
	inGit    bool
	changes  []string
	revision string
	time     time.Time // the commit's
}

// readGit reads the state of the checkout holding dir, as go build's VCS
// stamping sees it (git status --porcelain: untracked files count).
func readGit(ctx context.Context, dir string) (gitState, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return gitState{}, nil
	}
	top := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--show-toplevel")
	if err := top.Run(); err != nil {
		return gitState{}, nil // not in a git checkout
	}
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain").Output()
	if err != nil {
		return gitState{}, fmt.Errorf("git status in %s: %w", dir, err)
	}
	s := gitState{inGit: true}
	if head, err := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--format=%H %ct").Output(); err == nil {
		if f := strings.Fields(string(head)); len(f) == 2 {
			s.revision = f[0]
			if sec, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				s.time = time.Unix(sec, 0).UTC()
			}
		}
	}
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			s.changes = append(s.changes, strings.TrimSpace(l))
		}
	}
	return s, nil
}

// buildFlags are the go build flags of a release, before -o and the
// package: reproducible (-trimpath; the VCS stamp is the commit's), the
// version stamped, stripped unless told otherwise.
func buildFlags(version string, strip bool, tags string) []string {
	ldflags := ""
	if version != "" {
		ldflags = "-X " + server.ReleaseVersionSymbol + "=" + server.ReleaseStamp(version)
	}
	if strip {
		ldflags = "-s -w " + ldflags
	}
	flags := []string{"-trimpath", "-buildvcs=true", "-ldflags=" + strings.TrimSpace(ldflags)}
	if tags != "" {
		flags = append(flags, "-tags="+tags)
	}
	return flags
}

// targetEnv is the environment that selects p. GOAMD64 and GOARM64 are
// pinned to Go's defaults, so that no shell makes another binary.
func targetEnv(p Platform) []string {
	return []string{"GOOS=" + p.OS, "GOARCH=" + p.Arch, "GOAMD64=v1", "GOARM64=v8.0"}
}

// build builds pkg for p into out.
func build(ctx context.Context, pkg, out string, p Platform, flags []string) (time.Duration, error) {
	start := time.Now()
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	if _, err := goCmd(ctx, targetEnv(p), args...); err != nil {
		return 0, fmt.Errorf("building %s: %w", p, err)
	}
	return time.Since(start), nil
}

// stamp is what a built binary says of itself.
type stamp struct {
	version   string // the release stamp's; "" when it has none
	goVersion string
	// The commit, from the build info's VCS stamp: go build leaves it
	// out in a git worktree (it looks for a .git directory), so the
	// checkout's own answer stands in then.
	revision string
	modified bool
	time     time.Time
}

// readStamp reads bin, of any OS and architecture: the release stamp in
// its bytes (exactly one), and its build info.
func readStamp(bin string) (stamp, error) {
	raw, err := os.ReadFile(bin)
	if err != nil {
		return stamp{}, err
	}
	var s stamp
	switch vs := server.StampedIn(raw); len(vs) {
	case 0:
	case 1:
		s.version = vs[0]
	default:
		return s, fmt.Errorf("%s carries %d release stamps (%s), not one", filepath.Base(bin), len(vs), strings.Join(vs, ", "))
	}
	bi, err := buildinfo.Read(bytes.NewReader(raw))
	if err != nil {
		return s, fmt.Errorf("reading the build info of %s: %w", filepath.Base(bin), err)
	}
	s.goVersion = bi.GoVersion
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			s.revision = kv.Value
		case "vcs.modified":
			s.modified = kv.Value == "true"
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, kv.Value); err == nil {
				s.time = t.UTC()
			}
		}
	}
	return s, nil
}

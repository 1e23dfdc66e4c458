package newplugin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
)

// goDirective is the go line new writes before resolving anything: this
// library's own. `go get` raises it to what the newest SDK needs (the
// highest go line among the requirements), so the module asks for no
// newer Go than it must.
const goDirective = "1.24.0"

// zeroVersion is the version a requirement gets when a replace line
// decides what it is: the go command's own placeholder for a module that
// has no version of its own.
const zeroVersion = "v0.0.0-00010101000000-000000000000"

// generator makes one module in dir.
type generator struct {
	out   io.Writer // the steps, the versions, what to run next
	goOut io.Writer // the go command's own output, as it comes
	dir   string
	p     Params

	createdDir bool     // dir did not exist: remove it on failure
	written    []string // files written, to remove on failure
	resolved   [][2]string
	replaced   string
}

func (g *generator) run(lib, replace string) (err error) {
	fmt.Fprintf(g.out, "new %s %s: module %s, in %s\n", g.p.Kind(), g.p.Name, g.p.Module, g.dir)
	files, err := Render(g.p)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if cerr := g.undo(); cerr != nil {
				err = multierror.Append(err, cerr)
			} else {
				err = fmt.Errorf("%w\n(new removed what it had written in %s)", err, g.dir)
			}
		}
	}()
	if _, serr := os.Stat(g.dir); errors.Is(serr, os.ErrNotExist) {
		g.createdDir = true
	}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", g.dir, err)
	}
	if err := g.write("go.mod", []byte(fmt.Sprintf("module %s\n\ngo %s\n", g.p.Module, goDirective))); err != nil {
		return err
	}
	for _, name := range sortedPaths(files) {
		if err := g.write(name, files[name]); err != nil {
			return err
		}
	}
	fmt.Fprintf(g.out, "wrote %s\n", strings.Join(append([]string{"go.mod"}, sortedPaths(files)...), ", "))

	get := make([]string, 0, len(newest)+1)
	for _, m := range newest {
		get = append(get, m+"@latest")
	}
	if replace != "" {
		// The library comes from the checkout: the go command takes a
		// replaced module's version from the require line and never asks
		// the proxy for it.
		g.replaced = replace
		if err := g.goCmd("mod", "edit", "-require="+LibraryModule+"@"+zeroVersion, "-replace="+LibraryModule+"="+replace); err != nil {
			return err
		}
	} else {
		get = append(get, LibraryModule+"@"+lib)
	}
	// Only these modules at @latest, and never `go get -u`: -u would also
	// raise every dependency of the SDK, github.com/hashicorp/go-metrics
	// to v0.7.0 among them, which removed the package go-metrics/compat
	// that every vault/sdk release imports, and the build would fail with
	// "cannot find module providing package
	// github.com/hashicorp/go-metrics/compat" (see .ci/newest). @latest
	// keeps what the SDK release itself requires (go-metrics v0.5.4 with
	// sdk v0.25.1), which is what HashiCorp built and tested it with.
	if err := g.goCmd(append([]string{"get"}, get...)...); err != nil {
		if replace == "" && lib == "latest" {
			return fmt.Errorf("%w\n(this vaultplugin was built from a checkout, so new asked for %s@latest; "+
				"to use the checkout instead, give -replace with its directory)", err, LibraryModule)
		}
		return err
	}
	if err := g.goCmd("mod", "tidy"); err != nil {
		return err
	}
	return g.versions()
}

// write writes one file of the module, refusing to replace one.
func (g *generator) write(name string, body []byte) error {
	path := filepath.Join(g.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	g.written = append(g.written, path)
	_, err = f.Write(body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// undo removes what run made, so that the same command can be run again
// once what failed is fixed: dir itself if new created it, else the
// files it wrote (go.sum too) and the directories left empty.
func (g *generator) undo() error {
	if g.createdDir {
		return os.RemoveAll(g.dir)
	}
	var errs error
	for _, p := range append(g.written, filepath.Join(g.dir, "go.sum")) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = multierror.Append(errs, err)
		}
	}
	// Subdirectories, deepest first; Remove fails on one not empty.
	entries, _ := os.ReadDir(g.dir)
	for _, e := range entries {
		if e.IsDir() && e.Name() != ".git" {
			removeEmptyDirs(filepath.Join(g.dir, e.Name()))
		}
	}
	return errs
}

func removeEmptyDirs(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeEmptyDirs(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}

// goCmd runs the go command in the module's directory with the user's
// environment (their GOPROXY, GOPRIVATE, GOFLAGS), printing the command
// first and passing its output through. GOWORK=off: a go.work above dir
// does not list the new module, and would make every command fail.
func (g *generator) goCmd(args ...string) error {
	start := time.Now()
	fmt.Fprintf(g.out, "$ go %s\n", strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = g.goOut, g.goOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", args[0], err)
	}
	if took := time.Since(start); took > time.Second {
		fmt.Fprintf(g.out, "  (%s)\n", took.Round(100*time.Millisecond))
	}
	return nil
}

// shown are the modules whose resolved versions new prints: what it asked
// for, the library, and grpc, whose version decides the plugin's
// transport's security fixes.
var shown = append(append([]string{}, newest...), "google.golang.org/grpc", LibraryModule)

// versions reads what the module resolved to.
func (g *generator) versions() error {
	cmd := exec.Command("go", append([]string{"list", "-m", "-f", "{{.Path}} {{.Version}}"}, shown...)...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list -m: %w\n%s", err, stderr.String())
	}
	for line := range strings.Lines(string(out)) {
		if path, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			g.resolved = append(g.resolved, [2]string{path, v})
		}
	}
	b, err := os.ReadFile(filepath.Join(g.dir, "go.mod"))
	if err != nil {
		return err
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "go" {
			g.resolved = append([][2]string{{"go", f[1]}}, g.resolved...)
		}
	}
	return nil
}

// report prints the versions and what to run next.
func (g *generator) report(took time.Duration) {
	fmt.Fprintln(g.out, "resolved:")
	width := 0
	for _, r := range g.resolved {
		width = max(width, len(r[0]))
	}
	for _, r := range g.resolved {
		v := r[1]
		if r[0] == LibraryModule && g.replaced != "" {
			v = "=> " + g.replaced
		}
		fmt.Fprintf(g.out, "  %-*s %s\n", width, r[0], v)
	}
	cmdPkg := "./cmd/" + g.p.Name
	fmt.Fprintf(g.out, "made in %s. Next:\n", took.Round(100*time.Millisecond))
	fmt.Fprintf(g.out, "  cd %s\n", g.dir)
	fmt.Fprintf(g.out, "  go test -race ./...\n")
	fmt.Fprintf(g.out, "  vaultplugin dev %s\n", cmdPkg)
	fmt.Fprintf(g.out, "  CGO_ENABLED=0 go build -o %s %s && vaultplugin check ./%s\n", g.p.Name, cmdPkg, g.p.Name)
	fmt.Fprintf(g.out, "README.md says what each does; .github/workflows/ci.yml runs them on every push.\n")
	if ws := g.workspace(); ws != "" {
		fmt.Fprintf(g.out, "%s is inside the Go workspace %s, which does not list it: add it (go work use %s), or run the go command there with GOWORK=off.\n", g.dir, ws, g.dir)
	}
}

// workspace is the go.work file that the go command would use in dir, or
// "" when none: new ran with GOWORK=off, but the commands the author runs
// next will not.
func (g *generator) workspace() string {
	cmd := exec.Command("go", "env", "GOWORK")
	cmd.Dir = g.dir
	out, err := cmd.Output()
	if ws := strings.TrimSpace(string(out)); err == nil && ws != "off" {
		return ws
	}
	return ""
}

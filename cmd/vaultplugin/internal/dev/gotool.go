package dev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

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

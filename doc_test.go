package vaultplugin_test

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// publicPackages are the module's packages a plugin author imports.
func publicPackages(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []string
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "/internal") || strings.Contains(p, "/cmd/") || strings.Contains(p, "/example") || strings.Contains(p, "/bench") {
			continue
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// What go doc shows an author names nothing they cannot import: no
// internal package (`var ErrUsage = server.ErrUsage` once did), and
// dbserve's documentation sends no one to package serve, whose import
// would link the backend SDK into a database plugin.
func TestGoDocShowsNoInternals(t *testing.T) {
	pkgs := publicPackages(t)
	if len(pkgs) < 5 {
		t.Fatalf("only %d public packages found: %v", len(pkgs), pkgs)
	}
	internalName := regexp.MustCompile(`\b(server|hostenv|metrics|dbmetrics|opshttp|promtext|loopback|filehash)\.[A-Za-z]`)
	serveName := regexp.MustCompile(`(^|[^b])serve\.[A-Z]`)
	for _, p := range pkgs {
		out, err := exec.Command("go", "doc", "-all", p).CombinedOutput()
		if err != nil {
			t.Fatalf("go doc -all %s: %v\n%s", p, err, out)
		}
		for i, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "/internal") || internalName.MatchString(line) {
				t.Errorf("go doc %s, line %d names an internal package: %s", p, i+1, strings.TrimSpace(line))
			}
			if strings.HasSuffix(p, "/dbserve") && serveName.MatchString(line) {
				t.Errorf("go doc %s, line %d names package serve: %s", p, i+1, strings.TrimSpace(line))
			}
		}
	}
}

package check

import (
	"debug/buildinfo"
	"os"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// The modules check reads the build info: a plugin built in this module
// links its floor, older than what Vault links, so it warns and names the
// go get; a binary without build info is skipped, failing nothing.
func TestModules(t *testing.T) {
	bin := servetest.Build(t, "../../../../serve/internal/testplugin")
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]string{}
	for _, d := range info.Deps {
		linked[d.Path] = d.Version
	}
	sdk, api := linked["github.com/hashicorp/vault/sdk"], linked["github.com/hashicorp/vault/api"]
	r := checkModules(bin)
	// At go.mod's floor (the README's test command) the plugin links
	// older modules than Vault's; .ci/newest runs this at the newest.
	if older(sdk, "v0.20.0") && older(api, "v1.22.0") {
		if r.Status != Warn || !strings.Contains(r.Detail, "links vault/sdk "+sdk+", vault/api "+api+", go-plugin ") ||
			!strings.Contains(r.Detail, "older than Vault 1.21.0 links: vault/sdk "+sdk+" < v0.20.0, vault/api "+api+" < v1.22.0") ||
			!strings.HasPrefix(r.Fix, "go get github.com/hashicorp/vault/sdk@v0.20.0 github.com/hashicorp/vault/api@v1.22.0") {
			t.Errorf("%s %q, fix %q", r.Status, r.Detail, r.Fix)
		}
	} else if !older(sdk, "v0.20.0") && !older(api, "v1.22.0") {
		if r.Status == Fail || !strings.Contains(r.Detail, "links vault/sdk "+sdk+", vault/api "+api) {
			t.Errorf("at sdk %s, api %s: %s %q, fix %q", sdk, api, r.Status, r.Detail, r.Fix)
		}
	}

	script := t.TempDir() + "/plugin.sh"
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := checkModules(script); r.Status != Skip || !strings.HasPrefix(r.Detail, "no Go build info to read") || r.Fix != "" {
		t.Errorf("a script: %s %q, fix %q", r.Status, r.Detail, r.Fix)
	}
}

func TestOlder(t *testing.T) {
	for _, c := range []struct {
		v, min string
		want   bool
	}{
		{"v0.6.2", "v0.20.0", true},
		{"v0.20.0", "v0.20.0", false},
		{"v1.79.3", "v1.75.1", false},
		{"v0.0.0-20230101000000-abcdefabcdef", "v0.20.0", true},
		{"(devel)", "v0.20.0", false},
	} {
		if got := older(c.v, c.min); got != c.want {
			t.Errorf("older(%q, %q) = %v", c.v, c.min, got)
		}
	}
}

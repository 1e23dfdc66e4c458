package servetest_test

import (
	"context"
	"debug/buildinfo"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// A released plugin, fetched and built at its module version: a bare SDK
// main, so that the build runs outside this module.
const (
	releasedModule  = "github.com/hashicorp/vault-plugin-auth-jwt"
	releasedVersion = "v0.26.1"
	releasedPackage = releasedModule + "/cmd/vault-plugin-auth-jwt@" + releasedVersion
)

// Build builds a module version as go install does: the binary's build
// info names the module at that version (what serve.Run reports to
// Vault), with -race when the test has it, and the plugin starts and
// mounts.
func TestBuildModuleVersion(t *testing.T) {
	// Whether the module can be had at all: from the module cache, or
	// through GOPROXY. Without it the test cannot say anything.
	if out, err := exec.Command("go", "mod", "download", releasedModule+"@"+releasedVersion).CombinedOutput(); err != nil {
		t.Skipf("skipped: the Go module proxy (GOPROXY) cannot serve %s@%s here, so it cannot be built: %v\n%s", releasedModule, releasedVersion, err, out)
	}
	bin := servetest.Build(t, releasedPackage)
	if again := servetest.Build(t, releasedPackage); again != bin {
		t.Errorf("a second Build gave %s, want the cached %s", again, bin)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if info.Main.Path != releasedModule || info.Main.Version != releasedVersion {
		t.Errorf("main module %s@%s, want %s@%s", info.Main.Path, info.Main.Version, releasedModule, releasedVersion)
	}
	if got, want := setting(info, "-race"), ownSetting("-race"); got != want {
		t.Errorf("the plugin's -race=%q, the test's %q", got, want)
	}

	p := servetest.Start(t, bin)
	m := p.Mount(t, nil)
	if !strings.HasPrefix(m.MountPoint, "auth/") {
		t.Errorf("the JWT auth method mounted at %q", m.MountPoint)
	}
	// An unconfigured JWT auth method has no config: Vault's 404.
	if _, err := m.Read(context.Background(), "config"); err == nil {
		t.Error("reading an unconfigured config succeeded")
	}
}

// A module version that does not exist fails the build with go's reason.
func TestBuildModuleVersionMissing(t *testing.T) {
	_, err := servetest.Compile(context.Background(), releasedModule+"/cmd/no-such-command@"+releasedVersion)
	if err == nil || !strings.Contains(err.Error(), "servetest: go install "+releasedModule+"/cmd/no-such-command@"+releasedVersion) {
		t.Errorf("err = %v", err)
	}
}

func setting(info *debug.BuildInfo, key string) string {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

func ownSetting(key string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return setting(info, key)
}

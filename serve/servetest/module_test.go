package servetest_test

import (
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// A main package released at a module version, fetched and built as go
// install builds it. golang.org/x/example's hello is a tiny main with no
// dependencies: what is tested is how Build builds a module version, which
// a plugin's release would only make slower (the JWT auth method took four
// minutes cold, in a suite that must stay under two).
const (
	releasedModule  = "golang.org/x/example/hello"
	releasedVersion = "v0.0.0-20250915201037-7f05d217867b"
	releasedPackage = releasedModule + "@" + releasedVersion
)

// Build builds a module version as go install does: the binary runs, its
// build info names the module at that version (what serve.Run reports to
// Vault for a plugin), it is built with -race when the test is, and a
// second Build returns the cached binary instead of building it again.
func TestBuildModuleVersion(t *testing.T) {
	// Whether the module can be had at all: from the module cache, or
	// through GOPROXY. Without it the test cannot say anything.
	if out, err := exec.Command("go", "mod", "download", releasedModule+"@"+releasedVersion).CombinedOutput(); err != nil {
		t.Skipf("skipped: the Go module proxy (GOPROXY) cannot serve %s@%s here, so it cannot be built: %v\n%s", releasedModule, releasedVersion, err, out)
	}
	bin := servetest.Build(t, releasedPackage)
	if filepath.Base(bin) != "hello" && filepath.Base(bin) != "hello.exe" {
		t.Errorf("the binary is named %s, want go install's name, hello", filepath.Base(bin))
	}
	before, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if again := servetest.Build(t, releasedPackage); again != bin {
		t.Errorf("a second Build gave %s, want the cached %s", again, bin)
	}
	// A rebuild renames a new file into place: the same file means the
	// cached one was returned.
	if after, err := os.Stat(bin); err != nil || !os.SameFile(before, after) {
		t.Errorf("the second Build replaced the binary (%v)", err)
	}

	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if info.Path != releasedModule || info.Main.Path != releasedModule || info.Main.Version != releasedVersion {
		t.Errorf("build info: package %s, main module %s@%s; want %s", info.Path, info.Main.Path, info.Main.Version, releasedPackage)
	}
	if got, want := setting(info, "-race"), ownSetting("-race"); got != want {
		t.Errorf("the binary's -race=%q, the test's %q", got, want)
	}

	// It runs: hello greets, as its source says.
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "Hello, world!" {
		t.Errorf("running %s: %q, %v", bin, out, err)
	}
}

// A module version that does not exist fails the build with go's reason.
func TestBuildModuleVersionMissing(t *testing.T) {
	missing := releasedModule + "/no-such-command@" + releasedVersion
	_, err := servetest.Compile(context.Background(), missing)
	if err == nil || !strings.Contains(err.Error(), "servetest: go install "+missing) || !strings.Contains(err.Error(), "does not contain package") {
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

package server

import (
	"context"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/plugkit/vaultplugin/internal/filehash"
)

func TestFuncPackage(t *testing.T) {
	for _, tc := range []struct {
		f    any
		want string
	}{
		{filehash.SHA256, "github.com/plugkit/vaultplugin/internal/filehash"},
		{strings.Cut, "strings"},
		{(*Tracker).Begin, "github.com/plugkit/vaultplugin/internal/server"},
		{func() {}, "github.com/plugkit/vaultplugin/internal/server"},
		{nil, ""},
		{"not a func", ""},
		{(func())(nil), ""},
	} {
		if got := funcPackage(tc.f); got != tc.want {
			t.Errorf("funcPackage(%T) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// A main that serves a third-party backend reports that backend module's
// version when the main module has none of its own.
func TestBuildVersion(t *testing.T) {
	deps := []*debug.Module{
		{Path: "github.com/plugkit", Version: "v9.9.9"},
		{Path: "github.com/plugkit/vaultplugin", Version: "v1.4.2"},
		{Path: "github.com/plugkit/vaultplugin/internal", Version: "v0.1.0"}, // a nested module: the longest path holding the package wins
	}
	info := func(main string, deps ...*debug.Module) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Path: "example.com/main", Version: main}, Deps: deps}, true
		}
	}
	for _, tc := range []struct {
		name    string
		read    func() (*debug.BuildInfo, bool)
		factory any
		want    Version
	}{
		{"tagged main wins", info("v2.0.0", deps...), filehash.SHA256, Version{"v2.0.0", VersionFromMainModule}},
		{"devel main: the factory's module, longest path", info("(devel)", deps...), filehash.SHA256, Version{"v0.1.0", VersionFromFactoryModule}},
		{"untagged pseudo-version: the factory's module", info("v0.0.0-20261128120000-abcdefabcdef", deps[1]), filehash.SHA256, Version{"v1.4.2", VersionFromFactoryModule}},
		{"untagged pseudo-version, factory in main", info("v0.0.0-20261128120000-abcdefabcdef"), strings.Cut, Version{"v0.0.0-20261128120000-abcdefabcdef", VersionFromMainModule}},
		{"replaced by a directory", info("(devel)", &debug.Module{Path: "github.com/plugkit/vaultplugin", Version: "v1.4.2", Replace: &debug.Module{Path: "../vaultplugin"}}), filehash.SHA256, Version{}},
		{"replaced by a version", info("", &debug.Module{Path: "github.com/plugkit/vaultplugin", Version: "v1.4.2", Replace: &debug.Module{Path: "github.com/fork/vaultplugin", Version: "v1.4.3"}}), filehash.SHA256, Version{"v1.4.3", VersionFromFactoryModule}},
		{"no build info", func() (*debug.BuildInfo, bool) { return nil, false }, filehash.SHA256, Version{}},
		{"no factory", info("(devel)", deps...), nil, Version{}},
	} {
		if got := buildVersion(tc.read, tc.factory); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestVersionFor(t *testing.T) {
	for _, tc := range []struct {
		v          Version
		own, want  string
		overridden bool
	}{
		{Version{"v1.0.0", VersionFromOption}, "", "v1.0.0", false},
		{Version{"v1.0.0", VersionFromOption}, "v2.0.0", "v1.0.0", true},
		{Version{"v1.0.0", VersionFromOption}, "v1.0.0", "v1.0.0", false},
		{Version{"v1.0.0", VersionFromMainModule}, "v2.0.0", "v2.0.0", false},
		{Version{"v1.0.0", VersionFromRelease}, "v2.0.0", "v1.0.0", true},
		{Version{"v1.0.0", VersionFromRelease}, "", "v1.0.0", false},
		{Version{}, "v2.0.0", "v2.0.0", false},
		{Version{}, "", "", false},
	} {
		got, over := tc.v.For(tc.own)
		if got != tc.want || over != tc.overridden {
			t.Errorf("%+v.For(%q) = %q, %v; want %q, %v", tc.v, tc.own, got, over, tc.want, tc.overridden)
		}
	}
}

// A release's stamp is reported as Vault stores versions; a stamp that is
// no semantic version (a hand-made -X) gives way to the build info.
func TestStampedVersion(t *testing.T) {
	fromBuild := Version{"v0.3.0", VersionFromMainModule}
	for _, tc := range []struct {
		stamp string
		want  Version
	}{
		{"vaultplugin-release(v1.2.3)", Version{"v1.2.3", VersionFromRelease}},
		{"v1.2.3", Version{"v1.2.3", VersionFromRelease}},
		{"vaultplugin-release(nightly)", fromBuild},
		{"1.2.3-rc.1", Version{"v1.2.3-rc.1", VersionFromRelease}},
		{"", fromBuild},
		{"nightly", fromBuild},
	} {
		if got := stampedVersion(tc.stamp, func() Version { return fromBuild }); got != tc.want {
			t.Errorf("stampedVersion(%q) = %+v, want %+v", tc.stamp, got, tc.want)
		}
	}
}

// The stamp is found in a binary's bytes whatever surrounds it; a marker
// without a version after it is not a stamp.
func TestStampedIn(t *testing.T) {
	bin := []byte("\x00\x01vaultplugin-release(\x7fgo:string" + ReleaseStamp("v1.2.3-rc.1") + "abc" + ReleaseStamp("v1.2.3-rc.1") + "vaultplugin-release(")
	if got := StampedIn(bin); len(got) != 1 || got[0] != "v1.2.3-rc.1" {
		t.Errorf("StampedIn = %q, want [v1.2.3-rc.1]", got)
	}
	if got := StampedIn([]byte("no stamp")); len(got) != 0 {
		t.Errorf("StampedIn = %q, want none", got)
	}
}

// Every mistake in the options is reported at once, on one line.
func TestApplyOptionsAggregates(t *testing.T) {
	c := NewConfig()
	err := ApplyOptions(c, []opt{
		optFunc(func(c *Config) error { return c.SetVersion("one.two") }),
		nil,
		optFunc(func(c *Config) error { return c.SetShutdownTimeout(-1) }),
	}, opt.apply)
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %q", err)
	}
	for _, want := range []string{"invalid options: ", `WithVersion("one.two")`, "option 1 is nil", "WithShutdownTimeout(-1ns)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if err := ApplyOptions(c, []opt{optFunc(func(c *Config) error { return c.AddArgs([]string{"-a"}) }), optFunc(func(c *Config) error { return c.AddArgs([]string{"-b"}) })},
		opt.apply); err != nil || strings.Join(c.Args, " ") != "-a -b" {
		t.Errorf("AddArgs twice: %v, args %q (want them appended)", err, c.Args)
	}
}

// A person who runs a binary whose options are invalid reads one plain
// line, not a JSON record.
func TestInvalidOptionForAPerson(t *testing.T) {
	var stdout, stderr strings.Builder
	c := NewConfig()
	c.Name = "p"
	c.Stdout, c.Stderr = &stdout, &stderr
	c.Lookup = func(string) (string, bool) { return "", false }
	err := Serve(context.Background(), fakePlugin{}, c, ApplyOptions(c, []opt{
		optFunc(func(c *Config) error { return c.SetVersion("x") }),
	}, opt.apply))
	if err == nil || !strings.Contains(err.Error(), `WithVersion("x")`) {
		t.Fatalf("err = %v", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
	got := stderr.String()
	if strings.Count(got, "\n") != 1 || strings.HasPrefix(got, "{") || !strings.HasPrefix(got, `p: invalid option: WithVersion("x")`) {
		t.Errorf("stderr = %q, want one plain line", got)
	}
}

// opt is an option interface as serve's and dbserve's are.
type opt interface{ apply(*Config) error }

type optFunc func(*Config) error

func (o optFunc) apply(c *Config) error { return o(c) }

// The module's documentation (doc.go) is the one reference for the
// operator's variables: it names every one that -help lists.
func TestDocListsOperatorEnv(t *testing.T) {
	doc, err := os.ReadFile("../../doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range OperatorEnv() {
		if !strings.Contains(string(doc), "//\t"+v.Name+" ") {
			t.Errorf("doc.go's table has no line for %s", v.Name)
		}
	}
}

type versioned string

func (v versioned) PluginVersion() logical.PluginVersion {
	return logical.PluginVersion{Version: string(v)}
}

// An instance's own version wins over the build info and loses to
// WithVersion, with one warning however many instances there are.
func TestInstancesVersionFor(t *testing.T) {
	var logs strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, JSONFormat: true})
	in := &Instances{Logger: log, Tracker: NewTracker(log), Version: Version{"v1.0.0", VersionFromOption}}
	for range 3 {
		if got := in.VersionFor(versioned("v2.0.0"), "backend"); got != "v1.0.0" {
			t.Errorf("WithVersion lost: %q", got)
		}
	}
	if n := strings.Count(logs.String(), "the backend reports a version of its own"); n != 1 {
		t.Errorf("%d warnings, want 1: %s", n, logs.String())
	}
	in.Version = Version{"v1.0.0", VersionFromMainModule}
	if got := in.VersionFor(versioned("v2.0.0"), "backend"); got != "v2.0.0" {
		t.Errorf("the backend's own version lost to the build info: %q", got)
	}
	if got := in.VersionFor(struct{}{}, "database"); got != "v1.0.0" {
		t.Errorf("no version of its own: %q", got)
	}
}

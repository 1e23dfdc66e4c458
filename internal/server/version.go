package server

import (
	"bytes"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
)

// VersionSource says where the reported version came from, which decides
// whether an instance's own version may override it.
type VersionSource int

const (
	// VersionUnknown: no version anywhere; the build has none.
	VersionUnknown VersionSource = iota
	// VersionFromOption: the author's WithVersion, which wins over all.
	VersionFromOption
	// VersionFromMainModule: the main module's version in the build info
	// (go install module@version, or a VCS stamp).
	VersionFromMainModule
	// VersionFromFactoryModule: the version of the module that defines
	// the factory, for a main that serves a third-party backend
	// (serve.Run(kubernetes.Factory)) and has no version of its own.
	VersionFromFactoryModule
	// VersionFromRelease: the version `vaultplugin release` stamped into
	// the build (ReleaseVersionSymbol). It wins over the build info and
	// over a backend's own, as WithVersion does: the release's file
	// names, image tags and registration lines all carry it, so the
	// plugin must report it.
	VersionFromRelease
)

// ReleaseVersionSymbol is the linker name of releaseVersion, for
// `go build -ldflags "-X ReleaseVersionSymbol=STAMP"`, where STAMP is
// ReleaseStamp(version).
const ReleaseVersionSymbol = "github.com/plugkit/vaultplugin/internal/server.releaseVersion"

// releaseVersion is the stamp `vaultplugin release` sets with -ldflags -X
// (ReleaseVersionSymbol): the one way to give a built binary a version
// without a line in its main or a tag on its commit. No code assigns it;
// it is a variable only because -X sets variables.
var releaseVersion string

// The stamp's delimiters. A binary of any OS and architecture can be
// searched for them to read back the version it was stamped with: the
// build info does not keep -ldflags under -trimpath, and -s drops the
// symbol that would locate the variable.
const (
	stampOpen  = "vaultplugin-release("
	stampClose = ")"
)

// ReleaseStamp is the value `vaultplugin release` stamps for version.
func ReleaseStamp(version string) string { return stampOpen + version + stampClose }

// StampedIn returns the versions stamped into a binary's bytes, each once,
// in the order found: a release binary holds exactly one.
func StampedIn(binary []byte) []string {
	var found []string
	seen := map[string]bool{}
	for rest := binary; ; {
		i := bytes.Index(rest, []byte(stampOpen))
		if i < 0 {
			return found
		}
		rest = rest[i+len(stampOpen):]
		j := bytes.Index(rest[:min(len(rest), 129)], []byte(stampClose))
		if j <= 0 {
			continue
		}
		v := string(rest[:j])
		if _, err := NormalizeVersion(v); err == nil && !seen[v] {
			seen[v] = true
			found = append(found, v)
		}
	}
}

// String names the source for the debug log and -describe.
func (s VersionSource) String() string {
	switch s {
	case VersionFromOption:
		return "WithVersion"
	case VersionFromMainModule:
		return "main module"
	case VersionFromFactoryModule:
		return "factory's module"
	case VersionFromRelease:
		return "vaultplugin release"
	}
	return "none"
}

// Version is the version a plugin reports and where it came from.
type Version struct {
	Value  string
	Source VersionSource
}

// For returns the version an instance reports, given the version it
// reports itself (own, "" when none): the author's WithVersion wins, and
// otherwise a backend that sets its own (framework.Backend's
// RunningVersion) knows better than the build info. overridden is true
// when own was set and lost to WithVersion.
func (v Version) For(own string) (reported string, overridden bool) {
	switch {
	case own == "":
		return v.Value, false
	case v.Source == VersionFromOption, v.Source == VersionFromRelease:
		return v.Value, own != v.Value
	}
	return own, false
}

// resolveVersion fills in the version unless an option set it: the
// release's stamp, else the build info's.
func (s *server) resolveVersion() {
	if s.Version.Source == VersionUnknown {
		s.Version = stampedVersion(releaseVersion, func() Version { return buildVersion(debug.ReadBuildInfo, s.plugin.Factory()) })
	}
}

// stampedVersion is the version in the release's stamp (ReleaseStamp, or
// a bare version) when it is a semantic version, else what fallback
// finds. vaultplugin release stamps only versions it has validated, so an
// invalid one is someone's hand-made -X, which the build info outranks.
func stampedVersion(stamp string, fallback func() Version) Version {
	if strings.HasPrefix(stamp, stampOpen) && strings.HasSuffix(stamp, stampClose) {
		stamp = stamp[len(stampOpen) : len(stamp)-len(stampClose)]
	}
	if v, err := NormalizeVersion(stamp); err == nil {
		return Version{Value: v, Source: VersionFromRelease}
	}
	return fallback()
}

// buildVersion returns the main module's version, or, when the main
// module has none (a development build, -buildvcs=false) or only an
// untagged pseudo-version, the version of the module that defines
// factory; normalised as Vault stores versions.
func buildVersion(read func() (*debug.BuildInfo, bool), factory any) Version {
	bi, ok := read()
	if !ok {
		return Version{}
	}
	mainV, mainErr := NormalizeVersion(bi.Main.Version)
	// A pseudo-version with no tag behind it (v0.0.0-date-commit, what a
	// plain go build in an untagged checkout stamps) says nothing about
	// a third-party backend the main serves: its module's version does.
	if mainErr == nil && !strings.HasPrefix(bi.Main.Version, "v0.0.0-") {
		return Version{Value: mainV, Source: VersionFromMainModule}
	}
	fallback := Version{}
	if mainErr == nil {
		fallback = Version{Value: mainV, Source: VersionFromMainModule}
	}
	pkg := funcPackage(factory)
	if pkg == "" {
		return fallback
	}
	// The longest module path that holds the package: nested modules
	// (example.com/a and example.com/a/b) are distinct modules.
	var best *debug.Module
	for _, m := range bi.Deps {
		if (pkg == m.Path || strings.HasPrefix(pkg, m.Path+"/")) && (best == nil || len(m.Path) > len(best.Path)) {
			best = m
		}
	}
	if best == nil {
		return fallback
	}
	mv := best.Version
	if best.Replace != nil {
		// A replacement by a local directory has no version: there is
		// nothing honest to report.
		mv = best.Replace.Version
	}
	if v, err := NormalizeVersion(mv); err == nil {
		return Version{Value: v, Source: VersionFromFactoryModule}
	}
	return fallback
}

// funcPackage returns the import path of the package that defines the
// function f ("" when f is not a function): runtime.FuncForPC names a
// function "import/path.Name", "import/path.(*T).Method" or
// "import/path.Name.func1", and the package ends at the first dot after
// the last slash.
func funcPackage(f any) string {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Func || v.IsNil() {
		return ""
	}
	fn := runtime.FuncForPC(v.Pointer())
	if fn == nil {
		return ""
	}
	name := fn.Name()
	slash := strings.LastIndex(name, "/")
	dot := strings.Index(name[slash+1:], ".")
	if dot < 0 {
		return ""
	}
	return name[:slash+1+dot]
}

// noVersionHelp explains a build with no version, for -version and the
// text a person sees.
const noVersionHelp = `this build has no version: its module version is "(devel)" because it was built from a source tree ` +
	`without VCS stamping (go build -buildvcs=false, or outside a git checkout). ` +
	`Set one with serve.WithVersion("v1.2.3") in main (from a variable set by -ldflags "-X main.version=v1.2.3", say), ` +
	`or build a tagged release with go install MODULE/cmd/PLUGIN@v1.2.3.`

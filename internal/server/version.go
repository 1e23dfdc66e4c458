package server

import (
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
)

// String names the source for the debug log and -describe.
func (s VersionSource) String() string {
	switch s {
	case VersionFromOption:
		return "WithVersion"
	case VersionFromMainModule:
		return "main module"
	case VersionFromFactoryModule:
		return "factory's module"
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
	case v.Source == VersionFromOption:
		return v.Value, own != v.Value
	}
	return own, false
}

// resolveVersion fills in the version from the build info unless an
// option set it.
func (s *server) resolveVersion() {
	if s.Version.Source == VersionUnknown {
		s.Version = buildVersion(debug.ReadBuildInfo, s.plugin.Factory())
	}
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

package check

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	goversion "github.com/hashicorp/go-version"
)

// versionFlag is what `BINARY -version` did, run as a person would.
type versionFlag struct {
	answered bool   // exited 0 with one token on stdout's first line
	value    string // that token; "" for one that says there is none
	how      string // what it did otherwise: the exit and its first line
}

// unknownVersion reports whether v is what a binary prints for -version
// when its build has no version: serve.Run's "(unknown)", Go's "(devel)".
func unknownVersion(v string) bool {
	switch strings.ToLower(v) {
	case "(unknown)", "unknown", "(devel)", "devel", "":
		return true
	}
	return false
}

func (h *host) runVersionFlag(ctx context.Context) versionFlag {
	ctx, cancel := context.WithTimeout(ctx, ByHandBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Binary, "-version")
	cmd.Env = baseEnv()
	cmd.WaitDelay = ByHandBound
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	first := firstLine(stdout.String())
	if err == nil && first != "" && len(strings.Fields(first)) == 1 {
		v := first
		if unknownVersion(v) {
			v = ""
		}
		return versionFlag{answered: true, value: v}
	}
	how := "exit 0"
	if ctx.Err() != nil {
		how = fmt.Sprintf("still running after %s", ByHandBound)
	} else if err != nil {
		how = err.Error()
	}
	if line := cause(strings.Split(strings.TrimSpace(stdout.String()), "\n"), strings.Split(stderr.String(), "\n")); line != "" {
		how += ", " + quote(line)
	}
	return versionFlag{how: how}
}

// sameVersion compares as Vault does after normalising a -version: with
// or without the leading v.
func sameVersion(a, b string) bool { return strings.TrimPrefix(a, "v") == strings.TrimPrefix(b, "v") }

// versionResult is the version check: what the plugin reports to the host
// against what -version prints. Vault accepts a plugin that reports no
// version, and never runs -version: only a reported version Vault cannot
// parse fails, because Vault refuses to register the plugin then
// (plugincatalog's setInternal: "plugin self-reported version … is not a
// valid semantic version"). The rest warns: an operator cannot pin what
// is not reported, and `vault plugin register -version` refuses a
// plugin that reports another version than it is given.
func (s *session) versionResult(flag versionFlag) Result {
	if s.instErr != nil {
		return Result{ID: idVersion, Status: Skip, Detail: "needs a mount (see type)"}
	}
	host := "no version"
	if s.hostVersion != "" {
		host = s.hostVersion
	}
	const report = "report a version: a bare SDK backend sets framework.Backend's RunningVersion (a database plugin implements logical.PluginVersioner); serve.Run reports the module's version"
	switch {
	case s.hostVersion != "" && !validVersion(s.hostVersion):
		return Result{ID: idVersion, Status: Fail,
			Detail: fmt.Sprintf("reports %q to the host, which is no semantic version: Vault refuses to register it", s.hostVersion),
			Fix:    "report a semantic version, vX.Y.Z: framework.Backend's RunningVersion in a bare SDK main, serve.WithVersion with serve.Run"}
	case !flag.answered && s.hostVersion == "":
		return Result{ID: idVersion, Status: Warn,
			Detail: "reports no version to the host, and -version does not answer (" + flag.how + "): Vault serves it unversioned, so no operator can pin it",
			Fix:    report + " and prints it for -version"}
	case !flag.answered:
		return Result{ID: idVersion, Status: Warn,
			Detail: "reports " + host + " to the host, but -version does not answer (" + flag.how + ")",
			Fix:    "answer -version with the version reported to Vault, which `vault plugin register -version` must match: a flag in a bare SDK main that prints RunningVersion's value (serve.Run does)"}
	case sameVersion(flag.value, s.hostVersion) && s.hostVersion == "":
		// The plugin would report a version: this build has none (a
		// build outside a tagged module version), and it says so.
		return Result{ID: idVersion, Status: Pass,
			Detail: "this build has no version: it reports none to the host and -version says so (register it without -version)"}
	case sameVersion(flag.value, s.hostVersion):
		return Result{ID: idVersion, Status: Pass, Detail: "reports " + host + " to the host; -version prints the same"}
	}
	printed := flag.value
	if printed == "" {
		printed = "that it has none"
	}
	return Result{ID: idVersion, Status: Warn,
		Detail: "reports " + host + " to the host, but -version prints " + printed,
		Fix:    "report one version: `vault plugin register -version` refuses a plugin that reports another (take RunningVersion and the -version output from one constant; serve.WithVersion sets both)"}
}

// validVersion reports whether Vault can parse v as the version a plugin
// reports: a semantic version, with or without the leading v (Vault uses
// Masterminds' semver, which go-version's NewVersion matches in what it
// accepts).
func validVersion(v string) bool {
	_, err := goversion.NewVersion(v)
	return err == nil
}

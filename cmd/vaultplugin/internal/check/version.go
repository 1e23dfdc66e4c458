package check

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
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
// against what -version prints.
func (s *session) versionResult(flag versionFlag) Result {
	if s.instErr != nil {
		return Result{ID: idVersion, Status: Skip, Detail: "needs a mount (see type)"}
	}
	host := "no version"
	if s.hostVersion != "" {
		host = s.hostVersion
	}
	switch {
	case !flag.answered && s.hostVersion == "":
		return Result{ID: idVersion, Status: Fail,
			Detail: "reports no version to the host, and -version does not answer (" + flag.how + ")",
			Fix:    "use serve.Run: it reports the module's version to Vault and prints it for -version"}
	case !flag.answered:
		return Result{ID: idVersion, Status: Fail,
			Detail: "reports " + host + " to the host, but -version does not answer (" + flag.how + ")",
			Fix:    "answer -version with the version reported to Vault, which `vault plugin register -version` must match (serve.Run does)"}
	case sameVersion(flag.value, s.hostVersion) && s.hostVersion == "":
		return Result{ID: idVersion, Status: Pass,
			Detail: "this build has no version: it reports none to the host and -version says so (register it without -version)"}
	case sameVersion(flag.value, s.hostVersion):
		return Result{ID: idVersion, Status: Pass, Detail: "reports " + host + " to the host; -version prints the same"}
	}
	printed := flag.value
	if printed == "" {
		printed = "that it has none"
	}
	return Result{ID: idVersion, Status: Fail,
		Detail: "reports " + host + " to the host, but -version prints " + printed,
		Fix:    "report one version: Vault refuses `vault plugin register -version` when the plugin reports another (serve.WithVersion sets both)"}
}

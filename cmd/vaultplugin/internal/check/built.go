package check

import (
	"context"
	"fmt"
	"runtime"
)

// Built is what CheckBuilt found in one binary built for release.
type Built struct {
	// Results are the checks that ran, in report order: platform and
	// static always; stdout, type, handshake and version when this
	// machine runs the binary.
	Results []Result
	// Passed is true when no check failed.
	Passed bool
	// Ran is true when the binary was started (it is built for this
	// machine); Kind, Type and Version are known only then.
	Ran bool
	// Kind is "backend" or "database": the handshake cookie it answers.
	Kind string
	// Type is "secret", "auth" or "database", as its first mount said.
	Type string
	// Version is what it reports to the host, which -version printed too
	// when the version check passed.
	Version string
}

// CheckBuilt runs on a binary built for goos/goarch the checks a release
// needs before it publishes it: the platform its header names must be
// goos/goarch (not this machine's), and a Linux binary must be static.
// When this machine runs goos/goarch it also starts the binary as Vault
// does: the cookie it answers (stdout, type), the handshake and a mount,
// and the version it reports to the host against -version. The error is
// ctx's, or the failure to set the checks up; a failed check is a Fail in
// Results.
func CheckBuilt(ctx context.Context, bin, goos, goarch string) (*Built, error) {
	b := &Built{}
	info, err := readHeader(bin)
	switch {
	case err != nil:
		b.add(Result{ID: idPlatform, Status: Fail, Detail: err.Error(), Fix: "build the main package, not a library"})
	case info.goos != goos || info.goarch != goarch:
		b.add(Result{ID: idPlatform, Status: Fail,
			Detail: fmt.Sprintf("%s executable for %s/%s, not %s/%s", info.format, info.goos, info.goarch, goos, goarch),
			Fix:    fmt.Sprintf("build it with GOOS=%s GOARCH=%s", goos, goarch)})
	default:
		b.add(Result{ID: idPlatform, Status: Pass, Detail: fmt.Sprintf("%s/%s %s executable", goos, goarch, info.format)})
	}
	if err == nil {
		b.add(staticResult(info))
	}
	if !b.Passed || goos != runtime.GOOS || goarch != runtime.GOARCH {
		return b, ctx.Err()
	}

	h, err := newHost(Config{Binary: bin})
	if err != nil {
		return nil, err
	}
	defer h.close()
	b.Ran = true
	probe := h.probeCookies(ctx)
	b.add(probe.stdoutResult(), probe.typeResult())
	if probe.kind == nil {
		return b, ctx.Err()
	}
	b.Kind = probe.kind.name
	sess := h.startSession(ctx, *probe.kind, nil)
	b.add(sess.handshakeResult())
	if sess.proc == nil {
		return b, ctx.Err()
	}
	sess.explore(ctx)
	b.add(sess.typeResult(), sess.versionResult(h.runVersionFlag(ctx)))
	b.Type, b.Version = sess.typ, sess.hostVersion
	return b, ctx.Err()
}

// add appends results, keeping Passed up to date.
func (b *Built) add(rs ...Result) {
	for _, r := range rs {
		// The cookie probe's type result is replaced by the session's.
		for i, old := range b.Results {
			if old.ID == r.ID {
				b.Results = append(b.Results[:i], b.Results[i+1:]...)
				break
			}
		}
		b.Results = append(b.Results, r)
	}
	b.Passed = true
	for _, r := range b.Results {
		if r.Status == Fail {
			b.Passed = false
		}
	}
}

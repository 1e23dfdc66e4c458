package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// The handshake check reads a failed start from servetest.StartError's
// fields: what the plugin printed, whether it exited, whether time ran
// out. The message's words play no part: every case here has the same.
func TestHandshakeResultFromStartError(t *testing.T) {
	goPlugin := func(s string) error { return errors.New(s) }
	for _, c := range []struct {
		name        string
		err         *servetest.StartError
		detail, fix string
	}{{
		name: "a line on stdout",
		err: &servetest.StartError{Stdout: "p: bad flag", Cause: "p: bad flag",
			Err: goPlugin("Unrecognized remote plugin message: p: bad flag")},
		detail: `Vault refuses it: "Unrecognized remote plugin message: p: bad flag"`,
		fix:    "write nothing to stdout before serving",
	}, {
		name:   "an error record",
		err:    &servetest.StartError{Cause: "cannot listen", Err: goPlugin("plugin exited before we could connect"), Exited: true},
		detail: "cannot listen",
		fix:    "fix the failure above",
	}, {
		name:   "exited with a panic",
		err:    &servetest.StartError{Exited: true, Stderr: []string{"panic: boom", "goroutine 1 [running]:"}, Err: goPlugin("plugin exited before we could connect")},
		detail: "it exited: panic: boom",
	}, {
		name:   "exited without a word",
		err:    &servetest.StartError{Exited: true, Err: goPlugin("Unrecognized remote plugin message: ")},
		detail: "it exited without a word on stdout or stderr",
	}, {
		name:   "out of time",
		err:    &servetest.StartError{Err: fmt.Errorf("timed out: %w", context.DeadlineExceeded)},
		detail: "timed out",
		fix:    "print the handshake within",
	}, {
		name:   "an old vault/api",
		err:    &servetest.StartError{Exited: true, Stderr: []string{"[ERROR] error parsing wrapping token: square/go-jose: compact JWS format must have three parts"}, Err: goPlugin("plugin exited before we could connect")},
		detail: "it exited: [ERROR] error parsing wrapping token",
		fix:    "upgrade github.com/hashicorp/vault/api to ≥ v1.8.0",
	}, {
		name:   "another protocol",
		err:    &servetest.StartError{Err: goPlugin("Incompatible API version with plugin. Plugin version: 4, Client versions: [5]")},
		detail: "Incompatible API version",
		fix:    "serve protocol 5",
	}} {
		t.Run(c.name, func(t *testing.T) {
			s := &session{kind: kinds()[0], startErr: fmt.Errorf("wrapped: %w", c.err)}
			r := s.handshakeResult()
			if r.Status != Fail || !strings.HasPrefix(r.Detail, c.detail) || !strings.HasPrefix(r.Fix, c.fix) {
				t.Errorf("%s %q, fix %q; want a failure %q…, fix %q…", r.Status, r.Detail, r.Fix, c.detail, c.fix)
			}
		})
	}
}

// A backend whose AutoMTLS start failed but whose legacy start served
// warns: Vault serves it on that path. The fix follows why AutoMTLS
// failed.
func TestHandshakeResultOnTheLegacyPath(t *testing.T) {
	for _, c := range []struct {
		name     string
		autoMTLS startFailure
		fix      string
	}{
		{"an old vault/api", startFailure{Exited: true, Stderr: []string{`{"@level":"error","@message":"plugin tls init","error":"error parsing wrapping token: square/go-jose: compact JWS format must have three parts"}`}},
			"upgrade github.com/hashicorp/vault/api to ≥ v1.8.0"},
		{"no protocol 5", startFailure{Reason: "Incompatible API version with plugin. Plugin version: 4, Client versions: [5]"},
			"serve protocol 5, which AutoMTLS needs: upgrade github.com/hashicorp/vault/sdk to ≥ v0.5.4"},
		{"another cause", startFailure{Exited: true, Stderr: []string{"[ERROR] something else"}}, "make the AutoMTLS start work"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &session{kind: kinds()[0], legacy: true, autoMTLS: &c.autoMTLS, proc: &servetest.Process{}}
			r := s.handshakeResult()
			if r.Status != Warn || !strings.HasPrefix(r.Detail, "serves, but only over the legacy TLS path") ||
				!strings.Contains(r.Detail, "under AutoMTLS "+c.autoMTLS.why()) || !strings.HasPrefix(r.Fix, c.fix) {
				t.Errorf("%s %q, fix %q; want a warning naming %q, fix %q…", r.Status, r.Detail, r.Fix, c.autoMTLS.why(), c.fix)
			}
		})
	}
}

// Only what breaks on a real host fails: a version Vault cannot parse
// (it refuses to register the plugin), a plugin that fails in metadata
// mode on the legacy path (Vault starts it so before serving it there).
// A missing or mismatched version, and metadata mode off that path, warn.
func TestWhatFailsAndWhatWarns(t *testing.T) {
	for _, c := range []struct {
		name   string
		result Result
		want   Status
	}{
		{"no version", (&session{}).versionResult(versionFlag{how: "exit status 1"}), Warn},
		{"a version -version does not print", (&session{hostVersion: "v1.0.0"}).versionResult(versionFlag{answered: true, value: "v2.0.0"}), Warn},
		{"a version Vault cannot parse", (&session{hostVersion: "nightly"}).versionResult(versionFlag{answered: true, value: "nightly"}), Fail},
		{"the same semantic version", (&session{hostVersion: "v1.2.3"}).versionResult(versionFlag{answered: true, value: "1.2.3"}), Pass},
		{"metadata mode under AutoMTLS", (&session{}).metadataResult(metadataRun{startErr: errors.New("exited")}), Warn},
		{"metadata mode on the legacy path", (&session{legacy: true}).metadataResult(metadataRun{startErr: errors.New("exited")}), Fail},
	} {
		if c.result.Status != c.want || (c.want == Fail || c.want == Warn) != (c.result.Fix != "") {
			t.Errorf("%s: %s %q, fix %q; want %s", c.name, c.result.Status, c.result.Detail, c.result.Fix, c.want)
		}
	}
}

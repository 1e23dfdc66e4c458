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
		fix:    "upgrade github.com/hashicorp/vault/api to v1.8.0",
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

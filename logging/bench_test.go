package logging_test

import (
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/plugkit/vaultplugin/logging"
)

// BenchmarkRecord compares one record through logging.New's logger, with
// and without a secret to redact, against a bare hclog JSON logger.
func BenchmarkRecord(b *testing.B) {
	for _, tc := range []struct {
		name string
		l    hclog.Logger
	}{
		{"hclog", hclog.New(&hclog.LoggerOptions{Output: io.Discard, JSONFormat: true, Level: hclog.Info})},
		{"logging.New", logging.New(&logging.Options{Output: io.Discard, Level: hclog.Info})},
		{"logging.New+redact", logging.New(&logging.Options{Output: io.Discard, Level: hclog.Info, Redact: []string{"eyJhbGciOiJFUzUxMiJ9.secret"}})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.l.Info("request handled", "path", "data/app/db", "op", "read")
			}
		})
	}
}

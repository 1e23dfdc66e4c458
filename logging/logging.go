// Package logging builds a Vault plugin's logger: JSON records on the
// process's original stderr, which Vault re-logs at their own level under
// the plugin's name.
//
//	logger := logging.New(nil) // no Name: Vault adds the plugin's own
//	restore := logging.RouteStdLog(logger)
//	defer restore()
//	logger.Info("serving", "version", "v1.2.3")
//
// Why JSON: go-plugin's host side (Client.logStderr) parses each stderr line
// as an hclog JSON record and re-logs it at the record's level. A plain-text
// line is logged at DEBUG, so a plain fatal message is invisible at Vault's
// default level.
//
// Why create it first: after the handshake go-plugin replaces os.Stderr with
// a pipe whose contents the host discards. A logger that holds the original
// stderr keeps reaching Vault; one that opens os.Stderr later is lost.
//
// The level comes from [LevelEnv], which an operator sets at registration:
//
//	vault plugin register -env VAULTPLUGIN_LOG_LEVEL=debug -sha256=… secret my-plugin
package logging

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// LevelEnv is the environment variable an operator sets to choose the
// plugin's log level: trace, debug, info, warn, error or off. No variable
// tells a plugin the host's own level, so this is the only knob.
const LevelEnv = "VAULTPLUGIN_LOG_LEVEL"

// DefaultLevel is the level when LevelEnv is unset. It is Trace, as in the
// SDK's own serving code, because the host filters every record by its own
// log level: a plugin that filtered first would hide debug records from an
// operator who runs Vault at debug.
const DefaultLevel = hclog.Trace

// Redacted replaces a secret wherever it would have appeared in a record.
const Redacted = "[redacted]"

// Options configures New. The zero value is a plugin logger at the
// operator's level writing to os.Stderr.
type Options struct {
	// Name is the logger's name; the host adds the plugin's own, so leave
	// it empty unless the plugin has sub-loggers.
	Name string
	// Level, when hclog.NoLevel, is read from LevelEnv (DefaultLevel if unset).
	Level hclog.Level
	// Output defaults to os.Stderr, captured when New is called.
	Output io.Writer
	// Redact lists secrets that must never be written; each occurrence
	// in a record is replaced by Redacted. Empty strings are ignored.
	Redact []string
	// Lookup reads the environment; nil means os.LookupEnv.
	Lookup func(key string) (string, bool)
	// DisableTime drops the time stamp, for stable output in examples and
	// tests; a served plugin keeps it.
	DisableTime bool
}

// New returns a JSON hclog logger configured by opts (nil means defaults).
// A malformed LevelEnv value is not fatal: the logger uses DefaultLevel and
// its first record is a warning that names the bad value.
func New(opts *Options) hclog.Logger {
	if opts == nil {
		opts = &Options{}
	}
	out := opts.Output
	if out == nil {
		out = os.Stderr
	}
	if secrets := nonEmpty(opts.Redact); len(secrets) > 0 {
		out = &redactWriter{w: out, secrets: secrets}
	}
	level := opts.Level
	var levelErr error
	if level == hclog.NoLevel {
		level, levelErr = LevelFromEnv(opts.Lookup)
	}
	l := hclog.New(&hclog.LoggerOptions{
		Name:        opts.Name,
		Level:       level,
		Output:      out,
		JSONFormat:  true,
		DisableTime: opts.DisableTime,
	})
	if levelErr != nil {
		l.Warn("ignoring "+LevelEnv, "error", levelErr, "level", level.String())
	}
	return l
}

// LevelFromEnv returns the level LevelEnv asks for, DefaultLevel when it is
// unset, and DefaultLevel with an error naming the value when it is not a
// level. lookup nil means os.LookupEnv.
func LevelFromEnv(lookup func(key string) (string, bool)) (hclog.Level, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(LevelEnv)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return DefaultLevel, nil
	}
	// hclog.LevelFromString maps anything unknown to NoLevel, and accepts
	// "off"; "warning" is a common spelling operators reach for.
	if strings.EqualFold(v, "warning") {
		v = "warn"
	}
	l := hclog.LevelFromString(v)
	if l == hclog.NoLevel {
		return DefaultLevel, fmt.Errorf("%s=%q is not a log level (want trace, debug, info, warn, error or off)", LevelEnv, v)
	}
	return l, nil
}

// RouteStdLog sends the standard library's log package into l, inferring
// each line's level from a "[ERROR]"-style prefix (INFO when there is none),
// so a dependency's log.Printf reaches the host as a record instead of a
// plain line it buries at DEBUG. It returns a function that restores the
// log package's previous output, flags and prefix.
func RouteStdLog(l hclog.Logger) (restore func()) {
	prevOut, prevFlags, prevPrefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(l.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
	// The record carries its own time stamp.
	log.SetFlags(0)
	log.SetPrefix("")
	return func() {
		log.SetOutput(prevOut)
		log.SetFlags(prevFlags)
		log.SetPrefix(prevPrefix)
	}
}

func nonEmpty(ss []string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		if s != "" {
			out = append(out, []byte(s))
		}
	}
	return out
}

// redactWriter replaces secrets in each write. hclog writes one whole
// record per Write call, so a secret is never split across two writes.
// JSON escaping leaves secrets made of URL-safe characters (tokens,
// base64) unchanged, so the raw bytes are what to look for.
type redactWriter struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
}

func (r *redactWriter) Write(p []byte) (int, error) {
	out := p
	for _, s := range r.secrets {
		if bytes.Contains(out, s) {
			out = bytes.ReplaceAll(out, s, []byte(Redacted))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	// Report the caller's length: a shorter write would look like an error.
	return len(p), nil
}

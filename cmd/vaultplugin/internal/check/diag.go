package check

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// quoteLimit is how much of a plugin's own line a report quotes.
const quoteLimit = 120

// quote quotes a line a plugin printed, shortened to quoteLimit runes.
func quote(s string) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > quoteLimit {
		r := []rune(s)
		s = string(r[:quoteLimit]) + "…"
	}
	return strconv.Quote(s)
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// Text of other modules that the check looks for, because no error type
// carries it: go-plugin's errors are created with errors.New, and a
// plugin's output is all the check has of a process it did not build.
// The check's own packages' phrases are never matched as text: servetest
// gives types (StartError, ErrNotMultiplexed) and a plugin served by
// serve.Run prints the phrases internal/proctext names
// (TestNoMessageTextOfOurPackages holds the check to that).
const (
	// goPluginNotAPlugin starts the text go-plugin prints when the
	// handshake cookie is missing or wrong.
	goPluginNotAPlugin = "This binary is a plugin"
	// goPluginIncompatible starts go-plugin's error when the plugin
	// answered none of the protocol versions the host offered.
	goPluginIncompatible = "Incompatible API version"
	// apiNoWrappingToken starts the error of vault/api's TLS provider
	// before v1.8.0 (api.VaultPluginTLSProvider) when no wrapping token
	// came, as under AutoMTLS: those versions do not step aside for it.
	apiNoWrappingToken = "error parsing wrapping token"
)

// cause picks, from what a plugin printed, the line that best says why it
// stopped or failed: a line on stdout where the handshake belonged (what
// Vault's error quotes), a Go panic, the last error record on stderr (a
// JSON one, or hclog's text form with [ERROR]), or else stderr's first
// line. "" when it printed nothing.
func cause(stdout, stderr []string) string {
	for _, l := range stdout {
		if strings.TrimSpace(l) != "" {
			return l
		}
	}
	if p := panicLine(stderr); p != "" {
		return p
	}
	for i := len(stderr) - 1; i >= 0; i-- {
		var rec struct {
			Level   string `json:"@level"`
			Message string `json:"@message"`
			Error   any    `json:"error"`
		}
		if json.Unmarshal([]byte(stderr[i]), &rec) == nil && strings.EqualFold(rec.Level, "error") {
			if rec.Error != nil {
				if e, ok := rec.Error.(string); ok && e != "" {
					return rec.Message + ": " + e
				}
			}
			return rec.Message
		}
	}
	for _, l := range stderr {
		if strings.Contains(l, "[ERROR]") {
			return l
		}
	}
	for _, l := range stderr {
		if strings.TrimSpace(l) != "" {
			return l
		}
	}
	return ""
}

// quoteAround quotes the part of line around sub, with more of what leads
// up to it than of what follows, when the whole line is longer than a
// report quotes.
func quoteAround(line, sub string) string {
	r := []rune(strings.TrimSpace(line))
	if len(r) <= quoteLimit {
		return quote(line)
	}
	i := utf8.RuneCountInString(line[:max(strings.Index(line, sub), 0)])
	from := max(0, min(i-quoteLimit*2/3, len(r)-quoteLimit))
	s := string(r[from : from+quoteLimit])
	if from > 0 {
		s = "…" + s
	}
	if from+quoteLimit < len(r) {
		s += "…"
	}
	return strconv.Quote(s)
}

// panicLine returns the "panic: …" line of a Go panic on stderr, or "".
func panicLine(stderr []string) string {
	for _, l := range stderr {
		if strings.HasPrefix(l, "panic: ") {
			return l
		}
	}
	return ""
}

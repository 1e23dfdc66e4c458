package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is a check's verdict.
type Status string

const (
	// Pass: the binary does what Vault needs.
	Pass Status = "pass"
	// Fail: it does not: Vault cannot start it, mount it or serve a
	// request, or running it loses data or processes (an orphan, a stop
	// that skips Cleanup). The Result's Fix says what to change.
	Fail Status = "fail"
	// Warn: Vault serves it, but something is worth fixing: an old
	// dependency, a path Vault only falls back to, what an operator
	// sees. The Result's Fix says what to change. It fails nothing.
	Warn Status = "warn"
	// Skip: the check could not run, on this system or because a check it
	// needs failed; Detail says which.
	Skip Status = "skip"
	// Info: a fact worth knowing that is no verdict (a plugin that does
	// not multiplex works, at the cost of a process per mount).
	Info Status = "info"
)

// mark is the status as the text report shows it.
func (s Status) mark() string {
	switch s {
	case Pass:
		return "✓"
	case Fail:
		return "✗"
	case Warn:
		return "!"
	case Info:
		return "·"
	}
	return "-"
}

// Result is one check's outcome.
type Result struct {
	// ID names the check: one of IDs().
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Detail is what was seen, one line.
	Detail string `json:"detail"`
	// Fix is one concrete line; set for every Fail and Warn, empty
	// otherwise.
	Fix string `json:"fix,omitempty"`
	// Millis is how long the check took, in milliseconds.
	Millis int64 `json:"duration_ms"`
}

// Report is the outcome of checking one binary. Its JSON form is the
// schema documented in the command's package documentation.
type Report struct {
	Schema int `json:"schema"`
	// Binary is the absolute path checked.
	Binary string `json:"binary"`
	// Kind is "backend" or "database": the handshake cookie it answers
	// to; "" when it answers neither.
	Kind string `json:"kind"`
	// Type is "secret", "auth" or "database"; "" when unknown.
	Type string `json:"type"`
	// TLS is how the host's connection to the plugin was secured in the
	// checks that started it: "automtls", or "legacy" when only Vault's
	// fallback, the wrapping token of the legacy TLS path, worked; ""
	// when no start completed its handshake.
	TLS string `json:"tls"`
	// Passed is true when no check failed: Vault serves the plugin, and
	// running it loses nothing. Warnings do not change it.
	Passed bool `json:"passed"`
	// Counts holds how many checks ended with each status.
	Counts map[Status]int `json:"counts"`
	Checks []Result       `json:"checks"`
}

// reportSchema is the version of Report's JSON fields.
const reportSchema = 1

// resultSet holds the results of one run by check ID.
type resultSet map[string]Result

func (rs resultSet) add(results ...Result) {
	for _, r := range results {
		rs[r.ID] = r
	}
}

// report orders the results as IDs() does and sums them up; a check
// without a result is skipped for the reason why. It returns ctx's error
// instead when the run was cancelled: its results are then not the
// plugin's.
func (rs resultSet) report(ctx context.Context, bin string, k *kind, typ, tls, why string) (*Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("check interrupted: %w", err)
	}
	r := &Report{Schema: reportSchema, Binary: bin, Type: typ, TLS: tls, Passed: true, Counts: map[Status]int{}}
	if k != nil {
		r.Kind = k.name
	}
	for _, id := range IDs() {
		res, ok := rs[id]
		if !ok {
			res = Result{ID: id, Status: Skip, Detail: why}
		}
		r.Checks = append(r.Checks, res)
		r.Counts[res.Status]++
		if res.Status == Fail {
			r.Passed = false
		}
	}
	return r, nil
}

// WriteText writes the report for a person: one line per check, and
// under each failure and warning the line that fixes it.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "vaultplugin check %s\n", r.Binary)
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%s %-10s %s\n", c.Status.mark(), c.ID, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(&b, "  %-10s fix: %s\n", "", c.Fix)
		}
	}
	var sums []string
	for _, s := range []Status{Pass, Fail, Warn, Info, Skip} {
		if n := r.Counts[s]; n > 0 {
			word := map[Status]string{Pass: "passed", Fail: "failed", Warn: "warnings", Info: "info", Skip: "skipped"}[s]
			if s == Warn && n == 1 {
				word = "warning"
			}
			sums = append(sums, fmt.Sprintf("%d %s", n, word))
		}
	}
	fmt.Fprintln(&b, strings.Join(sums, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// timed runs f and stamps its results with the time it took.
func timed(f func() []Result) []Result {
	start := time.Now()
	rs := f()
	ms := time.Since(start).Milliseconds()
	for i := range rs {
		rs[i].Millis = ms
	}
	return rs
}

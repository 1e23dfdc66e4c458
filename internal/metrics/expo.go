package metrics

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// expo accumulates a scrape in the Prometheus text format, version 0.0.4.
// Its methods take labels already written as `k1="v1",k2="v2"` (see
// labels), or "" for none.
type expo struct{ b []byte }

// family writes a family's HELP and TYPE lines.
func (e *expo) family(name, typ, help string) {
	e.b = append(e.b, "# HELP "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = appendEscaped(e.b, help, false)
	e.b = append(e.b, "\n# TYPE "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = append(e.b, typ...)
	e.b = append(e.b, '\n')
}

// name writes name{labels} and the blank before the value.
func (e *expo) name(name, labels string) {
	e.b = append(e.b, name...)
	if labels != "" {
		e.b = append(e.b, '{')
		e.b = append(e.b, labels...)
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ' ')
}

// float writes a sample.
func (e *expo) float(name, labels string, v float64) {
	e.name(name, labels)
	e.b = appendFloat(e.b, v)
	e.b = append(e.b, '\n')
}

// uint writes a sample with an integer value.
func (e *expo) uint(name, labels string, v uint64) {
	e.name(name, labels)
	e.b = strconv.AppendUint(e.b, v, 10)
	e.b = append(e.b, '\n')
}

// gauge writes a family of one gauge sample without labels; counter the
// same for a counter.
func (e *expo) gauge(name, help string, v float64) {
	e.family(name, "gauge", help)
	e.float(name, "", v)
}

func (e *expo) counter(name, help string, v float64) {
	e.family(name, "counter", help)
	e.float(name, "", v)
}

// histogram writes h's series: its cumulative buckets, le last among the
// labels, then _sum and _count. _count is the buckets' total as read here,
// so it always equals the +Inf bucket.
func (e *expo) histogram(name, labels string, h *histogram) {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
		e.b = append(e.b, name...)
		e.b = append(e.b, "_bucket{"...)
		if labels != "" {
			e.b = append(e.b, labels...)
			e.b = append(e.b, ',')
		}
		e.b = append(e.b, `le="`...)
		if i < len(latencyBuckets) {
			e.b = strconv.AppendFloat(e.b, latencyBuckets[i], 'g', -1, 64)
		} else {
			e.b = append(e.b, "+Inf"...)
		}
		e.b = append(e.b, `"} `...)
		e.b = strconv.AppendUint(e.b, total, 10)
		e.b = append(e.b, '\n')
	}
	e.float(name+"_sum", labels, math.Float64frombits(h.sum.Load()))
	e.uint(name+"_count", labels, total)
}

// appendFloat writes v as the format reads it: a whole number without a
// fraction or exponent (as the metrics always were written here), else in
// Go's shortest %g form.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == math.Trunc(v) && v >= math.MinInt64 && v < math.MaxInt64:
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendLabelValue writes v escaped as a label value: a backslash, a
// double quote and a newline escaped, and invalid UTF-8, which the format
// forbids, replaced by U+FFFD (one per run of bad bytes).
func appendLabelValue(b []byte, v string) []byte {
	return appendEscaped(b, v, true)
}

// appendEscaped escapes a backslash and a newline, and a double quote if
// quote (HELP text leaves it be).
func appendEscaped(b []byte, v string, quote bool) []byte {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

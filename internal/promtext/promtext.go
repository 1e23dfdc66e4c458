// Package promtext parses the Prometheus text exposition format (version
// 0.0.4) strictly, for tests: it rejects what Prometheus would reject when
// scraping (a malformed line or label, a bad escape, invalid UTF-8, a
// second HELP or TYPE line, a family split in two, a duplicate series) and
// checks that every histogram is whole (cumulative buckets up to le="+Inf",
// which equals _count).
//
// Only tests import it, so it is never linked into a plugin.
package promtext

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Family is a metric family's metadata as read from its HELP and TYPE lines.
type Family struct {
	Help, Type string
	hasHelp    bool
}

// Exposition is a parsed scrape.
type Exposition struct {
	// Samples maps each series, written as `name{l1="v1",l2="v2"}` with the
	// labels in name order and the values escaped as in the format, to its
	// value.
	Samples map[string]float64
	// Families holds the families that had a HELP or TYPE line.
	Families map[string]*Family
}

// Key returns the Samples key of name with labels given as name, value
// pairs in any order.
func Key(name string, pairs ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return key(name, m)
}

var escaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func key(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n + `="` + escaper.Replace(labels[n]) + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

var validTypes = map[string]bool{"counter": true, "gauge": true, "histogram": true, "summary": true, "untyped": true}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// Parse parses text.
func Parse(text string) (*Exposition, error) {
	e := &Exposition{Samples: map[string]float64{}, Families: map[string]*Family{}}
	if text == "" {
		return e, nil
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("the text does not end with a newline")
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("the text is not valid UTF-8")
	}
	var (
		samples  []sample
		current  string              // the family of the previous line
		finished = map[string]bool{} // families whose lines are over
		seen     = map[string]bool{} // families with a sample
	)
	enter := func(family string, lineNo int) error {
		if family == current {
			return nil
		}
		if finished[family] {
			return fmt.Errorf("line %d: family %s resumes after another family's lines", lineNo, family)
		}
		if current != "" {
			finished[current] = true
		}
		current = family
		return nil
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		n := i + 1
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			fields := strings.Fields(line[1:])
			if len(fields) < 2 || (fields[0] != "HELP" && fields[0] != "TYPE") {
				continue // a plain comment
			}
			name := fields[1]
			if !validName(name, true) {
				return nil, fmt.Errorf("line %d: bad metric name %q", n, name)
			}
			if err := enter(name, n); err != nil {
				return nil, err
			}
			f := e.Families[name]
			if f == nil {
				f = &Family{}
				e.Families[name] = f
			}
			switch fields[0] {
			case "HELP":
				if f.hasHelp {
					return nil, fmt.Errorf("line %d: second HELP line for %s", n, name)
				}
				f.hasHelp = true
				_, f.Help, _ = strings.Cut(strings.TrimLeft(line[1:], " \t")[len("HELP"):], name)
				f.Help = strings.TrimLeft(f.Help, " \t")
			case "TYPE":
				if f.Type != "" {
					return nil, fmt.Errorf("line %d: second TYPE line for %s", n, name)
				}
				if seen[name] {
					return nil, fmt.Errorf("line %d: TYPE line for %s after its samples", n, name)
				}
				if len(fields) != 3 || !validTypes[fields[2]] {
					return nil, fmt.Errorf("line %d: bad TYPE line %q", n, line)
				}
				f.Type = fields[2]
			}
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v: %q", n, err, line)
		}
		family := s.name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(s.name, suffix)
			if f := e.Families[base]; ok && f != nil && (f.Type == "histogram" || f.Type == "summary" && suffix != "_bucket") {
				family = base
			}
		}
		if err := enter(family, n); err != nil {
			return nil, err
		}
		seen[family] = true
		k := key(s.name, s.labels)
		if _, dup := e.Samples[k]; dup {
			return nil, fmt.Errorf("line %d: second sample for %s", n, k)
		}
		e.Samples[k] = s.value
		samples = append(samples, s)
	}
	return e, checkHistograms(e, samples)
}

// checkHistograms checks each histogram series: buckets cumulative and
// ending in le="+Inf", which equals _count; _sum present.
func checkHistograms(e *Exposition, samples []sample) error {
	type bucket struct{ le, count float64 }
	buckets := map[string][]bucket{}
	for _, s := range samples {
		base, ok := strings.CutSuffix(s.name, "_bucket")
		if f := e.Families[base]; !ok || f == nil || f.Type != "histogram" {
			continue
		}
		leText, ok := s.labels["le"]
		if !ok {
			return fmt.Errorf("%s: a bucket without le", key(s.name, s.labels))
		}
		le, err := strconv.ParseFloat(leText, 64)
		if err != nil {
			return fmt.Errorf("%s: le %q: %v", key(s.name, s.labels), leText, err)
		}
		rest := map[string]string{}
		for k, v := range s.labels {
			if k != "le" {
				rest[k] = v
			}
		}
		k := key(base, rest)
		buckets[k] = append(buckets[k], bucket{le, s.value})
	}
	for k, bs := range buckets {
		slices.SortFunc(bs, func(a, b bucket) int {
			if a.le < b.le {
				return -1
			}
			if a.le > b.le {
				return 1
			}
			return 0
		})
		for i := 1; i < len(bs); i++ {
			if bs[i].count < bs[i-1].count {
				return fmt.Errorf("%s: bucket le=%g holds %g, fewer than le=%g's %g", k, bs[i].le, bs[i].count, bs[i-1].le, bs[i-1].count)
			}
		}
		last := bs[len(bs)-1]
		if !math.IsInf(last.le, 1) {
			return fmt.Errorf("%s: no le=\"+Inf\" bucket", k)
		}
		name, labels, _ := strings.Cut(k, "{")
		if labels != "" {
			labels = "{" + labels
		}
		count, ok := e.Samples[name+"_count"+labels]
		if !ok || count != last.count {
			return fmt.Errorf("%s: _count %g (present %v), +Inf bucket %g", k, count, ok, last.count)
		}
		if _, ok := e.Samples[name+"_sum"+labels]; !ok {
			return fmt.Errorf("%s: no _sum", k)
		}
	}
	return nil
}

func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' || colon && c == ':'
		if !ok {
			return false
		}
	}
	return true
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' && line[i] != '\t' {
		i++
	}
	s.name = line[:i]
	if !validName(s.name, true) {
		return s, fmt.Errorf("bad metric name %q", s.name)
	}
	rest := line[i:]
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 {
				return s, fmt.Errorf("no = after a label name")
			}
			name := strings.TrimRight(rest[:eq], " \t")
			if !validName(name, false) {
				return s, fmt.Errorf("bad label name %q", name)
			}
			if _, dup := s.labels[name]; dup {
				return s, fmt.Errorf("label %s twice", name)
			}
			rest = strings.TrimLeft(rest[eq+1:], " \t")
			if !strings.HasPrefix(rest, `"`) {
				return s, fmt.Errorf("label %s: no opening quote", name)
			}
			rest = rest[1:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '"' {
					rest, closed = rest[j+1:], true
					break
				}
				if c == '\n' {
					return s, fmt.Errorf("label %s: a raw newline", name)
				}
				if c == '\\' {
					if j+1 == len(rest) {
						break
					}
					j++
					switch rest[j] {
					case '\\':
						v.WriteByte('\\')
					case '"':
						v.WriteByte('"')
					case 'n':
						v.WriteByte('\n')
					default:
						return s, fmt.Errorf("label %s: bad escape \\%c", name, rest[j])
					}
					continue
				}
				v.WriteByte(c)
			}
			if !closed {
				return s, fmt.Errorf("label %s: no closing quote", name)
			}
			s.labels[name] = v.String()
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				return s, fmt.Errorf("label %s: neither , nor } after the value", name)
			}
		}
	}
	if rest == "" || rest[0] != ' ' && rest[0] != '\t' {
		return s, fmt.Errorf("no blank before the value")
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("bad value %q", fields[0])
	}
	s.value = v
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return s, fmt.Errorf("bad timestamp %q", fields[1])
		}
	}
	return s, nil
}

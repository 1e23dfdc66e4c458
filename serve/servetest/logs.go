package servetest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// LogRecord is one line the plugin wrote to stderr, parsed when it is an
// hclog JSON record.
type LogRecord struct {
	Level, Message string
	Fields         map[string]any
	// Raw is the line as written.
	Raw string
}

// lineLog collects the plugin's stderr. go-plugin writes each line and
// its newline in separate calls, so lines are assembled here.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(b), nil
}

func (l *lineLog) records() []LogRecord {
	l.mu.Lock()
	lines := append([]string(nil), l.lines...)
	l.mu.Unlock()
	out := make([]LogRecord, 0, len(lines))
	for _, line := range lines {
		r := LogRecord{Raw: line}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			r.Level, _ = m["@level"].(string)
			r.Message, _ = m["@message"].(string)
			delete(m, "@level")
			delete(m, "@message")
			r.Fields = m
		} else {
			r.Message = line
		}
		out = append(out, r)
	}
	return out
}

// lastError returns the message of the last ERROR record on stderr, or ""
// if there is none.
func (l *lineLog) lastError() string {
	recs := l.records()
	for i := len(recs) - 1; i >= 0; i-- {
		if strings.EqualFold(recs[i].Level, "error") && recs[i].Message != "" {
			return recs[i].Message
		}
	}
	return ""
}

// last returns the last n lines, or all if there are fewer.
func (l *lineLog) last(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return append([]string(nil), lines...)
}

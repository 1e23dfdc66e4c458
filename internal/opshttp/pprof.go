package opshttp

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"time"
)

// maxSeconds bounds a CPU profile or trace request: long enough for any
// investigation, short enough that a typo does not profile for a day.
const maxSeconds = 600

// index lists the profiles, as text: the readers are curl and go tool pprof.
func index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "profiles (go tool pprof http://%s/debug/pprof/NAME; add ?debug=1 for text):\n", r.Host)
	for _, p := range pprof.Profiles() {
		fmt.Fprintf(w, "  %-14s %d\n", p.Name(), p.Count())
	}
	fmt.Fprintln(w, "  profile        CPU profile, ?seconds=30 by default")
	fmt.Fprintln(w, "  trace          execution trace (go tool trace), ?seconds=1 by default")
}

// namedProfile writes a runtime/pprof profile: the protobuf format that go
// tool pprof reads, or text with ?debug=1 (?debug=2 for goroutine stacks
// as a panic prints them). ?gc=1 runs a collection before a heap profile.
func namedProfile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p := pprof.Lookup(name)
	if p == nil {
		http.Error(w, fmt.Sprintf("unknown profile %q (see /debug/pprof/)", name), http.StatusNotFound)
		return
	}
	if r.FormValue("seconds") != "" {
		http.Error(w, "delta profiles (?seconds=) are not supported here: take two profiles and use go tool pprof -base", http.StatusBadRequest)
		return
	}
	debug, _ := strconv.Atoi(r.FormValue("debug"))
	if name == "heap" && r.FormValue("gc") != "" {
		runtime.GC()
	}
	setContentType(w, name, debug > 0)
	// An error here is a client gone mid-write: the header is out and
	// there is nothing left to tell it.
	_ = p.WriteTo(w, debug)
}

// cpuProfile profiles the CPU for ?seconds (30 by default), or until the
// client goes away or the endpoint closes.
func cpuProfile(w http.ResponseWriter, r *http.Request) {
	record(w, r, 30, "profile", "a CPU profile", pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// executionTrace records an execution trace for ?seconds (1 by default).
func executionTrace(w http.ResponseWriter, r *http.Request) {
	record(w, r, 1, "trace", "a trace", trace.Start, trace.Stop)
}

// record streams what start writes to w for ?seconds (def by default), or
// until the client goes away, then stops. The runtime allows one of each
// at a time: a second request is refused with a conflict.
func record(w http.ResponseWriter, r *http.Request, def int, name, what string, start func(io.Writer) error, stop func()) {
	d, ok := seconds(w, r, def)
	if !ok {
		return
	}
	setContentType(w, name, false)
	if err := start(w); err != nil {
		w.Header().Del("Content-Disposition")
		http.Error(w, "cannot start "+what+": "+err.Error(), http.StatusConflict)
		return
	}
	wait(r, d)
	stop()
}

func seconds(w http.ResponseWriter, r *http.Request, def int) (time.Duration, bool) {
	s := r.FormValue("seconds")
	if s == "" {
		return time.Duration(def) * time.Second, true
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || n > maxSeconds {
		http.Error(w, fmt.Sprintf("seconds=%q: want a number above 0 and at most %d", s, maxSeconds), http.StatusBadRequest)
		return 0, false
	}
	return time.Duration(n * float64(time.Second)), true
}

func wait(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func setContentType(w http.ResponseWriter, name string, text bool) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if text {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
}

// Package metrics counts a plugin's requests and serves them in the
// Prometheus text format (version 0.0.4), with no library.
//
// Every plugin binary links this package, metrics on or off, and Go runs
// the initialization of every linked package before main: so this package
// and what it imports do no work at initialization — no init functions and
// no package-level variable computed by a call; its tables are constants or
// literals the linker lays out. (The libraries tried before cost exactly
// that: prometheus/client_golang registers a Go and a process collector in
// a global registry, about a millisecond and 1.8 MiB resident; and
// VictoriaMetrics/metrics reads cgroup and PSI files, compiles a regexp and
// builds runtime/metrics tables: 0.25 to 0.4 ms, and runtime/metrics' own
// init 0.1 to 0.15 ms more, on every start, for a feature that is off by
// default.) The format is small enough to write by hand: counters, gauges
// and fixed-bucket histograms, plus the Go runtime and process metrics,
// read when scraped.
//
// Nothing here is global: each Recorder keeps its own series, so two in one
// process (tests) never collide.
//
// A Recorder is created only when an operator turns the metrics on; serve
// then wraps each backend or database instance once, when it is built, so a
// plugin without metrics pays nothing per request.
package metrics

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// latencyBuckets are the upper bounds, in seconds, of the latency
// histograms' buckets. They start at half a millisecond, where a plugin's
// in-memory requests sit, step by about 2.5x (fine enough to tell a cache
// hit from a round trip to an API), and end at 30 s, a third of Vault's
// default max_request_duration (90 s), where a backend calling out to a
// slow API ends up; slower requests count in +Inf only. Fifteen buckets
// keep a series at 18 lines. An array, so that a histogram's counts are an
// array too, sized at compile time.
var latencyBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// maxSeries bounds the (operation, mount) pairs recorded apart. Operations
// are few (Vault's logical.Operation values) but mounts are the host's to
// create, and each pair costs a histogram (18 lines per scrape). 1024 pairs
// is some 200 mounts using five operations each; the pairs seen after that
// are recorded together under overflowLabel, so that a runaway number of
// mounts costs neither memory nor scrape size without bound.
const maxSeries = 1024

// overflowLabel is the operation and the mount of the requests recorded
// past maxSeries. Vault's mount points end in a slash, so it names no mount.
const overflowLabel = "_other"

// The metric families' names, types and help texts.
const (
	requestsName  = "vaultplugin_requests_total"
	requestsHelp  = "Requests handled by the plugin's backends, by operation and mount point."
	errorsName    = "vaultplugin_request_errors_total"
	errorsHelp    = "Requests that returned an error or an error response, by operation and mount point."
	latencyName   = "vaultplugin_request_duration_seconds"
	latencyHelp   = "Time the backend took to handle a request, by operation and mount point."
	dbCallsName   = "vaultplugin_database_calls_total"
	dbCallsHelp   = "Database plugin calls, by method."
	dbErrorsName  = "vaultplugin_database_call_errors_total"
	dbErrorsHelp  = "Database plugin calls that returned an error, by method."
	dbLatencyName = "vaultplugin_database_call_duration_seconds"
	dbLatencyHelp = "Time the database plugin took to answer a call, by method."
	inflightName  = "vaultplugin_requests_in_flight"
	inflightHelp  = "Requests and database calls being handled now."
	mountsName    = "vaultplugin_mounts"
	mountsHelp    = "Backend instances (one per Vault mount) served by this process."
	dbConnsName   = "vaultplugin_database_connections"
	dbConnsHelp   = "Database instances initialized and not yet closed (one per Vault database connection)."
	infoName      = "vaultplugin_plugin_info"
	infoHelp      = "Always 1; the labels name the plugin binary and the version it reports to Vault."
)

// Recorder holds the plugin's metrics and wraps instances to record them.
type Recorder struct {
	info string // plugin_info's labels, escaped

	inflight, mounts, dbConns atomic.Int64

	// series maps each (operation, mount) pair seen to its series. The
	// map is copied on write (a new pair is rare: operations are few and
	// so are mounts), so a read is a plain atomic load that writes no
	// shared memory, unlike a read lock, whose counter every core would
	// bounce.
	series   atomic.Pointer[map[seriesKey]*series]
	overflow atomic.Pointer[series]

	mu sync.Mutex // serializes writers of series, overflow, byLabels, db
	// byLabels holds every request series by its labels: two pairs whose
	// labels escape alike (invalid UTF-8) share one, and a scrape lists
	// them from here.
	byLabels map[string]*series

	db [numMethods]atomic.Pointer[series]
}

type seriesKey struct{ operation, mount string }

// series holds one label set's three metrics; creating them together makes
// the error counter appear at 0, which keeps error-ratio queries defined.
type series struct {
	labels           string // `k1="v1",k2="v2"`, escaped
	requests, errors atomic.Uint64
	latency          histogram
}

// histogram counts observations in latencyBuckets. Each bucket counts the
// observations that fall in it alone (the last, past the largest bound:
// +Inf), and a scrape adds them up, so an observation is two atomic adds
// and a CAS loop, with no lock.
type histogram struct {
	counts [len(latencyBuckets) + 1]atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(latencyBuckets) && v > latencyBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// DBMethod is a database method, recorded by name. The wrapper that
// records them is in package dbmetrics, so that a backend plugin does not
// link the database SDK.
type DBMethod int

// The database methods recorded.
const (
	DBInitialize DBMethod = iota
	DBNewUser
	DBUpdateUser
	DBDeleteUser
	numMethods
)

var methodNames = [numMethods]string{"Initialize", "NewUser", "UpdateUser", "DeleteUser"}

// New returns a Recorder that also serves the Go runtime and process metrics
// and a plugin_info gauge naming the plugin and the version it reports.
func New(name, version string) *Recorder {
	r := &Recorder{
		info:     labels("name", name, "version", version),
		byLabels: map[string]*series{},
	}
	r.series.Store(&map[seriesKey]*series{})
	return r
}

// labels returns `k1="v1",k2="v2"` for pairs k1, v1, k2, v2, with the
// values escaped as the text format requires.
func labels(pairs ...string) string {
	var b []byte
	for i := 0; i < len(pairs); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, pairs[i]...)
		b = append(b, `="`...)
		b = appendLabelValue(b, pairs[i+1])
		b = append(b, '"')
	}
	return string(b)
}

func (r *Recorder) seriesFor(operation, mount string) *series {
	k := seriesKey{operation, mount}
	cached := *r.series.Load()
	if s := cached[k]; s != nil {
		return s
	}
	if len(cached) >= maxSeries {
		if s := r.overflow.Load(); s != nil {
			return s
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.series.Load()
	if s := old[k]; s != nil {
		return s
	}
	if len(old) >= maxSeries {
		s := r.overflow.Load()
		if s == nil {
			s = r.requestSeriesLocked(overflowLabel, overflowLabel)
			r.overflow.Store(s)
		}
		return s
	}
	s := r.requestSeriesLocked(operation, mount)
	m := make(map[seriesKey]*series, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[k] = s
	r.series.Store(&m)
	return s
}

// requestSeriesLocked returns the series of the pair's labels, new or
// shared. r.mu is held.
func (r *Recorder) requestSeriesLocked(operation, mount string) *series {
	// Labels in name order, as Prometheus prints them.
	l := labels("mount", mount, "operation", operation)
	s := r.byLabels[l]
	if s == nil {
		s = &series{labels: l}
		r.byLabels[l] = s
	}
	return s
}

// dbSeries returns a method's series, created by its first call (so a
// plugin that is not a database shows no database series).
func (r *Recorder) dbSeries(method DBMethod) *series {
	p := &r.db[method]
	if s := p.Load(); s != nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := p.Load()
	if s == nil {
		s = &series{labels: labels("method", methodNames[method])}
		p.Store(s)
	}
	return s
}

// contentType is that of the Prometheus text format, version 0.0.4.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the metrics in the Prometheus text format.
func (r *Recorder) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var e expo
		r.write(&e)
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(e.b)
	})
}

// write writes every family, in name order, with its HELP and TYPE lines (a
// family with no series yet is left out, lines and all), then the Go
// runtime and process metrics.
func (r *Recorder) write(e *expo) {
	var db []*series
	for i := range r.db {
		if s := r.db[i].Load(); s != nil {
			db = append(db, s)
		}
	}
	r.mu.Lock()
	reqs := make([]*series, 0, len(r.byLabels))
	for _, s := range r.byLabels {
		reqs = append(reqs, s)
	}
	r.mu.Unlock()
	byLabels := func(a, b *series) int { return strings.Compare(a.labels, b.labels) }
	slices.SortFunc(db, byLabels)
	slices.SortFunc(reqs, byLabels)

	writeSeries(e, dbLatencyName, "histogram", dbLatencyHelp, db, func(s *series) { e.histogram(dbLatencyName, s.labels, &s.latency) })
	writeSeries(e, dbErrorsName, "counter", dbErrorsHelp, db, func(s *series) { e.uint(dbErrorsName, s.labels, s.errors.Load()) })
	writeSeries(e, dbCallsName, "counter", dbCallsHelp, db, func(s *series) { e.uint(dbCallsName, s.labels, s.requests.Load()) })
	e.family(dbConnsName, "gauge", dbConnsHelp)
	e.float(dbConnsName, "", float64(r.dbConns.Load()))
	e.family(mountsName, "gauge", mountsHelp)
	e.float(mountsName, "", float64(r.mounts.Load()))
	e.family(infoName, "gauge", infoHelp)
	e.float(infoName, r.info, 1)
	writeSeries(e, latencyName, "histogram", latencyHelp, reqs, func(s *series) { e.histogram(latencyName, s.labels, &s.latency) })
	writeSeries(e, errorsName, "counter", errorsHelp, reqs, func(s *series) { e.uint(errorsName, s.labels, s.errors.Load()) })
	e.family(inflightName, "gauge", inflightHelp)
	e.float(inflightName, "", float64(r.inflight.Load()))
	writeSeries(e, requestsName, "counter", requestsHelp, reqs, func(s *series) { e.uint(requestsName, s.labels, s.requests.Load()) })

	writeGoMetrics(e)
	writeProcessMetrics(e)
}

// writeSeries writes a family with one's lines for each series, unless it
// has no series.
func writeSeries(e *expo, name, typ, help string, ss []*series, one func(*series)) {
	if len(ss) == 0 {
		return
	}
	e.family(name, typ, help)
	for _, s := range ss {
		one(s)
	}
}

// Backend wraps b so that its requests are recorded and it counts as a
// mount until its Cleanup. Only HandleRequest and Cleanup are overridden:
// the embedded interface keeps every other method as b's.
func (r *Recorder) Backend(b logical.Backend) logical.Backend {
	r.mounts.Add(1)
	return &backend{Backend: b, r: r}
}

type backend struct {
	logical.Backend
	r       *Recorder
	cleaned atomic.Bool
}

// HandleRequest records the request around b's. A panic passing through
// is counted as an error; it is not recovered here.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (resp *logical.Response, err error) {
	var op, mount string
	if req != nil {
		op, mount = string(req.Operation), req.MountPoint
	}
	s := b.r.seriesFor(op, mount)
	b.r.inflight.Add(1)
	start := time.Now()
	ok := false
	defer func() {
		s.latency.observe(time.Since(start).Seconds())
		b.r.inflight.Add(-1)
		s.requests.Add(1)
		if !ok || err != nil || resp.IsError() {
			s.errors.Add(1)
		}
	}()
	resp, err = b.Backend.HandleRequest(ctx, req)
	ok = true
	return resp, err
}

// Cleanup ends the mount: it no longer counts, even if the host calls
// Cleanup again.
func (b *backend) Cleanup(ctx context.Context) {
	if !b.cleaned.Swap(true) {
		b.r.mounts.Add(-1)
	}
	b.Backend.Cleanup(ctx)
}

// DBCall is one database call being recorded; End records its end.
type DBCall struct {
	r     *Recorder
	s     *series
	start time.Time
}

// BeginDB counts a call of method in flight and starts its clock. It
// returns a value, not a closure, so that recording allocates nothing.
func (r *Recorder) BeginDB(method DBMethod) DBCall {
	r.inflight.Add(1)
	return DBCall{r: r, s: r.dbSeries(method), start: time.Now()}
}

// End records the call with its error (nil for success).
func (c DBCall) End(err error) {
	c.s.latency.observe(time.Since(c.start).Seconds())
	c.r.inflight.Add(-1)
	c.s.requests.Add(1)
	if err != nil {
		c.s.errors.Add(1)
	}
}

// ConnOpened counts a database connection, from its first successful
// Initialize; ConnClosed ends it.
func (r *Recorder) ConnOpened() { r.dbConns.Add(1) }

// ConnClosed ends a connection ConnOpened counted.
func (r *Recorder) ConnClosed() { r.dbConns.Add(-1) }

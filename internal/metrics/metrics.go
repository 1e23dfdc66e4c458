// Package metrics counts a plugin's requests and serves them in the
// Prometheus text format, with github.com/VictoriaMetrics/metrics.
//
// That library, not prometheus/client_golang, because merely importing
// client_golang costs every plugin binary, metrics on or off: its package
// init registers a Go and a process collector in a global registry (about a
// millisecond more before the handshake, 1.8 MiB more resident at idle) and
// it adds 2.1 MiB to the binary. VictoriaMetrics' init only creates an empty
// default Set, which this package never uses.
//
// Nothing here is global: each Recorder keeps its metrics in Sets of its own
// (one per metric family), so two in one process (tests) never collide and
// nothing is exported through the library's default Set or global
// WritePrometheus. The library's one global switch, ExposeMetadata, is left
// alone: Recorder writes the HELP and TYPE lines of its own families itself
// (and drops any the library adds, should something else in the process
// turn that switch on). The Go runtime and process metrics (go_*, process_*)
// come from the library's writers and have no HELP or TYPE lines unless that
// switch is on: Prometheus ingests them as untyped, which changes nothing for
// queries.
//
// A Recorder is created only when an operator turns the metrics on; serve
// then wraps each backend or database instance once, when it is built, so a
// plugin without metrics pays nothing per request.
package metrics

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/vault/sdk/logical"
)

// latencyBuckets are the upper bounds, in seconds, of the latency
// histograms' buckets. They start at half a millisecond, where a plugin's
// in-memory requests sit, step by about 2.5x (fine enough to tell a cache
// hit from a round trip to an API), and end at 30 s, a third of Vault's
// default max_request_duration (90 s), where a backend calling out to a
// slow API ends up; slower requests count in +Inf only. Fifteen buckets
// keep a series at 18 lines.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

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

// family is one metric family: its HELP and TYPE lines and a Set holding
// its series.
type family struct {
	name, typ, help string
	set             *vm.Set
}

// Recorder holds the plugin's metrics and wraps instances to record them.
type Recorder struct {
	families []*family // in name order

	requests, errors, latency    *family
	dbCalls, dbErrors, dbLatency *family

	// Read by gauges when scraped: an atomic add per request instead of
	// the float CAS loop of the library's Gauge.Add.
	inflight, mounts, dbConns atomic.Int64

	mu           sync.Mutex // serializes writers of series
	series       atomic.Pointer[map[seriesKey]*series]
	overflowOnce sync.Once
	overflow     *series

	db [numMethods]dbSlot
}

// series caches each (operation, mount) pair's three metrics, so a request
// costs one map read instead of building three names; creating all three
// together also makes the error counter appear at 0, which keeps
// error-ratio queries defined. The map is copied on write (a new pair is
// rare: operations are few and so are mounts), so a read is a plain atomic
// load that writes no shared memory, unlike a read lock, whose counter every
// core would bounce.
type seriesKey struct{ operation, mount string }

type series struct {
	requests, errors *vm.Counter
	latency          *vm.PrometheusHistogram
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

// dbSlot holds a method's metrics, created by its first call (so a plugin
// that is not a database shows no database series).
type dbSlot struct {
	once sync.Once
	s    series
}

// New returns a Recorder that also serves the Go runtime and process metrics
// and a plugin_info gauge naming the plugin and the version it reports.
func New(name, version string) *Recorder {
	r := &Recorder{}
	newFamily := func(name, typ, help string) *family {
		f := &family{name: name, typ: typ, help: help, set: vm.NewSet()}
		r.families = append(r.families, f)
		return f
	}
	r.requests = newFamily("vaultplugin_requests_total", "counter",
		"Requests handled by the plugin's backends, by operation and mount point.")
	r.errors = newFamily("vaultplugin_request_errors_total", "counter",
		"Requests that returned an error or an error response, by operation and mount point.")
	r.latency = newFamily("vaultplugin_request_duration_seconds", "histogram",
		"Time the backend took to handle a request, by operation and mount point.")
	r.dbCalls = newFamily("vaultplugin_database_calls_total", "counter",
		"Database plugin calls, by method.")
	r.dbErrors = newFamily("vaultplugin_database_call_errors_total", "counter",
		"Database plugin calls that returned an error, by method.")
	r.dbLatency = newFamily("vaultplugin_database_call_duration_seconds", "histogram",
		"Time the database plugin took to answer a call, by method.")
	gauge := func(name, help string, v *atomic.Int64) {
		newFamily(name, "gauge", help).set.NewGauge(name, func() float64 { return float64(v.Load()) })
	}
	gauge("vaultplugin_requests_in_flight", "Requests and database calls being handled now.", &r.inflight)
	gauge("vaultplugin_mounts", "Backend instances (one per Vault mount) served by this process.", &r.mounts)
	gauge("vaultplugin_database_connections",
		"Database instances initialized and not yet closed (one per Vault database connection).", &r.dbConns)
	const info = "vaultplugin_plugin_info"
	newFamily(info, "gauge", "Always 1; the labels name the plugin binary and the version it reports to Vault.").
		set.NewGauge(info+labels("name", name, "version", version), func() float64 { return 1 })
	slices.SortFunc(r.families, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	r.series.Store(&map[seriesKey]*series{})
	return r
}

// labelEscaper escapes a label value as the text format requires.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// labels returns `{k1="v1",k2="v2"}` for pairs k1, v1, k2, v2, with the
// values escaped, and made valid UTF-8 (which the format requires).
func labels(pairs ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < len(pairs); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(pairs[i])
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(strings.ToValidUTF8(pairs[i+1], "\uFFFD")))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// newSeries returns the metrics of one label set. GetOrCreate, not New:
// two keys whose labels escape alike (invalid UTF-8) share the series
// instead of panicking on a second registration.
func (r *Recorder) newSeries(requests, errors, latency *family, l string) series {
	return series{
		requests: requests.set.GetOrCreateCounter(requests.name + l),
		errors:   errors.set.GetOrCreateCounter(errors.name + l),
		latency:  latency.set.GetOrCreatePrometheusHistogramExt(latency.name+l, latencyBuckets),
	}
}

func (r *Recorder) seriesFor(operation, mount string) *series {
	k := seriesKey{operation, mount}
	cached := *r.series.Load()
	if s := cached[k]; s != nil {
		return s
	}
	if len(cached) >= maxSeries {
		return r.overflowSeries()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.series.Load()
	if s := old[k]; s != nil {
		return s
	}
	if len(old) >= maxSeries {
		return r.overflowSeries()
	}
	// Labels in name order, as Prometheus prints them.
	s := r.newSeries(r.requests, r.errors, r.latency, labels("mount", mount, "operation", operation))
	m := make(map[seriesKey]*series, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[k] = &s
	r.series.Store(&m)
	return &s
}

func (r *Recorder) overflowSeries() *series {
	r.overflowOnce.Do(func() {
		s := r.newSeries(r.requests, r.errors, r.latency, labels("mount", overflowLabel, "operation", overflowLabel))
		r.overflow = &s
	})
	return r.overflow
}

func (r *Recorder) dbSeries(method int) *series {
	d := &r.db[method]
	d.once.Do(func() {
		d.s = r.newSeries(r.dbCalls, r.dbErrors, r.dbLatency, labels("method", methodNames[method]))
	})
	return &d.s
}

// contentType is that of the Prometheus text format, version 0.0.4.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the metrics in the Prometheus text format.
func (r *Recorder) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var buf bytes.Buffer
		r.write(&buf)
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(buf.Bytes())
	})
}

// write writes every family with its HELP and TYPE lines (a family with no
// series yet is left out, lines and all), then the Go runtime and process
// metrics. Those are written by the library's WriteGoMetrics,
// WriteProcMetrics and WriteFDMetrics: WriteProcessMetrics would add the
// library's push client metrics, which a plugin never uses, and leave out
// process_open_fds and process_max_fds.
func (r *Recorder) write(w *bytes.Buffer) {
	var tmp bytes.Buffer
	for _, f := range r.families {
		tmp.Reset()
		f.set.WritePrometheus(&tmp)
		if tmp.Len() == 0 {
			continue
		}
		w.WriteString("# HELP " + f.name + " " + f.help + "\n")
		w.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
		// Drop the library's own metadata lines, written when something
		// turned its global ExposeMetadata on: a second TYPE line for a
		// family makes the whole scrape invalid.
		for rest := tmp.Bytes(); len(rest) > 0; {
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i+1], rest[i+1:]
			} else {
				rest = nil
			}
			if line[0] != '#' {
				w.Write(line)
			}
		}
	}
	vm.WriteGoMetrics(w)
	vm.WriteProcMetrics(w)
	vm.WriteFDMetrics(w)
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
		s.latency.Update(time.Since(start).Seconds())
		b.r.inflight.Add(-1)
		s.requests.Inc()
		if !ok || err != nil || resp.IsError() {
			s.errors.Inc()
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
	return DBCall{r: r, s: r.dbSeries(int(method)), start: time.Now()}
}

// End records the call with its error (nil for success).
func (c DBCall) End(err error) {
	c.s.latency.Update(time.Since(c.start).Seconds())
	c.r.inflight.Add(-1)
	c.s.requests.Inc()
	if err != nil {
		c.s.errors.Inc()
	}
}

// ConnOpened counts a database connection, from its first successful
// Initialize; ConnClosed ends it.
func (r *Recorder) ConnOpened() { r.dbConns.Add(1) }

// ConnClosed ends a connection ConnOpened counted.
func (r *Recorder) ConnClosed() { r.dbConns.Add(-1) }

// Package metrics counts a plugin's requests in Prometheus form. Nothing
// here is global: each Recorder has a registry of its own, so two in one
// process (tests) never collide and nothing is exported by accident through
// prometheus.DefaultRegisterer.
//
// A Recorder is created only when an operator turns the metrics on; serve
// then wraps each backend or database instance once, when it is built, so a
// plugin without metrics pays nothing per request.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyBuckets are in seconds. They start below a millisecond, where a
// plugin's in-memory requests sit, and end at Vault's own default request
// limit range, where a backend calling out to a slow API ends up.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Recorder holds the plugin's metrics and wraps instances to record them.
type Recorder struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight atomic.Int64 // read by a GaugeFunc: an atomic add per request instead of a float CAS loop
	mounts   prometheus.Gauge

	dbCalls   *prometheus.CounterVec
	dbErrors  *prometheus.CounterVec
	dbLatency *prometheus.HistogramVec
	dbConns   prometheus.Gauge

	// series caches each (operation, mount) pair's three children, so a
	// request costs one map read instead of three label hashes; creating
	// all three together also makes the error counter appear at 0, which
	// keeps error-ratio queries defined. The map is copied on write (a new
	// pair is rare: operations are few and so are mounts), so a read is a
	// plain atomic load that writes no shared memory, unlike a read lock,
	// whose counter every core would bounce.
	mu     sync.Mutex // serializes writers
	series atomic.Pointer[map[seriesKey]*series]
}

type seriesKey struct{ operation, mount string }

type series struct {
	requests, errors prometheus.Counter
	latency          prometheus.Observer
}

// New returns a Recorder whose registry also holds the Go runtime and
// process collectors and a plugin_info gauge naming the plugin and the
// version it reports.
func New(name, version string) *Recorder {
	r := &Recorder{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaultplugin_requests_total",
			Help: "Requests handled by the plugin's backends, by operation and mount point.",
		}, []string{"operation", "mount"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaultplugin_request_errors_total",
			Help: "Requests that returned an error or an error response, by operation and mount point.",
		}, []string{"operation", "mount"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vaultplugin_request_duration_seconds",
			Help:    "Time the backend took to handle a request, by operation and mount point.",
			Buckets: latencyBuckets,
		}, []string{"operation", "mount"}),
		mounts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vaultplugin_mounts",
			Help: "Backend instances (one per Vault mount) served by this process.",
		}),
		dbCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaultplugin_database_calls_total",
			Help: "Database plugin calls, by method.",
		}, []string{"method"}),
		dbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaultplugin_database_call_errors_total",
			Help: "Database plugin calls that returned an error, by method.",
		}, []string{"method"}),
		dbLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vaultplugin_database_call_duration_seconds",
			Help:    "Time the database plugin took to answer a call, by method.",
			Buckets: latencyBuckets,
		}, []string{"method"}),
		dbConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vaultplugin_database_connections",
			Help: "Database instances initialized and not yet closed (one per Vault database connection).",
		}),
	}
	r.series.Store(&map[seriesKey]*series{})
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "vaultplugin_plugin_info",
		Help:        "Always 1; the labels name the plugin binary and the version it reports to Vault.",
		ConstLabels: prometheus.Labels{"name": name, "version": version},
	})
	info.Set(1)
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vaultplugin_requests_in_flight",
		Help: "Requests and database calls being handled now.",
	}, func() float64 { return float64(r.inflight.Load()) })
	r.reg.MustRegister(
		r.requests, r.errors, r.latency, inflight, r.mounts,
		r.dbCalls, r.dbErrors, r.dbLatency, r.dbConns, info,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// Handler serves the registry in the Prometheus text format.
func (r *Recorder) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

func (r *Recorder) seriesFor(operation, mount string) *series {
	k := seriesKey{operation, mount}
	if s := (*r.series.Load())[k]; s != nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.series.Load()
	if s := old[k]; s != nil {
		return s
	}
	s := &series{
		requests: r.requests.WithLabelValues(operation, mount),
		errors:   r.errors.WithLabelValues(operation, mount),
		latency:  r.latency.WithLabelValues(operation, mount),
	}
	m := make(map[seriesKey]*series, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[k] = s
	r.series.Store(&m)
	return s
}

// Backend wraps b so that its requests are recorded and it counts as a
// mount until its Cleanup. Only HandleRequest and Cleanup are overridden:
// the embedded interface keeps every other method as b's.
func (r *Recorder) Backend(b logical.Backend) logical.Backend {
	r.mounts.Inc()
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
		s.latency.Observe(time.Since(start).Seconds())
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
		b.r.mounts.Dec()
	}
	b.Backend.Cleanup(ctx)
}

// Database wraps db so that its calls are recorded by method and it counts
// as a connection from a successful Initialize to its Close.
func (r *Recorder) Database(db dbplugin.Database) dbplugin.Database {
	return &database{next: db, r: r}
}

type database struct {
	next        dbplugin.Database
	r           *Recorder
	initialized atomic.Bool
}

// errPanicked is what err holds while a call runs: a call that panics never
// assigns its results, so observe counts it as an error. It never reaches
// the host, which sees the panic.
var errPanicked = errors.New("panicked")

// observe records one call; it is deferred with the call's error.
func (d *database) observe(method string, start time.Time, err *error) {
	d.r.dbLatency.WithLabelValues(method).Observe(time.Since(start).Seconds())
	d.r.inflight.Add(-1)
	d.r.dbCalls.WithLabelValues(method).Inc()
	if *err != nil {
		d.r.dbErrors.WithLabelValues(method).Inc()
	}
}

func (d *database) begin() time.Time {
	d.r.inflight.Add(1)
	return time.Now()
}

func (d *database) Initialize(ctx context.Context, req dbplugin.InitializeRequest) (resp dbplugin.InitializeResponse, err error) {
	defer d.observe("Initialize", d.begin(), &err)
	err = errPanicked
	resp, err = d.next.Initialize(ctx, req)
	if err == nil && !d.initialized.Swap(true) {
		d.r.dbConns.Inc()
	}
	return resp, err
}

func (d *database) NewUser(ctx context.Context, req dbplugin.NewUserRequest) (resp dbplugin.NewUserResponse, err error) {
	defer d.observe("NewUser", d.begin(), &err)
	err = errPanicked
	return d.next.NewUser(ctx, req)
}

func (d *database) UpdateUser(ctx context.Context, req dbplugin.UpdateUserRequest) (resp dbplugin.UpdateUserResponse, err error) {
	defer d.observe("UpdateUser", d.begin(), &err)
	err = errPanicked
	return d.next.UpdateUser(ctx, req)
}

func (d *database) DeleteUser(ctx context.Context, req dbplugin.DeleteUserRequest) (resp dbplugin.DeleteUserResponse, err error) {
	defer d.observe("DeleteUser", d.begin(), &err)
	err = errPanicked
	return d.next.DeleteUser(ctx, req)
}

func (d *database) Type() (string, error) { return d.next.Type() }

func (d *database) Close() error {
	if d.initialized.Swap(false) {
		d.r.dbConns.Dec()
	}
	return d.next.Close()
}

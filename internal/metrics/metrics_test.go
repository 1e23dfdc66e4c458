package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/internal/promtext"
)

// scrape serves r's metrics once and parses them strictly.
func scrape(t *testing.T, r *Recorder) (*promtext.Exposition, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != contentType {
		t.Fatalf("/metrics: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	e, err := promtext.Parse(body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return e, body
}

func want(t *testing.T, e *promtext.Exposition, samples map[string]float64) {
	t.Helper()
	for k, v := range samples {
		if got, ok := e.Samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

type okBackend struct{ logical.Backend }

func (okBackend) HandleRequest(_ context.Context, req *logical.Request) (*logical.Response, error) {
	if req.Path == "fail" {
		return logical.ErrorResponse("no"), nil
	}
	return nil, nil
}

func (okBackend) Cleanup(context.Context) {}

func request(b logical.Backend, op logical.Operation, mount, path string) {
	_, _ = b.HandleRequest(context.Background(), &logical.Request{Operation: op, MountPoint: mount, Path: path})
}

// Every family has its HELP and TYPE lines and the names, labels and
// buckets it had with client_golang; the runtime and process metrics are
// there.
func TestExposition(t *testing.T) {
	r := New("p", "v1.0.0")
	e, _ := scrape(t, r)
	want(t, e, map[string]float64{
		`vaultplugin_plugin_info{name="p",version="v1.0.0"}`: 1,
		"vaultplugin_mounts":               0,
		"vaultplugin_requests_in_flight":   0,
		"vaultplugin_database_connections": 0,
	})
	for k := range e.Samples {
		if strings.HasPrefix(k, "vaultplugin_request_") || strings.HasPrefix(k, "vaultplugin_requests_total") || strings.HasPrefix(k, "vaultplugin_database_call") {
			t.Errorf("%s before any request", k)
		}
	}

	b := r.Backend(okBackend{})
	request(b, logical.ReadOperation, "kv/", "x")
	request(b, logical.ReadOperation, "kv/", "fail")
	request(b, logical.UpdateOperation, "kv/", "x")
	call := r.BeginDB(DBInitialize)
	call.End(errors.New("no"))
	e, body := scrape(t, r)
	want(t, e, map[string]float64{
		`vaultplugin_requests_total{mount="kv/",operation="read"}`:                            2,
		`vaultplugin_requests_total{mount="kv/",operation="update"}`:                          1,
		`vaultplugin_request_errors_total{mount="kv/",operation="read"}`:                      1,
		`vaultplugin_request_errors_total{mount="kv/",operation="update"}`:                    0,
		`vaultplugin_request_duration_seconds_count{mount="kv/",operation="read"}`:            2,
		`vaultplugin_request_duration_seconds_bucket{le="+Inf",mount="kv/",operation="read"}`: 2,
		`vaultplugin_request_duration_seconds_bucket{le="30",mount="kv/",operation="read"}`:   2,
		`vaultplugin_database_calls_total{method="Initialize"}`:                               1,
		`vaultplugin_database_call_errors_total{method="Initialize"}`:                         1,
		`vaultplugin_database_call_duration_seconds_count{method="Initialize"}`:               1,
		"vaultplugin_mounts": 1,
	})
	for _, le := range latencyBuckets {
		k := promtext.Key("vaultplugin_request_duration_seconds_bucket", "le", fmt.Sprint(le), "mount", "kv/", "operation", "read")
		if _, ok := e.Samples[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	for name, typ := range map[string]string{
		"vaultplugin_requests_total":                 "counter",
		"vaultplugin_request_errors_total":           "counter",
		"vaultplugin_request_duration_seconds":       "histogram",
		"vaultplugin_requests_in_flight":             "gauge",
		"vaultplugin_mounts":                         "gauge",
		"vaultplugin_plugin_info":                    "gauge",
		"vaultplugin_database_calls_total":           "counter",
		"vaultplugin_database_call_errors_total":     "counter",
		"vaultplugin_database_call_duration_seconds": "histogram",
		"vaultplugin_database_connections":           "gauge",
	} {
		if f := e.Families[name]; f == nil || f.Type != typ || f.Help == "" {
			t.Errorf("%s: family %+v, want TYPE %s and a HELP text", name, f, typ)
		}
	}
	for _, k := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_gc_duration_seconds_count", "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"} {
		if _, ok := e.Samples[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	// Every family has its HELP and TYPE lines, the runtime's and the
	// process's too.
	for name, f := range e.Families {
		if f.Type == "" || f.Help == "" {
			t.Errorf("%s: family %+v, want a TYPE and a HELP line", name, f)
		}
	}
	for k := range e.Samples {
		name, _, _ := strings.Cut(k, "{")
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && e.Families[b] != nil {
				base = b
			}
		}
		if e.Families[base] == nil {
			t.Errorf("%s: no HELP or TYPE line", k)
		}
	}
	if strings.Contains(body, "metrics_push") || strings.Contains(body, "vm_push") {
		t.Errorf("push client metrics in the output:\n%s", body)
	}
}

// A mount point or plugin version with a quote, a backslash, a newline or
// invalid UTF-8 is escaped, not written raw: the scrape stays valid and
// the value reads back.
func TestLabelEscaping(t *testing.T) {
	r := New(`my"plugin`, "v1\\2\n")
	b := r.Backend(okBackend{})
	weird := []string{`a"b/`, `c\d/`, "e\nf/", `g\"h/`, `}{,=" `, "i\xffj/"}
	for _, m := range weird {
		request(b, logical.ReadOperation, m, "x")
	}
	request(b, logical.Operation(`op"\`), "kv/", "x")
	e, _ := scrape(t, r)
	want(t, e, map[string]float64{
		promtext.Key("vaultplugin_plugin_info", "name", `my"plugin`, "version", "v1\\2\n"):    1,
		promtext.Key("vaultplugin_requests_total", "mount", "kv/", "operation", `op"\`):       1,
		promtext.Key("vaultplugin_requests_total", "mount", "i\uFFFDj/", "operation", "read"): 1,
	})
	for _, m := range weird[:5] {
		want(t, e, map[string]float64{
			promtext.Key("vaultplugin_requests_total", "mount", m, "operation", "read"):                 1,
			promtext.Key("vaultplugin_request_duration_seconds_count", "mount", m, "operation", "read"): 1,
		})
	}
}

// Past maxSeries pairs, new pairs share one overflow series; the pairs
// already seen keep theirs.
func TestCardinalityBound(t *testing.T) {
	r := New("p", "v1.0.0")
	b := r.Backend(okBackend{})
	for i := range maxSeries + 10 {
		request(b, logical.ReadOperation, fmt.Sprintf("m%d/", i), "x")
	}
	request(b, logical.ReadOperation, "m0/", "x")
	request(b, logical.ListOperation, "m0/", "x") // a new pair of a known mount: over the bound too
	e, _ := scrape(t, r)
	n := 0
	for k := range e.Samples {
		if strings.HasPrefix(k, "vaultplugin_requests_total{") {
			n++
		}
	}
	if n != maxSeries+1 {
		t.Errorf("%d request series, want %d and the overflow one", n, maxSeries)
	}
	want(t, e, map[string]float64{
		`vaultplugin_requests_total{mount="m0/",operation="read"}`:            2,
		`vaultplugin_requests_total{mount="_other",operation="_other"}`:       11,
		`vaultplugin_request_errors_total{mount="_other",operation="_other"}`: 0,
	})
	if got := len(*r.series.Load()); got != maxSeries {
		t.Errorf("the cache holds %d pairs, want %d", got, maxSeries)
	}
}

// The hot path allocates nothing once its pair is cached.
func TestRequestAllocs(t *testing.T) {
	r := New("p", "v1.0.0")
	b := r.Backend(okBackend{})
	req := &logical.Request{Operation: logical.ReadOperation, MountPoint: "kv/"}
	ctx := context.Background()
	_, _ = b.HandleRequest(ctx, req)
	if n := testing.AllocsPerRun(1000, func() { _, _ = b.HandleRequest(ctx, req) }); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
	r.BeginDB(DBNewUser).End(nil)
	if n := testing.AllocsPerRun(1000, func() { r.BeginDB(DBNewUser).End(nil) }); n != 0 {
		t.Errorf("%v allocations per database call", n)
	}
}

// Requests, new pairs and scrapes at once (run with -race).
func TestConcurrent(t *testing.T) {
	r := New("p", "v1.0.0")
	b := r.Backend(okBackend{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				request(b, logical.ReadOperation, fmt.Sprintf("m%d/", (g*200+i)%50), "x")
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			_, _ = io.Copy(io.Discard, rec.Body)
		}
	}()
	wg.Wait()
	e, _ := scrape(t, r)
	total := 0.0
	for i := range 50 {
		total += e.Samples[fmt.Sprintf(`vaultplugin_requests_total{mount="m%d/",operation="read"}`, i)]
	}
	if total != 1600 {
		t.Errorf("%v requests counted, want 1600", total)
	}
}

type panicky struct{ logical.Backend }

func (panicky) HandleRequest(context.Context, *logical.Request) (*logical.Response, error) {
	panic("boom")
}

func (panicky) Cleanup(context.Context) {}

// A panic passes through, counted as an error, and leaves nothing in flight.
func TestBackendPanicCounted(t *testing.T) {
	r := New("p", "v1.0.0")
	b := r.Backend(panicky{})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic was swallowed")
			}
		}()
		request(b, logical.ReadOperation, "m/", "x")
	}()
	e, _ := scrape(t, r)
	want(t, e, map[string]float64{
		`vaultplugin_request_errors_total{mount="m/",operation="read"}`: 1,
		"vaultplugin_requests_in_flight":                                0,
	})
	b.Cleanup(context.Background())
	b.Cleanup(context.Background())
	e, _ = scrape(t, r)
	want(t, e, map[string]float64{"vaultplugin_mounts": 0})
}

// Our families' text, byte for byte: their order, HELP and TYPE lines,
// label order (le last), bucket bounds and number formats, as they were
// written with VictoriaMetrics/metrics.
func TestExpositionText(t *testing.T) {
	r := New("p", "v1.0.0")
	r.Backend(okBackend{})
	s := r.seriesFor("read", "kv/")
	for _, v := range []float64{.0005, .0007, 2, 31} {
		s.latency.observe(v)
	}
	s.requests.Add(4)
	s.errors.Add(1)
	d := r.dbSeries(DBNewUser)
	d.latency.observe(.25)
	d.requests.Add(1)
	r.dbSeries(DBInitialize)
	r.ConnOpened()

	_, body := scrape(t, r)
	ours, _, _ := strings.Cut(body, "# HELP go_")
	wantText := `# HELP vaultplugin_database_call_duration_seconds Time the database plugin took to answer a call, by method.
# TYPE vaultplugin_database_call_duration_seconds histogram
` + buckets(`vaultplugin_database_call_duration_seconds`, `method="Initialize",`, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) + `vaultplugin_database_call_duration_seconds_sum{method="Initialize"} 0
vaultplugin_database_call_duration_seconds_count{method="Initialize"} 0
` + buckets(`vaultplugin_database_call_duration_seconds`, `method="NewUser",`, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1) + `vaultplugin_database_call_duration_seconds_sum{method="NewUser"} 0.25
vaultplugin_database_call_duration_seconds_count{method="NewUser"} 1
# HELP vaultplugin_database_call_errors_total Database plugin calls that returned an error, by method.
# TYPE vaultplugin_database_call_errors_total counter
vaultplugin_database_call_errors_total{method="Initialize"} 0
vaultplugin_database_call_errors_total{method="NewUser"} 0
# HELP vaultplugin_database_calls_total Database plugin calls, by method.
# TYPE vaultplugin_database_calls_total counter
vaultplugin_database_calls_total{method="Initialize"} 0
vaultplugin_database_calls_total{method="NewUser"} 1
# HELP vaultplugin_database_connections Database instances initialized and not yet closed (one per Vault database connection).
# TYPE vaultplugin_database_connections gauge
vaultplugin_database_connections 1
# HELP vaultplugin_mounts Backend instances (one per Vault mount) served by this process.
# TYPE vaultplugin_mounts gauge
vaultplugin_mounts 1
# HELP vaultplugin_plugin_info Always 1; the labels name the plugin binary and the version it reports to Vault.
# TYPE vaultplugin_plugin_info gauge
vaultplugin_plugin_info{name="p",version="v1.0.0"} 1
# HELP vaultplugin_request_duration_seconds Time the backend took to handle a request, by operation and mount point.
# TYPE vaultplugin_request_duration_seconds histogram
` + buckets(`vaultplugin_request_duration_seconds`, `mount="kv/",operation="read",`, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4) + `vaultplugin_request_duration_seconds_sum{mount="kv/",operation="read"} 33.0012
vaultplugin_request_duration_seconds_count{mount="kv/",operation="read"} 4
# HELP vaultplugin_request_errors_total Requests that returned an error or an error response, by operation and mount point.
# TYPE vaultplugin_request_errors_total counter
vaultplugin_request_errors_total{mount="kv/",operation="read"} 1
# HELP vaultplugin_requests_in_flight Requests and database calls being handled now.
# TYPE vaultplugin_requests_in_flight gauge
vaultplugin_requests_in_flight 0
# HELP vaultplugin_requests_total Requests handled by the plugin's backends, by operation and mount point.
# TYPE vaultplugin_requests_total counter
vaultplugin_requests_total{mount="kv/",operation="read"} 4
`
	if ours != wantText {
		t.Errorf("got\n%s\nwant\n%s", ours, wantText)
	}
}

// buckets returns a histogram series' bucket lines with the cumulative
// counts given, the last for +Inf.
func buckets(name, labels string, counts ...int) string {
	var b strings.Builder
	les := []string{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf"}
	for i, le := range les {
		fmt.Fprintf(&b, "%s_bucket{%sle=%q} %d\n", name, labels, le, counts[i])
	}
	return b.String()
}

// An observation counts in the first bucket whose bound it does not
// exceed (le: less or equal), past the last only in +Inf; many at once
// lose none, in the buckets or the sum.
func TestHistogram(t *testing.T) {
	var h histogram
	for i, le := range latencyBuckets {
		h.observe(le)
		if got := h.counts[i].Load(); got != 1 {
			t.Errorf("observing %v: bucket %d holds %d, want 1", le, i, got)
		}
	}
	h.observe(30.5)
	if got := h.counts[len(latencyBuckets)].Load(); got != 1 {
		t.Errorf("+Inf holds %d, want 1", got)
	}

	var c histogram
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.observe(.5) // exact in binary, so the sum is exact
			}
		}()
	}
	wg.Wait()
	if got, want := math.Float64frombits(c.sum.Load()), 8*1000*.5; got != want {
		t.Errorf("sum %v, want %v", got, want)
	}
	if got := c.counts[9].Load(); got != 8000 {
		t.Errorf("le=0.5 holds %d, want 8000", got)
	}
}

// The Go runtime and process metrics have client_golang's names and
// types, so that dashboards built on it work; the GC summary is whole.
func TestRuntimeExposition(t *testing.T) {
	runtime.GC()
	e, _ := scrape(t, New("p", "v1.0.0"))
	types := map[string]string{
		"go_gc_duration_seconds":           "summary",
		"go_goroutines":                    "gauge",
		"go_threads":                       "gauge",
		"go_info":                          "gauge",
		"go_memstats_alloc_bytes":          "gauge",
		"go_memstats_alloc_bytes_total":    "counter",
		"go_memstats_sys_bytes":            "gauge",
		"go_memstats_mallocs_total":        "counter",
		"go_memstats_frees_total":          "counter",
		"go_memstats_heap_alloc_bytes":     "gauge",
		"go_memstats_heap_inuse_bytes":     "gauge",
		"go_memstats_heap_objects":         "gauge",
		"go_memstats_next_gc_bytes":        "gauge",
		"go_memstats_last_gc_time_seconds": "gauge",
		"go_sched_gomaxprocs_threads":      "gauge",
		"go_gc_gomemlimit_bytes":           "gauge",
	}
	if runtime.GOOS != "windows" && runtime.GOOS != "js" && runtime.GOOS != "wasip1" && runtime.GOOS != "plan9" {
		types["process_cpu_seconds_total"] = "counter"
		types["process_max_fds"] = "gauge"
	}
	if runtime.GOOS == "linux" {
		for _, name := range []string{"process_open_fds", "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_virtual_memory_max_bytes", "process_start_time_seconds"} {
			types[name] = "gauge"
		}
	}
	for name, typ := range types {
		if f := e.Families[name]; f == nil || f.Type != typ {
			t.Errorf("%s: family %+v, want TYPE %s", name, f, typ)
		}
	}
	want(t, e, map[string]float64{promtext.Key("go_info", "version", runtime.Version()): 1})
	for _, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		if _, ok := e.Samples[promtext.Key("go_gc_duration_seconds", "quantile", q)]; !ok {
			t.Errorf("no go_gc_duration_seconds quantile %s", q)
		}
	}
	if e.Samples["go_gc_duration_seconds_count"] < 1 || e.Samples["go_memstats_last_gc_time_seconds"] <= 0 {
		t.Errorf("after a GC: count %v, last %v", e.Samples["go_gc_duration_seconds_count"], e.Samples["go_memstats_last_gc_time_seconds"])
	}
	if e.Samples["go_goroutines"] < 1 || e.Samples["go_memstats_heap_alloc_bytes"] <= 0 || e.Samples["go_sched_gomaxprocs_threads"] != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("goroutines %v, heap %v, gomaxprocs %v", e.Samples["go_goroutines"], e.Samples["go_memstats_heap_alloc_bytes"], e.Samples["go_sched_gomaxprocs_threads"])
	}
	if runtime.GOOS == "linux" {
		now := float64(time.Now().UnixNano()) / 1e9
		if start := e.Samples["process_start_time_seconds"]; start > now+1 || start < now-3600 {
			t.Errorf("process_start_time_seconds %v, now %v", start, now)
		}
		for _, k := range []string{"process_open_fds", "process_max_fds", "process_resident_memory_bytes", "process_virtual_memory_bytes"} {
			if e.Samples[k] <= 0 {
				t.Errorf("%s = %v", k, e.Samples[k])
			}
		}
	}
}

// A number is written whole when it is whole, else in %g form; a label
// value escaped, its invalid UTF-8 a run at a time.
func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 1: "1", -3: "-3", 1795875318: "1795875318", 2.5: "2.5", 1.602e-06: "1.602e-06",
		math.Inf(1): "+Inf", math.Inf(-1): "-Inf", 1 << 64: "1.8446744073709552e+19",
	} {
		if got := string(appendFloat(nil, v)); got != want {
			t.Errorf("appendFloat(%v) = %s, want %s", v, got, want)
		}
	}
	if got := string(appendFloat(nil, math.NaN())); got != "NaN" {
		t.Errorf("NaN: %s", got)
	}
	if got, want := labels("a", "x\"\\\n\xff\xfey", "b", ""), `a="x\"\\\n`+"\uFFFD"+`y",b=""`; got != want {
		t.Errorf("labels: %s, want %s", got, want)
	}
}

// Nothing happens when the package is initialized: the runtime runs no
// initialization task for it at all (GODEBUG=inittrace=1 lists each one
// that it runs), and it links no metrics library. Every plugin binary links
// this package, metrics on or off, and pays its initialization at every
// start. (A package-level variable computed by a call, here or in a test
// file of this package, fails this test.)
func TestNoInitWork(t *testing.T) {
	if os.Getenv("METRICS_INITTRACE_CHILD") != "" {
		return
	}
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation registers every package at initialization")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestNoInitWork$")
	cmd.Env = append(os.Environ(), "METRICS_INITTRACE_CHILD=1", "GODEBUG="+strings.TrimPrefix(os.Getenv("GODEBUG")+",inittrace=1", ","))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "init ") {
		t.Skipf("no inittrace output:\n%s", out)
	}
	const pkg = "github.com/plugkit/vaultplugin/internal/metrics"
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "init "+pkg+" ") {
			t.Errorf("the package has initialization work: %s", line)
		}
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	deps, err := exec.Command(goTool, "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(deps)) {
		if strings.Contains(p, "VictoriaMetrics") || strings.HasPrefix(p, "github.com/valyala/") || strings.HasPrefix(p, "github.com/prometheus/") || p == "runtime/metrics" {
			t.Errorf("%s links %s", pkg, p)
		}
	}
}

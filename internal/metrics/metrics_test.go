package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	vm "github.com/VictoriaMetrics/metrics"
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

// The library's global ExposeMetadata adds HELP and TYPE lines of its own;
// the scrape must not have two for a family.
func TestExposeMetadataElsewhere(t *testing.T) {
	vm.ExposeMetadata(true)
	defer vm.ExposeMetadata(false)
	r := New("p", "v1.0.0")
	request(r.Backend(okBackend{}), logical.ReadOperation, "kv/", "x")
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	// Only up to the runtime metrics: with the switch on, the library
	// types its runtime histograms (go_sched_latencies_seconds) but writes
	// no _count or _sum for them, which the strict parser refuses.
	ours, _, _ := strings.Cut(rec.Body.String(), "# HELP go_")
	e, err := promtext.Parse(ours)
	if err != nil {
		t.Fatalf("%v\n%s", err, ours)
	}
	if f := e.Families["vaultplugin_requests_total"]; f == nil || f.Help == "" {
		t.Errorf("requests family: %+v", f)
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
		wg.Go(func() {
			for i := range 200 {
				request(b, logical.ReadOperation, fmt.Sprintf("m%d/", (g*200+i)%50), "x")
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			_, _ = io.Copy(io.Discard, rec.Body)
		}
	})
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

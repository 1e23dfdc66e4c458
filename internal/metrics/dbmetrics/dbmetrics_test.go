package dbmetrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"

	"github.com/plugkit/vaultplugin/internal/metrics"
	"github.com/plugkit/vaultplugin/internal/promtext"
)

// New returns a recorder; the name keeps the tests as they read in
// package metrics.
func New(name, version string) *metrics.Recorder { return metrics.New(name, version) }

func scrape(t *testing.T, r *metrics.Recorder) (*promtext.Exposition, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
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

// The wrapper allocates nothing per call once the method's series exists.
func TestCallAllocs(t *testing.T) {
	r := New("p", "v1.0.0")
	db := Wrap(r, okDB{})
	ctx := context.Background()
	_, _ = db.NewUser(ctx, dbplugin.NewUserRequest{})
	if n := testing.AllocsPerRun(1000, func() { _, _ = db.NewUser(ctx, dbplugin.NewUserRequest{}) }); n != 0 {
		t.Errorf("%v allocations per database call", n)
	}
}

type okDB struct{ dbplugin.Database }

func (okDB) NewUser(context.Context, dbplugin.NewUserRequest) (dbplugin.NewUserResponse, error) {
	return dbplugin.NewUserResponse{}, nil
}

type failingDB struct{ dbplugin.Database }

func (failingDB) Initialize(context.Context, dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	return dbplugin.InitializeResponse{}, errors.New("no")
}

func (failingDB) DeleteUser(context.Context, dbplugin.DeleteUserRequest) (dbplugin.DeleteUserResponse, error) {
	panic("boom")
}

func (failingDB) Close() error { return nil }

func TestErrors(t *testing.T) {
	r := New("p", "v1.0.0")
	db := Wrap(r, failingDB{})
	if _, err := db.Initialize(context.Background(), dbplugin.InitializeRequest{}); err == nil {
		t.Fatal("want the error through")
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = db.DeleteUser(context.Background(), dbplugin.DeleteUserRequest{})
	}()
	e, _ := scrape(t, r)
	want(t, e, map[string]float64{
		`vaultplugin_database_call_errors_total{method="Initialize"}`: 1,
		`vaultplugin_database_call_errors_total{method="DeleteUser"}`: 1,
		`vaultplugin_database_calls_total{method="DeleteUser"}`:       1,
		"vaultplugin_database_connections":                            0,
		"vaultplugin_requests_in_flight":                              0,
	})
	_ = db.Close()
	e, _ = scrape(t, r)
	want(t, e, map[string]float64{"vaultplugin_database_connections": 0})
}

func TestConnections(t *testing.T) {
	r := New("p", "v1.0.0")
	db := Wrap(r, okInitDB{})
	for range 2 {
		if _, err := db.Initialize(context.Background(), dbplugin.InitializeRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := scrape(t, r)
	want(t, e, map[string]float64{"vaultplugin_database_connections": 1})
	_ = db.Close()
	_ = db.Close()
	e, _ = scrape(t, r)
	want(t, e, map[string]float64{"vaultplugin_database_connections": 0})
}

type okInitDB struct{ dbplugin.Database }

func (okInitDB) Initialize(context.Context, dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	return dbplugin.InitializeResponse{}, nil
}

func (okInitDB) Close() error { return nil }

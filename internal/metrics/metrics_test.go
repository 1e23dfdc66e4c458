package metrics

import (
	"context"
	"errors"
	"testing"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

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
		_, _ = b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, MountPoint: "m/"})
	}()
	if got := testutil.ToFloat64(r.errors.WithLabelValues("read", "m/")); got != 1 {
		t.Errorf("errors = %v, want 1", got)
	}
	if got := r.inflight.Load(); got != 0 {
		t.Errorf("in flight = %d after the panic", got)
	}
	b.Cleanup(context.Background())
	b.Cleanup(context.Background())
	if got := testutil.ToFloat64(r.mounts); got != 0 {
		t.Errorf("mounts = %v after two Cleanups, want 0", got)
	}
}

type failingDB struct{ dbplugin.Database }

func (failingDB) Initialize(context.Context, dbplugin.InitializeRequest) (dbplugin.InitializeResponse, error) {
	return dbplugin.InitializeResponse{}, errors.New("no")
}

func (failingDB) DeleteUser(context.Context, dbplugin.DeleteUserRequest) (dbplugin.DeleteUserResponse, error) {
	panic("boom")
}

func (failingDB) Close() error { return nil }

func TestDatabaseErrors(t *testing.T) {
	r := New("p", "v1.0.0")
	db := r.Database(failingDB{})
	if _, err := db.Initialize(context.Background(), dbplugin.InitializeRequest{}); err == nil {
		t.Fatal("want the error through")
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = db.DeleteUser(context.Background(), dbplugin.DeleteUserRequest{})
	}()
	for method, want := range map[string]float64{"Initialize": 1, "DeleteUser": 1} {
		if got := testutil.ToFloat64(r.dbErrors.WithLabelValues(method)); got != want {
			t.Errorf("%s errors = %v, want %v", method, got, want)
		}
	}
	if got := testutil.ToFloat64(r.dbConns); got != 0 {
		t.Errorf("connections = %v after a failed Initialize", got)
	}
	_ = db.Close()
	if got := testutil.ToFloat64(r.dbConns); got != 0 {
		t.Errorf("connections = %v after Close of an uninitialized instance", got)
	}
}

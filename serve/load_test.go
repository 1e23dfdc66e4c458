package serve_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"go.uber.org/goleak"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// TestLoad drives one multiplexed plugin process the way a busy Vault
// does: 64 concurrent clients over 10 mounts, 50,000 requests (every key
// written, then every key read back). No request may fail, no write may be
// lost, and once the load is over neither the plugin process nor this one
// may hold more goroutines than before it (after a settle). It asserts no
// timing; it logs the run's duration and request rate.
func TestLoad(t *testing.T) {
	const (
		mounts   = 10
		clients  = 64
		requests = 50_000
		keys     = requests / 2 // one write and one read each
	)
	if testing.Short() {
		t.Skip("the load test is not short")
	}
	bin := servetest.Build(t, testPlugin)
	p := servetest.Start(t, bin)
	ctx := context.Background()
	ms := make([]*servetest.Mount, mounts)
	for i := range ms {
		m := p.Mount(t, nil)
		ms[i] = m
		read(t, m, "info") // every connection warm before counting
	}
	pluginBefore := pluginGoroutines(t, ms[0])
	// Everything this process runs now (the plugin's client, the host's
	// storage servers) is allowed to stay; anything the load starts must end.
	leakBaseline := goleak.IgnoreCurrent()
	hostBefore := runtime.NumGoroutine()

	var failed atomic.Int64
	var firstErr sync.Once
	fail := func(format string, args ...any) {
		failed.Add(1)
		firstErr.Do(func() { t.Errorf(format, args...) })
	}
	phase := func(op logical.Operation) {
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := c; k < keys; k += clients {
					m := ms[k%mounts]
					key, value := fmt.Sprintf("kv/key-%d", k), fmt.Sprintf("value-%d-%d", k, k*7919)
					req := &logical.Request{Operation: op, Path: key}
					if op == logical.UpdateOperation {
						req.Data = map[string]any{"value": value}
					}
					resp, err := m.HandleRequest(ctx, req)
					switch {
					case err != nil || resp.IsError():
						fail("%s %s: %v %v", op, key, resp, err)
					case op == logical.ReadOperation && (resp == nil || resp.Data["value"] != value):
						fail("lost write: %s read back %v, want %q", key, resp, value)
					}
				}
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	phase(logical.UpdateOperation)
	wrote := time.Since(start)
	phase(logical.ReadOperation)
	took := time.Since(start)
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed", n, requests)
	}
	// Every mount's storage holds exactly its own keys.
	for i, m := range ms {
		stored, err := m.Storage.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if want := keys / mounts; len(stored) != want {
			t.Errorf("mount %d stores %d keys, want %d", i, len(stored), want)
		}
	}
	t.Logf("%d requests (%d writes, then %d reads) by %d clients over %d mounts in %s (writes %s): %.0f requests/s",
		requests, keys, keys, clients, mounts, took.Round(time.Millisecond), wrote.Round(time.Millisecond), float64(requests)/took.Seconds())

	// The plugin: back to where it was, give or take the goroutines that
	// gRPC and the runtime start and stop on their own.
	const tolerance = 5
	var pluginAfter int
	deadline := time.Now().Add(5 * time.Second)
	for {
		pluginAfter = pluginGoroutines(t, ms[0])
		if pluginAfter <= pluginBefore+tolerance || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("plugin process goroutines: %d before the load, %d after", pluginBefore, pluginAfter)
	if pluginAfter > pluginBefore+tolerance {
		t.Errorf("the plugin grew from %d to %d goroutines", pluginBefore, pluginAfter)
	}
	// This process: goleak retries until stray goroutines end, or reports them.
	if err := goleak.Find(leakBaseline); err != nil {
		t.Errorf("goroutines left in the test process after the load: %v", err)
	}
	t.Logf("test process goroutines: %d before the load, %d after", hostBefore, runtime.NumGoroutine())
}

// pluginGoroutines asks the plugin for its runtime.NumGoroutine().
func pluginGoroutines(t *testing.T, m *servetest.Mount) int {
	t.Helper()
	// The number crosses the gRPC boundary as JSON: a float64 or json.Number.
	v := read(t, m, "goroutines")["count"]
	n, err := strconv.Atoi(fmt.Sprint(v))
	if err != nil {
		t.Fatalf("goroutines = %v (%T): %v", v, v, err)
	}
	return n
}

package server

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Two different warnings are both logged, each once.
func TestWarnOnceEachMessage(t *testing.T) {
	var logs strings.Builder
	tr := NewTracker(hclog.New(&hclog.LoggerOptions{Output: &logs, JSONFormat: true}))
	for range 3 {
		tr.WarnOnce("first warning", "k", 1)
		tr.WarnOnce("second warning", "k", 2)
	}
	for _, msg := range []string{"first warning", "second warning"} {
		if n := strings.Count(logs.String(), msg); n != 1 {
			t.Errorf("%q logged %d times, want 1:\n%s", msg, n, logs.String())
		}
	}
}

// Once Shutdown has begun, Begin admits nothing: what was admitted before
// finishes before any instance is closed, and a call that arrives in the
// meantime is held back (for a host that kills the process on a refusal)
// until the instances are closed, then refused, or refused at once when
// its context is done.
func TestShutdownRefusesAndDrains(t *testing.T) {
	tr := NewTracker(hclog.NewNullLogger())
	tr.hold = true
	var closed atomic.Bool
	tr.Add("instance", func(context.Context) error { closed.Store(true); return nil })

	end, ok := tr.Begin(context.Background())
	if !ok {
		t.Fatal("Begin refused before any stop")
	}
	done := make(chan struct{})
	go func() { tr.Shutdown(time.Hour); close(done) }()
	// Wait until the stop has begun: from then on nothing is admitted.
	for !tr.Stopping() {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	endCancelled, ok := tr.Begin(ctx)
	if ok {
		t.Error("Begin admitted a call after Shutdown began")
	}
	endCancelled()
	type held struct{ ok, closedFirst bool }
	heldc := make(chan held, 1)
	go func() {
		end, ok := tr.Begin(context.Background())
		heldc <- held{ok, closed.Load()}
		end()
	}()
	if closed.Load() {
		t.Fatal("an instance was closed with a call in flight")
	}
	end()
	<-done
	if !closed.Load() {
		t.Error("Shutdown returned without closing the instance")
	}
	h := <-heldc
	if h.ok || !h.closedFirst {
		t.Errorf("a call held back during the drain: admitted %v, returned after the instances were closed %v; want false, true", h.ok, h.closedFirst)
	}
}

// However Begin and Shutdown interleave, no admitted call is still in
// flight when the instances are closed, and none is admitted after,
// whether refused calls are held back or not.
func TestShutdownRace(t *testing.T) {
	for i := range 100 {
		tr := NewTracker(hclog.NewNullLogger())
		tr.hold = i%2 == 0
		var closed, violated atomic.Bool
		tr.Add("instance", func(context.Context) error { closed.Store(true); return nil })
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					end, ok := tr.Begin(context.Background())
					if ok && closed.Load() {
						violated.Store(true)
					}
					end()
					if !ok {
						return
					}
				}
			}()
		}
		tr.Shutdown(time.Hour)
		wg.Wait()
		if violated.Load() {
			t.Fatal("a call ran after the instances were closed")
		}
	}
}

// A second Shutdown returns at once and closes nothing twice.
func TestShutdownTwice(t *testing.T) {
	tr := NewTracker(hclog.NewNullLogger())
	var closes atomic.Int64
	tr.Add("instance", func(context.Context) error { closes.Add(1); return nil })
	tr.Shutdown(time.Second)
	tr.Shutdown(time.Second)
	if n := closes.Load(); n != 1 {
		t.Errorf("closed %d times, want 1", n)
	}
}

// Without holding back, a call that arrives during the drain is refused at
// once, while the call admitted before is still in flight.
func TestShutdownRefusesAtOnce(t *testing.T) {
	tr := NewTracker(hclog.NewNullLogger())
	end, _ := tr.Begin(context.Background())
	done := make(chan struct{})
	go func() { tr.Shutdown(time.Hour); close(done) }()
	for !tr.Stopping() {
		time.Sleep(time.Millisecond)
	}
	refusedEnd, ok := tr.Begin(context.Background())
	if ok {
		t.Error("Begin admitted a call after Shutdown began")
	}
	refusedEnd()
	if !tr.Refused() {
		t.Error("Refused() = false after a refusal")
	}
	end()
	<-done
}

package batcher_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/upstream"
)

// closed says whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestIdle: the channel is closed exactly while no call holds a slot, and
// a call that starts on an idle queue gets a fresh one.
func TestIdle(t *testing.T) {
	q := newQueue(t, batcher.Config{MaxConcurrent: 2, QueueSize: 2})
	idle := q.Idle()
	if !closed(idle) {
		t.Fatal("Idle of a new queue is not closed")
	}
	a := acquireNow(t, q)
	busy := q.Idle()
	if closed(busy) {
		t.Fatal("Idle closed with a call in flight")
	}
	b := acquireNow(t, q)
	if q.Idle() != busy {
		t.Error("a second call made a new channel: one busy period, one channel")
	}
	a(upstream.SignalOK)
	if closed(busy) || closed(q.Idle()) {
		t.Fatal("Idle closed with one call still in flight")
	}
	b(upstream.SignalServerError)
	if !closed(busy) || !closed(q.Idle()) {
		t.Fatal("Idle not closed once the last call ended")
	}
	b(upstream.SignalOK) // a second release changes nothing
	if !closed(q.Idle()) {
		t.Fatal("a repeated release reopened Idle")
	}

	c := acquireNow(t, q)
	fresh := q.Idle()
	if closed(fresh) || fresh == busy {
		t.Fatal("a call on an idle queue did not get a fresh, open channel")
	}
	c(upstream.SignalBadAnswer)
	if !closed(fresh) {
		t.Fatal("Idle not closed after the call ended")
	}
}

// TestIdleWakesWaiter: a goroutine waiting on Idle wakes when the last
// call ends, not before; a slot given back unused by a waiter that gave up
// as it was granted does not leave Idle open.
func TestIdleWakesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{MaxConcurrent: 1, QueueSize: 2})
		hold := acquireNow(t, q)
		w := acquireAsync(t.Context(), q, time.Second)
		synctest.Wait()

		woke := make(chan struct{})
		go func() {
			<-q.Idle()
			close(woke)
		}()
		synctest.Wait()
		if closed(woke) {
			t.Fatal("woke with a call in flight")
		}
		hold(upstream.SignalOK) // w starts: still busy
		synctest.Wait()
		if closed(woke) {
			t.Fatal("woke while the next call held the slot")
		}
		r := <-w
		if r.err != nil {
			t.Fatalf("waiter: %v", r.err)
		}
		r.rel(upstream.SignalOK)
		synctest.Wait()
		if !closed(woke) {
			t.Fatal("not woken once the last call ended")
		}
	})
	for range 50 {
		q := newQueue(t, batcher.Config{MaxConcurrent: 1, QueueSize: 2})
		hold := acquireNow(t, q)
		ctx := &raceCtx{Context: t.Context(), before: func() { hold(upstream.SignalOK) }, done: make(chan struct{})}
		if rel, err := q.Acquire(ctx, time.Hour); err == nil {
			rel(upstream.SignalOK)
		}
		if !closed(q.Idle()) {
			t.Fatalf("Idle open with nothing in flight (stats %+v)", q.Stats())
		}
	}
}

// TestClose: Close stops a pending rest timer, sends the items in line
// away at once, refuses new ones, and leaves the calls in flight to end
// normally, arming no timer when they do.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{
			MaxConcurrent: 2, QueueSize: 4,
			Pacing: batcher.Waves, WaveSize: 2, WaveDelay: 2 * time.Second,
		})
		// One wave ends: the rest timer is pending and an item waits for it.
		acquireNow(t, q)(upstream.SignalOK)
		acquireNow(t, q)(upstream.SignalOK)
		rest := batcher.RestTimer(q)
		if rest == nil {
			t.Fatal("no rest timer after a wave ended")
		}
		w := acquireAsync(t.Context(), q, time.Minute)
		synctest.Wait()
		start := time.Now()

		q.Close()
		r := <-w
		if !errors.Is(r.err, batcher.ErrNoTimeToStart) || r.rel != nil {
			t.Fatalf("item in line at Close: %v, want ErrNoTimeToStart and no slot", r.err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("item in line sent away after %v, want at once", d)
		}
		// The clock has not moved, so the timer cannot have fired: Stop
		// finding it already stopped means Close stopped it.
		if rest.Stop() {
			t.Fatal("the rest timer was still pending after Close")
		}
		if _, err := q.Acquire(t.Context(), time.Minute); !errors.Is(err, batcher.ErrNoTimeToStart) {
			t.Fatalf("Acquire after Close: %v, want ErrNoTimeToStart", err)
		}
		checkStats(t, q, func(s batcher.Stats) bool {
			return s.SpilledNoTime == 2 && s.Waiting == 0 && s.InFlight == 0 && s.Canceled == 0
		}, "two sent away, none waiting")
		q.Close() // twice is harmless
	})

	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{
			MaxConcurrent: 1, QueueSize: 1,
			Pacing: batcher.Waves, WaveSize: 1, WaveDelay: time.Second,
		})
		rel := acquireNow(t, q)
		q.Close()
		if closed(q.Idle()) {
			t.Fatal("Idle closed with a call in flight after Close")
		}
		rel(upstream.SignalOK) // ends the wave: no rest after Close
		if batcher.RestTimer(q) != nil {
			t.Fatal("a release after Close armed a rest timer")
		}
		if !closed(q.Idle()) {
			t.Fatal("Idle not closed once the call in flight ended")
		}
	})
}

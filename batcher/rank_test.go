package batcher_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/upstream"
)

// acquireRanked calls AcquireRanked on a goroutine; its result arrives on
// the channel.
func acquireRanked(ctx context.Context, q *batcher.Queue, maxWait time.Duration, r batcher.Rank) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		rel, err := q.AcquireRanked(ctx, maxWait, r)
		ch <- acquired{rel, err}
	}()
	return ch
}

// TestStrongestFirst: with the one slot held, items wait in rank order,
// whatever order they came in: priority first, then strength, then
// arrival.
func TestStrongestFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{MaxConcurrent: 1, QueueSize: 10, SuccessesToGrow: 100})
		hold := acquireNow(t, q)
		arrivals := []struct {
			name string
			rank batcher.Rank
		}{
			{"weak", batcher.Rank{Priority: 1, Strength: 0.05}},
			{"strong", batcher.Rank{Priority: 1, Strength: 0.9}},
			{"low but strongest", batcher.Rank{Priority: 0, Strength: 1}},
			{"weak, later", batcher.Rank{Priority: 1, Strength: 0.05}},
			{"middling", batcher.Rank{Priority: 1, Strength: 0.4}},
			{"high and weak", batcher.Rank{Priority: 2, Strength: 0}},
		}
		chans := map[string]<-chan acquired{}
		for _, a := range arrivals {
			chans[a.name] = acquireRanked(t.Context(), q, time.Hour, a.rank)
			synctest.Wait() // in line before the next comes
		}
		hold(upstream.SignalOK)
		want := []string{"high and weak", "strong", "middling", "weak", "weak, later", "low but strongest"}
		for _, name := range want {
			synctest.Wait()
			var got string
			for n, ch := range chans {
				if r, ok := ready(ch); ok {
					if r.err != nil {
						t.Fatalf("%s: %v", n, r.err)
					}
					if got != "" {
						t.Fatalf("%s and %s started together", got, n)
					}
					got = n
					delete(chans, n)
					r.rel(upstream.SignalOK)
				}
			}
			if got != name {
				t.Fatalf("started %q, want %q", got, name)
			}
		}
	})
}

// TestFullLineDisplacesTheWeakest: a stronger item takes a full line's
// last place; the weakest waiting item is sent away, not the newcomer.
func TestFullLineDisplacesTheWeakest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{MaxConcurrent: 1, QueueSize: 2})
		hold := acquireNow(t, q)
		a := acquireRanked(t.Context(), q, time.Hour, batcher.Rank{Strength: 0.3})
		synctest.Wait()
		b := acquireRanked(t.Context(), q, time.Hour, batcher.Rank{Strength: 0.1})
		synctest.Wait()
		// Weaker than both: refused.
		if _, err := q.AcquireRanked(t.Context(), time.Hour, batcher.Rank{Strength: 0.05}); !errors.Is(err, batcher.ErrQueueFull) {
			t.Fatalf("a weaker item in a full line: %v, want ErrQueueFull", err)
		}
		c := acquireRanked(t.Context(), q, time.Hour, batcher.Rank{Strength: 0.8})
		synctest.Wait()
		r, ok := ready(b)
		if !ok || !errors.Is(r.err, batcher.ErrQueueFull) {
			t.Fatalf("the weakest waiting item: %+v (answered %v), want ErrQueueFull", r, ok)
		}
		checkStats(t, q, func(s batcher.Stats) bool { return s.Displaced == 1 && s.SpilledFull == 2 && s.Waiting == 2 }, "one displaced, two waiting")
		hold(upstream.SignalOK)
		synctest.Wait()
		if r, ok := ready(c); !ok || r.err != nil {
			t.Fatalf("the strong newcomer did not start first: %+v %v", r, ok)
		} else {
			r.rel(upstream.SignalOK)
		}
		synctest.Wait()
		if r, ok := ready(a); !ok || r.err != nil {
			t.Fatalf("the middling item: %+v %v", r, ok)
		} else {
			r.rel(upstream.SignalOK)
		}
	})
}

// TestOvertakenItemsLeaveAtOnce: a weak item that strong newcomers push
// past its deadline is told at once, not when its wait ends.
func TestOvertakenItemsLeaveAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{MaxConcurrent: 1, QueueSize: 10, SuccessesToGrow: 100})
		// One call of 100 ms teaches the queue the service time.
		rel := acquireNow(t, q)
		time.Sleep(100 * time.Millisecond)
		rel(upstream.SignalOK)
		hold := acquireNow(t, q)
		// Room for about three calls ahead of it.
		weak := acquireRanked(t.Context(), q, 350*time.Millisecond, batcher.Rank{Strength: 0.05})
		synctest.Wait()
		var strong []<-chan acquired
		for range 4 {
			strong = append(strong, acquireRanked(t.Context(), q, time.Hour, batcher.Rank{Strength: 0.9}))
			synctest.Wait()
		}
		r, ok := ready(weak)
		if !ok || !errors.Is(r.err, batcher.ErrNoTimeToStart) {
			t.Fatalf("the overtaken weak item: %+v (answered %v), want ErrNoTimeToStart at once", r, ok)
		}
		checkStats(t, q, func(s batcher.Stats) bool { return s.Overtaken == 1 }, "one overtaken")
		hold(upstream.SignalOK)
		for _, ch := range strong {
			synctest.Wait()
			r := <-ch
			if r.err != nil {
				t.Fatal(r.err)
			}
			r.rel(upstream.SignalOK)
		}
	})
}

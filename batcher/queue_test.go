package batcher_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catalystbot/sentiment/internal/clocktest"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/upstream"
)

func newQueue(t *testing.T, cfg batcher.Config, opts ...batcher.Option) *batcher.Queue {
	t.Helper()
	q, err := batcher.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return q
}

// acquireNow takes a slot that must be free now.
func acquireNow(t *testing.T, q *batcher.Queue) func(upstream.Signal) {
	t.Helper()
	rel, err := q.Acquire(t.Context(), 0)
	if err != nil {
		t.Fatalf("Acquire with a free slot: %v (stats %+v)", err, q.Stats())
	}
	return rel
}

type acquired struct {
	rel func(upstream.Signal)
	err error
}

// acquireAsync calls Acquire on a goroutine; its result arrives on the
// channel. The caller must receive it.
func acquireAsync(ctx context.Context, q *batcher.Queue, maxWait time.Duration) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		rel, err := q.Acquire(ctx, maxWait)
		ch <- acquired{rel, err}
	}()
	return ch
}

// ready says whether ch has a result, without waiting. Inside a synctest
// bubble, call synctest.Wait first so that every goroutine has done what it
// can.
func ready(ch <-chan acquired) (acquired, bool) {
	select {
	case r := <-ch:
		return r, true
	default:
		return acquired{}, false
	}
}

func checkStats(t *testing.T, q *batcher.Queue, check func(s batcher.Stats) bool, what string) {
	t.Helper()
	if s := q.Stats(); !check(s) {
		t.Fatalf("stats: want %s, have %+v", what, s)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  batcher.Config
	}{
		{"no slots", batcher.Config{MaxConcurrent: 0}},
		{"negative queue", batcher.Config{MaxConcurrent: 1, QueueSize: -1}},
		{"negative growth", batcher.Config{MaxConcurrent: 1, SuccessesToGrow: -1}},
		{"unknown pacing", batcher.Config{MaxConcurrent: 1, Pacing: 7}},
		{"waves of nothing", batcher.Config{MaxConcurrent: 1, Pacing: batcher.Waves}},
		{"negative wave delay", batcher.Config{MaxConcurrent: 1, Pacing: batcher.Waves, WaveSize: 5, WaveDelay: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := batcher.New(tc.cfg); err == nil {
				t.Fatalf("New(%+v) = nil error", tc.cfg)
			}
		})
	}
	if _, err := batcher.New(batcher.Config{MaxConcurrent: 1, Pacing: batcher.Waves, WaveSize: 5}); err != nil {
		t.Fatalf("valid waves config: %v", err)
	}
}

func TestParsePacing(t *testing.T) {
	for s, want := range map[string]batcher.Pacing{"adaptive": batcher.Adaptive, "waves": batcher.Waves} {
		p, err := batcher.ParsePacing(s)
		if err != nil || p != want || p.String() != s {
			t.Errorf("ParsePacing(%q) = %v, %v; want %v", s, p, err, want)
		}
	}
	if _, err := batcher.ParsePacing("burst"); err == nil {
		t.Error(`ParsePacing("burst") = nil error`)
	}
}

func TestBurstRespectsLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit, items = 3, 40
		q := newQueue(t, batcher.Config{MaxConcurrent: limit, QueueSize: items})
		var active, peak atomic.Int32
		var wg sync.WaitGroup
		for i := range items {
			wg.Go(func() {
				rel, err := q.Acquire(t.Context(), time.Hour)
				if err != nil {
					t.Errorf("item %d: %v", i, err)
					return
				}
				n := active.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if s := q.Stats(); s.InFlight > limit {
					t.Errorf("InFlight %d > MaxConcurrent %d", s.InFlight, limit)
				}
				time.Sleep(time.Duration(1+i%4) * time.Millisecond)
				active.Add(-1)
				rel(upstream.SignalOK)
			})
		}
		wg.Wait()
		if p := peak.Load(); p != limit {
			t.Errorf("peak in flight %d, want %d (the limit, reached and never passed)", p, limit)
		}
		checkStats(t, q, func(s batcher.Stats) bool {
			return s.Started == items && s.InFlight == 0 && s.Waiting == 0 && s.Limit == limit
		}, "all 40 started, none left")
	})
}

func TestFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 10
		q := newQueue(t, batcher.Config{MaxConcurrent: 1, QueueSize: n})
		hold := acquireNow(t, q)
		var (
			mu    sync.Mutex
			order []int
			wg    sync.WaitGroup
		)
		for i := range n {
			wg.Go(func() {
				rel, err := q.Acquire(t.Context(), time.Hour)
				if err != nil {
					t.Errorf("waiter %d: %v", i, err)
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				rel(upstream.SignalOK)
			})
			synctest.Wait() // waiter i is in line before waiter i+1 comes
		}
		checkStats(t, q, func(s batcher.Stats) bool { return s.Waiting == n }, "10 waiting")
		hold(upstream.SignalOK)
		wg.Wait()
		want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
		if !slices.Equal(order, want) {
			t.Fatalf("start order %v, want %v", order, want)
		}
	})
}

func TestQueueFullAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{MaxConcurrent: 1, QueueSize: 2})
		hold := acquireNow(t, q)
		w1 := acquireAsync(t.Context(), q, time.Hour)
		synctest.Wait() // w1 is first in line
		w2 := acquireAsync(t.Context(), q, time.Hour)
		synctest.Wait()

		start := time.Now()
		_, err := q.Acquire(t.Context(), time.Hour)
		if !errors.Is(err, batcher.ErrQueueFull) {
			t.Fatalf("third waiter: err %v, want ErrQueueFull", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("ErrQueueFull after %v, want at once", d)
		}
		checkStats(t, q, func(s batcher.Stats) bool {
			return s.SpilledFull == 1 && s.Waiting == 2 && s.InFlight == 1
		}, "one refused, two waiting, one in flight")

		hold(upstream.SignalOK)
		for _, w := range []<-chan acquired{w1, w2} {
			r := <-w
			if r.err != nil {
				t.Fatalf("waiter: %v", r.err)
			}
			r.rel(upstream.SignalOK)
		}
	})
}

// TestNoTimeToStart checks the estimate: with a service time of 100ms, two
// slots busy and three items in line, a fourth starts after four calls end
// at two per 100ms: 200ms.
func TestNoTimeToStart(t *testing.T) {
	for _, tc := range []struct {
		name        string
		maxWait     time.Duration
		ctxTimeout  time.Duration // 0: none
		closed      bool          // SetCeiling(0) first
		wantWaited  time.Duration // 0: refused at once
		wantWaiting int           // in line when refused
	}{
		{name: "estimate later than maxWait", maxWait: 199 * time.Millisecond},
		{name: "estimate later than the context deadline", maxWait: time.Hour, ctxTimeout: 150 * time.Millisecond},
		{name: "no time to wait at all", maxWait: 0},
		{name: "queue closed", maxWait: time.Hour, closed: true},
		{name: "estimate within maxWait: waits, then gives up", maxWait: 200 * time.Millisecond, wantWaited: 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clocktest.New(time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC))
				q := newQueue(t, batcher.Config{MaxConcurrent: 2, QueueSize: 10}, batcher.WithClock(clk.Now))
				rel := acquireNow(t, q)
				clk.Advance(100 * time.Millisecond)
				rel(upstream.SignalOK)
				checkStats(t, q, func(s batcher.Stats) bool { return s.ServiceTime == 100*time.Millisecond }, "ServiceTime 100ms")

				holds := []func(upstream.Signal){acquireNow(t, q), acquireNow(t, q)}
				var wg sync.WaitGroup
				waitErrs := make(chan error, 3) // read at the end: a goroutine must not fail t after it ends
				for range 3 {
					wg.Go(func() {
						rel, err := q.Acquire(t.Context(), time.Hour)
						if err != nil {
							waitErrs <- err
							return
						}
						rel(upstream.SignalBadAnswer)
					})
				}
				synctest.Wait()
				if tc.closed {
					q.SetCeiling(0)
				}

				ctx := t.Context()
				if tc.ctxTimeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
					defer cancel()
				}
				start := time.Now()
				_, err := q.Acquire(ctx, tc.maxWait)
				if !errors.Is(err, batcher.ErrNoTimeToStart) {
					t.Fatalf("err %v, want ErrNoTimeToStart", err)
				}
				if d := time.Since(start); d != tc.wantWaited {
					t.Fatalf("refused after %v, want %v", d, tc.wantWaited)
				}
				checkStats(t, q, func(s batcher.Stats) bool {
					return s.SpilledNoTime == 1 && s.InFlight == 2 && s.Waiting == 3 && s.Started == 3
				}, "one spilled, the slots and the line as they were")

				q.SetCeiling(2)
				for _, h := range holds {
					h(upstream.SignalBadAnswer)
				}
				wg.Wait()
				close(waitErrs)
				for err := range waitErrs {
					t.Errorf("waiter: %v", err)
				}
				checkStats(t, q, func(s batcher.Stats) bool { return s.InFlight == 0 && s.Started == 6 }, "all done")
			})
		})
	}
}

func TestCancelWhileWaitingFreesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{MaxConcurrent: 1, QueueSize: 4})
		hold := acquireNow(t, q)
		ctx, cancel := context.WithCancel(t.Context())
		w := acquireAsync(ctx, q, time.Hour)
		synctest.Wait()
		checkStats(t, q, func(s batcher.Stats) bool { return s.Waiting == 1 }, "one waiting")

		cancel()
		r := <-w
		if !errors.Is(r.err, context.Canceled) || r.rel != nil {
			t.Fatalf("canceled waiter: err %v, release %v; want context.Canceled and none", r.err, r.rel != nil)
		}
		checkStats(t, q, func(s batcher.Stats) bool {
			return s.InFlight == 1 && s.Waiting == 0 && s.Canceled == 1 && s.Started == 1
		}, "the holder's slot only, nobody waiting")

		// The slot is still the holder's: the next waiter waits for it.
		w2 := acquireAsync(t.Context(), q, time.Hour)
		synctest.Wait()
		if _, ok := ready(w2); ok {
			t.Fatal("a waiter started while the only slot was held")
		}
		hold(upstream.SignalOK)
		r2 := <-w2
		if r2.err != nil {
			t.Fatalf("second waiter: %v", r2.err)
		}
		r2.rel(upstream.SignalOK)
		checkStats(t, q, func(s batcher.Stats) bool { return s.InFlight == 0 && s.Started == 2 }, "nothing held")
	})
}

// raceCtx is a context that ends the moment Acquire starts waiting on it:
// its Done first runs before (which hands the waiter the slot) and then
// returns a closed channel, so that both of the waiter's cases are ready at
// once and select picks one at random.
type raceCtx struct {
	context.Context
	once   sync.Once
	before func()
	done   chan struct{}
}

func (c *raceCtx) Done() <-chan struct{} {
	c.once.Do(func() {
		c.before()
		close(c.done)
	})
	return c.done
}

func (c *raceCtx) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// TestCancelRacingGrant ends a waiter's context just as a release hands it
// the slot; whichever wins, no slot leaks and none is counted twice.
func TestCancelRacingGrant(t *testing.T) {
	var won, lost int
	for range 200 {
		q := newQueue(t, batcher.Config{MaxConcurrent: 1, QueueSize: 2})
		hold := acquireNow(t, q)
		ctx := &raceCtx{Context: t.Context(), before: func() { hold(upstream.SignalOK) }, done: make(chan struct{})}
		rel, err := q.Acquire(ctx, time.Hour)
		started := uint64(1)
		if err == nil {
			won++
			started++
			rel(upstream.SignalOK)
		} else if errors.Is(err, context.Canceled) {
			lost++
		} else {
			t.Fatalf("waiter: %v", err)
		}
		checkStats(t, q, func(s batcher.Stats) bool {
			return s.InFlight == 0 && s.Waiting == 0 && s.Started == started
		}, "nothing held or waiting")
		acquireNow(t, q)(upstream.SignalOK)
	}
	if won == 0 || lost == 0 {
		t.Fatalf("waiter got the slot %d times and gave up %d times: both paths should have run", won, lost)
	}
}

func TestReleaseTwiceIsHarmless(t *testing.T) {
	q := newQueue(t, batcher.Config{MaxConcurrent: 2})
	rel := acquireNow(t, q)
	other := acquireNow(t, q)
	rel(upstream.SignalServerError)
	rel(upstream.SignalServerError)
	checkStats(t, q, func(s batcher.Stats) bool { return s.InFlight == 1 && s.Halvings == 1 }, "one released, one cut")
	other(upstream.SignalOK)
}

// TestReleaseWakesNext: a release starts the next in line, unless the limit
// (here cut by an Overload) still has no room.
func TestReleaseWakesNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{MaxConcurrent: 2, QueueSize: 4})
		a, b := acquireNow(t, q), acquireNow(t, q)
		w := acquireAsync(t.Context(), q, time.Hour)
		synctest.Wait()

		a(upstream.SignalServerError) // limit 2 -> 1, with b still in flight: no room
		synctest.Wait()
		if _, ok := ready(w); ok {
			t.Fatal("waiter started with 1 in flight and a limit of 1")
		}
		checkStats(t, q, func(s batcher.Stats) bool { return s.Limit == 1 && s.InFlight == 1 && s.Waiting == 1 }, "limit 1, b in flight, w waiting")

		b(upstream.SignalOK)
		synctest.Wait()
		r, ok := ready(w)
		if !ok || r.err != nil {
			t.Fatalf("waiter not started by the release that made room (ok %v, err %v)", ok, r.err)
		}
		r.rel(upstream.SignalOK)
	})
}

func TestHalvingOncePerRound(t *testing.T) {
	q := newQueue(t, batcher.Config{MaxConcurrent: 8})
	burst := func(n int) []func(upstream.Signal) {
		rels := make([]func(upstream.Signal), n)
		for i := range rels {
			rels[i] = acquireNow(t, q)
		}
		return rels
	}
	want := func(limit int, halvings uint64) {
		t.Helper()
		checkStats(t, q, func(s batcher.Stats) bool { return s.Limit == limit && s.Halvings == halvings },
			fmt.Sprintf("limit %d, halvings %d", limit, halvings))
	}

	round0 := burst(8)
	round0[0](upstream.SignalServerError)
	want(4, 1)
	// The rest of the same burst: started before the cut, already answered.
	for _, rel := range round0[1:] {
		rel(upstream.SignalServerError)
	}
	want(4, 1)

	round1 := burst(4)
	round1[0](upstream.SignalServerError)
	want(2, 2)
	for _, rel := range round1[1:] {
		rel(upstream.SignalServerError)
	}
	want(2, 2)

	round2 := burst(2)
	round2[0](upstream.SignalServerError)
	round2[1](upstream.SignalServerError)
	want(1, 3)
	acquireNow(t, q)(upstream.SignalServerError)
	want(1, 4) // a limit of 1 stays 1
}

// cycle runs one call that starts at once and ends with o.
func cycle(t *testing.T, q *batcher.Queue, o upstream.Signal, times int) {
	t.Helper()
	for range times {
		acquireNow(t, q)(o)
	}
}

// cutTo halves a fresh queue of MaxConcurrent 4 to a limit of 2.
func cutTo2(t *testing.T, q *batcher.Queue) {
	t.Helper()
	rels := []func(upstream.Signal){acquireNow(t, q), acquireNow(t, q), acquireNow(t, q), acquireNow(t, q)}
	rels[0](upstream.SignalServerError)
	for _, rel := range rels[1:] {
		rel(upstream.SignalBadAnswer)
	}
	checkStats(t, q, func(s batcher.Stats) bool { return s.Limit == 2 }, "limit 2 after one cut")
}

func TestGrowth(t *testing.T) {
	type step struct {
		outcome   upstream.Signal
		times     int
		ceiling   int // >0: SetCeiling first
		wantLimit int
	}
	for _, tc := range []struct {
		name      string
		grow      int
		steps     []step
		wantGrows uint64
	}{
		{
			name: "default: a run as long as the limit, up to MaxConcurrent",
			steps: []step{
				{outcome: upstream.SignalOK, times: 1, wantLimit: 2},
				{outcome: upstream.SignalOK, times: 1, wantLimit: 3}, // 2 in a row at limit 2
				{outcome: upstream.SignalOK, times: 2, wantLimit: 3},
				{outcome: upstream.SignalOK, times: 1, wantLimit: 4}, // 3 in a row at limit 3
				{outcome: upstream.SignalOK, times: 20, wantLimit: 4},
			},
			wantGrows: 2,
		},
		{
			name: "other failures neither count nor break the run",
			steps: []step{
				{outcome: upstream.SignalOK, times: 1, wantLimit: 2},
				{outcome: upstream.SignalBadAnswer, times: 5, wantLimit: 2},
				{outcome: upstream.SignalOK, times: 1, wantLimit: 3},
			},
			wantGrows: 1,
		},
		{
			name: "an overload breaks the run",
			grow: 3,
			steps: []step{
				{outcome: upstream.SignalOK, times: 2, wantLimit: 2},
				{outcome: upstream.SignalServerError, times: 1, wantLimit: 1},
				{outcome: upstream.SignalOK, times: 2, wantLimit: 1},
				{outcome: upstream.SignalOK, times: 1, wantLimit: 2},
			},
			wantGrows: 1,
		},
		{
			name: "never above the ceiling, and on when it is raised",
			grow: 1,
			steps: []step{
				{ceiling: 3, outcome: upstream.SignalOK, times: 1, wantLimit: 3},
				{outcome: upstream.SignalOK, times: 10, wantLimit: 3},
				{ceiling: 4, outcome: upstream.SignalOK, times: 1, wantLimit: 4},
				{outcome: upstream.SignalOK, times: 10, wantLimit: 4},
			},
			wantGrows: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t, batcher.Config{MaxConcurrent: 4, SuccessesToGrow: tc.grow})
			cutTo2(t, q)
			for i, st := range tc.steps {
				if st.ceiling > 0 {
					q.SetCeiling(st.ceiling)
				}
				cycle(t, q, st.outcome, st.times)
				if s := q.Stats(); s.Limit != st.wantLimit {
					t.Fatalf("step %d (%v x%d): limit %d, want %d", i, st.outcome, st.times, s.Limit, st.wantLimit)
				}
			}
			if s := q.Stats(); s.Grows != tc.wantGrows {
				t.Fatalf("Grows %d, want %d", s.Grows, tc.wantGrows)
			}
		})
	}
}

func TestSetCeilingDownThenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{MaxConcurrent: 4, QueueSize: 8})
		holds := []func(upstream.Signal){acquireNow(t, q), acquireNow(t, q), acquireNow(t, q), acquireNow(t, q)}
		q.SetCeiling(1)
		var ws []<-chan acquired
		for range 3 {
			ws = append(ws, acquireAsync(t.Context(), q, time.Hour))
			synctest.Wait()
		}
		started := func() (n int, rels []func(upstream.Signal)) {
			for i, w := range ws {
				if w == nil {
					continue
				}
				if r, ok := ready(w); ok {
					if r.err != nil {
						t.Fatalf("waiter: %v", r.err)
					}
					ws[i] = nil
					n++
					rels = append(rels, r.rel)
				}
			}
			return n, rels
		}

		for _, h := range holds[:3] {
			h(upstream.SignalOK)
		}
		synctest.Wait()
		if n, _ := started(); n != 0 {
			t.Fatalf("%d waiters started with 1 in flight under a ceiling of 1", n)
		}
		holds[3](upstream.SignalOK)
		synctest.Wait()
		n, rels := started()
		if n != 1 {
			t.Fatalf("%d waiters started once the last of 4 ended under a ceiling of 1, want 1", n)
		}
		checkStats(t, q, func(s batcher.Stats) bool { return s.Ceiling == 1 && s.Limit == 4 && s.InFlight == 1 }, "ceiling 1, limit kept at 4")

		q.SetCeiling(99) // clamped to MaxConcurrent
		synctest.Wait()
		n, more := started()
		if n != 2 {
			t.Fatalf("%d waiters started when the ceiling was restored, want 2", n)
		}
		checkStats(t, q, func(s batcher.Stats) bool { return s.Ceiling == 4 && s.InFlight == 3 }, "ceiling 4, 3 in flight")
		for _, rel := range append(rels, more...) {
			rel(upstream.SignalOK)
		}
	})
}

func TestCeilingZeroClosesTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{MaxConcurrent: 2, QueueSize: 8})
		a, b := acquireNow(t, q), acquireNow(t, q)
		w := acquireAsync(t.Context(), q, 5*time.Second)
		synctest.Wait()
		start := time.Now()

		q.SetCeiling(0)
		if _, err := q.Acquire(t.Context(), time.Hour); !errors.Is(err, batcher.ErrNoTimeToStart) {
			t.Fatalf("new item under ceiling 0: err %v, want ErrNoTimeToStart", err)
		}
		a(upstream.SignalOK)
		b(upstream.SignalOK)
		r := <-w // nothing starts: the waiter leaves when its maxWait is up
		if !errors.Is(r.err, batcher.ErrNoTimeToStart) {
			t.Fatalf("waiter under ceiling 0: err %v, want ErrNoTimeToStart", r.err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("waiter left after %v, want its maxWait of 5s", d)
		}
		checkStats(t, q, func(s batcher.Stats) bool {
			return s.InFlight == 0 && s.Waiting == 0 && s.SpilledNoTime == 2 && s.Ceiling == 0
		}, "nothing held, two spilled")

		q.SetCeiling(2)
		acquireNow(t, q)(upstream.SignalOK)
	})
}

// TestWavesPacing: waves of 3 under a limit of 2, 100ms calls, a rest of
// 2s after each wave's last call ends.
func TestWavesPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const items, service = 8, 100 * time.Millisecond
		q := newQueue(t, batcher.Config{
			MaxConcurrent: 2, QueueSize: items,
			Pacing: batcher.Waves, WaveSize: 3, WaveDelay: 2 * time.Second,
		})
		t0 := time.Now()
		var (
			mu     sync.Mutex
			starts []time.Duration
			wg     sync.WaitGroup
		)
		for range items {
			wg.Go(func() {
				rel, err := q.Acquire(t.Context(), time.Minute)
				if err != nil {
					t.Errorf("item: %v", err)
					return
				}
				mu.Lock()
				starts = append(starts, time.Since(t0))
				mu.Unlock()
				time.Sleep(service)
				rel(upstream.SignalOK)
			})
		}
		wg.Wait()
		slices.Sort(starts)
		ms := time.Millisecond
		want := []time.Duration{
			0, 0, 100 * ms, // wave 1: 2 slots, the third when one frees; ends at 200ms
			2200 * ms, 2200 * ms, 2300 * ms, // wave 2 after the 2s rest; ends at 2.4s
			4400 * ms, 4400 * ms, // wave 3
		}
		if !slices.Equal(starts, want) {
			t.Fatalf("starts %v, want %v", starts, want)
		}
	})
}

// TestWavesEstimate: a wave of one has ended at 100ms, so the next start is
// at 2.1s; an item that can wait less is refused at once, one that can wait
// longer starts then.
func TestWavesEstimate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, batcher.Config{
			MaxConcurrent: 1, QueueSize: 4,
			Pacing: batcher.Waves, WaveSize: 1, WaveDelay: 2 * time.Second,
		})
		t0 := time.Now()
		rel := acquireNow(t, q)
		time.Sleep(100 * time.Millisecond)
		rel(upstream.SignalOK)

		if _, err := q.Acquire(t.Context(), time.Second); !errors.Is(err, batcher.ErrNoTimeToStart) {
			t.Fatalf("during a 2s rest with 1s to spare: err %v, want ErrNoTimeToStart", err)
		}
		if d := time.Since(t0); d != 100*time.Millisecond {
			t.Fatalf("refused at %v, want at once (100ms)", d)
		}
		rel, err := q.Acquire(t.Context(), 3*time.Second)
		if err != nil {
			t.Fatalf("with 3s to spare: %v", err)
		}
		if d := time.Since(t0); d != 2100*time.Millisecond {
			t.Fatalf("started at %v, want 2.1s (the end of the rest)", d)
		}
		rel(upstream.SignalOK)
	})
}

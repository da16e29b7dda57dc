package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/clocktest"
)

// newFakeClock is the tests' clock, moved by hand.
func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC))
}

// step is one Reserve of a table test: advance the clock by adv, reserve
// with maxWait, expect wait (or, with window set, a refusal by that window
// whose Wait is wait). A step with cancel set reserves nothing: it cancels
// the reservation of the step labelled so, after advancing the clock.
type step struct {
	adv     time.Duration
	maxWait time.Duration
	wait    time.Duration
	window  string
	label   string
	cancel  string
}

// runSteps plays steps on q, whose clock is clk.
func runSteps(t *testing.T, q *Quota, clk *clocktest.Clock, steps []step) {
	t.Helper()
	ctx := context.Background()
	held := map[string]*Reservation{}
	for i, s := range steps {
		clk.Advance(s.adv)
		if s.cancel != "" {
			r, ok := held[s.cancel]
			if !ok {
				t.Fatalf("step %d: no reservation labelled %q", i, s.cancel)
			}
			r.Cancel(ctx)
			continue
		}
		r, err := q.Reserve(ctx, s.maxWait)
		if s.window != "" {
			var ns *NoSlotError
			if !errors.As(err, &ns) {
				t.Fatalf("step %d: got wait %v, err %v; want a %s refusal", i, r.Wait(), err, s.window)
			}
			if ns.Window != s.window || ns.Wait != s.wait || ns.Provider != q.Provider() {
				t.Fatalf("step %d: refusal %+v, want window %s wait %v", i, *ns, s.window, s.wait)
			}
			continue
		}
		if err != nil || r.Wait() != s.wait {
			t.Fatalf("step %d: got %v, %v; want %v", i, r.Wait(), err, s.wait)
		}
		if s.label != "" {
			held[s.label] = r
		}
	}
}

// newMemory is NewMemory for tests that build it from valid limits.
func newMemory(tb testing.TB, limits map[Provider]Limits, opts ...Option) *Limiter {
	tb.Helper()
	l, err := NewMemory(limits, opts...)
	if err != nil {
		tb.Fatalf("NewMemory: %v", err)
	}
	return l
}

// quota is l.For(p) for tests in which p is configured.
func quota(tb testing.TB, l *Limiter, p Provider) *Quota {
	tb.Helper()
	q, err := l.For(p)
	if err != nil {
		tb.Fatalf("For(%s): %v", p, err)
	}
	return q
}

func repeat(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func steps(parts ...[]step) []step { return slices.Concat(parts...) }

func TestReserveMemoryWindows(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name   string
		limits Limits
		steps  []step
	}{
		{
			name:   "rpm 10: ten at once, the 11th waits until the first leaves",
			limits: Limits{PerMinute: 10},
			steps: steps(
				repeat(10, step{maxWait: 0, wait: 0}),
				[]step{
					{maxWait: 0, wait: time.Minute, window: "minute"},
					{maxWait: 59 * time.Second, wait: time.Minute, window: "minute"},
					{maxWait: h, wait: time.Minute},
					{adv: 30 * time.Second, maxWait: h, wait: 30 * time.Second},
				},
				// The slot at t0+60s holds ten like any other instant.
				repeat(8, step{maxWait: h, wait: 30 * time.Second}),
				[]step{{maxWait: h, wait: 90 * time.Second}},
			),
		},
		{
			name:   "rpm 10 slides: no fresh budget at a minute boundary",
			limits: Limits{PerMinute: 10},
			steps: steps(
				repeat(5, step{}),
				[]step{{adv: 40 * time.Second}},
				repeat(4, step{}),
				[]step{
					{adv: 30 * time.Second}, // t0+70s: the first five left
				},
				repeat(4, step{}),
				[]step{
					{maxWait: 0, wait: 30 * time.Second, window: "minute"}, // t0+40s's leave at t0+100s
					{adv: 30 * time.Second},
				},
			),
		},
		{
			name:   "rpd 3",
			limits: Limits{PerDay: 3},
			steps: steps(
				repeat(3, step{}),
				[]step{
					{adv: h, maxWait: 0, wait: 23 * h, window: "day"},
					{maxWait: 22 * h, wait: 23 * h, window: "day"},
					{maxWait: 24 * h, wait: 23 * h},
					{adv: 23 * h, maxWait: 0, wait: 0}, // t0+24h: the first three left
				},
			),
		},
		{
			name:   "min interval spaces slots",
			limits: Limits{MinInterval: 3 * time.Second},
			steps: []step{
				{maxWait: time.Minute, wait: 0},
				{maxWait: time.Minute, wait: 3 * time.Second},
				{maxWait: time.Minute, wait: 6 * time.Second},
				{adv: 10 * time.Second, maxWait: 0, wait: 0},
				{adv: time.Second, maxWait: time.Second, wait: 2 * time.Second, window: "interval"},
				{maxWait: 2 * time.Second, wait: 2 * time.Second},
			},
		},
		{
			name:   "several windows: the binding one wins",
			limits: Limits{PerMinute: 2, PerHour: 3, MinInterval: 10 * time.Second},
			steps: []step{
				{maxWait: 2 * h, wait: 0},
				{maxWait: 2 * h, wait: 10 * time.Second}, // interval
				{maxWait: 0, wait: time.Minute, window: "minute"},
				{maxWait: 2 * h, wait: time.Minute},                 // minute: t0 leaves at t0+60s
				{maxWait: h - time.Second, wait: h, window: "hour"}, // minute would allow t0+70s
				{maxWait: 2 * h, wait: h},
				{adv: h, maxWait: 0, wait: 10 * time.Second, window: "hour"}, // t0+10s leaves at t0+1h10s
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			l := newMemory(t, map[Provider]Limits{ProviderGemini: tc.limits}, WithClock(clk.Now))
			runSteps(t, quota(t, l, ProviderGemini), clk, tc.steps)
		})
	}
}

// TestCancelMemory: a cancelled slot is free again, in every window and
// for the least interval, and never more than that one slot.
func TestCancelMemory(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name   string
		limits Limits
		steps  []step
	}{
		{
			name:   "a full minute, one cancelled: one more now",
			limits: Limits{PerMinute: 3},
			steps: []step{
				{label: "a"}, {label: "b"}, {label: "c"},
				{maxWait: 0, wait: time.Minute, window: "minute"},
				{cancel: "b"},
				{maxWait: 0, wait: 0},
				{maxWait: 0, wait: time.Minute, window: "minute"},
			},
		},
		{
			name:   "cancelled twice: one slot back, not two",
			limits: Limits{PerMinute: 2},
			steps: []step{
				{label: "a"}, {label: "b"},
				{cancel: "a"}, {cancel: "a"},
				{maxWait: 0, wait: 0},
				{maxWait: 0, wait: time.Minute, window: "minute"},
			},
		},
		{
			name:   "the cancelled latest slot gives the interval anchor back",
			limits: Limits{MinInterval: 3 * time.Second},
			steps: []step{
				{label: "a"},
				{adv: time.Second, maxWait: time.Minute, wait: 2 * time.Second, label: "b"}, // t0+3s
				{cancel: "b"},
				// Spaced from a (t0+3s), not from the cancelled b (t0+6s).
				{maxWait: time.Minute, wait: 2 * time.Second},
				{maxWait: 0, wait: 5 * time.Second, window: "interval"},
			},
		},
		{
			name:   "two latest slots cancelled: the anchor goes back twice",
			limits: Limits{PerMinute: 10, MinInterval: 3 * time.Second},
			steps: []step{
				{label: "a"},
				{maxWait: time.Minute, wait: 3 * time.Second, label: "b"},
				{maxWait: time.Minute, wait: 6 * time.Second, label: "c"},
				{cancel: "c"}, {cancel: "b"},
				{maxWait: time.Minute, wait: 3 * time.Second},
			},
		},
		{
			// Slots at 0..9 s; those at 9..2 s cancelled, then the one at
			// 1 s: the anchor goes back to 1 s, then knows nothing earlier
			// and stays there.
			name:   "more latest slots cancelled in a row than are kept",
			limits: Limits{MinInterval: time.Second},
			steps: func() []step {
				var ss []step
				for i := range recentKeep + 2 {
					ss = append(ss, step{maxWait: time.Minute, wait: time.Duration(i) * time.Second, label: fmt.Sprint(i)})
				}
				for i := recentKeep + 1; i >= 2; i-- {
					ss = append(ss, step{cancel: fmt.Sprint(i)})
				}
				ss = append(ss,
					step{maxWait: 0, wait: 2 * time.Second, window: "interval"},
					step{cancel: "1"},
					step{maxWait: 0, wait: 2 * time.Second, window: "interval"})
				return ss
			}(),
		},
		{
			name:   "an earlier slot cancelled leaves the anchor on the latest",
			limits: Limits{MinInterval: 3 * time.Second},
			steps: []step{
				{label: "a"},
				{maxWait: time.Minute, wait: 3 * time.Second, label: "b"},
				{cancel: "a"},
				{maxWait: time.Minute, wait: 6 * time.Second},
			},
		},
		{
			name:   "a future slot cancelled is free again, and only it",
			limits: Limits{PerMinute: 2},
			steps: []step{
				{label: "a"}, {label: "b"},
				{maxWait: h, wait: time.Minute, label: "c"},
				{cancel: "c"},
				// The minute from now still holds a and b.
				{maxWait: 0, wait: time.Minute, window: "minute"},
				{maxWait: h, wait: time.Minute},
				{maxWait: h, wait: time.Minute},
				{maxWait: h, wait: 2 * time.Minute},
			},
		},
		{
			name:   "an older slot cancelled while a future one is held",
			limits: Limits{PerMinute: 2},
			steps: []step{
				{label: "a"}, {label: "b"},
				{maxWait: h, wait: time.Minute, label: "c"},
				{cancel: "a"},
				// Slots stay in order: not before c, and b still counts
				// until t0+60s.
				{maxWait: h, wait: time.Minute},
				{maxWait: h, wait: 2 * time.Minute},
			},
		},
		{
			name:   "a cancel after the window passed changes nothing",
			limits: Limits{PerMinute: 2},
			steps: []step{
				{label: "a"}, {label: "b"},
				{adv: time.Minute, cancel: "a"},
				{}, {},
				{maxWait: 0, wait: time.Minute, window: "minute"},
			},
		},
		{
			name:   "a slot cancelled an hour later frees the day",
			limits: Limits{PerMinute: 5, PerDay: 3},
			steps: []step{
				{label: "a"}, {label: "b"}, {label: "c"},
				{maxWait: 0, wait: 24 * h, window: "day"},
				{adv: time.Hour, cancel: "b"},
				{},
				{maxWait: 0, wait: 23 * h, window: "day"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			l := newMemory(t, map[Provider]Limits{ProviderGemini: tc.limits}, WithClock(clk.Now))
			runSteps(t, quota(t, l, ProviderGemini), clk, tc.steps)
		})
	}
}

// TestCancelMemoryUsage: a cancelled slot leaves Usage at once.
func TestCancelMemoryUsage(t *testing.T) {
	clk := newFakeClock()
	q := quota(t, newMemory(t, map[Provider]Limits{ProviderAnthropic: {PerMinute: 5, MinInterval: time.Second}}, WithClock(clk.Now)), ProviderAnthropic)
	ctx := context.Background()
	r, err := q.Reserve(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.Cancel(ctx)
	for _, u := range q.Usage(ctx) {
		if u.Used != 0 {
			t.Errorf("%s: used %d after the only slot was cancelled", u.Window, u.Used)
		}
	}
}

// TestCancelMemoryConcurrent: Cancel called from many goroutines at once,
// beside Reserves, gives one slot back.
func TestCancelMemoryConcurrent(t *testing.T) {
	q := quota(t, newMemory(t, map[Provider]Limits{ProviderGemini: {PerMinute: 4}}), ProviderGemini)
	ctx := context.Background()
	var rs []*Reservation
	for range 4 {
		r, err := q.Reserve(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { rs[0].Cancel(ctx) })
	}
	wg.Wait()
	if got := admitted(t, q, 10); got != 1 {
		t.Fatalf("admitted %d after one slot was cancelled by 8 goroutines, want 1", got)
	}
}

// TestNilReservation: a nil Reservation waits for nothing and cancels
// nothing, so a caller may hold one for a tier without a quota.
func TestNilReservation(t *testing.T) {
	var r *Reservation
	if r.Wait() != 0 {
		t.Fatalf("nil Wait %v", r.Wait())
	}
	r.Cancel(context.Background())
}

func TestReserveMemoryRefusalClaimsNothing(t *testing.T) {
	clk := newFakeClock()
	q := quota(t, newMemory(t, map[Provider]Limits{ProviderAnthropic: {PerMinute: 1, PerDay: 5}}, WithClock(clk.Now)), ProviderAnthropic)
	ctx := context.Background()
	if r, err := q.Reserve(ctx, 0); r.Wait() != 0 || err != nil {
		t.Fatalf("first: %v, %v", r.Wait(), err)
	}
	for range 100 {
		if _, err := q.Reserve(ctx, 59*time.Second); err == nil {
			t.Fatal("a refusal was wanted")
		}
	}
	for _, u := range q.Usage(ctx) {
		if u.Used != 1 {
			t.Errorf("%s: used %d after refusals, want 1", u.Window, u.Used)
		}
	}
	clk.Advance(time.Minute)
	if r, err := q.Reserve(ctx, 0); r.Wait() != 0 || err != nil {
		t.Fatalf("after a minute: %v, %v", r.Wait(), err)
	}
}

// TestReserveMemoryUnlimited: a provider configured with no limits (all
// zero, or negative) is never held back and has no windows to show.
func TestReserveMemoryUnlimited(t *testing.T) {
	l := newMemory(t, map[Provider]Limits{
		ProviderLocal:     {},
		ProviderAnthropic: {PerMinute: -1, MinInterval: -time.Second},
		ProviderGemini:    {PerMinute: 1},
	})
	ctx := context.Background()
	for _, p := range []Provider{ProviderLocal, ProviderAnthropic} {
		q := quota(t, l, p)
		for range 1000 {
			r, err := q.Reserve(ctx, 0)
			if r.Wait() != 0 || err != nil {
				t.Fatalf("%s: %v, %v", p, r.Wait(), err)
			}
			r.Cancel(ctx)
		}
		if u := q.Usage(ctx); u != nil {
			t.Errorf("%s: usage %v, want none", p, u)
		}
	}
	if l.Backend() != "memory" {
		t.Errorf("backend %q", l.Backend())
	}
}

func TestReserveMemoryCancelled(t *testing.T) {
	q := quota(t, newMemory(t, map[Provider]Limits{ProviderGemini: {PerMinute: 1}}), ProviderGemini)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Reserve(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if u := q.Usage(context.Background()); u[0].Used != 0 {
		t.Fatalf("a cancelled Reserve claimed a slot: %+v", u)
	}
}

func TestUsageMemory(t *testing.T) {
	clk := newFakeClock()
	t0 := clk.Now()
	q := quota(t, newMemory(t, map[Provider]Limits{ProviderGemini: {PerMinute: 10, PerHour: 100, MinInterval: 2 * time.Second}}, WithClock(clk.Now)), ProviderGemini)
	ctx := context.Background()
	u := q.Usage(ctx)
	want := []WindowUsage{
		{Window: "minute", Limit: 10, ResetsAt: t0},
		{Window: "hour", Limit: 100, ResetsAt: t0},
		{Window: "interval", Limit: 1, ResetsAt: t0},
	}
	if fmt.Sprint(u) != fmt.Sprint(want) {
		t.Fatalf("empty usage\n got %v\nwant %v", u, want)
	}
	for range 3 {
		if _, err := q.Reserve(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	// Slots at t0, t0+2s, t0+4s.
	want = []WindowUsage{
		{Window: "minute", Used: 3, Limit: 10, ResetsAt: t0.Add(time.Minute)},
		{Window: "hour", Used: 3, Limit: 100, ResetsAt: t0.Add(time.Hour)},
		{Window: "interval", Used: 1, Limit: 1, ResetsAt: t0.Add(6 * time.Second)},
	}
	if u := q.Usage(ctx); fmt.Sprint(u) != fmt.Sprint(want) {
		t.Fatalf("usage\n got %v\nwant %v", u, want)
	}
	clk.Advance(time.Minute + 4*time.Second) // t0+65s: the minute is empty
	u = q.Usage(ctx)
	if u[0].Used != 0 || !u[0].ResetsAt.Equal(clk.Now()) || u[1].Used != 3 || u[2].Used != 0 {
		t.Fatalf("usage after a minute: %v", u)
	}
}

// TestReserveMemoryProperty drives random limits through a random schedule
// and checks every answer against a brute-force oracle (the earliest slot
// that keeps every window within its limit), then that no sliding window of
// any length ever held more than its limit.
func TestReserveMemoryProperty(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runProperty(t, seed, false) })
	}
}

// TestCancelMemoryProperty is TestReserveMemoryProperty with random
// cancels (of recent slots, of old ones, of cancelled ones again): the
// answers must stay those of the oracle over the slots not cancelled, so a
// cancel frees exactly its slot, never more, never less.
func TestCancelMemoryProperty(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runProperty(t, seed, true) })
	}
}

func runProperty(t *testing.T, seed uint64, cancels bool) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	lim := Limits{
		PerMinute:   rng.IntN(6),
		PerHour:     rng.IntN(30),
		PerDay:      rng.IntN(200),
		MinInterval: time.Duration(rng.IntN(3)) * time.Duration(rng.IntN(20)) * time.Second,
	}
	if lim.none() {
		lim.PerMinute = 3
	}
	clk := newFakeClock()
	q := quota(t, newMemory(t, map[Provider]Limits{ProviderGemini: lim}, WithClock(clk.Now)), ProviderGemini)
	ctx := context.Background()
	// admitted holds the slots not cancelled, in the order claimed (which
	// is time order); held their reservations.
	var (
		admitted  []time.Time
		held      []*Reservation
		cancelled []*Reservation
	)
	for i := range 600 {
		switch rng.IntN(4) {
		case 0:
			clk.Advance(time.Duration(rng.Int64N(int64(3 * time.Hour))))
		case 1:
			clk.Advance(time.Duration(rng.Int64N(int64(90 * time.Second))))
		}
		if cancels && len(held) > 0 && rng.IntN(3) == 0 {
			// Mostly one of the latest few, as a router does; sometimes
			// any; sometimes one already cancelled.
			j := len(held) - 1 - rng.IntN(min(len(held), 4))
			if rng.IntN(4) == 0 {
				j = rng.IntN(len(held))
			}
			if len(cancelled) > 0 && rng.IntN(5) == 0 {
				cancelled[rng.IntN(len(cancelled))].Cancel(ctx)
				continue
			}
			held[j].Cancel(ctx)
			cancelled = append(cancelled, held[j])
			admitted, held = slices.Delete(admitted, j, j+1), slices.Delete(held, j, j+1)
			continue
		}
		maxWait := []time.Duration{0, time.Second, 30 * time.Second, 5 * time.Minute, 2 * time.Hour}[rng.IntN(5)]
		now := clk.Now()
		want := oracleSlot(lim, admitted, now)
		r, err := q.Reserve(ctx, maxWait)
		if want.Sub(now) > maxWait {
			var ns *NoSlotError
			if !errors.As(err, &ns) || ns.Wait != want.Sub(now) {
				t.Fatalf("step %d (%+v): got %v, %v; want a refusal with wait %v", i, lim, r.Wait(), err, want.Sub(now))
			}
			continue
		}
		if err != nil || r.Wait() != want.Sub(now) {
			t.Fatalf("step %d (%+v): got %v, %v; want %v", i, lim, r.Wait(), err, want.Sub(now))
		}
		admitted, held = append(admitted, now.Add(r.Wait())), append(held, r)
	}
	checkNeverOver(t, lim, admitted)
}

// oracleSlot is the earliest t ≥ max(now, last + MinInterval) at which, for
// every window, fewer than n admitted slots lie in (t−T, t]. Slots are
// handed out in order, so no t before the last admitted slot is a
// candidate even when the windows would allow it.
func oracleSlot(l Limits, admitted []time.Time, now time.Time) time.Time {
	lower := now
	if k := len(admitted); k > 0 {
		if b := admitted[k-1].Add(l.MinInterval); b.After(lower) {
			lower = b
		}
	}
	cands := []time.Time{lower}
	for _, r := range l.rules() {
		for _, s := range admitted {
			if c := s.Add(r.length); c.After(lower) {
				cands = append(cands, c)
			}
		}
	}
	slices.SortFunc(cands, func(a, b time.Time) int { return a.Compare(b) })
	for _, c := range cands {
		ok := true
		for _, r := range l.rules() {
			n := 0
			for _, s := range admitted {
				if s.After(c.Add(-r.length)) && !s.After(c) {
					n++
				}
			}
			if n >= r.n {
				ok = false
				break
			}
		}
		if ok {
			return c
		}
	}
	panic("no candidate fits")
}

// checkNeverOver asserts that slots are in order, spaced by MinInterval, and
// that no window [s, s+T) of any configured length holds more than its limit.
func checkNeverOver(t *testing.T, l Limits, slots []time.Time) {
	t.Helper()
	for i := 1; i < len(slots); i++ {
		if d := slots[i].Sub(slots[i-1]); d < l.MinInterval {
			t.Fatalf("slots %d and %d are %v apart, under the least interval %v", i-1, i, d, l.MinInterval)
		}
	}
	for _, r := range l.rules() {
		for i, s := range slots {
			n := 0
			for _, u := range slots[i:] {
				if u.Before(s.Add(r.length)) {
					n++
				}
			}
			if n > r.n {
				t.Fatalf("%d slots in the %s from %v, limit %d", n, r.name, s, r.n)
			}
		}
	}
}

// TestCutBefore checks the galloping cut against a plain scan, on sorted
// logs with repeated slots, for cuts before, inside and after them.
func TestCutBefore(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		log := make([]int64, rng.IntN(40))
		for i := range log {
			log[i] = int64(rng.IntN(30))
		}
		slices.Sort(log)
		cut := int64(rng.IntN(34)) - 2
		want := 0
		for want < len(log) && log[want] <= cut {
			want++
		}
		if got := cutBefore(log, cut); len(got) != len(log)-want {
			t.Fatalf("cutBefore(%v, %d) = %v, want %v", log, cut, got, log[want:])
		}
	}
}

package limiter

import (
	"context"
	"errors"
	"fmt"
	"github.com/catalystbot/sentiment/internal/clocktest"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// newFakeClock is the tests' clock, moved by hand.
func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC))
}

// step is one Reserve of a table test: advance the clock by adv, reserve
// with maxWait, expect wait (or, with window set, a refusal by that window
// whose Wait is wait).
type step struct {
	adv     time.Duration
	maxWait time.Duration
	wait    time.Duration
	window  string
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
			l := NewMemory(map[string]Limits{"gemini": tc.limits}, WithClock(clk.Now))
			for i, s := range tc.steps {
				clk.Advance(s.adv)
				got, err := l.Reserve(context.Background(), "gemini", s.maxWait)
				if s.window != "" {
					var ns *NoSlotError
					if !errors.As(err, &ns) {
						t.Fatalf("step %d: got wait %v, err %v; want a %s refusal", i, got, err, s.window)
					}
					if ns.Window != s.window || ns.Wait != s.wait || ns.Provider != "gemini" {
						t.Fatalf("step %d: refusal %+v, want window %s wait %v", i, *ns, s.window, s.wait)
					}
					continue
				}
				if err != nil || got != s.wait {
					t.Fatalf("step %d: got %v, %v; want %v", i, got, err, s.wait)
				}
			}
		})
	}
}

func TestReserveMemoryRefusalClaimsNothing(t *testing.T) {
	clk := newFakeClock()
	l := NewMemory(map[string]Limits{"anthropic": {PerMinute: 1, PerDay: 5}}, WithClock(clk.Now))
	ctx := context.Background()
	if w, err := l.Reserve(ctx, "anthropic", 0); w != 0 || err != nil {
		t.Fatalf("first: %v, %v", w, err)
	}
	for range 100 {
		if _, err := l.Reserve(ctx, "anthropic", 59*time.Second); err == nil {
			t.Fatal("a refusal was wanted")
		}
	}
	for _, u := range l.Usage(ctx, "anthropic") {
		if u.Used != 1 {
			t.Errorf("%s: used %d after refusals, want 1", u.Window, u.Used)
		}
	}
	clk.Advance(time.Minute)
	if w, err := l.Reserve(ctx, "anthropic", 0); w != 0 || err != nil {
		t.Fatalf("after a minute: %v, %v", w, err)
	}
}

func TestReserveMemoryUnlimited(t *testing.T) {
	l := NewMemory(map[string]Limits{"local": {}, "odd": {PerMinute: -1, MinInterval: -time.Second}, "gemini": {PerMinute: 1}})
	ctx := context.Background()
	for _, p := range []string{"local", "odd", "nobody"} {
		for range 1000 {
			if w, err := l.Reserve(ctx, p, 0); w != 0 || err != nil {
				t.Fatalf("%s: %v, %v", p, w, err)
			}
		}
		if u := l.Usage(ctx, p); u != nil {
			t.Errorf("%s: usage %v, want none", p, u)
		}
	}
	if l.Backend() != "memory" {
		t.Errorf("backend %q", l.Backend())
	}
}

func TestReserveMemoryCancelled(t *testing.T) {
	l := NewMemory(map[string]Limits{"gemini": {PerMinute: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Reserve(ctx, "gemini", time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if u := l.Usage(context.Background(), "gemini"); u[0].Used != 0 {
		t.Fatalf("a cancelled Reserve claimed a slot: %+v", u)
	}
}

func TestUsageMemory(t *testing.T) {
	clk := newFakeClock()
	t0 := clk.Now()
	l := NewMemory(map[string]Limits{"gemini": {PerMinute: 10, PerHour: 100, MinInterval: 2 * time.Second}}, WithClock(clk.Now))
	ctx := context.Background()
	u := l.Usage(ctx, "gemini")
	want := []WindowUsage{
		{Window: "minute", Limit: 10, ResetsAt: t0},
		{Window: "hour", Limit: 100, ResetsAt: t0},
		{Window: "interval", Limit: 1, ResetsAt: t0},
	}
	if fmt.Sprint(u) != fmt.Sprint(want) {
		t.Fatalf("empty usage\n got %v\nwant %v", u, want)
	}
	for range 3 {
		if _, err := l.Reserve(ctx, "gemini", time.Minute); err != nil {
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
	if u := l.Usage(ctx, "gemini"); fmt.Sprint(u) != fmt.Sprint(want) {
		t.Fatalf("usage\n got %v\nwant %v", u, want)
	}
	clk.Advance(time.Minute + 4*time.Second) // t0+65s: the minute is empty
	u = l.Usage(ctx, "gemini")
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
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
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
			l := NewMemory(map[string]Limits{"p": lim}, WithClock(clk.Now))
			var admitted []time.Time
			for i := range 600 {
				switch rng.IntN(4) {
				case 0:
					clk.Advance(time.Duration(rng.Int64N(int64(3 * time.Hour))))
				case 1:
					clk.Advance(time.Duration(rng.Int64N(int64(90 * time.Second))))
				}
				maxWait := []time.Duration{0, time.Second, 30 * time.Second, 5 * time.Minute, 2 * time.Hour}[rng.IntN(5)]
				now := clk.Now()
				want := oracleSlot(lim, admitted, now)
				got, err := l.Reserve(context.Background(), "p", maxWait)
				if want.Sub(now) > maxWait {
					var ns *NoSlotError
					if !errors.As(err, &ns) || ns.Wait != want.Sub(now) {
						t.Fatalf("step %d (%+v): got %v, %v; want a refusal with wait %v", i, lim, got, err, want.Sub(now))
					}
					continue
				}
				if err != nil || got != want.Sub(now) {
					t.Fatalf("step %d (%+v): got %v, %v; want %v", i, lim, got, err, want.Sub(now))
				}
				admitted = append(admitted, now.Add(got))
			}
			checkNeverOver(t, lim, admitted)
		})
	}
}

// oracleSlot is the earliest t ≥ max(now, last + MinInterval) at which, for
// every window, fewer than n admitted slots lie in (t−T, t].
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

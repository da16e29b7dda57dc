package cost

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		opts []Option
		want string
	}{
		{"negative daily", Config{DailyAlert: -1}, nil, "DailyAlert=-1"},
		{"NaN monthly", Config{MonthlyAlert: math.NaN()}, nil, "MonthlyAlert=NaN"},
		{"infinite monthly", Config{MonthlyAlert: math.Inf(1)}, nil, "MonthlyAlert=+Inf"},
		{"redis without prefix", Config{}, []Option{WithRedis(nil, "")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tot, err := New(tc.cfg, tc.opts...)
			if tc.want == "" {
				// A nil client is no Redis: the option is inert.
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				tot.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %q", err, tc.want)
			}
		})
	}
	tot, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tot.Close()
	if s := tot.Snapshot(ctx); s.Zone != "UTC" || s.Backend != "memory" {
		t.Fatalf("defaults: zone %q, backend %q", s.Zone, s.Backend)
	}
}

// TestPeriods: totals move to a new day and month at midnight in the zone,
// daylight-saving days included.
func TestPeriods(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	type step struct {
		at               time.Time
		provider         string
		add              float64
		today, month     float64
		dayStart, month0 time.Time
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		zone  *time.Location
		steps []step
	}{
		{"UTC across a month and a year", time.UTC, []step{
			{utc("2026-12-31T23:00:00Z"), "gemini", 1, 1, 1, utc("2026-12-31T00:00:00Z"), utc("2026-12-01T00:00:00Z")},
			{utc("2026-12-31T23:59:59Z"), "anthropic", 0.5, 1.5, 1.5, utc("2026-12-31T00:00:00Z"), utc("2026-12-01T00:00:00Z")},
			{utc("2027-01-01T00:00:00Z"), "gemini", 2, 2, 2, utc("2027-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z")},
			{utc("2027-01-01T23:59:59Z"), "gemini", 3, 5, 5, utc("2027-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z")},
			{utc("2027-01-02T00:00:00Z"), "", 0, 0, 5, utc("2027-01-02T00:00:00Z"), utc("2027-01-01T00:00:00Z")},
		}},
		{"New York: UTC's next day is still today there", ny, []step{
			{utc("2026-12-01T04:30:00Z"), "gemini", 1, 1, 1, utc("2026-11-30T05:00:00Z"), utc("2026-11-01T04:00:00Z")},
			{utc("2026-12-01T05:00:00Z"), "gemini", 2, 2, 2, utc("2026-12-01T05:00:00Z"), utc("2026-12-01T05:00:00Z")},
			{utc("2026-12-02T04:59:59Z"), "anthropic", 1, 3, 3, utc("2026-12-01T05:00:00Z"), utc("2026-12-01T05:00:00Z")},
		}},
		{"New York: the 23-hour day when clocks go forward", ny, []step{
			{utc("2026-03-08T05:00:00Z"), "gemini", 1, 1, 1, utc("2026-03-08T05:00:00Z"), utc("2026-03-01T05:00:00Z")},
			{utc("2026-03-09T03:59:59Z"), "gemini", 1, 2, 2, utc("2026-03-08T05:00:00Z"), utc("2026-03-01T05:00:00Z")},
			{utc("2026-03-09T04:00:00Z"), "gemini", 1, 1, 3, utc("2026-03-09T04:00:00Z"), utc("2026-03-01T05:00:00Z")},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{Zone: tc.zone}, tc.steps[0].at)
			byProvider := map[string]float64{}
			for i, s := range tc.steps {
				r.to(s.at)
				r.Add(ctx, s.provider, s.add)
				snap := r.Snapshot(ctx)
				if !near(snap.Today, s.today) || !near(snap.Month, s.month) {
					t.Fatalf("step %d at %v: today %v month %v, want %v and %v", i, s.at, snap.Today, snap.Month, s.today, s.month)
				}
				if !snap.DayStart.Equal(s.dayStart) || !snap.MonthStart.Equal(s.month0) {
					t.Fatalf("step %d: day from %v, month from %v; want %v, %v", i, snap.DayStart, snap.MonthStart, s.dayStart, s.month0)
				}
				if snap.DayStart.Location() != tc.zone {
					t.Fatalf("day start in %v, want %v", snap.DayStart.Location(), tc.zone)
				}
				if s.add > 0 {
					byProvider[s.provider] += s.add
				}
				var sum float64
				for _, v := range snap.TodayBy {
					sum += v
				}
				if !near(sum, snap.Today) {
					t.Fatalf("step %d: by provider %v does not add up to %v", i, snap.TodayBy, snap.Today)
				}
			}
		})
	}
}

func TestAddIgnoresNonCosts(t *testing.T) {
	r := newRig(t, Config{DailyAlert: 1}, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	for _, v := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		r.Add(ctx, "gemini", v)
	}
	r.Add(ctx, "", 0.25)
	r.Add(ctx, "total", 0.25)
	s := r.Snapshot(ctx)
	if s.Today != 0.5 || len(s.TodayBy) != 1 || s.TodayBy["other"] != 0.5 {
		t.Fatalf("snapshot %+v, want 0.5 under \"other\"", s)
	}
}

// TestOneCrossingUnderConcurrentAdds: many goroutines pushing a total over
// its threshold call the callback once, not once each.
func TestOneCrossingUnderConcurrentAdds(t *testing.T) {
	r := newRig(t, Config{DailyAlert: 1, MonthlyAlert: 3}, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				r.Add(ctx, "gemini", 0.001)
			}
		})
	}
	wg.Wait()
	got := r.alerts.list()
	if len(got) != 2 || r.alerts.count(PeriodDay) != 1 || r.alerts.count(PeriodMonth) != 1 {
		t.Fatalf("crossings %+v, want one per period", got)
	}
	for _, c := range got {
		if c.Total < c.Threshold || c.Total > c.Threshold+0.001+1e-9 {
			t.Fatalf("crossing %+v: total should be the first at or over the threshold", c)
		}
	}
	if n := strings.Count(r.logs.String(), "cost threshold crossed"); n != 2 {
		t.Fatalf("%d crossing log lines, want 2:\n%s", n, r.logs.String())
	}
	// The next day's crossing is a new one.
	r.to(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	r.Add(ctx, "gemini", 1)
	if r.alerts.count(PeriodDay) != 2 || r.alerts.count(PeriodMonth) != 1 {
		t.Fatalf("crossings %+v, want a second daily one", r.alerts.list())
	}
}

func TestBudgetStop(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	type check struct {
		at      time.Time
		add     float64
		stopped bool
		until   time.Time
		reason  string
	}
	tests := []struct {
		name   string
		cfg    Config
		checks []check
	}{
		{"daily stop lifts at the next day", Config{DailyAlert: 5, MonthlyAlert: 50, BudgetStop: true}, []check{
			{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), 4.99, false, time.Time{}, ""},
			{time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), 0.13, true, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
				"budget stop: $5.12 spent today, the daily limit is $5.00; paid tiers resume at 2026-12-02T00:00:00Z"},
			{time.Date(2026, 12, 1, 23, 59, 59, 999999999, time.UTC), 0, true, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), ""},
			{time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), 0, false, time.Time{}, ""},
			{time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC), 1, false, time.Time{}, ""},
		}},
		{"monthly stop lasts to the month's end in the zone", Config{Zone: ny, MonthlyAlert: 10, BudgetStop: true}, []check{
			{time.Date(2026, 12, 3, 12, 0, 0, 0, ny), 6, false, time.Time{}, ""},
			{time.Date(2026, 12, 20, 12, 0, 0, 0, ny), 6, true, time.Date(2027, 1, 1, 0, 0, 0, 0, ny),
				"budget stop: $12.00 spent this month, the monthly limit is $10.00; paid tiers resume at 2027-01-01T00:00:00-05:00"},
			{time.Date(2026, 12, 31, 23, 0, 0, 0, ny), 0, true, time.Date(2027, 1, 1, 0, 0, 0, 0, ny), ""},
			{time.Date(2027, 1, 1, 0, 0, 0, 0, ny), 0, false, time.Time{}, ""},
		}},
		{"the monthly stop outlasts the daily one", Config{DailyAlert: 1, MonthlyAlert: 2, BudgetStop: true}, []check{
			{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), 1.5, true, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), ""},
			{time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), 1, true, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
				"budget stop: $2.50 spent this month, the monthly limit is $2.00; paid tiers resume at 2027-01-01T00:00:00Z"},
			{time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), 0, true, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), ""},
		}},
		{"without BudgetStop nothing stops", Config{DailyAlert: 1}, []check{
			{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), 5, false, time.Time{}, ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.cfg, tc.checks[0].at)
			for i, c := range tc.checks {
				r.to(c.at)
				r.Add(ctx, "anthropic", c.add)
				until, reason, stopped := r.Stopped()
				if stopped != c.stopped || !until.Equal(c.until) || (c.reason != "" && reason != c.reason) {
					t.Fatalf("check %d at %v: stopped %v until %v (%q); want %v until %v (%q)",
						i, c.at, stopped, until, reason, c.stopped, c.until, c.reason)
				}
				snap := r.Snapshot(ctx)
				if !snap.StoppedUntil.Equal(c.until) || snap.BudgetStop != tc.cfg.BudgetStop || (snap.StopReason != "") != c.stopped {
					t.Fatalf("check %d: snapshot stop %v %q", i, snap.StoppedUntil, snap.StopReason)
				}
			}
			if len(r.alerts.list()) == 0 {
				t.Fatal("no crossing was heard")
			}
		})
	}
}

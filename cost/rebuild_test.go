package cost

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/usage"
)

// writeLog writes records to a usage log the way the service does, plus a
// line a crash cut short.
func writeLog(t *testing.T, recs []usage.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	l, err := usage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		l.Write(r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(`{"time":"2026-12-15T09:00:00Z","tier":"gemini","cost_u`); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRebuildFrom: a restart without Redis gets the day's and the month's
// totals back from the usage log, sets the budget stop it calls for, and
// does not alert again.
func TestRebuildFrom(t *testing.T) {
	now := time.Date(2026, 12, 15, 10, 0, 0, 0, time.UTC)
	rec := func(at time.Time, tier string, usd float64) usage.Record {
		return usage.Record{Time: at, Tier: tier, Model: "m", Outcome: usage.OutcomeOK, CostUSD: usd}
	}
	path := writeLog(t, []usage.Record{
		rec(time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC), "gemini", 40),    // last month
		rec(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "gemini", 3),        // this month
		rec(time.Date(2026, 12, 14, 23, 59, 59, 0, time.UTC), "anthropic", 4), // yesterday
		rec(time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC), "gemini", 2),       // today
		rec(time.Date(2026, 12, 15, 9, 0, 0, 0, time.UTC), "anthropic", 3.5),  // today
		rec(time.Date(2026, 12, 15, 9, 1, 0, 0, time.UTC), "local", 0),        // free
	})
	r := newRig(t, Config{DailyAlert: 5, MonthlyAlert: 20, BudgetStop: true}, now)
	st, err := r.RebuildFrom(path)
	if err != nil {
		t.Fatalf("RebuildFrom: %v", err)
	}
	if st.Records != 5 || !st.Torn {
		t.Fatalf("read %+v, want the month's 5 records and a torn line", st)
	}
	s := r.Snapshot(ctx)
	if !near(s.Today, 5.5) || !near(s.Month, 12.5) || !near(s.TodayBy["anthropic"], 3.5) || !near(s.MonthBy["gemini"], 5) {
		t.Fatalf("snapshot %+v, want today 5.5 and month 12.5", s)
	}
	if got := r.alerts.list(); len(got) != 0 {
		t.Fatalf("rebuild alerted: %+v", got)
	}
	until, _, stopped := r.Stopped()
	if !stopped || !until.Equal(time.Date(2026, 12, 16, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("stopped %v until %v, want the daily stop to midnight", stopped, until)
	}
	// The daily crossing was before the restart: not alerted again. The
	// monthly one is new.
	r.Add(ctx, "gemini", 1)
	if got := r.alerts.list(); len(got) != 0 {
		t.Fatalf("alerted %+v for a crossing from before the restart", got)
	}
	r.Add(ctx, "gemini", 7)
	if got := r.alerts.list(); len(got) != 1 || got[0].Period != PeriodMonth || !near(got[0].Total, 20.5) {
		t.Fatalf("alerts %+v, want one monthly crossing at 20.5", got)
	}
}

func TestRebuildSkipsOtherPeriods(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, ny)
	r := newRig(t, Config{Zone: ny}, now)
	err := r.Rebuild(func(yield func(Entry) bool) {
		for _, e := range []Entry{
			{time.Date(2026, 12, 1, 4, 59, 0, 0, time.UTC), "gemini", 100}, // Nov 30 in New York
			{time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC), "gemini", 1},    // Dec 1 there
			{time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC), "gemini", 50},   // tomorrow: the month only
			{time.Date(2027, 1, 1, 5, 0, 0, 0, time.UTC), "gemini", 70},    // next month: nowhere
			{time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC), "gemini", -5},
		} {
			if !yield(e) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Snapshot(ctx); s.Today != 1 || s.Month != 51 {
		t.Fatalf("today %v month %v, want 1 and 51", s.Today, s.Month)
	}
}

func TestRebuildRefusedWithRedis(t *testing.T) {
	srv := startRedis(t)
	r := newRig(t, Config{}, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), WithRedis(newClient(t, srv), "t:cost"))
	if _, err := r.RebuildFrom("/nonexistent"); !errors.Is(err, ErrShared) {
		t.Fatalf("RebuildFrom with Redis: %v, want ErrShared", err)
	}
}

package cost

import (
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/catalystbot/sentiment/usage"
)

// ErrShared is returned by Rebuild when the totals live in Redis: they
// survive a restart there, and adding the log again would count it twice.
var ErrShared = errors.New("cost: the totals are shared through redis; there is nothing to rebuild")

// Entry is one past cost for Rebuild.
type Entry struct {
	At       time.Time
	Provider string
	USD      float64
}

// Rebuild adds past costs to the totals at start, without Redis: entries
// in the current month count in the month, those also in the current day
// in the day, entries of other months nowhere. An entry later than now in
// the current period still counts: a clock stepped back must not hide
// money spent. It calls no alert callback: a
// total already at or above a threshold is taken as alerted before the
// restart, and the budget stop is set when it applies. Call it before the
// service takes requests.
func (t *Totals) Rebuild(entries iter.Seq[Entry]) error {
	if t.o.rdb != nil {
		return ErrShared
	}
	now := t.o.now()
	t.mu.Lock()
	t.rollLocked(now)
	day, month := t.day, t.month // copies, to sum into without the lock
	t.mu.Unlock()

	var dayAdd, monthAdd amounts
	for e := range entries {
		if !(e.USD > 0) || !month.holds(e.At) {
			continue
		}
		p := normProvider(e.Provider)
		monthAdd.add(p, e.USD)
		if day.holds(e.At) {
			dayAdd.add(p, e.USD)
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.day.label == day.label {
		t.day.local.merge(dayAdd)
	}
	if t.month.label == month.label {
		t.month.local.merge(monthAdd)
	}
	for _, p := range []*period{&t.day, &t.month} {
		if p.alert == alertNone && p.over() {
			t.o.log.Warn("cost already over its threshold at start; no alert is sent again",
				"period", string(p.kind), "total_usd", round(p.total()), "threshold_usd", p.threshold)
		}
	}
	t.crossLocked(crossQuiet)
	t.updateStopLocked(now)
	return nil
}

// RebuildFrom rebuilds the totals from the usage log at path (see
// Rebuild), reading only the current month's lines; each record's tier is
// its provider. A missing file is an empty log. Torn and malformed lines
// are skipped and counted in the stats returned.
func (t *Totals) RebuildFrom(path string) (usage.ReadStats, error) {
	if t.o.rdb != nil {
		return usage.ReadStats{}, ErrShared
	}
	start, _, _ := span(PeriodMonth, t.o.now(), t.zone)
	var (
		st      usage.ReadStats
		readErr error
	)
	err := t.Rebuild(func(yield func(Entry) bool) {
		st, readErr = usage.ReadFile(path, start, func(r usage.Record) error {
			if !yield(Entry{At: r.Time, Provider: r.Tier, USD: r.CostUSD}) {
				return errStopped
			}
			return nil
		})
	})
	if err != nil {
		return st, err
	}
	if readErr != nil {
		return st, fmt.Errorf("cost: rebuilding from the usage log: %w", readErr)
	}
	return st, nil
}

// errStopped ends a read whose consumer stopped early.
var errStopped = errors.New("cost: rebuild stopped")

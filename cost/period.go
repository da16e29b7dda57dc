package cost

import "time"

// Period names what a total counts: a calendar day or month in the zone.
type Period string

// Periods.
const (
	PeriodDay   Period = "day"
	PeriodMonth Period = "month"
)

// span returns the period of kind that holds t in zone: its start, the
// next one's start, and its label in Redis keys ("2026-12-01",
// "2026-12"). Days are calendar days, so a day with a daylight-saving
// change lasts 23 or 25 hours.
func span(kind Period, t time.Time, zone *time.Location) (start, end time.Time, label string) {
	y, m, d := t.In(zone).Date()
	if kind == PeriodMonth {
		start = time.Date(y, m, 1, 0, 0, 0, 0, zone)
		return start, time.Date(y, m+1, 1, 0, 0, 0, 0, zone), start.Format("2006-01")
	}
	start = time.Date(y, m, d, 0, 0, 0, 0, zone)
	return start, time.Date(y, m, d+1, 0, 0, 0, 0, zone), start.Format("2006-01-02")
}

// amounts is a period's spending by provider and in all.
type amounts struct {
	total float64
	by    map[string]float64
}

func (a *amounts) add(provider string, usd float64) {
	if a.by == nil {
		a.by = make(map[string]float64, 4)
	}
	a.by[provider] += usd
	a.total += usd
}

func (a *amounts) merge(b amounts) {
	for p, v := range b.by {
		a.add(p, v)
	}
}

// sub takes b back out of a, for amounts that were in flight to Redis.
func (a *amounts) sub(b amounts) {
	for p, v := range b.by {
		a.add(p, -v)
	}
}

func (a amounts) empty() bool { return len(a.by) == 0 }

// period is one current day or month.
type period struct {
	kind       Period
	start, end time.Time
	label      string
	threshold  float64 // 0: none
	// shared is Redis's figures as last read; local is what this process
	// counted and Redis does not have yet (everything, without Redis);
	// sending is what is on its way to Redis. The total is their sum.
	shared, local, sending amounts
	// alert is how far the threshold's crossing in this period has been
	// handled.
	alert alertState
}

// alertState is where a period's threshold crossing stands.
type alertState int

const (
	// alertNone: not crossed, as far as this replica knows.
	alertNone alertState = iota
	// alertClaiming: crossed; this replica is claiming the alerted key to
	// learn whether it is the one to alert.
	alertClaiming
	// alertLocal: handled here (alerted without Redis, or taken as alerted
	// at a rebuild); with Redis, the next exchange sets the alerted key so
	// the other replicas do not alert again.
	alertLocal
	// alertShared: handled, and Redis knows it.
	alertShared
)

func newPeriod(kind Period, now time.Time, zone *time.Location, threshold float64) period {
	start, end, label := span(kind, now, zone)
	return period{kind: kind, start: start, end: end, label: label, threshold: threshold}
}

func (p *period) holds(t time.Time) bool { return !t.Before(p.start) && t.Before(p.end) }

func (p *period) total() float64 { return p.shared.total + p.local.total + p.sending.total }

func (p *period) byProvider() map[string]float64 {
	m := make(map[string]float64, len(p.shared.by)+len(p.local.by))
	for _, a := range []amounts{p.shared, p.local, p.sending} {
		for k, v := range a.by {
			m[k] += v
		}
	}
	return m
}

func (p *period) over() bool { return p.threshold > 0 && p.total() >= p.threshold }

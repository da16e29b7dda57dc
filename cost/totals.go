package cost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the cost policy.
type Config struct {
	// Zone is where days and months begin (default UTC).
	Zone *time.Location
	// DailyAlert and MonthlyAlert are the thresholds in USD
	// (LLM_COST_ALERT_DAILY, LLM_COST_ALERT_MONTHLY); 0 sets none.
	DailyAlert, MonthlyAlert float64
	// BudgetStop stops the paid tiers once a threshold is reached, until
	// its period ends (SENTIMENT_BUDGET_STOP).
	BudgetStop bool
}

// Defaults of the options.
const (
	DefaultRedisTimeout = 500 * time.Millisecond
	DefaultRetryBackoff = 5 * time.Second
	// refreshEvery is how old the shared view may grow before Stopped
	// (in the background) or Snapshot reads Redis again.
	refreshEvery = time.Second
	// Keys outlive their period by a margin, so a late Add or a replica
	// with a slightly slow clock still finds them.
	dayTTL   = 48 * time.Hour
	monthTTL = 35 * 24 * time.Hour
)

// Crossing is a threshold reached: the WithAlert callback's argument.
type Crossing struct {
	Period Period
	// Start and End bound the period, in the zone.
	Start, End time.Time
	// Total is what the period had cost when the crossing was seen.
	Total, Threshold float64
	// BudgetStop says the paid tiers are stopped until End.
	BudgetStop bool
}

// Option adjusts Totals.
type Option func(*options)

type options struct {
	now     func() time.Time
	rdb     redis.UniversalClient
	prefix  string
	log     *slog.Logger
	alert   func(context.Context, Crossing)
	timeout time.Duration
	backoff time.Duration
}

// WithClock sets the clock that decides the day and month (default
// time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithRedis shares the totals with every replica using the same Redis and
// prefix. In Redis Cluster give the prefix a hash tag ("sentiment:{cost}")
// so that one transaction's keys share a slot. The client stays the
// caller's, who closes it after Totals. It should have
// ContextTimeoutEnabled, so that the per-call timeout holds. A nil rdb
// leaves the totals in memory (REDIS_URL unset).
func WithRedis(rdb redis.UniversalClient, prefix string) Option {
	return func(o *options) { o.rdb, o.prefix = rdb, prefix }
}

// WithLogger sets where crossings, budget stops and Redis outages are
// logged; nil discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithAlert sets the callback that hears each threshold crossing, once per
// threshold and period (across replicas, with Redis): the Discord post. It
// runs on the goroutine that saw the crossing (an Add, a Snapshot, or the
// background refresh), outside any lock, with a context that carries the
// caller's values but not its cancellation; it should bound its own work.
func WithAlert(fn func(ctx context.Context, c Crossing)) Option {
	return func(o *options) { o.alert = fn }
}

// WithRedisTimeout caps each Redis call (default DefaultRedisTimeout). A
// call that runs out counts as Redis being unreachable.
func WithRedisTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithRetryBackoff sets how long the totals stay in memory after Redis
// failed before Redis is tried again (default DefaultRetryBackoff).
func WithRetryBackoff(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.backoff = d
		}
	}
}

// Totals is the running cost. It is safe for concurrent use.
type Totals struct {
	cfg  Config
	o    options
	zone *time.Location

	mu         sync.Mutex
	day, month period
	up         bool // Redis answered last time (always false without Redis)
	probing    bool // one call is trying Redis again
	retryAt    time.Time
	reason     string    // why Redis is down
	inflight   int       // exchanges with Redis under way
	loggedStop time.Time // the end of the last stop logged, to log each once

	stop        atomic.Pointer[stopState]
	lastRead    atomic.Int64 // clock's Unix ns of the last read of Redis (or its start)
	refreshing  atomic.Bool
	redisErrors atomic.Uint64

	// bg owns the background refreshes; bgMu orders starting one against
	// Close.
	bgMu     sync.Mutex
	closed   bool
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// stopState is the budget stop in force, computed when the totals change.
type stopState struct {
	until  time.Time
	reason string
}

// New builds the totals. Redis is not contacted here: a Redis that is
// down at start is handled like any outage.
func New(cfg Config, opts ...Option) (*Totals, error) {
	o := options{now: time.Now, log: slog.New(slog.DiscardHandler), timeout: DefaultRedisTimeout, backoff: DefaultRetryBackoff}
	for _, f := range opts {
		f(&o)
	}
	for _, th := range []struct {
		name string
		v    float64
	}{{"DailyAlert", cfg.DailyAlert}, {"MonthlyAlert", cfg.MonthlyAlert}} {
		if !(th.v >= 0) || math.IsInf(th.v, 0) {
			return nil, fmt.Errorf("cost: %s=%g: must be a finite amount of USD, 0 for none", th.name, th.v)
		}
	}
	if o.rdb != nil && o.prefix == "" {
		return nil, errors.New("cost: WithRedis needs a key prefix")
	}
	if cfg.Zone == nil {
		cfg.Zone = time.UTC
	}
	t := &Totals{cfg: cfg, o: o, zone: cfg.Zone, up: o.rdb != nil}
	now := o.now()
	t.day = newPeriod(PeriodDay, now, t.zone, cfg.DailyAlert)
	t.month = newPeriod(PeriodMonth, now, t.zone, cfg.MonthlyAlert)
	t.bgCtx, t.bgCancel = context.WithCancel(context.Background())
	return t, nil
}

// Close stops the background refreshes and waits for the one under way.
// The Totals still count after Close, without refreshing in the
// background.
func (t *Totals) Close() {
	t.bgMu.Lock()
	t.closed = true
	t.bgMu.Unlock()
	t.bgCancel()
	t.bg.Wait()
}

// normProvider keeps a provider's name from colliding with the "total"
// field.
func normProvider(p string) string {
	if p == "" || p == "total" {
		return "other"
	}
	return p
}

// Add counts usd spent with provider ("gemini", "anthropic", "local": the
// usage log's tier) now, by the clock. Zero, negative and non-numbers are
// ignored, so a free local call costs nothing here. Without Redis it is a
// few map updates under a lock. With Redis it is one round trip of at
// most the Redis timeout, whatever ctx says: the money was spent even if
// the caller has gone. Callers on a request path may run it on a goroutine
// of their own. It may call the WithAlert callback (see there).
func (t *Totals) Add(ctx context.Context, provider string, usd float64) {
	if !(usd > 0) || math.IsInf(usd, 1) {
		return
	}
	provider = normProvider(provider)
	now := t.o.now()
	t.mu.Lock()
	t.rollLocked(now)
	t.day.local.add(provider, usd)
	t.month.local.add(provider, usd)
	use, probe := false, false
	if t.o.rdb != nil {
		use, probe = t.useRedisLocked(now)
	}
	if !use {
		fire := t.crossLocked(crossFire)
		t.updateStopLocked(now)
		t.mu.Unlock()
		t.fire(ctx, fire)
		return
	}
	t.mu.Unlock()
	_ = t.exchange(context.WithoutCancel(ctx), now, probe) // a failure is counted, logged and shown in the backend
}

// rollLocked moves the periods on when now has left them.
func (t *Totals) rollLocked(now time.Time) {
	if !t.day.holds(now) {
		t.day = newPeriod(PeriodDay, now, t.zone, t.cfg.DailyAlert)
		t.lastRead.Store(0) // the shared view is of another day
	}
	if !t.month.holds(now) {
		t.month = newPeriod(PeriodMonth, now, t.zone, t.cfg.MonthlyAlert)
	}
}

// crossMode says what crossLocked does with a threshold newly reached.
type crossMode int

const (
	// crossFire: return it to be fired at once (no Redis, or Redis away).
	crossFire crossMode = iota
	// crossClaim: return it as a candidate that SET NX settles.
	crossClaim
	// crossQuiet: return nothing (a rebuild): a total over a threshold at
	// start was alerted before the restart.
	crossQuiet
)

// crossLocked finds the thresholds newly reached and marks them handled.
func (t *Totals) crossLocked(mode crossMode) []Crossing {
	var out []Crossing
	for _, p := range []*period{&t.day, &t.month} {
		if p.alert != alertNone || !p.over() {
			continue
		}
		p.alert = alertLocal
		if mode == crossClaim {
			p.alert = alertClaiming
		}
		if mode == crossQuiet {
			continue
		}
		out = append(out, Crossing{Period: p.kind, Start: p.start, End: p.end, Total: p.total(),
			Threshold: p.threshold, BudgetStop: t.cfg.BudgetStop})
	}
	return out
}

// fire logs each crossing and calls the callback.
func (t *Totals) fire(ctx context.Context, cs []Crossing) {
	for _, c := range cs {
		args := []any{"period", string(c.Period), "period_start", c.Start, "total_usd", round(c.Total),
			"threshold_usd", c.Threshold, "budget_stop", c.BudgetStop}
		if c.BudgetStop {
			args = append(args, "paid_tiers_resume_at", c.End)
		}
		t.o.log.Warn("cost threshold crossed", args...)
		if t.o.alert != nil {
			t.o.alert(context.WithoutCancel(ctx), c)
		}
	}
}

func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// updateStopLocked recomputes the budget stop from the totals: the latest
// end among the periods over their thresholds.
func (t *Totals) updateStopLocked(now time.Time) {
	if !t.cfg.BudgetStop {
		return
	}
	var s *stopState
	for _, p := range []*period{&t.day, &t.month} {
		if !p.over() || (s != nil && !p.end.After(s.until)) {
			continue
		}
		when, name := "today", "daily"
		if p.kind == PeriodMonth {
			when, name = "this month", "monthly"
		}
		s = &stopState{until: p.end, reason: fmt.Sprintf("budget stop: $%.2f spent %s, the %s limit is $%.2f; paid tiers resume at %s",
			p.total(), when, name, p.threshold, p.end.Format(time.RFC3339))}
	}
	t.stop.Store(s)
	if s != nil && now.Before(s.until) && !s.until.Equal(t.loggedStop) {
		t.loggedStop = s.until
		t.o.log.Warn("budget stop: paid tiers stopped", "until", s.until, "reason", s.reason)
	}
}

// Stopped says whether the paid tiers are stopped by the budget, until
// when and why, for the request path: it reads an atomic and the clock,
// and never waits on Redis. A stop lifts by itself when its period ends.
// With Redis, a view older than a second starts a refresh in the
// background. Without BudgetStop it is never stopped.
func (t *Totals) Stopped() (until time.Time, reason string, stopped bool) {
	if !t.cfg.BudgetStop {
		return time.Time{}, "", false
	}
	now := t.o.now()
	if t.o.rdb != nil {
		t.maybeRefresh(now)
	}
	s := t.stop.Load()
	if s == nil || !now.Before(s.until) {
		return time.Time{}, "", false
	}
	return s.until, s.reason, true
}

// maybeRefresh starts a background refresh when the shared view is stale
// and none is under way.
func (t *Totals) maybeRefresh(now time.Time) {
	if now.UnixNano()-t.lastRead.Load() < int64(refreshEvery) || !t.refreshing.CompareAndSwap(false, true) {
		return
	}
	// Stamped now, not only when Redis is read: during a back-off Refresh
	// returns at once, and must not be started again on every call.
	t.lastRead.Store(now.UnixNano())
	t.bgMu.Lock()
	defer t.bgMu.Unlock()
	if t.closed {
		t.refreshing.Store(false)
		return
	}
	t.bg.Go(func() {
		defer t.refreshing.Store(false)
		_ = t.Refresh(t.bgCtx) // a failure is counted, logged and shown in the backend
	})
}

// Refresh reads the shared totals from Redis now (writing back first what
// was counted in memory during an outage), so that this replica sees what
// the others spent. Stopped and Snapshot call it as needed; a caller may
// also run it on a ticker. Without Redis it does nothing; while Redis is
// in its back-off it returns an error at once.
func (t *Totals) Refresh(ctx context.Context) error {
	if t.o.rdb == nil {
		return nil
	}
	now := t.o.now()
	t.mu.Lock()
	t.rollLocked(now)
	use, probe := t.useRedisLocked(now)
	if !use {
		reason := t.reason
		t.mu.Unlock()
		return fmt.Errorf("cost: redis unreachable (%s): counting in memory", reason)
	}
	t.mu.Unlock()
	return t.exchange(ctx, now, probe)
}

// Snapshot is the totals as Stats shows them.
type Snapshot struct {
	// Today and Month are spent in the current day and month, every
	// replica's together with Redis; TodayBy and MonthBy split them by
	// provider.
	Today, Month     float64
	TodayBy, MonthBy map[string]float64
	// Zone is the time zone's name; DayStart and MonthStart are when the
	// current day and month began there.
	Zone                 string
	DayStart, MonthStart time.Time
	// DailyAlert and MonthlyAlert are the thresholds (0: none).
	DailyAlert, MonthlyAlert float64
	// BudgetStop is the setting; StoppedUntil and StopReason are set while
	// the stop is in force.
	BudgetStop   bool
	StoppedUntil time.Time
	StopReason   string
	// Backend is "memory", "redis", or "memory (redis unreachable: why)".
	Backend string
	// RedisErrors counts the Redis calls that failed and fell back to
	// memory.
	RedisErrors uint64
}

// Snapshot returns the totals; with Redis it reads them there when the
// view is more than a second old (bounded by the Redis timeout).
func (t *Totals) Snapshot(ctx context.Context) Snapshot {
	now := t.o.now()
	if t.o.rdb != nil && now.UnixNano()-t.lastRead.Load() >= int64(refreshEvery) {
		_ = t.Refresh(ctx) // a failure shows in Backend
	}
	t.mu.Lock()
	t.rollLocked(now)
	s := Snapshot{
		Today:        t.day.total(),
		Month:        t.month.total(),
		TodayBy:      t.day.byProvider(),
		MonthBy:      t.month.byProvider(),
		Zone:         t.zone.String(),
		DayStart:     t.day.start,
		MonthStart:   t.month.start,
		DailyAlert:   t.cfg.DailyAlert,
		MonthlyAlert: t.cfg.MonthlyAlert,
		BudgetStop:   t.cfg.BudgetStop,
		Backend:      t.backendLocked(),
		RedisErrors:  t.redisErrors.Load(),
	}
	t.mu.Unlock()
	if until, reason, ok := t.Stopped(); ok {
		s.StoppedUntil, s.StopReason = until, reason
	}
	return s
}

func (t *Totals) backendLocked() string {
	switch {
	case t.o.rdb == nil:
		return "memory"
	case t.up:
		return "redis"
	}
	return "memory (redis unreachable: " + t.reason + ")"
}

package limiter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Provider names a quota holder: one of the constants below.
type Provider string

// The providers the service holds quotas for. Their names are part of the
// Redis key names, so a running deployment keeps its windows only while
// they stay as they are.
const (
	ProviderLocal     Provider = "local"
	ProviderGemini    Provider = "gemini"
	ProviderAnthropic Provider = "anthropic"
)

// known reports whether p is one of the Provider constants: a misspelt
// provider would otherwise get a quota of its own and hold nothing back.
func (p Provider) known() bool {
	switch p {
	case ProviderLocal, ProviderGemini, ProviderAnthropic:
		return true
	}
	return false
}

// Window names, as they appear in NoSlotError.Window and WindowUsage.Window.
const (
	WindowMinute   = "minute"
	WindowHour     = "hour"
	WindowDay      = "day"
	WindowInterval = "interval"
)

// Limits are one provider's quotas. A zero (or negative) field is no limit
// on that window; a provider whose limits are all zero is never held back.
type Limits struct {
	PerMinute, PerHour, PerDay int
	// MinInterval is the least time between two slots of the provider.
	MinInterval time.Duration
}

// normalized turns negative fields into zero (no limit).
func (l Limits) normalized() Limits {
	l.PerMinute, l.PerHour, l.PerDay = max(l.PerMinute, 0), max(l.PerHour, 0), max(l.PerDay, 0)
	l.MinInterval = max(l.MinInterval, 0)
	return l
}

func (l Limits) none() bool {
	return l.PerMinute <= 0 && l.PerHour <= 0 && l.PerDay <= 0 && l.MinInterval <= 0
}

// rule is one configured sliding window of a provider.
type rule struct {
	name   string
	length time.Duration
	n      int
}

// rules lists the configured windows of l, shortest first.
func (l Limits) rules() []rule {
	var rs []rule
	for _, r := range []rule{
		{WindowMinute, time.Minute, l.PerMinute},
		{WindowHour, time.Hour, l.PerHour},
		{WindowDay, 24 * time.Hour, l.PerDay},
	} {
		if r.n > 0 {
			rs = append(rs, r)
		}
	}
	return rs
}

// span is how far back a slot can still matter to a new one.
func (l Limits) span() time.Duration {
	s := max(l.MinInterval, 0)
	for _, r := range l.rules() {
		s = max(s, r.length)
	}
	return s
}

// scaled is l cut to share of itself: each window's limit is floored but
// stays at least 1, and the least interval grows so that the rate it
// allows shrinks by the same share.
func (l Limits) scaled(share float64) Limits {
	if !(share > 0) { // also NaN
		share = 0
	}
	share = min(share, 1)
	cut := func(n int) int {
		if n <= 0 {
			return 0
		}
		return max(int(math.Floor(float64(n)*share)), 1)
	}
	out := Limits{PerMinute: cut(l.PerMinute), PerHour: cut(l.PerHour), PerDay: cut(l.PerDay), MinInterval: l.MinInterval}
	if share > 0 && l.MinInterval > 0 {
		out.MinInterval = time.Duration(math.Ceil(float64(l.MinInterval) / share))
	}
	return out
}

// NoSlotError is Reserve's refusal: the provider's next free slot is
// further away than the caller may wait. Nothing was claimed.
type NoSlotError struct {
	Provider Provider
	// Window is the window that holds the slot back: "minute", "hour",
	// "day" or "interval".
	Window string
	// Wait is how long the caller would have had to wait.
	Wait time.Duration
}

func (e *NoSlotError) Error() string {
	return fmt.Sprintf("limiter: %s %s quota: next slot in %s, beyond the wait allowed",
		e.Provider, e.Window, e.Wait.Round(time.Millisecond))
}

// WindowUsage is one quota window of a provider as Stats shows it.
type WindowUsage struct {
	// Window is "minute", "hour", "day" or "interval".
	Window string
	// Used counts the slots claimed in the window now, those reserved for
	// the near future included, up to Limit; for "interval" it is 1 while
	// the least interval since the last slot has not passed.
	Used, Limit uint64
	// ResetsAt is when the window next has room: when the oldest slot
	// that keeps it full leaves it (now if it is empty).
	ResetsAt time.Time
	// Shared is true when the figures come from Redis, i.e. count every
	// replica; false when they are this replica's own.
	Shared bool
}

// Option adjusts a Limiter.
type Option func(*options)

type options struct {
	clock   func() time.Time
	backoff time.Duration
	timeout time.Duration
}

func buildOptions(opts []Option) options {
	o := options{clock: time.Now, backoff: 5 * time.Second, timeout: 250 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithClock sets the clock of the in-memory limiter (and of the Redis
// backend's fallback and back-off); tests pass a fake one. The Redis
// backend's windows always run on Redis's own clock.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.clock = now
		}
	}
}

// WithRetryBackoff sets how long the Redis backend answers from its local
// share after Redis failed before it tries Redis again (default 5s).
func WithRetryBackoff(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.backoff = d
		}
	}
}

// WithRedisTimeout caps each Redis call (default 250ms); the caller's
// deadline caps it further. A call that runs out counts as Redis being
// unreachable.
func WithRedisTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// Limiter hands out request slots per provider, through the Quota that For
// returns. It is safe for concurrent use.
type Limiter struct {
	mem    *store      // the memory backend; nil with Redis
	rdb    *redisStore // the Redis backend; nil in memory
	quotas map[Provider]*Quota
}

// NewMemory returns a limiter that keeps the quotas in this process: right
// for one replica. limits holds every provider the caller will ask For;
// one that is not a Provider constant is an error.
func NewMemory(limits map[Provider]Limits, opts ...Option) (*Limiter, error) {
	norm, err := normalizeLimits(limits)
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	l := &Limiter{mem: newStore(norm, o.clock)}
	l.buildQuotas(norm)
	return l, nil
}

// NewRedis returns a limiter whose quotas live in Redis under prefix, shared
// by every replica that uses the same Redis and prefix. While Redis cannot
// be reached it answers from an in-memory limiter holding localShare (0..1)
// of each quota. Redis is not contacted here: a Redis that is down at
// start-up is handled like any outage (Check reports it at once).
//
// The client stays the caller's, who closes it after the last use of the
// limiter. It should have ContextTimeoutEnabled, so that the per-call
// timeout holds, and DialerRetries 1, so that a refused connection is seen
// as such at once instead of as a timeout after go-redis's redials.
func NewRedis(client redis.UniversalClient, prefix string, limits map[Provider]Limits, localShare float64, log *slog.Logger, opts ...Option) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("limiter: NewRedis needs a redis client")
	}
	norm, err := normalizeLimits(limits)
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{rdb: newRedisStore(client, prefix, norm, localShare, log, o)}
	l.buildQuotas(norm)
	return l, nil
}

// normalizeLimits checks that every provider is a known one (in sorted
// order, so the error names the same one each time) and normalizes the
// limits.
func normalizeLimits(limits map[Provider]Limits) (map[Provider]Limits, error) {
	out := make(map[Provider]Limits, len(limits))
	for _, p := range slices.Sorted(maps.Keys(limits)) {
		if !p.known() {
			return nil, fmt.Errorf("limiter: unknown provider %q: want %q, %q or %q",
				p, ProviderLocal, ProviderGemini, ProviderAnthropic)
		}
		out[p] = limits[p].normalized()
	}
	return out, nil
}

func (l *Limiter) buildQuotas(limits map[Provider]Limits) {
	l.quotas = make(map[Provider]*Quota, len(limits))
	for p, lim := range limits {
		l.quotas[p] = &Quota{l: l, p: p, limited: !lim.none()}
	}
}

// For returns provider p's quota. A provider with no entry in the limits
// the Limiter was built with is a programming error, reported here, at
// start: it is never silently unlimited.
func (l *Limiter) For(p Provider) (*Quota, error) {
	q := l.quotas[p]
	if q == nil {
		return nil, fmt.Errorf("limiter: no quota configured for provider %q", p)
	}
	return q, nil
}

// Backend says where the quotas live now: "memory", "redis", or
// "memory (redis unreachable: <why>)" while Redis is down.
func (l *Limiter) Backend() string {
	if l.rdb != nil {
		return l.rdb.backend()
	}
	return "memory"
}

// Check asks Redis once, at start-up: when it cannot be reached the
// limiter says so in one warning line at once and answers from the local
// share until the back-off has passed, instead of staying silent until the
// first call. It returns why Redis was not reached (nil in memory).
func (l *Limiter) Check(ctx context.Context) error {
	if l.rdb == nil {
		return nil
	}
	return l.rdb.check(ctx)
}

// Quota is one provider's share of a Limiter: the router holds one per
// tier. It is safe for concurrent use.
type Quota struct {
	l       *Limiter
	p       Provider
	limited bool
	// free is what Reserve hands out while the provider has no limits: it
	// waits for nothing and has nothing to give back.
	free Reservation
}

// Provider is the provider whose quota q is.
func (q *Quota) Provider() Provider { return q.p }

// Backend says where the quota lives now (Limiter.Backend).
func (q *Quota) Backend() string { return q.l.Backend() }

// Reserve claims the next request slot that satisfies every window of the
// provider at once; the Reservation says how long the caller must wait
// before making the call. A caller that then does not make the call (its
// context ended while it waited, the GPU queue refused the item) cancels
// the Reservation, so that the slot is not lost.
//
// The slot is t = max(now, last slot + MinInterval, and for each window of
// length T and limit N holding k ≥ N slots: slot[k−N] + T), the earliest
// time at which no window containing t would hold more than N slots.
// When t − now would exceed maxWait, nothing is claimed and the error is a
// *NoSlotError naming the window that binds. A provider without limits
// always gets 0.
//
// With Redis, Reserve never fails because Redis is down: it answers from
// the local share. It fails only when ctx is done.
func (q *Quota) Reserve(ctx context.Context, maxWait time.Duration) (*Reservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("limiter: reserving a %s slot: %w", q.p, err)
	}
	if !q.limited {
		return &q.free, nil
	}
	maxWait = max(maxWait, 0)
	var (
		s   slot
		err error
	)
	if q.l.rdb != nil {
		s, err = q.l.rdb.reserve(ctx, q.p, maxWait)
	} else {
		s, err = q.l.mem.reserve(q.p, maxWait)
	}
	if err != nil {
		return nil, err
	}
	return &Reservation{q: q, slot: s}, nil
}

// Usage reports each configured window of the provider (minute, hour,
// day, interval, in that order) for Stats; nil for a provider without
// limits. With Redis the figures are shared ones, or this replica's own
// while Redis cannot be reached.
func (q *Quota) Usage(ctx context.Context) []WindowUsage {
	if !q.limited {
		return nil
	}
	if q.l.rdb != nil {
		return q.l.rdb.usage(ctx, q.p)
	}
	return q.l.mem.usage(q.p)
}

// slot is what a backend claimed: enough to give it back.
type slot struct {
	wait time.Duration
	// at is the slot's time on the local store's clock (ns since its base).
	at int64
	// member is the slot's sorted-set member in Redis (and in the journal);
	// empty in memory.
	member string
	// local is true when the Redis backend claimed the slot from its local
	// share, Redis being down.
	local bool
}

// Reservation is one claimed slot.
//
// A nil *Reservation is valid: it waits for nothing and Cancel does
// nothing, so a caller that holds one only for some tiers can call its
// methods unconditionally.
type Reservation struct {
	q    *Quota // nil: nothing to give back
	slot slot
	// cancelled makes Cancel act once, however often and from however
	// many goroutines it is called.
	cancelled atomic.Bool
}

// Wait is how long the caller must wait before making the call (0: now).
func (r *Reservation) Wait() time.Duration {
	if r == nil {
		return 0
	}
	return r.slot.wait
}

// Cancel gives the slot back: the call it was claimed for will not be made
// (the GPU queue refused the item, or the caller's context ended while it
// waited). It is safe to call more than once and after ctx has ended: on
// Redis it runs with context.WithoutCancel(ctx) and the limiter's short
// Redis timeout, so a caller that hung up still releases what it took.
//
// Cancelling after the call was made would free a slot that was used:
// don't. Cancelling once the slot's windows have passed changes nothing.
// When Redis cannot be reached the slot stays used there (the safe side);
// Cancel never blocks longer than the Redis timeout.
func (r *Reservation) Cancel(ctx context.Context) {
	if r == nil || r.q == nil || !r.cancelled.CompareAndSwap(false, true) {
		return
	}
	q := r.q
	if q.l.rdb != nil {
		q.l.rdb.cancel(ctx, q.p, r.slot)
		return
	}
	q.l.mem.cancel(q.p, r.slot.at)
}

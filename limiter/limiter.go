package limiter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/config"
)

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
	Provider string
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
	// the near future included; for "interval" it is 1 while the least
	// interval since the last slot has not passed.
	Used, Limit uint64
	// ResetsAt is when the oldest slot leaves the window (now if none).
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

// Limiter hands out request slots per provider. It is safe for concurrent
// use.
type Limiter struct {
	mem *store      // the memory backend; nil with Redis
	rdb *redisStore // the Redis backend; nil in memory
}

// NewMemory returns a limiter that keeps the quotas in this process: right
// for one replica. limits is keyed by provider name.
func NewMemory(limits map[string]Limits, opts ...Option) *Limiter {
	o := buildOptions(opts)
	return &Limiter{mem: newStore(limits, o.clock)}
}

// FromConfig builds the service's limiter: quotas of "local" (LocalQuota),
// "gemini" and "anthropic" (their Quota and MinInterval), in Redis when
// RedisURL is set and in memory otherwise. Redis is not contacted here: a
// Redis that is down at start-up is handled like any outage.
func FromConfig(cfg config.Config, log *slog.Logger, opts ...Option) (*Limiter, error) {
	limits := map[string]Limits{
		"local":     {PerMinute: cfg.LocalQuota.RPM, PerHour: cfg.LocalQuota.RPH, PerDay: cfg.LocalQuota.RPD},
		"gemini":    {PerMinute: cfg.Gemini.RPM, PerHour: cfg.Gemini.RPH, PerDay: cfg.Gemini.RPD, MinInterval: cfg.MinInterval},
		"anthropic": {PerMinute: cfg.Anthropic.RPM, PerHour: cfg.Anthropic.RPH, PerDay: cfg.Anthropic.RPD, MinInterval: cfg.MinInterval},
	}
	if cfg.RedisURL == "" {
		return NewMemory(limits, opts...), nil
	}
	ropts, err := redis.ParseURL(cfg.RedisURL.Reveal())
	if err != nil {
		// url.Error repeats the URL, which may hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("limiter: parsing REDIS_URL (value not shown): %w", err)
	}
	// Deadlines cut from the caller's context must bound every call, or a
	// Redis that hangs would hold requests for the client's read timeout.
	ropts.ContextTimeoutEnabled = true
	if ropts.DialTimeout == 0 {
		ropts.DialTimeout = time.Second
	}
	// One dial attempt per call: a refused connection then reads as such
	// at once, instead of as a timeout after go-redis's redials.
	if ropts.DialerRetries == 0 {
		ropts.DialerRetries = 1
	}
	l := NewRedis(redis.NewClient(ropts), cfg.RedisPrefix, limits, cfg.RedisLocalShare, log, opts...)
	l.rdb.ownsClient = true
	return l, nil
}

// NewRedis returns a limiter whose quotas live in Redis under prefix, shared
// by every replica that uses the same Redis and prefix. While Redis cannot
// be reached it answers from an in-memory limiter holding localShare (0..1)
// of each quota. The client stays the caller's: Close does not close it.
// The client should have ContextTimeoutEnabled, so that the per-call
// timeout holds, and DialerRetries 1, so that a refused connection is seen
// as such at once (FromConfig sets both).
func NewRedis(client redis.UniversalClient, prefix string, limits map[string]Limits, localShare float64, log *slog.Logger, opts ...Option) *Limiter {
	o := buildOptions(opts)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{rdb: newRedisStore(client, prefix, limits, localShare, log, o)}
}

// Reserve claims the next request slot of provider ("local", "gemini",
// "anthropic") that satisfies every window at once and returns how long the
// caller must wait before making the call (0: now).
//
// The slot is t = max(now, last slot + MinInterval, and for each window of
// length T and limit N holding k ≥ N slots: slot[k−N] + T), the earliest
// time at which no window containing t would hold more than N slots.
// When t − now would exceed maxWait, nothing is claimed and the error is a
// *NoSlotError naming the window that binds. A provider without limits, or
// one not configured, always gets 0.
//
// With Redis, Reserve never fails because Redis is down: it answers from
// the local share. It fails only when ctx is done.
func (l *Limiter) Reserve(ctx context.Context, provider string, maxWait time.Duration) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("limiter: reserving a %s slot: %w", provider, err)
	}
	maxWait = max(maxWait, 0)
	if l.rdb != nil {
		return l.rdb.reserve(ctx, provider, maxWait)
	}
	return l.mem.reserve(provider, maxWait)
}

// Usage reports each configured window of provider (minute, hour, day,
// interval, in that order) for Stats; nil for a provider without limits.
// With Redis the figures are shared ones, or this replica's own while
// Redis cannot be reached.
func (l *Limiter) Usage(ctx context.Context, provider string) []WindowUsage {
	if l.rdb != nil {
		return l.rdb.usage(ctx, provider)
	}
	return l.mem.usage(provider)
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

// Close releases the Redis connections when FromConfig opened them.
func (l *Limiter) Close() error {
	if l.rdb != nil && l.rdb.ownsClient {
		if err := l.rdb.client.Close(); err != nil {
			return fmt.Errorf("limiter: closing the redis client: %w", err)
		}
	}
	return nil
}

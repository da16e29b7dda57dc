package batcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/upstream"
)

// Leases share one model server's parallel slots between replicas: a slot
// is a lease that expires unless renewed, so a replica killed in the
// middle of a call gives its slots back within LeaseTTL.
type Leases interface {
	// TryAcquire takes one of limit slots when fewer are held, and says
	// false when all are. An error means the store cannot be asked.
	TryAcquire(ctx context.Context, limit int) (lease string, ok bool, err error)
	// Renew keeps a lease alive for another TTL.
	Renew(ctx context.Context, lease string) error
	// Release gives a lease back.
	Release(ctx context.Context, lease string) error
}

// Lease timing: a lease lives LeaseTTL unless renewed, and is renewed
// every LeaseTTL/3 while its call runs; a slot held by a replica that
// died is free again within LeaseTTL. A replica waiting for a lease asks
// again every leasePoll.
const (
	LeaseTTL     = 5 * time.Second
	leasePoll    = 20 * time.Millisecond
	leaseTimeout = 500 * time.Millisecond
)

// RedisLeases is a counting semaphore with expiring leases on Redis: a
// sorted set of lease ids scored by their expiry, on Redis's own clock,
// so that replicas whose clocks differ agree.
type RedisLeases struct {
	rdb redis.UniversalClient
	key string
	ttl time.Duration
}

// NewRedisLeases keeps the leases under key (hash-tag it for a cluster).
func NewRedisLeases(rdb redis.UniversalClient, key string, ttl time.Duration) *RedisLeases {
	if ttl <= 0 {
		ttl = LeaseTTL
	}
	return &RedisLeases{rdb: rdb, key: key, ttl: ttl}
}

// acquireScript drops the expired leases and adds one only while fewer
// than the limit are held, in one step: no two replicas can both see a
// free slot and both take it.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 3)
  return 1
end
return 0`)

// renewScript pushes a held lease's expiry on; a lease already expired
// (and dropped) is not brought back.
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 3)
return n`)

// TryAcquire implements Leases.
func (l *RedisLeases) TryAcquire(ctx context.Context, limit int) (string, bool, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	n, err := acquireScript.Run(ctx, l.rdb, []string{l.key}, limit, l.ttl.Milliseconds(), id).Int()
	if err != nil {
		return "", false, fmt.Errorf("taking a GPU lease: %w", err)
	}
	return id, n == 1, nil
}

// Renew implements Leases.
func (l *RedisLeases) Renew(ctx context.Context, lease string) error {
	if err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.ttl.Milliseconds(), lease).Err(); err != nil {
		return fmt.Errorf("renewing a GPU lease: %w", err)
	}
	return nil
}

// Release implements Leases.
func (l *RedisLeases) Release(ctx context.Context, lease string) error {
	if err := l.rdb.ZRem(ctx, l.key, lease).Err(); err != nil {
		return fmt.Errorf("releasing a GPU lease: %w", err)
	}
	return nil
}

// WithLeases makes every start also take a lease shared with the other
// replicas in front of the same model server, so that together they never
// run more calls than its slots. While the store cannot be asked, a
// replica runs at most localShare of its slots (at least one) on its own,
// counted in Stats.
func WithLeases(l Leases, localShare float64, log *slog.Logger) Option {
	return func(q *Queue) {
		q.leases = &leasing{leases: l, share: localShare, log: log}
	}
}

// leasing is the Queue's side of the shared slots.
type leasing struct {
	leases Leases
	share  float64
	log    *slog.Logger

	// fallback holds the slots taken on this replica's own while the
	// store could not be asked; made on first use.
	fallbackOnce sync.Once
	fallback     chan struct{}
	down         atomic.Bool
	fallbacks    atomic.Uint64
	waits        atomic.Uint64
	lastErr      atomic.Value // string
}

func (l *leasing) local(slots int) chan struct{} {
	l.fallbackOnce.Do(func() {
		l.fallback = make(chan struct{}, max(1, int(float64(slots)*l.share)))
	})
	return l.fallback
}

// take waits for a shared slot until ctx ends or until: a lease, or a
// place in the local share while the store is down. limit is this
// replica's allowed concurrency, the shared slots' number.
func (q *Queue) take(ctx context.Context, until time.Time, limit int) (release func(), err error) {
	l := q.leases
	waited := false
	for {
		actx, cancel := context.WithTimeout(ctx, leaseTimeout)
		lease, ok, err := l.leases.TryAcquire(actx, limit)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			return q.takeLocal(ctx, until, err)
		case ok:
			if l.down.Swap(false) {
				l.log.Info("GPU leases: Redis answers again; slots are shared again")
			}
			return q.renewing(lease), nil
		}
		if !waited {
			waited = true
			l.waits.Add(1)
		}
		wait := min(leasePoll, time.Until(until))
		if wait <= 0 {
			return nil, fmt.Errorf("%w: every shared GPU slot held by the replicas", ErrNoTimeToStart)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("batcher: waiting for a shared GPU slot: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// takeLocal takes a place in the replica's local share of the slots, the
// store being down: said once, counted each time.
func (q *Queue) takeLocal(ctx context.Context, until time.Time, cause error) (func(), error) {
	l := q.leases
	l.fallbacks.Add(1)
	l.lastErr.Store(upstream.Clip(cause.Error()))
	if !l.down.Swap(true) {
		l.log.Warn("GPU leases: Redis cannot be asked; this replica runs its local share of the GPU's slots", "share", l.share, "err", cause)
	}
	slots := l.local(q.cfg.MaxConcurrent)
	t := time.NewTimer(max(0, time.Until(until)))
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("batcher: waiting for a local GPU slot: %w", ctx.Err())
	case <-t.C:
		return nil, fmt.Errorf("%w: the replica's local share of the GPU's slots is taken (Redis down)", ErrNoTimeToStart)
	}
}

// renewing keeps lease alive until the returned release gives it back.
func (q *Queue) renewing(lease string) func() {
	l := q.leases
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), leaseTimeout)
				if err := l.leases.Renew(ctx, lease); err != nil {
					l.log.Warn("GPU leases: renewing a lease", "err", err)
				}
				cancel()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		// Released apart from the call's context: a caller that left must
		// not leave its slot held until it expires.
		ctx, cancel := context.WithTimeout(context.Background(), leaseTimeout)
		defer cancel()
		if err := l.leases.Release(ctx, lease); err != nil && !errors.Is(err, context.Canceled) {
			l.log.Warn("GPU leases: releasing a lease; it expires by itself", "err", err, "within", LeaseTTL)
		}
	}
}

// leaseStats fills the shared slots' part of s.
func (q *Queue) leaseStats(s *Stats) {
	l := q.leases
	if l == nil {
		return
	}
	s.Shared = "redis"
	if l.down.Load() {
		why, _ := l.lastErr.Load().(string)
		s.Shared = "memory (redis unreachable: " + why + ")"
	}
	s.LeaseWaits, s.LeaseFallbacks = l.waits.Load(), l.fallbacks.Load()
}

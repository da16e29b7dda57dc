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
	// Renew keeps a lease alive for another TTL, and holds it again when
	// the store lost it: its call is still running.
	Renew(ctx context.Context, lease string) error
	// Release gives a lease back.
	Release(ctx context.Context, lease string) error
	// TTL is how long a lease lives unless renewed.
	TTL() time.Duration
}

// Lease timing: a lease lives LeaseTTL unless renewed, and is renewed
// every LeaseTTL/3 while its call runs; a slot held by a replica that
// died is free again within LeaseTTL. A replica waiting for a lease asks
// again every leasePoll.
const (
	LeaseTTL     = 5 * time.Second
	leasePoll    = 20 * time.Millisecond
	leaseTimeout = 500 * time.Millisecond
	// downRenewEvery paces renewals while the store is down.
	downRenewEvery = 50 * time.Millisecond
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

// renewScript pushes a held lease's expiry on, and puts it back when it
// is missing: a Redis restarted empty, or a lease that expired while Redis
// could not be reached, still has its call running on the GPU, and the
// other replicas must count it.
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('ZADD', KEYS[1], 'CH', now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 3)
return n`)

// newLeaseID names one call's lease.
func newLeaseID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TryAcquire implements Leases.
func (l *RedisLeases) TryAcquire(ctx context.Context, limit int) (string, bool, error) {
	id := newLeaseID()
	n, err := acquireScript.Run(ctx, l.rdb, []string{l.key}, limit, l.ttl.Milliseconds(), id).Int()
	if err != nil {
		return "", false, fmt.Errorf("taking a GPU lease: %w", err)
	}
	return id, n == 1, nil
}

// TTL implements Leases.
func (l *RedisLeases) TTL() time.Duration { return l.ttl }

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

	// running counts this replica's calls on the GPU, leased in the store
	// or taken from the local share: while the store is down the local
	// share bounds them all, for the calls that started under a lease are
	// still running too.
	mu        sync.Mutex
	running   int
	down      atomic.Bool
	fallbacks atomic.Uint64
	waits     atomic.Uint64
	lastErr   atomic.Value // string
}

// tryLocal counts a call in the local share, when there is room.
func (l *leasing) tryLocal(slots int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running >= max(1, int(float64(slots)*l.share)) {
		return false
	}
	l.running++
	return true
}

func (l *leasing) add(n int) {
	l.mu.Lock()
	l.running += n
	l.mu.Unlock()
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
			return q.renewing(lease, true), nil
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
// store being down: said once, counted each time. The call still gets a
// lease id, renewed while it runs: once the store answers again the call
// is held there too, and the other replicas count it.
func (q *Queue) takeLocal(ctx context.Context, until time.Time, cause error) (func(), error) {
	l := q.leases
	l.fallbacks.Add(1)
	l.lastErr.Store(upstream.Clip(cause.Error()))
	if !l.down.Swap(true) {
		l.log.Warn("GPU leases: Redis cannot be asked; this replica runs its local share of the GPU's slots", "share", l.share, "err", cause)
	}
	for !l.tryLocal(q.cfg.MaxConcurrent) {
		wait := min(leasePoll, time.Until(until))
		if wait <= 0 {
			return nil, fmt.Errorf("%w: the replica's local share of the GPU's slots is taken (Redis down)", ErrNoTimeToStart)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("batcher: waiting for a local GPU slot: %w", ctx.Err())
		case <-t.C:
		}
	}
	return q.renewing(newLeaseID(), false), nil
}

// renewing keeps lease alive until the returned release gives it back;
// count is false when the call was counted in the local share already.
func (q *Queue) renewing(lease string, count bool) func() {
	l := q.leases
	if count {
		l.add(1)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(l.leases.TTL() / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				// While Redis is away renewals are tried often: a Redis
				// back empty must hold this call's lease before another
				// replica leases its slot.
				next := l.leases.TTL() / 3
				if l.down.Load() {
					next = min(next, downRenewEvery)
				}
				t.Reset(next)
				ctx, cancel := context.WithTimeout(context.Background(), leaseTimeout)
				if err := l.leases.Renew(ctx, lease); err != nil && !l.down.Load() {
					l.log.Warn("GPU leases: renewing a lease", "err", err)
				}
				cancel()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		l.add(-1)
		// Released apart from the call's context: a caller that left must
		// not leave its slot held until it expires.
		ctx, cancel := context.WithTimeout(context.Background(), leaseTimeout)
		defer cancel()
		if err := l.leases.Release(ctx, lease); err != nil && !errors.Is(err, context.Canceled) && !l.down.Load() {
			l.log.Warn("GPU leases: releasing a lease; it expires by itself", "err", err, "within", l.leases.TTL())
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

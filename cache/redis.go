package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/internal/rediserr"
)

// The Redis store keeps each ticker's answers under four keys that share
// the hash tag {<namespace>|<TICKER>}, so that a cluster keeps them, and
// the store script that works on them, in one slot:
//
//	:sig   hash: exact key -> when made, the prescore, the encoded Text
//	:ans   hash: exact key -> the answer (JSON)
//	:used  sorted set: exact key by last use (the per-ticker bound)
//	:born  sorted set: exact key by when made (expiry)
//
// Scores are milliseconds of the cache's clock. Every key expires a TTL
// after the ticker's last store; each answer also carries when it was made
// and is never served past its TTL.

// storeSrc stores one answer, drops the ticker's expired ones and the
// least recently used beyond the bound.
// ARGV: key, sig, ans, now ms, TTL ms, per-ticker bound.
// Returns {evicted, expired}.
const storeSrc = `
local now, ttl, bound = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - ttl)
for _, m in ipairs(old) do
  redis.call('HDEL', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
  redis.call('ZREM', KEYS[3], m)
  redis.call('ZREM', KEYS[4], m)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('ZADD', KEYS[4], now, ARGV[1])
local evicted = 0
local n = redis.call('ZCARD', KEYS[3])
if n > bound then
  local victims = redis.call('ZRANGE', KEYS[3], 0, n - bound - 1)
  for _, m in ipairs(victims) do
    redis.call('HDEL', KEYS[1], m)
    redis.call('HDEL', KEYS[2], m)
    redis.call('ZREM', KEYS[3], m)
    redis.call('ZREM', KEYS[4], m)
  end
  evicted = #victims
end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
return {evicted, #old}
`

// RedisOption adjusts the Redis store.
type RedisOption func(*redisStore)

// WithRedisTimeout caps each Redis call [100 ms]; half of what is left of
// the caller's deadline caps it further.
func WithRedisTimeout(d time.Duration) RedisOption {
	return func(r *redisStore) {
		if d > 0 {
			r.timeout = d
		}
	}
}

// WithRetryBackoff sets how long the memory store answers after Redis
// failed before Redis is tried again [5 s].
func WithRetryBackoff(d time.Duration) RedisOption {
	return func(r *redisStore) {
		if d > 0 {
			r.backoff = d
		}
	}
}

type redisStore struct {
	client  redis.UniversalClient
	prefix  string
	ns      string // a short hash of the namespace, for key names
	c       *Cache
	script  *redis.Script
	timeout time.Duration
	backoff time.Duration

	mu      sync.Mutex
	up      bool
	probing bool
	retryAt time.Time
	reason  string
}

func newRedisStore(client redis.UniversalClient, prefix string, c *Cache, opts ...RedisOption) *redisStore {
	sum := sha256.Sum256([]byte(c.cfg.Namespace))
	r := &redisStore{client: client, prefix: prefix, ns: hex.EncodeToString(sum[:4]), c: c,
		script: redis.NewScript(storeSrc), timeout: 100 * time.Millisecond, backoff: 5 * time.Second, up: true}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (r *redisStore) keys(ticker string) []string {
	base := fmt.Sprintf("%s:{%s|%s}:", r.prefix, r.ns, ticker)
	return []string{base + "sig", base + "ans", base + "used", base + "born"}
}

// usable says whether to ask Redis now: while it is up, and once per
// back-off while it is down (that call probes it).
func (r *redisStore) usable() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up {
		return true
	}
	if r.probing || r.c.cfg.Now().Before(r.retryAt) {
		return false
	}
	r.probing = true
	return true
}

// result records how a Redis call went: a failure (not the caller's)
// takes Redis as down for the back-off, said once; a success after an
// outage says Redis is back.
func (r *redisStore) result(ctx context.Context, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.probing = false
	if err == nil || errors.Is(err, redis.Nil) {
		if !r.up {
			r.up = true
			r.c.log.Info("cache store reachable again: answers are shared through Redis")
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	why := rediserr.Describe(err)
	if r.up {
		r.up = false
		r.c.log.Warn("cache store unreachable: this replica keeps answers in memory until it answers", "reason", why, "retry_in", r.backoff)
	}
	r.reason = why
	r.retryAt = r.c.cfg.Now().Add(r.backoff)
}

func (r *redisStore) backend() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up {
		return "redis"
	}
	return "memory (redis unreachable: " + r.reason + ")"
}

// callCtx cuts the per-call timeout from ctx, and to half of what is left
// of its deadline, so that a Redis that hangs costs a request little.
func (r *redisStore) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := r.timeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)/2)
	}
	return context.WithTimeout(ctx, d)
}

// lookup reads the exact key's answer and the ticker's signatures in one
// round trip, and the nearest answer's in a second when there is one.
func (r *redisStore) lookup(ctx context.Context, ticker, key string, t *Text, pre float64) (m match, err error) {
	defer func() { r.result(ctx, err) }()
	cctx, cancel := r.callCtx(ctx)
	defer cancel()
	ks := r.keys(ticker)
	pipe := r.client.Pipeline()
	exact := pipe.HGet(cctx, ks[1], key)
	sigs := pipe.HGetAll(cctx, ks[0])
	if _, err := pipe.Exec(cctx); err != nil && !errors.Is(err, redis.Nil) {
		return match{}, fmt.Errorf("cache: looking up in redis: %w", err)
	}
	now := r.c.cfg.Now()
	if raw, err := exact.Result(); err == nil {
		var s stored
		if json.Unmarshal([]byte(raw), &s) == nil && !r.c.expired(&s, now) {
			r.touch(ctx, ks[2], key, now)
			return match{e: &entry{key: key, ans: s}, exact: true, sim: 1}, nil
		}
	}
	candidates := make([]*entry, 0, len(sigs.Val()))
	for k, v := range sigs.Val() {
		e, err := decodeSig(k, v)
		if err != nil {
			continue
		}
		candidates = append(candidates, e)
	}
	m = r.c.nearest(t, pre, candidates, now)
	if m.e == nil {
		return m, nil
	}
	raw, err := r.client.HGet(cctx, ks[1], m.e.key).Result()
	if errors.Is(err, redis.Nil) {
		return match{refused: m.refused}, nil
	}
	if err != nil {
		return match{}, fmt.Errorf("cache: reading a near answer from redis: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &m.e.ans); err != nil || r.c.expired(&m.e.ans, now) {
		return match{refused: m.refused}, nil
	}
	r.touch(ctx, ks[2], m.e.key, now)
	return m, nil
}

// touch records a use for the per-ticker bound, in the background: a hit
// waits for nothing. A use never extends an answer's life.
func (r *redisStore) touch(ctx context.Context, usedKey, key string, now time.Time) {
	r.c.bg.Add(1)
	go func() {
		defer r.c.bg.Done()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		r.client.ZAddXX(cctx, usedKey, redis.Z{Score: float64(now.UnixMilli()), Member: key})
	}()
}

// store writes e with the store script.
func (r *redisStore) store(ctx context.Context, ticker string, e *entry) (err error) {
	defer func() { r.result(ctx, err) }()
	cctx, cancel := r.callCtx(ctx)
	defer cancel()
	ans, err := json.Marshal(&e.ans)
	if err != nil {
		return fmt.Errorf("cache: encoding an answer: %w", err)
	}
	res, err := r.script.Run(cctx, r.client, r.keys(ticker), e.key, encodeSig(e), string(ans),
		r.c.cfg.Now().UnixMilli(), r.c.cfg.TTL.Milliseconds(), r.c.cfg.PerTicker).Int64Slice()
	if err != nil {
		return fmt.Errorf("cache: storing an answer in redis: %w", err)
	}
	if len(res) > 0 {
		r.c.stats.evicted.Add(uint64(res[0]))
	}
	return nil
}

// encodeSig is an entry's signature: when it was made, its prescore and
// its text, enough for a near lookup to decide without reading answers.
func encodeSig(e *entry) string {
	return strconv.FormatInt(e.ans.Made, 10) + "|" + strconv.FormatFloat(e.pre, 'g', -1, 64) + "|" + e.text.Encode()
}

func decodeSig(key, v string) (*entry, error) {
	made, rest, ok1 := strings.Cut(v, "|")
	pre, text, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 {
		return nil, errors.New("cache: malformed signature")
	}
	e := &entry{key: key}
	var err error
	if e.ans.Made, err = strconv.ParseInt(made, 10, 64); err != nil {
		return nil, err
	}
	if e.pre, err = strconv.ParseFloat(pre, 64); err != nil {
		return nil, err
	}
	if e.text, err = DecodeText(text); err != nil {
		return nil, err
	}
	return e, nil
}

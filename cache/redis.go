package cache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
//	:vec   hash: exact key -> the text's embedding, with an Embedder
//
// Scores are milliseconds of the cache's clock. Every key expires a TTL
// after the ticker's last store; each answer also carries when it was made
// and is never served past its TTL.

// storeSrc stores one answer, drops the ticker's expired ones and the
// least recently used beyond the bound.
// ARGV: key, sig, ans, now ms, TTL ms, per-ticker bound, the embedding
// ("" for none).
// Returns {evicted, expired}.
const storeSrc = `
local now, ttl, bound = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function drop(m)
  redis.call('HDEL', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
  redis.call('ZREM', KEYS[3], m)
  redis.call('ZREM', KEYS[4], m)
  redis.call('HDEL', KEYS[5], m)
end
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - ttl)
for _, m in ipairs(old) do drop(m) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[7]) end
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('ZADD', KEYS[4], now, ARGV[1])
local evicted = 0
local n = redis.call('ZCARD', KEYS[3])
if n > bound then
  local victims = redis.call('ZRANGE', KEYS[3], 0, n - bound - 1)
  for _, m in ipairs(victims) do drop(m) end
  evicted = #victims
end
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
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
	return []string{base + "sig", base + "ans", base + "used", base + "born", base + "vec"}
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

// lookup reads the exact key's answer and the ticker's signatures (and
// embeddings, with an Embedder) in one round trip, and the nearest
// answer's in a second when there is one.
func (r *redisStore) lookup(ctx context.Context, q *query) (m match, err error) {
	defer func() { r.result(ctx, err) }()
	cctx, cancel := r.callCtx(ctx)
	defer cancel()
	ks := r.keys(q.ticker)
	pipe := r.client.Pipeline()
	exact := pipe.HGet(cctx, ks[1], q.key)
	sigs := pipe.HGetAll(cctx, ks[0])
	var vecs *redis.MapStringStringCmd
	if q.vec != nil {
		vecs = pipe.HGetAll(cctx, ks[4])
	}
	if _, err := pipe.Exec(cctx); err != nil && !errors.Is(err, redis.Nil) {
		return match{}, fmt.Errorf("cache: looking up in redis: %w", err)
	}
	now := r.c.cfg.Now()
	if raw, err := exact.Result(); err == nil {
		var s stored
		if json.Unmarshal([]byte(raw), &s) == nil && !r.c.expired(&s, now) {
			r.touch(ctx, ks[2], q.key, now)
			return match{e: &entry{key: q.key, ans: s}, exact: true, sim: 1}, nil
		}
	}
	var candidates []*entry
	born := now.Add(-r.c.cfg.TTL).UnixNano()
	for k, v := range sigs.Val() {
		var vec []float32
		if vecs != nil {
			vec = decodeVec(vecs.Val()[k])
		}
		if e := r.candidate(k, v, vec, q, born); e != nil {
			candidates = append(candidates, e)
		}
	}
	m = r.c.nearest(q, candidates, now)
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
		r.c.cfg.Now().UnixMilli(), r.c.cfg.TTL.Milliseconds(), r.c.cfg.PerTicker, encodeVec(e.vec)).Int64Slice()
	if err != nil {
		return fmt.Errorf("cache: storing an answer in redis: %w", err)
	}
	if len(res) > 0 {
		r.c.stats.evicted.Add(uint64(res[0]))
	}
	return nil
}

// sigPrefix is how many of a text's first shingles its signature carries,
// for the prefix filter to turn most candidates away unread: enough for
// texts of up to 140 shingles at the default threshold of 0.95.
const sigPrefix = 8

// encodeSig is an entry's signature: when it was made, its prescore, its
// number of shingles and the first of them, then its text; enough for a
// near lookup to decide without reading answers, and mostly without
// decoding texts.
func encodeSig(e *entry) string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(e.ans.Made, 10))
	b.WriteByte('|')
	b.WriteString(strconv.FormatFloat(e.pre, 'g', -1, 64))
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(len(e.text.shingles)))
	b.WriteByte('|')
	for i, h := range e.text.shingles[:min(len(e.text.shingles), sigPrefix)] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(h, 36))
	}
	b.WriteByte('|')
	b.WriteString(e.text.Encode())
	return b.String()
}

// sig is a signature read up to its text.
type sig struct {
	made   int64
	pre    float64
	n      int
	prefix [sigPrefix]uint64
	np     int
	text   string
}

func parseSig(v string) (sig, error) {
	var s sig
	parts := strings.SplitN(v, "|", 5)
	if len(parts) != 5 {
		return s, errors.New("cache: malformed signature")
	}
	var err error
	if s.made, err = strconv.ParseInt(parts[0], 10, 64); err != nil {
		return s, err
	}
	if s.pre, err = strconv.ParseFloat(parts[1], 64); err != nil {
		return s, err
	}
	if s.n, err = strconv.Atoi(parts[2]); err != nil {
		return s, err
	}
	for h := range strings.SplitSeq(parts[3], ",") {
		if h == "" || s.np == sigPrefix {
			continue
		}
		if s.prefix[s.np], err = strconv.ParseUint(h, 36, 64); err != nil {
			return s, err
		}
		s.np++
	}
	s.text = parts[4]
	return s, nil
}

// candidate reads a signature (and embedding) into an entry for the near
// comparison, or nil when it cannot be a near hit for q: expired (made at
// or before born), or, without embeddings on both sides, turned away by
// the prefix filter before its text is decoded.
func (r *redisStore) candidate(key, v string, vec []float32, q *query, born int64) *entry {
	s, err := parseSig(v)
	if err != nil || s.made <= born {
		return nil
	}
	if q.vec == nil || vec == nil {
		if may, _ := mayReachPrefix(&q.text, s.n, s.prefix[:s.np], r.c.cfg.Similarity); !may {
			return nil
		}
	}
	text, err := DecodeText(s.text)
	if err != nil {
		return nil
	}
	return &entry{key: key, text: text, vec: vec, pre: s.pre, ans: stored{Made: s.made}}
}

// encodeVec is an embedding as base64 of its little-endian float32s.
func encodeVec(v []float32) string {
	if v == nil {
		return ""
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func decodeVec(s string) []float32 {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || len(b)%4 != 0 {
		return nil
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

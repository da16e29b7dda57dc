package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/internal/rediserr"
)

// The Lua scripts below work on one provider's keys, which share the hash
// tag {provider} so that a cluster keeps them in one slot:
//
//	KEYS[1]   the latest slot claimed (FIFO order and the least interval)
//	KEYS[2]   the epoch: a random value set when the keys were first
//	          written, so a replica notices when Redis lost its data
//	          (a restart without persistence, a flush) and writes back the
//	          slots it claimed
//	KEYS[3..] the window logs: sorted sets scored by slot time in
//	          microseconds of Redis's own clock (TIME), holding every slot
//	          that still counts in the window, those claimed for the future
//	          included. They are cut by time only, never to the limit's
//	          count: once a slot is cancelled an older one can bind again.

// reserveSrc claims a slot atomically over all windows.
// ARGV: least interval µs, max wait µs, a unique member, the epoch this
// replica knows (” if none), a new epoch to set if none is there, then per
// window its length µs and limit.
// Returns {status, binding, wait µs, epoch, count per window}: status 1
// claimed, 0 refused, 2 epoch changed (nothing claimed, no counts); binding
// -1 interval, 0 none, i window i. The counts (every replica's slots in
// each window) tell the local fallback how full the shared windows are.
const reserveSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ep = redis.call('GET', KEYS[2])
if not ep then
  ep = ARGV[5]
  redis.call('SET', KEYS[2], ep)
end
if ARGV[4] ~= '' and ARGV[4] ~= ep then return {2, 0, 0, ep} end
local interval = tonumber(ARGV[1])
local maxwait = tonumber(ARGV[2])
local slot, binding = now, 0
local last = redis.call('GET', KEYS[1])
if last then
  local b = tonumber(last) + interval
  if b > slot then slot, binding = b, -1 end
end
for i = 3, #KEYS do
  local len, n = tonumber(ARGV[2*i]), tonumber(ARGV[2*i+1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%.0f', now - len))
  local c = redis.call('ZCARD', KEYS[i])
  if c >= n then
    local e = redis.call('ZRANGE', KEYS[i], c - n, c - n, 'WITHSCORES')
    local b = tonumber(e[2]) + len
    if b > now and b >= slot then slot, binding = b, i - 2 end
  end
end
local wait = slot - now
local out = {0, binding, wait, ep}
if wait <= maxwait then
  out[1] = 1
  local score = string.format('%.0f', slot)
  for i = 3, #KEYS do
    local len = tonumber(ARGV[2*i])
    redis.call('ZADD', KEYS[i], score, ARGV[3])
    redis.call('PEXPIRE', KEYS[i], math.ceil((wait + len) / 1000))
  end
  redis.call('SET', KEYS[1], score, 'PX', math.ceil((wait + interval) / 1000) + 1)
end
for i = 3, #KEYS do out[#out + 1] = redis.call('ZCARD', KEYS[i]) end
return out
`

// replaySrc writes back the slots this replica claimed, placed relative to
// Redis's clock by their offset from the replica's "now" (so clock skew
// does not move them). A slot keeps the member it was claimed with, so one
// that Redis still holds is not counted twice.
// ARGV: least interval µs, a new epoch to set if none is there, count m,
// m pairs (offset µs, member), then per window its length µs.
// Returns the epoch.
const replaySrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ep = redis.call('GET', KEYS[2])
if not ep then
  ep = ARGV[2]
  redis.call('SET', KEYS[2], ep)
end
local interval = tonumber(ARGV[1])
local m = tonumber(ARGV[3])
local top = nil
for j = 1, m do
  local s = now + tonumber(ARGV[2 + 2*j])
  if top == nil or s > top then top = s end
  for i = 3, #KEYS do
    redis.call('ZADD', KEYS[i], string.format('%.0f', s), ARGV[3 + 2*j])
  end
end
local base = 3 + 2*m
for i = 3, #KEYS do
  local len = tonumber(ARGV[base + i - 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%.0f', now - len))
  local e = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if e[2] then
    local ttl = math.ceil((tonumber(e[2]) - now + len) / 1000)
    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
local last = redis.call('GET', KEYS[1])
if last then
  last = tonumber(last)
  if top == nil or last > top then top = last end
end
if top ~= nil then
  local ttl = math.ceil((top - now + interval) / 1000) + 1
  if ttl > 0 then redis.call('SET', KEYS[1], string.format('%.0f', top), 'PX', ttl) end
end
return ep
`

// usageSrc reads the windows. ARGV: per window its length µs and limit.
// Returns {now, last slot or ”, then per window: count, and the oldest
// slot that keeps it full (the n-th latest, or the oldest) or ”}.
const usageSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {now, redis.call('GET', KEYS[1]) or ''}
for i = 3, #KEYS do
  local lo = '(' .. string.format('%.0f', now - tonumber(ARGV[2*i - 5]))
  local c = redis.call('ZCOUNT', KEYS[i], lo, '+inf')
  out[#out + 1] = c
  local skip = math.max(c - tonumber(ARGV[2*i - 4]), 0)
  local e = redis.call('ZRANGEBYSCORE', KEYS[i], lo, '+inf', 'WITHSCORES', 'LIMIT', skip, 1)
  out[#out + 1] = e[2] or ''
end
return out
`

// cancelSrc gives a slot back. It removes the member from every window
// log; when the interval key holds the slot's score (it was the latest
// slot), the key goes back to the latest slot left, the highest score in
// any window log, and expires when that slot's least interval has passed.
// With no window log to tell (none configured, or all empty) the key is
// left as it is: spacing calls more than needed is safe, less is not.
// The scores are Redis TIME microseconds, so the expiry is absolute and
// the script needs no clock.
// ARGV: member, least interval µs. Returns how many logs held the member.
const cancelSrc = `
local score = nil
local removed = 0
for i = 3, #KEYS do
  local s = redis.call('ZSCORE', KEYS[i], ARGV[1])
  if s then
    score = tonumber(s)
    removed = removed + redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
if score == nil then return removed end
local last = redis.call('GET', KEYS[1])
if not last or tonumber(last) ~= score then return removed end
local top = nil
for i = 3, #KEYS do
  local e = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if e[2] then
    local s = tonumber(e[2])
    if top == nil or s > top then top = s end
  end
end
if top ~= nil then
  redis.call('SET', KEYS[1], string.format('%.0f', top))
  redis.call('PEXPIREAT', KEYS[1], math.ceil((top + tonumber(ARGV[2])) / 1000) + 1)
end
return removed
`

// replayChunk bounds the slots written back by one script call.
const replayChunk = 1000

// redisStore is the Redis backend with its in-memory fallback.
type redisStore struct {
	client     redis.UniversalClient
	share      float64
	log        *slog.Logger
	clock      func() time.Time
	backoff    time.Duration
	timeout    time.Duration
	token      string // makes this instance's members and epochs unique
	seq        atomic.Uint64
	provs      map[Provider]*redisProv // filled at construction, read only
	reserveScr *redis.Script
	replayScr  *redis.Script
	usageScr   *redis.Script
	cancelScr  *redis.Script
	// local is the fallback, holding share of every quota. It also counts
	// the slots claimed through Redis, so an outage does not hand this
	// replica a fresh share on top of what it used.
	local *store

	mu        sync.Mutex
	up        bool      // Redis answered last time
	probing   bool      // one Reserve is trying Redis again
	retryAt   time.Time // while down: when to try Redis again
	downSince time.Time
	reason    string // why Redis is down
	// journal holds, per provider, every slot this replica claimed that
	// can still matter (through Redis or from the local share), to write
	// back when Redis comes back or turns out to have lost its data.
	journal map[Provider][]claim
	// localClaims counts slots claimed from the local share.
	localClaims uint64
	// epochs is the epoch each provider's keys had when last seen.
	epochs map[Provider]string
}

// claim is one slot in the journal: its time on the local store's clock and
// its sorted-set member.
type claim struct {
	at     int64
	member string
}

type redisProv struct {
	limits Limits
	rules  []rule
	span   int64    // local-store ns: older claims no longer matter
	keys   []string // interval key, epoch key, then one per rule
	spec   []any    // per rule: length µs, limit
	lens   []any    // per rule: length µs
}

func newRedisStore(client redis.UniversalClient, prefix string, limits map[Provider]Limits, share float64, log *slog.Logger, o options) *redisStore {
	var tok [8]byte
	_, _ = rand.Read(tok[:]) // crypto/rand.Read never fails
	r := &redisStore{
		client:     client,
		share:      share,
		log:        log,
		clock:      o.clock,
		backoff:    o.backoff,
		timeout:    o.timeout,
		token:      hex.EncodeToString(tok[:]),
		provs:      make(map[Provider]*redisProv, len(limits)),
		reserveScr: redis.NewScript(reserveSrc),
		replayScr:  redis.NewScript(replaySrc),
		usageScr:   redis.NewScript(usageSrc),
		cancelScr:  redis.NewScript(cancelSrc),
		up:         true,
		journal:    make(map[Provider][]claim),
		epochs:     make(map[Provider]string),
	}
	scaled := make(map[Provider]Limits, len(limits))
	for name, l := range limits {
		l = l.normalized()
		if l.none() {
			continue
		}
		scaled[name] = l.scaled(share)
		p := &redisProv{limits: l, rules: l.rules(), span: int64(l.span())}
		key := func(w string) string { return fmt.Sprintf("%s:{%s}:%s", prefix, name, w) }
		p.keys = append(p.keys, key(WindowInterval), key("epoch"))
		for _, rl := range p.rules {
			p.keys = append(p.keys, key(rl.name))
			p.spec = append(p.spec, rl.length.Microseconds(), rl.n)
			p.lens = append(p.lens, rl.length.Microseconds())
		}
		r.provs[name] = p
	}
	r.local = newStore(scaled, o.clock)
	return r
}

// callCtx cuts the per-call timeout from ctx, and to half of what is left
// of the caller's deadline: then a Redis that hangs runs out our timeout
// first, is marked down, and the next callers go to the local share
// instead of spending their own deadlines on it.
func (r *redisStore) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := r.timeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)/2)
	}
	return context.WithTimeout(ctx, d)
}

func (r *redisStore) member() string {
	return r.token + ":" + strconv.FormatUint(r.seq.Add(1), 36)
}

func (r *redisStore) reserve(ctx context.Context, provider Provider, maxWait time.Duration) (slot, error) {
	p := r.provs[provider]
	if p == nil {
		return slot{}, nil
	}
	r.mu.Lock()
	probe := false
	if !r.up {
		if r.probing || r.clock().Before(r.retryAt) {
			defer r.mu.Unlock()
			return r.reserveLocal(provider, maxWait)
		}
		// This call tries Redis again; the others keep to the local
		// share until it knows.
		r.probing, probe = true, true
	}
	r.mu.Unlock()

	if probe {
		if err := r.recover(ctx); err != nil {
			return r.failed(ctx, provider, maxWait, err, true)
		}
	}
	// A second round only follows a write-back after Redis lost its data.
	for range 2 {
		wait, member, counts, err := r.reserveRedis(ctx, p, provider, maxWait)
		var noSlot *NoSlotError
		switch {
		case errors.Is(err, errEpochChanged):
			if err := r.replayProvider(ctx, provider); err != nil {
				return r.failed(ctx, provider, maxWait, err, false)
			}
			continue
		case errors.As(err, &noSlot):
			r.local.fill(provider, r.localUsed(p, counts))
			return slot{}, err
		case err != nil:
			return r.failed(ctx, provider, maxWait, err, false)
		}
		at := r.local.now() + int64(wait)
		r.local.record(provider, at)
		// Should Redis go down next, the local share starts from how full
		// the shared windows were, other replicas' slots included, not
		// from this replica's own alone.
		r.local.fill(provider, r.localUsed(p, counts))
		r.mu.Lock()
		r.remember(provider, claim{at, member})
		r.mu.Unlock()
		return slot{wait: wait, at: at, member: member}, nil
	}
	return r.failed(ctx, provider, maxWait, fmt.Errorf("limiter: %s keys keep changing epoch", provider), false)
}

// localUsed turns the shared windows' counts (every replica's slots) into
// how much of each local window counts as used, so that while Redis is
// away this replica allows itself its share of what was left in each
// shared window: floor(left × share), at least 1 while anything is left,
// none when the window is full. With the share at most 1/replicas, all of
// them together stay within what was left; and a replica keeps serving
// what it safely can instead of finding its whole local share used up by
// the others' slots.
func (r *redisStore) localUsed(p *redisProv, counts []int64) []int {
	if len(counts) != len(p.rules) {
		return nil
	}
	local := p.limits.scaled(r.share).rules()
	used := make([]int, len(p.rules))
	for i, rl := range p.rules {
		left := max(rl.n-int(counts[i]), 0)
		allowed := 0
		if left > 0 {
			allowed = max(int(math.Floor(float64(left)*r.share)), 1)
		}
		used[i] = max(local[i].n-allowed, 0)
	}
	return used
}

// errEpochChanged says the provider's keys were lost and written anew since
// this replica last saw them: its journal must be written back first.
var errEpochChanged = errors.New("limiter: redis lost the quota keys")

// reserveRedis runs the reserve script. Besides the slot it returns how
// many slots every window holds now, all replicas together.
func (r *redisStore) reserveRedis(ctx context.Context, p *redisProv, provider Provider, maxWait time.Duration) (time.Duration, string, []int64, error) {
	ctx, cancel := r.callCtx(ctx)
	defer cancel()
	r.mu.Lock()
	known := r.epochs[provider]
	r.mu.Unlock()
	member := r.member()
	args := make([]any, 0, 5+len(p.spec))
	args = append(args, p.limits.MinInterval.Microseconds(), maxWait.Microseconds(), member, known, r.member())
	args = append(args, p.spec...)
	res, err := r.reserveScr.Run(ctx, r.client, p.keys, args...).Slice()
	if err != nil {
		return 0, "", nil, fmt.Errorf("limiter: reserving a %s slot in redis: %w", provider, err)
	}
	status, binding, waitUS, epoch, counts, ok := parseReserve(res)
	if !ok {
		return 0, "", nil, fmt.Errorf("limiter: reserving a %s slot in redis: unexpected script answer %v", provider, res)
	}
	if status == 2 {
		return 0, "", nil, errEpochChanged
	}
	if known == "" {
		r.mu.Lock()
		r.epochs[provider] = epoch
		r.mu.Unlock()
	}
	wait := time.Duration(waitUS) * time.Microsecond
	if status == 1 {
		return wait, member, counts, nil
	}
	window := WindowInterval
	if binding > 0 && int(binding) <= len(p.rules) {
		window = p.rules[binding-1].name
	}
	return 0, "", counts, &NoSlotError{Provider: provider, Window: window, Wait: wait}
}

func parseReserve(res []any) (status, binding, wait int64, epoch string, counts []int64, ok bool) {
	if len(res) < 4 {
		return 0, 0, 0, "", nil, false
	}
	var ok1, ok2, ok3, ok4 bool
	status, ok1 = res[0].(int64)
	binding, ok2 = res[1].(int64)
	wait, ok3 = res[2].(int64)
	epoch, ok4 = res[3].(string)
	for _, c := range res[4:] {
		n, isInt := c.(int64)
		if !isInt {
			return 0, 0, 0, "", nil, false
		}
		counts = append(counts, n)
	}
	return status, binding, wait, epoch, counts, ok1 && ok2 && ok3 && ok4
}

// remember adds c to provider's journal and drops the claims that no
// longer matter; r.mu is held.
func (r *redisStore) remember(provider Provider, c claim) {
	now := r.local.now()
	q := append(r.journal[provider], c)
	cut := now - r.provs[provider].span
	i := 0
	for i < len(q) && q[i].at <= cut {
		i++
	}
	r.journal[provider] = q[i:]
}

// reserveLocal answers from the local share; r.mu is held.
func (r *redisStore) reserveLocal(provider Provider, maxWait time.Duration) (slot, error) {
	s, err := r.local.reserve(provider, maxWait)
	if err != nil {
		return slot{}, err
	}
	s.member, s.local = r.member(), true
	r.localClaims++
	r.remember(provider, claim{s.at, s.member})
	return s, nil
}

// forget drops the claim of member from provider's journal, so that a
// later write-back does not bring a cancelled slot back; r.mu is held.
// Cancels come soon after their claims, so the search starts at the end.
func (r *redisStore) forget(provider Provider, member string) {
	q := r.journal[provider]
	for i := len(q) - 1; i >= 0; i-- {
		if q[i].member == member {
			r.journal[provider] = slices.Delete(q, i, i+1)
			return
		}
	}
}

// cancel gives slot s back: it leaves the journal and the local share at
// once, and Redis's window logs when Redis is up. A slot claimed from the
// local share may have been written back since, under the same member, so
// it is removed from Redis too. While Redis is down the slot stays used
// there: waiting out the timeout would only delay the caller, and a slot
// counted that was not used errs on the safe side.
func (r *redisStore) cancel(ctx context.Context, provider Provider, s slot) {
	p := r.provs[provider]
	if p == nil {
		return
	}
	r.mu.Lock()
	r.forget(provider, s.member)
	up := r.up
	r.mu.Unlock()
	r.local.cancel(provider, s.at)
	if !up {
		return
	}
	// The caller may have hung up: what it took is released all the same,
	// within the limiter's own timeout.
	ctx, cancel := r.callCtx(context.WithoutCancel(ctx))
	defer cancel()
	err := r.cancelScr.Run(ctx, r.client, p.keys, s.member, p.limits.MinInterval.Microseconds()).Err()
	if err != nil {
		r.log.Debug("quota slot not given back to the shared store: it stays used",
			"provider", string(provider), "reason", rediserr.Describe(err))
	}
}

// failed handles a Redis call that did not answer: unless the caller gave
// up, Redis is taken as down and the local share answers.
func (r *redisStore) failed(ctx context.Context, provider Provider, maxWait time.Duration, err error, probe bool) (slot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if probe {
		r.probing = false
	}
	if ctx.Err() != nil {
		// The caller's deadline or cancellation, not Redis: admitting from
		// the local share while Redis may be counting would risk the quota.
		return slot{}, fmt.Errorf("limiter: reserving a %s slot: %w", provider, ctx.Err())
	}
	r.markDown(err)
	return r.reserveLocal(provider, maxWait)
}

// markDown takes Redis as unreachable until the back-off has passed; the
// first time, it says so; r.mu is held.
func (r *redisStore) markDown(err error) {
	now := r.clock()
	why := rediserr.Describe(err)
	if r.up {
		r.up, r.downSince = false, now
		r.log.Warn("quota store unreachable: each quota falls back to this replica's local share",
			"reason", why, "local_share", r.share, "retry_in", r.backoff)
	}
	r.reason = why
	r.retryAt = now.Add(r.backoff)
}

// check pings Redis once; an unreachable Redis is marked down at once.
func (r *redisStore) check(ctx context.Context) error {
	cctx, cancel := r.callCtx(ctx)
	defer cancel()
	err := r.client.Ping(cctx).Err()
	if err != nil && ctx.Err() == nil {
		r.mu.Lock()
		r.markDown(err)
		r.mu.Unlock()
		return fmt.Errorf("limiter: redis: %s", rediserr.Describe(err))
	}
	return nil
}

// recover writes this replica's journal back to Redis and marks Redis up
// once no slot claimed from the local share is missing there.
func (r *redisStore) recover(ctx context.Context) error {
	for {
		r.mu.Lock()
		seen := r.localClaims
		r.mu.Unlock()
		for name := range r.provs {
			if err := r.replayProvider(ctx, name); err != nil {
				return err
			}
		}
		r.mu.Lock()
		if r.localClaims == seen {
			r.up, r.probing = true, false
			r.log.Info("quota store reachable again: quotas are shared",
				"outage", r.clock().Sub(r.downSince).Round(time.Millisecond))
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock()
	}
}

// replayProvider writes provider's journal back to Redis (it also checks
// that Redis answers) and takes the epoch it finds there.
func (r *redisStore) replayProvider(ctx context.Context, provider Provider) error {
	p := r.provs[provider]
	r.mu.Lock()
	q := slices.Clone(r.journal[provider])
	r.mu.Unlock()
	var epoch string
	for first := true; first || len(q) > 0; first = false {
		chunk := q[:min(len(q), replayChunk)]
		q = q[len(chunk):]
		ep, err := r.replayChunk(ctx, p, provider, chunk)
		if err != nil {
			return err
		}
		epoch = ep
	}
	r.mu.Lock()
	r.epochs[provider] = epoch
	r.mu.Unlock()
	return nil
}

func (r *redisStore) replayChunk(ctx context.Context, p *redisProv, provider Provider, claims []claim) (string, error) {
	ctx, cancel := r.callCtx(ctx)
	defer cancel()
	now := r.local.now()
	args := make([]any, 0, 3+2*len(claims)+len(p.lens))
	args = append(args, p.limits.MinInterval.Microseconds(), r.member(), len(claims))
	for _, c := range claims {
		d := c.at - now
		if d > 0 {
			d += 999 // round later, never earlier
		}
		args = append(args, d/1000, c.member)
	}
	args = append(args, p.lens...)
	epoch, err := r.replayScr.Run(ctx, r.client, p.keys, args...).Text()
	if err != nil {
		return "", fmt.Errorf("limiter: writing %d %s slots back to redis: %w", len(claims), provider, err)
	}
	return epoch, nil
}

func (r *redisStore) usage(ctx context.Context, provider Provider) []WindowUsage {
	p := r.provs[provider]
	if p == nil {
		return nil
	}
	r.mu.Lock()
	up := r.up
	r.mu.Unlock()
	if up && ctx.Err() == nil {
		if u, err := r.usageRedis(ctx, p); err == nil {
			return u
		}
	}
	return r.local.usage(provider)
}

func (r *redisStore) usageRedis(ctx context.Context, p *redisProv) ([]WindowUsage, error) {
	ctx, cancel := r.callCtx(ctx)
	defer cancel()
	res, err := r.usageScr.Run(ctx, r.client, p.keys, p.spec...).Slice()
	if err != nil {
		return nil, fmt.Errorf("limiter: reading usage from redis: %w", err)
	}
	if len(res) != 2+2*len(p.rules) {
		return nil, fmt.Errorf("limiter: reading usage from redis: script answered %d values", len(res))
	}
	wall := r.clock().Round(0)
	now, _ := res[0].(int64)
	at := func(us int64) time.Time { return wall.Add(time.Duration(us-now) * time.Microsecond) }
	score := func(v any) (int64, bool) {
		s, _ := v.(string)
		f, err := strconv.ParseFloat(s, 64)
		return int64(f), err == nil
	}
	out := make([]WindowUsage, 0, len(p.rules)+1)
	for i, rl := range p.rules {
		n, _ := res[2+2*i].(int64)
		u := WindowUsage{Window: rl.name, Used: uint64(min(max(n, 0), int64(rl.n))), Limit: uint64(rl.n), ResetsAt: wall, Shared: true}
		if first, ok := score(res[3+2*i]); ok {
			u.ResetsAt = at(first + rl.length.Microseconds())
		}
		out = append(out, u)
	}
	if mi := p.limits.MinInterval; mi > 0 {
		u := WindowUsage{Window: WindowInterval, Limit: 1, ResetsAt: wall, Shared: true}
		if last, ok := score(res[1]); ok && last+mi.Microseconds() > now {
			u.Used, u.ResetsAt = 1, at(last+mi.Microseconds())
		}
		out = append(out, u)
	}
	return out, nil
}

func (r *redisStore) backend() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up {
		return "redis"
	}
	return "memory (redis unreachable: " + r.reason + ")"
}

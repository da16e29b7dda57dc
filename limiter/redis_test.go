package limiter

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/internal/logtest"
	"github.com/catalystbot/sentiment/internal/redistest"
)

// newClient returns a go-redis client for s, closed in tb.Cleanup.
func newClient(tb testing.TB, s *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  s.Addr(),
		ContextTimeoutEnabled: true,
		DialerRetries:         1,
		DialTimeout:           200 * time.Millisecond,
	})
	tb.Cleanup(func() { c.Close() })
	return c
}

const testPrefix = "test:quota"

// newRedis is NewRedis for tests that build it from valid limits.
func newRedis(tb testing.TB, c redis.UniversalClient, prefix string, limits map[Provider]Limits, share float64, log *slog.Logger, opts ...Option) *Limiter {
	tb.Helper()
	l, err := NewRedis(c, prefix, limits, share, log, opts...)
	if err != nil {
		tb.Fatalf("NewRedis: %v", err)
	}
	return l
}

// quotas returns the quota of p of each limiter.
func quotas(tb testing.TB, p Provider, ls ...*Limiter) []*Quota {
	tb.Helper()
	qs := make([]*Quota, len(ls))
	for i, l := range ls {
		qs[i] = quota(tb, l, p)
	}
	return qs
}

// hammer runs workers goroutines per quota, each making calls Reserves
// with maxWait, and returns the waits admitted; every refusal must be a
// *NoSlotError of window.
func hammer(t *testing.T, qs []*Quota, workers, calls int, maxWait time.Duration, window string) []time.Duration {
	t.Helper()
	var (
		mu      sync.Mutex
		waits   []time.Duration
		badErrs atomic.Int64
		wg      sync.WaitGroup
	)
	for _, q := range qs {
		for range workers {
			wg.Go(func() {
				for range calls {
					r, err := q.Reserve(context.Background(), maxWait)
					var ns *NoSlotError
					switch {
					case err == nil:
						mu.Lock()
						waits = append(waits, r.Wait())
						mu.Unlock()
					case errors.As(err, &ns) && ns.Window == window:
					default:
						badErrs.Add(1)
						t.Errorf("reserve: %v", err)
					}
				}
			})
		}
	}
	wg.Wait()
	if n := badErrs.Load(); n > 0 {
		t.Fatalf("%d unexpected errors", n)
	}
	return waits
}

// TestRedisSharedDaily: two limiters, each with its own client, on one
// Redis, hammered at once, together admit exactly the daily limit.
func TestRedisSharedDaily(t *testing.T) {
	srv := redistest.Start(t)
	limits := map[Provider]Limits{ProviderGemini: {PerDay: 50}}
	a := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil)
	b := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil)
	waits := hammer(t, quotas(t, ProviderGemini, a, b), 8, 20, 0, "day")
	if len(waits) != 50 {
		t.Fatalf("admitted %d, want exactly 50", len(waits))
	}
	for _, l := range []*Limiter{a, b} {
		if got := l.Backend(); got != "redis" {
			t.Fatalf("backend %q", got)
		}
		u := quota(t, l, ProviderGemini).Usage(context.Background())
		if len(u) != 1 || u[0].Used != 50 || u[0].Limit != 50 || !u[0].Shared {
			t.Fatalf("usage %+v", u)
		}
	}
	n, err := newClient(t, srv).ZCard(context.Background(), testPrefix+":{gemini}:day").Result()
	if err != nil || n != 50 {
		t.Fatalf("day log holds %d (%v), want 50", n, err)
	}
}

// TestRedisSharedMinute: with a per-minute limit and a wait of five
// minutes allowed, two limiters hand out exactly six minutes' worth of
// slots, and the slot times Redis recorded never put more than the limit
// in any sliding minute.
func TestRedisSharedMinute(t *testing.T) {
	srv := redistest.Start(t)
	limits := map[Provider]Limits{ProviderAnthropic: {PerMinute: 10, PerDay: 1000}}
	a := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil)
	b := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil)
	waits := hammer(t, quotas(t, ProviderAnthropic, a, b), 8, 10, 5*time.Minute, "minute")
	if len(waits) != 60 {
		t.Fatalf("admitted %d, want exactly 60 (10 per minute over 0..5 min)", len(waits))
	}
	zs, err := newClient(t, srv).ZRangeWithScores(context.Background(), testPrefix+":{anthropic}:day", 0, -1).Result()
	if err != nil || len(zs) != 60 {
		t.Fatalf("day log holds %d (%v), want 60", len(zs), err)
	}
	slots := make([]time.Time, len(zs))
	for i, z := range zs {
		slots[i] = time.UnixMicro(int64(z.Score))
	}
	checkNeverOver(t, Limits{PerMinute: 10}, slots)
}

// TestRedisMinInterval: the least interval holds across two limiters.
func TestRedisMinInterval(t *testing.T) {
	srv := redistest.Start(t)
	limits := map[Provider]Limits{ProviderGemini: {MinInterval: 3 * time.Second}}
	a := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil)
	b := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil)
	waits := hammer(t, quotas(t, ProviderGemini, a, b), 4, 5, 10*time.Second, "interval")
	slices.Sort(waits)
	// Slots at 0, 3, 6, 9 s: four fit in a wait of 10 s.
	if len(waits) != 4 {
		t.Fatalf("admitted %v, want four", waits)
	}
	for i := 1; i < len(waits); i++ {
		if d := waits[i] - waits[i-1]; d < 3*time.Second-50*time.Millisecond {
			t.Fatalf("waits %v: slots closer than 3s", waits)
		}
	}
	u := quota(t, a, ProviderGemini).Usage(context.Background())
	if len(u) != 1 || u[0].Window != "interval" || u[0].Used != 1 || !u[0].Shared {
		t.Fatalf("usage %+v", u)
	}
}

// TestRedisOutage: Redis killed mid-test; Reserve keeps answering from the
// local share, never more than the share during the outage; once Redis is
// back (same port, data lost) the limiter returns to it after the back-off
// and writes back what it claimed, so the shared minute stays exact.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	limits := map[Provider]Limits{ProviderGemini: {PerMinute: 20}}
	l := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, log,
		WithRetryBackoff(50*time.Millisecond), WithRedisTimeout(500*time.Millisecond))
	q := quota(t, l, ProviderGemini)
	ctx := context.Background()

	count := func(n int) int { return admitted(t, q, n) }
	if got := count(4); got != 4 {
		t.Fatalf("before the outage: admitted %d of 4", got)
	}

	srv.Stop()
	during := count(50)
	// The minute held 4 of 20 when Redis went away: the local share is
	// half of the 16 that were left.
	if want := 8; during != want {
		t.Fatalf("admitted %d during the outage, want %d (half of the 16 left)", during, want)
	}
	if b := l.Backend(); !strings.HasPrefix(b, "memory (redis unreachable: ") {
		t.Fatalf("backend %q during the outage", b)
	} else {
		t.Logf("backend during the outage: %s", b)
	}
	if u := q.Usage(ctx); len(u) != 1 || u[0].Shared || u[0].Limit != 10 || u[0].Used != 10 {
		t.Fatalf("usage during the outage %+v", u)
	}

	srv.Start()
	after := 0
	deadline := time.Now().Add(10 * time.Second)
	for l.Backend() != "redis" {
		if time.Now().After(deadline) {
			t.Fatalf("still %q 10s after Redis came back", l.Backend())
		}
		after += count(1)
		time.Sleep(10 * time.Millisecond)
	}
	after += count(50)
	// Redis lost its data, but the 12 slots this replica claimed in the
	// minute were written back: 8 more fit in the shared limit of 20.
	if after != 8 {
		t.Fatalf("admitted %d after Redis came back, want 8", after)
	}
	u := q.Usage(ctx)
	if len(u) != 1 || !u[0].Shared || u[0].Used != 20 {
		t.Fatalf("usage after the outage %+v", u)
	}
	out := logs.String()
	if n := strings.Count(out, "quota store unreachable"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "reachable again"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, out)
	}
	t.Logf("log:\n%s", out)
	if strings.Contains(out, srv.Addr()) {
		t.Errorf("the log names the Redis address:\n%s", out)
	}
}

// TestRedisLostDataWriteBack: Redis restarts between two calls of a replica
// that never saw it down; the epoch change makes it write back its slots
// before claiming, so the restart hands out no fresh quota.
func TestRedisLostDataWriteBack(t *testing.T) {
	srv := redistest.Start(t)
	limits := map[Provider]Limits{ProviderGemini: {PerHour: 5}}
	c := newClient(t, srv)
	l := newRedis(t, c, testPrefix, limits, 0.5, nil)
	q := quota(t, l, ProviderGemini)
	ctx := context.Background()
	for range 3 {
		if _, err := q.Reserve(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	srv.Stop()
	srv.Start()
	// go-redis may find its pooled connection dead on the first call; give
	// it the chance to reconnect before asking for slots.
	deadline := time.Now().Add(5 * time.Second)
	for c.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := admitted(t, q, 10); got != 2 || l.Backend() != "redis" {
		t.Fatalf("admitted %d after the restart (backend %q), want 2", got, l.Backend())
	}
}

// TestRedisPassword: a limiter over a client that authenticates works like
// any other, and one whose password Redis refuses falls back to its local
// share without the password reaching its Backend or its log.
func TestRedisPassword(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	if err := newClient(t, srv).ConfigSet(ctx, "requirepass", "hunter2").Err(); err != nil {
		t.Fatalf("setting a password on the test redis: %v", err)
	}
	limits := map[Provider]Limits{ProviderGemini: {PerMinute: 2}}
	dial := func(password string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: password,
			ContextTimeoutEnabled: true, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { c.Close() })
		return c
	}

	l := newRedis(t, dial("hunter2"), testPrefix, limits, 0.5, nil)
	if got := admitted(t, quota(t, l, ProviderGemini), 3); got != 2 {
		t.Fatalf("admitted %d of a minute of 2", got)
	}
	if b := l.Backend(); b != "redis" {
		t.Fatalf("backend %q", b)
	}

	var logs logtest.Buffer
	bad := newRedis(t, dial("wrong-password"), testPrefix, limits, 0.5, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := bad.Check(ctx); err == nil || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("Check with a wrong password: %v", err)
	}
	if got := admitted(t, quota(t, bad, ProviderGemini), 3); got != 1 {
		t.Fatalf("admitted %d from the local share, want 1 (half of 2)", got)
	}
	if b := bad.Backend(); !strings.HasPrefix(b, "memory (redis unreachable") || strings.Contains(b+logs.String(), "wrong-password") {
		t.Fatalf("backend %q, log:\n%s", b, logs.String())
	}
}

// admitted makes n Reserves of q that may not wait and counts those
// granted; every refusal must be a *NoSlotError.
func admitted(t *testing.T, q *Quota, n int) int {
	t.Helper()
	got := 0
	for range n {
		_, err := q.Reserve(context.Background(), 0)
		var ns *NoSlotError
		switch {
		case err == nil:
			got++
		case !errors.As(err, &ns):
			t.Fatalf("Reserve failed: %v", err)
		}
	}
	return got
}

// TestOutageKeepsOtherReplicasSlots: replica b used most of the hour's
// quota through Redis; replica a, which saw the shared windows full on its
// last call, must not hand out its local share on top when Redis goes
// away. Both together stay within the quota.
func TestOutageKeepsOtherReplicasSlots(t *testing.T) {
	srv := redistest.Start(t)
	limits := map[Provider]Limits{ProviderGemini: {PerHour: 10}}
	a := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil, WithRetryBackoff(time.Hour))
	b := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil, WithRetryBackoff(time.Hour))
	qa, qb := quota(t, a, ProviderGemini), quota(t, b, ProviderGemini)
	if got := admitted(t, qa, 1) + admitted(t, qb, 9); got != 10 {
		t.Fatalf("admitted %d through Redis, want the whole quota of 10", got)
	}
	if got := admitted(t, qa, 1); got != 0 {
		t.Fatalf("admitted %d over a full hour", got)
	}
	srv.Stop()
	if got := admitted(t, qa, 20) + admitted(t, qb, 20); got != 0 {
		t.Fatalf("the replicas admitted %d more during the outage; the hour was already full", got)
	}
	if !strings.HasPrefix(a.Backend(), "memory (redis unreachable") {
		t.Fatalf("backend %q, want the local fallback", a.Backend())
	}
}

// TestOutageShareOfWhatWasLeft: while Redis is away each replica allows
// itself its share of what the shared windows had left when it last saw
// them, so the replicas keep serving and together stay within the quota.
func TestOutageShareOfWhatWasLeft(t *testing.T) {
	srv := redistest.Start(t)
	limits := map[Provider]Limits{ProviderGemini: {PerHour: 10}}
	a := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil, WithRetryBackoff(time.Hour))
	b := newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil, WithRetryBackoff(time.Hour))
	qa, qb := quota(t, a, ProviderGemini), quota(t, b, ProviderGemini)
	// a last sees 7 of 10 used, b last sees 6.
	if got := admitted(t, qa, 1) + admitted(t, qb, 5) + admitted(t, qa, 1); got != 7 {
		t.Fatalf("admitted %d through Redis, want 7", got)
	}
	srv.Stop()
	gotA, gotB := admitted(t, qa, 20), admitted(t, qb, 20)
	// a: half of the 3 it saw left, floored but at least 1; b: half of 4.
	if gotA != 1 || gotB != 2 {
		t.Fatalf("during the outage a admitted %d and b %d, want 1 and 2", gotA, gotB)
	}
	if 7+gotA+gotB > 10 {
		t.Fatalf("%d admitted in all, over the hour's 10", 7+gotA+gotB)
	}
}

// reserveOK reserves a slot of q that may wait up to maxWait, failing the
// test when none is given.
func reserveOK(tb testing.TB, q *Quota, maxWait time.Duration) *Reservation {
	tb.Helper()
	r, err := q.Reserve(context.Background(), maxWait)
	if err != nil {
		tb.Fatalf("reserve: %v", err)
	}
	return r
}

// waitReachable waits until c answers again after Redis or the network to
// it came back (go-redis may first find its pooled connections dead).
func waitReachable(t *testing.T, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for c.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisCancelOtherReplica: a slot one replica cancels is the other
// replica's to claim, and only that one.
func TestRedisCancelOtherReplica(t *testing.T) {
	srv := redistest.Start(t)
	limits := map[Provider]Limits{ProviderGemini: {PerMinute: 10, PerDay: 3}}
	qa, qb := quota(t, newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil), ProviderGemini),
		quota(t, newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil), ProviderGemini)
	r1 := reserveOK(t, qa, 0)
	reserveOK(t, qa, 0)
	if got := admitted(t, qb, 2); got != 1 {
		t.Fatalf("b admitted %d, want the day's last slot", got)
	}
	r1.Cancel(context.Background())
	if got := admitted(t, qb, 2); got != 1 {
		t.Fatalf("b admitted %d after a cancelled a slot, want 1", got)
	}
	c := newClient(t, srv)
	for _, w := range []string{"minute", "day"} {
		key := testPrefix + ":{gemini}:" + w
		if n, err := c.ZCard(context.Background(), key).Result(); err != nil || n != 3 {
			t.Errorf("%s log holds %d (%v), want 3", w, n, err)
		}
		if err := c.ZScore(context.Background(), key, r1.slot.member).Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("%s log still holds the cancelled slot (%v)", w, err)
		}
	}
}

// TestRedisCancelRestoresInterval: cancelling the latest slot sets the
// interval key back to the slot before it, so the next call is spaced
// from a call that will be made, not from one that will not; cancelling
// an older slot leaves the key on the latest.
func TestRedisCancelRestoresInterval(t *testing.T) {
	srv := redistest.Start(t)
	const gap = 10 * time.Second
	limits := map[Provider]Limits{ProviderAnthropic: {PerHour: 100, MinInterval: gap}}
	qa, qb := quota(t, newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil), ProviderAnthropic),
		quota(t, newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil), ProviderAnthropic)
	c := newClient(t, srv)
	ctx := context.Background()
	intervalKey, hourKey := testPrefix+":{anthropic}:interval", testPrefix+":{anthropic}:hour"
	score := func(r *Reservation) float64 {
		t.Helper()
		s, err := c.ZScore(ctx, hourKey, r.slot.member).Result()
		if err != nil {
			t.Fatalf("score of a held slot: %v", err)
		}
		return s
	}
	anchor := func() float64 {
		t.Helper()
		s, err := c.Get(ctx, intervalKey).Float64()
		if err != nil {
			t.Fatalf("interval key: %v", err)
		}
		return s
	}

	first := reserveOK(t, qa, 0)
	second := reserveOK(t, qb, time.Minute)
	if w := second.Wait(); w <= gap/2 || w > gap {
		t.Fatalf("second slot in %v, want about %v", w, gap)
	}
	if anchor() != score(second) {
		t.Fatalf("interval key %v, want the latest slot %v", anchor(), score(second))
	}
	second.Cancel(ctx)
	if anchor() != score(first) {
		t.Fatalf("interval key %v after the cancel, want the slot before, %v", anchor(), score(first))
	}
	if ttl, err := c.PTTL(ctx, intervalKey).Result(); err != nil || ttl <= 0 || ttl > gap+time.Second {
		t.Fatalf("interval key expires in %v (%v), want within the interval after the first slot", ttl, err)
	}
	third := reserveOK(t, qa, time.Minute)
	if w := third.Wait(); w <= gap/2 || w > gap {
		t.Fatalf("slot after the cancel in %v, want about %v (from the first slot, not the cancelled one)", w, gap)
	}
	first.Cancel(ctx)
	if anchor() != score(third) {
		t.Fatalf("interval key %v after an older slot was cancelled, want the latest %v", anchor(), score(third))
	}
}

// TestRedisCancelFutureSlot: a slot claimed for the next minute, then
// cancelled, is free again; the slots that fill the minute now still count
// (the logs keep them, not only the limit's count of the latest).
func TestRedisCancelFutureSlot(t *testing.T) {
	srv := redistest.Start(t)
	q := quota(t, newRedis(t, newClient(t, srv), testPrefix, map[Provider]Limits{ProviderGemini: {PerMinute: 3}}, 0.5, nil), ProviderGemini)
	for range 3 {
		reserveOK(t, q, 0)
	}
	future := reserveOK(t, q, 2*time.Minute)
	if w := future.Wait(); w <= 50*time.Second || w > time.Minute {
		t.Fatalf("fourth slot in %v, want about a minute", w)
	}
	future.Cancel(context.Background())
	if got := admitted(t, q, 3); got != 0 {
		t.Fatalf("admitted %d now after the future slot was cancelled; the minute holds three", got)
	}
	again := reserveOK(t, q, 2*time.Minute)
	if w := again.Wait(); w <= 50*time.Second || w > time.Minute {
		t.Fatalf("the freed slot is in %v, want about a minute", w)
	}
}

// TestRedisCancelTwice: cancelling twice gives one slot back.
func TestRedisCancelTwice(t *testing.T) {
	srv := redistest.Start(t)
	q := quota(t, newRedis(t, newClient(t, srv), testPrefix, map[Provider]Limits{ProviderGemini: {PerDay: 2}}, 0.5, nil), ProviderGemini)
	r := reserveOK(t, q, 0)
	reserveOK(t, q, 0)
	r.Cancel(context.Background())
	r.Cancel(context.Background())
	if got := admitted(t, q, 5); got != 1 {
		t.Fatalf("admitted %d after one slot was cancelled twice, want 1", got)
	}
}

// TestRedisCancelAfterCallerHungUp: the caller's context ended while it
// waited for its slot; the cancel made with that context still releases
// the slot in Redis.
func TestRedisCancelAfterCallerHungUp(t *testing.T) {
	srv := redistest.Start(t)
	limits := map[Provider]Limits{ProviderGemini: {PerMinute: 1}}
	qa, qb := quota(t, newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil), ProviderGemini),
		quota(t, newRedis(t, newClient(t, srv), testPrefix, limits, 0.5, nil), ProviderGemini)
	ctx, hangUp := context.WithCancel(context.Background())
	r, err := qa.Reserve(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	hangUp()
	r.Cancel(ctx)
	if got := admitted(t, qb, 2); got != 1 {
		t.Fatalf("the other replica admitted %d, want the slot the caller gave back", got)
	}
}

// TestRedisCancelNotWrittenBack: a cancelled slot claimed through Redis
// leaves the journal, so when Redis comes back empty the write-back does
// not bring it back.
func TestRedisCancelNotWrittenBack(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv)
	q := quota(t, newRedis(t, c, testPrefix, map[Provider]Limits{ProviderGemini: {PerHour: 5}}, 0.5, nil), ProviderGemini)
	r := reserveOK(t, q, 0)
	reserveOK(t, q, 0)
	reserveOK(t, q, 0)
	r.Cancel(context.Background())
	srv.Stop()
	srv.Start()
	waitReachable(t, c)
	if got := admitted(t, q, 10); got != 3 {
		t.Fatalf("admitted %d after Redis lost its data, want 3 (5 less the 2 written back)", got)
	}
}

// TestRedisCancelDuringOutage: slots claimed from the local share while
// the network to Redis was cut are cancelled locally: the local share has
// them again, and the write-back once Redis answers leaves them out.
func TestRedisCancelDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	px := newCutProxy(t, srv.Addr())
	c := redis.NewClient(&redis.Options{Addr: px.addr, ContextTimeoutEnabled: true, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	clk := newFakeClock()
	l := newRedis(t, c, testPrefix, map[Provider]Limits{ProviderGemini: {PerMinute: 20}, ProviderAnthropic: {PerDay: 1000}}, 0.5, nil,
		WithClock(clk.Now), WithRetryBackoff(time.Second))
	q := quota(t, l, ProviderGemini)
	ctx := context.Background()
	if got := admitted(t, q, 4); got != 4 {
		t.Fatalf("before the cut: admitted %d of 4", got)
	}

	px.Cut()
	var held []*Reservation
	claim := func(n int) int {
		got := 0
		for range n {
			r, err := q.Reserve(ctx, 0)
			var ns *NoSlotError
			switch {
			case err == nil:
				held, got = append(held, r), got+1
			case !errors.As(err, &ns):
				t.Fatalf("Reserve failed: %v", err)
			}
		}
		return got
	}
	if got := claim(50); got != 8 {
		t.Fatalf("admitted %d during the cut, want 8 (half of the 16 left)", got)
	}
	if !strings.HasPrefix(l.Backend(), "memory (redis unreachable") {
		t.Fatalf("backend %q during the cut", l.Backend())
	}
	cancelled := []*Reservation{held[7], held[3]}
	for _, r := range cancelled {
		r.Cancel(ctx)
	}
	if got := claim(50); got != 2 {
		t.Fatalf("admitted %d after two local slots were cancelled, want 2", got)
	}
	cancelled = append(cancelled, held[len(held)-1])
	held[len(held)-1].Cancel(ctx) // 4 through Redis and 7 local slots are held

	px.Restore()
	waitReachable(t, c)
	clk.Advance(time.Second)
	// Any Reserve after the back-off writes every provider's journal back.
	reserveOK(t, quota(t, l, ProviderAnthropic), 0)
	if l.Backend() != "redis" {
		t.Fatalf("backend %q after the network came back", l.Backend())
	}
	key := testPrefix + ":{gemini}:minute"
	if n, err := c.ZCard(ctx, key).Result(); err != nil || n != 11 {
		t.Fatalf("minute log holds %d (%v), want 11 (4 + 7 held)", n, err)
	}
	for _, r := range cancelled {
		if err := c.ZScore(ctx, key, r.slot.member).Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("a cancelled local slot was written back (%v)", err)
		}
	}
}

// TestRedisCancelUnreachable: when Redis cannot be reached for a cancel,
// the slot stays used there; the limiter says so at debug, and no more.
func TestRedisCancelUnreachable(t *testing.T) {
	srv := redistest.Start(t)
	px := newCutProxy(t, srv.Addr())
	c := redis.NewClient(&redis.Options{Addr: px.addr, ContextTimeoutEnabled: true, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := newRedis(t, c, testPrefix, map[Provider]Limits{ProviderGemini: {PerMinute: 2}}, 0.5, log, WithRedisTimeout(100*time.Millisecond))
	r := reserveOK(t, quota(t, l, ProviderGemini), 0)
	px.Cut()
	r.Cancel(context.Background())
	out := logs.String()
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "not given back") {
		t.Fatalf("no debug line for the cancel that did not reach Redis:\n%s", out)
	}
	if strings.Contains(out, "level=WARN") || strings.Contains(out, px.addr) {
		t.Fatalf("the cancel logged more than a debug line, or the address:\n%s", out)
	}
	px.Restore()
	waitReachable(t, c)
	if n, err := c.ZCard(context.Background(), testPrefix+":{gemini}:minute").Result(); err != nil || n != 1 {
		t.Fatalf("minute log holds %d (%v), want the slot still counted", n, err)
	}
}

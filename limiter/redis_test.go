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
	"github.com/catalystbot/sentiment/secret"
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

// hammer runs workers goroutines per limiter, each making calls Reserves
// of provider with maxWait, and returns the waits admitted; every refusal
// must be a *NoSlotError of window.
func hammer(t *testing.T, ls []*Limiter, provider string, workers, calls int, maxWait time.Duration, window string) []time.Duration {
	t.Helper()
	var (
		mu      sync.Mutex
		waits   []time.Duration
		badErrs atomic.Int64
		wg      sync.WaitGroup
	)
	for _, l := range ls {
		for range workers {
			wg.Go(func() {
				for range calls {
					w, err := l.Reserve(context.Background(), provider, maxWait)
					var ns *NoSlotError
					switch {
					case err == nil:
						mu.Lock()
						waits = append(waits, w)
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
	limits := map[string]Limits{"gemini": {PerDay: 50}}
	a := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil)
	b := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil)
	waits := hammer(t, []*Limiter{a, b}, "gemini", 8, 20, 0, "day")
	if len(waits) != 50 {
		t.Fatalf("admitted %d, want exactly 50", len(waits))
	}
	for _, l := range []*Limiter{a, b} {
		if got := l.Backend(); got != "redis" {
			t.Fatalf("backend %q", got)
		}
		u := l.Usage(context.Background(), "gemini")
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
	limits := map[string]Limits{"anthropic": {PerMinute: 10, PerDay: 1000}}
	a := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil)
	b := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil)
	waits := hammer(t, []*Limiter{a, b}, "anthropic", 8, 10, 5*time.Minute, "minute")
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
	limits := map[string]Limits{"gemini": {MinInterval: 3 * time.Second}}
	a := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil)
	b := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil)
	waits := hammer(t, []*Limiter{a, b}, "gemini", 4, 5, 10*time.Second, "interval")
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
	u := a.Usage(context.Background(), "gemini")
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
	limits := map[string]Limits{"gemini": {PerMinute: 20}}
	l := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, log,
		WithRetryBackoff(50*time.Millisecond), WithRedisTimeout(500*time.Millisecond))
	ctx := context.Background()

	count := func(n int) int { return admitted(t, l, "gemini", n) }
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
	if u := l.Usage(ctx, "gemini"); len(u) != 1 || u[0].Shared || u[0].Limit != 10 || u[0].Used != 10 {
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
	u := l.Usage(ctx, "gemini")
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
	limits := map[string]Limits{"gemini": {PerHour: 5}}
	c := newClient(t, srv)
	l := NewRedis(c, testPrefix, limits, 0.5, nil)
	ctx := context.Background()
	for range 3 {
		if _, err := l.Reserve(ctx, "gemini", 0); err != nil {
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
	admitted := 0
	for range 10 {
		if _, err := l.Reserve(ctx, "gemini", 0); err == nil {
			admitted++
		}
	}
	if admitted != 2 || l.Backend() != "redis" {
		t.Fatalf("admitted %d after the restart (backend %q), want 2", admitted, l.Backend())
	}
}

func TestFromConfigRedisURL(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig()
	cfg.RedisURL = secret.Secret("redis://:hunter2@" + srv.Addr() + "/0")
	l, err := FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Reserve(context.Background(), "gemini", time.Minute); err != nil {
		t.Fatal(err)
	}
	if b := l.Backend(); b != "redis" {
		t.Fatalf("backend %q", b)
	}

	cfg.RedisURL = "redis://:hunter2@[::1:bad/0"
	if _, err := FromConfig(cfg, nil); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL: %v", err)
	}
}

// admitted makes n Reserves of provider that may not wait and counts those
// granted; every refusal must be a *NoSlotError.
func admitted(t *testing.T, l *Limiter, provider string, n int) int {
	t.Helper()
	got := 0
	for range n {
		_, err := l.Reserve(context.Background(), provider, 0)
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
	limits := map[string]Limits{"gemini": {PerHour: 10}}
	a := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil, WithRetryBackoff(time.Hour))
	b := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil, WithRetryBackoff(time.Hour))
	if got := admitted(t, a, "gemini", 1) + admitted(t, b, "gemini", 9); got != 10 {
		t.Fatalf("admitted %d through Redis, want the whole quota of 10", got)
	}
	if got := admitted(t, a, "gemini", 1); got != 0 {
		t.Fatalf("admitted %d over a full hour", got)
	}
	srv.Stop()
	if got := admitted(t, a, "gemini", 20) + admitted(t, b, "gemini", 20); got != 0 {
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
	limits := map[string]Limits{"gemini": {PerHour: 10}}
	a := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil, WithRetryBackoff(time.Hour))
	b := NewRedis(newClient(t, srv), testPrefix, limits, 0.5, nil, WithRetryBackoff(time.Hour))
	// a last sees 7 of 10 used, b last sees 6.
	if got := admitted(t, a, "gemini", 1) + admitted(t, b, "gemini", 5) + admitted(t, a, "gemini", 1); got != 7 {
		t.Fatalf("admitted %d through Redis, want 7", got)
	}
	srv.Stop()
	gotA, gotB := admitted(t, a, "gemini", 20), admitted(t, b, "gemini", 20)
	// a: half of the 3 it saw left, floored but at least 1; b: half of 4.
	if gotA != 1 || gotB != 2 {
		t.Fatalf("during the outage a admitted %d and b %d, want 1 and 2", gotA, gotB)
	}
	if 7+gotA+gotB > 10 {
		t.Fatalf("%d admitted in all, over the hour's 10", 7+gotA+gotB)
	}
}

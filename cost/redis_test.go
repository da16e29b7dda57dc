package cost

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/internal/redistest"
)

const prefix = "t:cost"

func startRedis(tb testing.TB) *redistest.Server { return redistest.Start(tb) }

// newClient returns a go-redis client for s, closed in Cleanup.
func newClient(t testing.TB, s *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  s.Addr(),
		ContextTimeoutEnabled: true,
		DialerRetries:         1,
		DialTimeout:           200 * time.Millisecond,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

var dec1 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// TestRedisSharedTotals: two replicas adding at once share one total,
// alert once per period between them, and write the documented keys.
func TestRedisSharedTotals(t *testing.T) {
	srv := startRedis(t)
	cfg := Config{DailyAlert: 1, MonthlyAlert: 1.5, BudgetStop: true}
	shared := &alerts{}
	a := newRig(t, cfg, dec1, WithRedis(newClient(t, srv), prefix), WithAlert(shared.fn))
	b := newRig(t, cfg, dec1, WithRedis(newClient(t, srv), prefix), WithAlert(shared.fn))
	var wg sync.WaitGroup
	for _, r := range []*rig{a, b} {
		for range 4 {
			wg.Go(func() {
				for range 25 {
					r.Add(ctx, "gemini", 0.01)
					r.Add(ctx, "anthropic", 0.01)
				}
			})
		}
	}
	wg.Wait()
	if n := len(shared.list()); n != 2 || shared.count(PeriodDay) != 1 || shared.count(PeriodMonth) != 1 {
		t.Fatalf("crossings %+v, want one per period across both replicas", shared.list())
	}
	for name, r := range map[string]*rig{"a": a, "b": b} {
		if err := r.Refresh(ctx); err != nil {
			t.Fatalf("%s: Refresh: %v", name, err)
		}
		s := r.Snapshot(ctx)
		if !near(s.Today, 4) || !near(s.Month, 4) || !near(s.TodayBy["gemini"], 2) || !near(s.MonthBy["anthropic"], 2) || s.Backend != "redis" {
			t.Fatalf("%s: snapshot %+v, want 4 in all, 2 each, from redis", name, s)
		}
		if _, _, stopped := r.Stopped(); !stopped {
			t.Fatalf("%s: not stopped over the limits", name)
		}
	}

	rdb := newClient(t, srv)
	for _, k := range []struct {
		key string
		max time.Duration
	}{
		{prefix + ":day:2026-12-01", dayTTL},
		{prefix + ":month:2026-12", monthTTL},
		{prefix + ":alerted:day:2026-12-01", dayTTL},
		{prefix + ":alerted:month:2026-12", monthTTL},
	} {
		ttl, err := rdb.TTL(ctx, k.key).Result()
		if err != nil || ttl <= 0 || ttl > k.max {
			t.Fatalf("%s: TTL %v (%v), want up to %v", k.key, ttl, err, k.max)
		}
	}
	h, err := rdb.HGetAll(ctx, prefix+":day:2026-12-01").Result()
	if err != nil || len(h) != 3 || h["total"] == "" || h["gemini"] == "" || h["anthropic"] == "" {
		t.Fatalf("day hash %v (%v), want gemini, anthropic and total", h, err)
	}
}

// TestRedisStopReachesOtherReplica: a replica that spends nothing sees the
// stop another reached, through the refresh Stopped starts.
func TestRedisStopReachesOtherReplica(t *testing.T) {
	srv := startRedis(t)
	cfg := Config{DailyAlert: 1, BudgetStop: true}
	a := newRig(t, cfg, dec1, WithRedis(newClient(t, srv), prefix))
	b := newRig(t, cfg, dec1, WithRedis(newClient(t, srv), prefix))
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	a.Add(ctx, "anthropic", 1.25)
	if _, _, stopped := a.Stopped(); !stopped {
		t.Fatal("a is not stopped")
	}
	// b's view is fresh: Stopped answers from it and reads nothing.
	if _, _, stopped := b.Stopped(); stopped {
		t.Fatal("b stopped before reading Redis")
	}
	b.clk.Advance(refreshEvery)
	_, _, _ = b.Stopped() // starts the refresh
	b.bg.Wait()
	until, reason, stopped := b.Stopped()
	if !stopped || !until.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) || !strings.Contains(reason, "$1.25 spent today") {
		t.Fatalf("b: stopped %v until %v (%q)", stopped, until, reason)
	}
	if len(a.alerts.list()) != 1 || len(b.alerts.list()) != 0 {
		t.Fatalf("alerts a %v, b %v: want a's only", a.alerts.list(), b.alerts.list())
	}
}

// TestRedisFallbackAndRecovery: while Redis is down the totals count in
// memory on top of the last shared figures and say so; when it is back the
// amounts counted meanwhile are written to it.
func TestRedisFallbackAndRecovery(t *testing.T) {
	srv := startRedis(t)
	r := newRig(t, Config{DailyAlert: 10}, dec1, WithRedis(newClient(t, srv), prefix),
		WithRedisTimeout(200*time.Millisecond), WithRetryBackoff(5*time.Second))
	r.Add(ctx, "gemini", 1)
	if s := r.Snapshot(ctx); s.Backend != "redis" || s.Today != 1 {
		t.Fatalf("before: %+v", s)
	}

	srv.Stop()
	r.Add(ctx, "gemini", 2)
	s := r.Snapshot(ctx)
	if !strings.HasPrefix(s.Backend, "memory (redis unreachable: ") || s.RedisErrors != 1 || !near(s.Today, 3) {
		t.Fatalf("during: backend %q, %d errors, today %v; want memory on top of the shared 1", s.Backend, s.RedisErrors, s.Today)
	}
	if n := strings.Count(r.logs.String(), "redis unreachable"); n != 1 {
		t.Fatalf("outage logged %d times:\n%s", n, r.logs.String())
	}
	// Within the back-off Redis is not tried: no more errors.
	r.Add(ctx, "anthropic", 0.5)
	r.clk.Advance(4 * time.Second)
	r.Add(ctx, "anthropic", 0.25)
	if s := r.Snapshot(ctx); s.RedisErrors != 1 || !near(s.Today, 3.75) {
		t.Fatalf("in the back-off: %d errors, today %v", s.RedisErrors, s.Today)
	}

	srv.Start() // empty: a restarted Redis without persistence
	r.clk.Advance(time.Second)
	r.Add(ctx, "gemini", 0.125)
	s = r.Snapshot(ctx)
	if s.Backend != "redis" {
		t.Fatalf("after: backend %q", s.Backend)
	}
	// Everything counted while Redis was away reached it; the 1 it held
	// before went with its restart.
	want := 2 + 0.5 + 0.25 + 0.125
	got, err := newClient(t, srv).HGet(ctx, prefix+":day:2026-12-01", "total").Float64()
	if err != nil || !near(got, want) || !near(s.Today, want) {
		t.Fatalf("redis holds %v (%v), snapshot %v; want %v", got, err, s.Today, want)
	}
	if !strings.Contains(r.logs.String(), "reachable again") {
		t.Fatalf("recovery not logged:\n%s", r.logs.String())
	}
}

// TestRedisFallbackAlertsOnceAndShares: a crossing during an outage alerts
// from memory, and once Redis is back the other replicas do not alert it
// again.
func TestRedisFallbackAlertsOnceAndShares(t *testing.T) {
	srv := startRedis(t)
	cfg := Config{DailyAlert: 1}
	a := newRig(t, cfg, dec1, WithRedis(newClient(t, srv), prefix), WithRedisTimeout(200*time.Millisecond))
	srv.Stop()
	a.Add(ctx, "gemini", 1.5)
	if got := a.alerts.list(); len(got) != 1 {
		t.Fatalf("alerts during the outage: %+v", got)
	}
	srv.Start()
	a.clk.Advance(DefaultRetryBackoff)
	if err := a.Refresh(ctx); err != nil {
		t.Fatalf("Refresh after the outage: %v", err)
	}
	b := newRig(t, cfg, dec1, WithRedis(newClient(t, srv), prefix))
	b.Add(ctx, "gemini", 0.01)
	if s := b.Snapshot(ctx); !near(s.Today, 1.51) {
		t.Fatalf("b sees %v, want 1.51", s.Today)
	}
	if got := b.alerts.list(); len(got) != 0 {
		t.Fatalf("b alerted again: %+v", got)
	}
	if len(a.alerts.list()) != 1 {
		t.Fatalf("a alerted %d times", len(a.alerts.list()))
	}
}

// TestRedisAlertAtStart: a replica starting over a threshold alerts only
// when no replica has (the alerted key is missing).
func TestRedisAlertAtStart(t *testing.T) {
	tests := []struct {
		name      string
		alerted   bool
		wantAlert int
	}{
		{"already alerted by another replica", true, 0},
		{"never alerted (the threshold was lowered)", false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRedis(t)
			rdb := newClient(t, srv)
			if err := rdb.HSet(ctx, prefix+":day:2026-12-01", "gemini", "7", "total", "7").Err(); err != nil {
				t.Fatal(err)
			}
			if tc.alerted {
				if err := rdb.Set(ctx, prefix+":alerted:day:2026-12-01", "1", time.Hour).Err(); err != nil {
					t.Fatal(err)
				}
			}
			r := newRig(t, Config{DailyAlert: 5, BudgetStop: true}, dec1, WithRedis(rdb, prefix))
			s := r.Snapshot(ctx)
			if s.Today != 7 || s.StopReason == "" {
				t.Fatalf("snapshot %+v, want 7 today and stopped", s)
			}
			r.Add(ctx, "gemini", 1)
			if got := len(r.alerts.list()); got != tc.wantAlert {
				t.Fatalf("%d alerts, want %d", got, tc.wantAlert)
			}
		})
	}
}

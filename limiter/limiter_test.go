package limiter

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// serviceLimits are limits shaped like the service's: Gemini with every
// window and the least interval, Anthropic per minute, the local model
// unlimited.
func serviceLimits() map[Provider]Limits {
	return map[Provider]Limits{
		ProviderGemini:    {PerMinute: 2, PerHour: 10, PerDay: 100, MinInterval: time.Second},
		ProviderAnthropic: {PerMinute: 50, MinInterval: time.Second},
		ProviderLocal:     {},
	}
}

func TestServiceLimitsMemory(t *testing.T) {
	clk := newFakeClock()
	l := newMemory(t, serviceLimits(), WithClock(clk.Now))
	ctx := context.Background()
	if l.Backend() != "memory" {
		t.Fatalf("backend %q", l.Backend())
	}
	// Gemini: 2 per minute, 1 s apart.
	gemini := quota(t, l, ProviderGemini)
	for i, want := range []time.Duration{0, time.Second, time.Minute} {
		if r, err := gemini.Reserve(ctx, time.Hour); err != nil || r.Wait() != want {
			t.Fatalf("gemini %d: %v, %v; want %v", i, r.Wait(), err, want)
		}
	}
	if u := gemini.Usage(ctx); len(u) != 4 {
		t.Fatalf("gemini windows %+v, want minute, hour, day, interval", u)
	}
	// Local has no quota: always now.
	local := quota(t, l, ProviderLocal)
	for range 100 {
		if r, err := local.Reserve(ctx, 0); err != nil || r.Wait() != 0 {
			t.Fatalf("local: %v, %v", r.Wait(), err)
		}
	}
}

// newClientNowhere returns a client that is never used to reach Redis:
// NewRedis and For do not contact it.
func newClientNowhere(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	tb.Cleanup(func() { c.Close() })
	return c
}

// TestFor: For hands out the quota of a configured provider, the same one
// each time, and refuses one the limits leave out, so that a forgotten
// provider fails at start instead of running without a limit.
func TestFor(t *testing.T) {
	limits := map[Provider]Limits{ProviderGemini: {PerMinute: 1}, ProviderLocal: {}}
	backends := []struct {
		name  string
		build func(t *testing.T) *Limiter
	}{
		{"memory", func(t *testing.T) *Limiter { return newMemory(t, limits) }},
		{"redis", func(t *testing.T) *Limiter { return newRedis(t, newClientNowhere(t), testPrefix, limits, 0.5, nil) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			l := b.build(t)
			for _, p := range []Provider{ProviderGemini, ProviderLocal} {
				q := quota(t, l, p)
				if q.Provider() != p {
					t.Errorf("For(%s).Provider() = %s", p, q.Provider())
				}
				if again := quota(t, l, p); again != q {
					t.Errorf("For(%s) gave two quotas", p)
				}
			}
			for _, p := range []Provider{ProviderAnthropic, Provider("gemni"), ""} {
				q, err := l.For(p)
				if err == nil || q != nil {
					t.Fatalf("For(%q) = %v, %v; want an error", p, q, err)
				}
				if !strings.Contains(err.Error(), `"`+string(p)+`"`) {
					t.Errorf("For(%q): %v does not name the provider", p, err)
				}
			}
		})
	}
}

// TestUnknownProvider: a Provider value that is none of the constants is
// refused by both constructors, naming it; so is a Redis limiter without a
// client.
func TestUnknownProvider(t *testing.T) {
	limits := map[Provider]Limits{ProviderGemini: {PerMinute: 1}, Provider("gemni"): {PerMinute: 1}}
	if l, err := NewMemory(limits); err == nil || l != nil || !strings.Contains(err.Error(), `"gemni"`) {
		t.Errorf("NewMemory: %v, %v; want an error naming gemni", l, err)
	}
	if l, err := NewRedis(newClientNowhere(t), testPrefix, limits, 0.5, nil); err == nil || l != nil || !strings.Contains(err.Error(), `"gemni"`) {
		t.Errorf("NewRedis: %v, %v; want an error naming gemni", l, err)
	}
	if l, err := NewRedis(nil, testPrefix, map[Provider]Limits{ProviderGemini: {}}, 0.5, nil); err == nil || l != nil {
		t.Errorf("NewRedis without a client: %v, %v; want an error", l, err)
	}
}

func TestScaled(t *testing.T) {
	got := Limits{PerMinute: 10, PerHour: 3, PerDay: 1, MinInterval: 3 * time.Second}.scaled(0.5)
	want := Limits{PerMinute: 5, PerHour: 1, PerDay: 1, MinInterval: 6 * time.Second}
	if got != want {
		t.Fatalf("scaled(0.5) = %+v, want %+v", got, want)
	}
	if got := (Limits{PerMinute: 10}).scaled(0); got.PerMinute != 1 {
		t.Fatalf("scaled(0) = %+v, want at least 1", got)
	}
}

package limiter

import (
	"context"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/config"
)

func testConfig() config.Config {
	c := config.Default()
	c.Gemini.Quota = config.Quota{RPM: 2, RPH: 10, RPD: 100}
	c.Anthropic.Quota = config.Quota{RPM: 50}
	c.LocalQuota = config.Quota{}
	c.MinInterval = time.Second
	return c
}

func TestFromConfigMemory(t *testing.T) {
	clk := newFakeClock()
	l, err := FromConfig(testConfig(), nil, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if l.Backend() != "memory" {
		t.Fatalf("backend %q", l.Backend())
	}
	// Gemini: 2 per minute, 1 s apart.
	for i, want := range []time.Duration{0, time.Second, time.Minute} {
		if got, err := l.Reserve(ctx, "gemini", time.Hour); err != nil || got != want {
			t.Fatalf("gemini %d: %v, %v; want %v", i, got, err, want)
		}
	}
	if u := l.Usage(ctx, "gemini"); len(u) != 4 {
		t.Fatalf("gemini windows %+v, want minute, hour, day, interval", u)
	}
	// Local has no quota: always now.
	for range 100 {
		if got, err := l.Reserve(ctx, "local", 0); err != nil || got != 0 {
			t.Fatalf("local: %v, %v", got, err)
		}
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

package limiter

import (
	"context"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/redistest"
)

// BenchmarkReserveMemory is one Reserve against Gemini-like windows on the
// in-memory backend, the clock moving 50 ms per call (slots pile up into
// the future once the hour fills, as under sustained overload).
func BenchmarkReserveMemory(b *testing.B) {
	clk := newFakeClock()
	l := newMemory(b, map[Provider]Limits{ProviderGemini: {PerMinute: 1000, PerHour: 50_000, PerDay: 1_000_000, MinInterval: time.Millisecond}}, WithClock(clk.Now))
	q := quota(b, l, ProviderGemini)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(50 * time.Millisecond)
		if _, err := q.Reserve(ctx, 1000*time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReserveRedis is one Reserve through the Lua script on a local
// redis-server (one round trip), serially and from parallel goroutines.
func BenchmarkReserveRedis(b *testing.B) {
	srv := redistest.Start(b)
	limits := map[Provider]Limits{ProviderGemini: {PerMinute: 10_000_000, PerHour: 10_000_000, PerDay: 10_000_000}}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		l := newRedis(b, newClient(b, srv), testPrefix+":serial", limits, 0.5, nil)
		q := quota(b, l, ProviderGemini)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := q.Reserve(ctx, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		if l.Backend() != "redis" {
			b.Fatalf("backend %q", l.Backend())
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := newRedis(b, newClient(b, srv), testPrefix+":parallel", limits, 0.5, nil)
		q := quota(b, l, ProviderGemini)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := q.Reserve(ctx, time.Hour); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if l.Backend() != "redis" {
			b.Fatalf("backend %q", l.Backend())
		}
	})
}

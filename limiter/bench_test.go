package limiter

import (
	"context"
	"github.com/catalystbot/sentiment/internal/redistest"
	"testing"
	"time"
)

// BenchmarkReserveMemory is one Reserve against Gemini-like windows on the
// in-memory backend, the clock moving 50 ms per call (slots pile up into
// the future once the hour fills, as under sustained overload).
func BenchmarkReserveMemory(b *testing.B) {
	clk := newFakeClock()
	l := NewMemory(map[string]Limits{"gemini": {PerMinute: 1000, PerHour: 50_000, PerDay: 1_000_000, MinInterval: time.Millisecond}}, WithClock(clk.Now))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(50 * time.Millisecond)
		if _, err := l.Reserve(ctx, "gemini", 1000*time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReserveRedis is one Reserve through the Lua script on a local
// redis-server (one round trip), serially and from parallel goroutines.
func BenchmarkReserveRedis(b *testing.B) {
	srv := redistest.Start(b)
	limits := map[string]Limits{"gemini": {PerMinute: 10_000_000, PerHour: 10_000_000, PerDay: 10_000_000}}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		l := NewRedis(newClient(b, srv), testPrefix+":serial", limits, 0.5, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Reserve(ctx, "gemini", time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		if l.Backend() != "redis" {
			b.Fatalf("backend %q", l.Backend())
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := NewRedis(newClient(b, srv), testPrefix+":parallel", limits, 0.5, nil)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Reserve(ctx, "gemini", time.Hour); err != nil {
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

package cost

import (
	"testing"
	"time"
)

// BenchmarkAdd is Add without Redis: what the router's observer pays per
// paid call.
func BenchmarkAdd(b *testing.B) {
	tot, err := New(Config{DailyAlert: 1e9, MonthlyAlert: 1e9, BudgetStop: true})
	if err != nil {
		b.Fatal(err)
	}
	defer tot.Close()
	b.ReportAllocs()
	for b.Loop() {
		tot.Add(ctx, "gemini", 0.0001)
	}
}

// BenchmarkAddParallel is BenchmarkAdd from every core at once.
func BenchmarkAddParallel(b *testing.B) {
	tot, err := New(Config{DailyAlert: 1e9, MonthlyAlert: 1e9, BudgetStop: true})
	if err != nil {
		b.Fatal(err)
	}
	defer tot.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tot.Add(ctx, "gemini", 0.0001)
		}
	})
}

// BenchmarkStopped is the budget check every request makes per paid tier,
// with the stop in force (the longer path) and without Redis.
func BenchmarkStopped(b *testing.B) {
	tot, err := New(Config{DailyAlert: 1, BudgetStop: true})
	if err != nil {
		b.Fatal(err)
	}
	defer tot.Close()
	tot.Add(ctx, "gemini", 2)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, stopped := tot.Stopped(); !stopped {
			b.Fatal("not stopped")
		}
	}
}

// BenchmarkStoppedRedis is Stopped with the totals in Redis: still no
// Redis call on the path; once a second one call starts a background
// refresh.
func BenchmarkStoppedRedis(b *testing.B) {
	srv := startRedis(b)
	tot, err := New(Config{DailyAlert: 1, BudgetStop: true}, WithRedis(newClient(b, srv), prefix))
	if err != nil {
		b.Fatal(err)
	}
	defer tot.Close()
	tot.Add(ctx, "gemini", 2)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tot.Stopped()
		}
	})
}

// BenchmarkAddRedis is Add with Redis on loopback: one transaction per
// call, for scale (it belongs off the request path).
func BenchmarkAddRedis(b *testing.B) {
	srv := startRedis(b)
	tot, err := New(Config{DailyAlert: 1e9}, WithRedis(newClient(b, srv), prefix), WithRedisTimeout(time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer tot.Close()
	b.ReportAllocs()
	for b.Loop() {
		tot.Add(ctx, "gemini", 0.0001)
	}
}

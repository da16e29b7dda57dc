package router_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/router"
)

// p50 reports the median of per-call durations next to ns/op.
func p50(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
}

// BenchmarkProviderDirect is one Ollama call to a zero-latency fake served
// in memory: the cost the router adds to is everything else.
func BenchmarkProviderDirect(b *testing.B) {
	f := upstreamtest.NewMemory(b, upstreamtest.Ollama)
	p := router.NewOllama(ollama.New(ollama.Config{BaseURL: f.URL, Model: "mistral", KeepAlive: "30m", NumCtx: 2048}, f.Client()))
	pr, err := router.NewPrompter()
	if err != nil {
		b.Fatal(err)
	}
	prompt, err := pr.Render(router.Item{Ticker: "ACME", Title: "Acme raises full-year guidance"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, _, err := p.Judge(ctx, prompt); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	p50(b, d)
}

// BenchmarkRouterJudge is the same call through the router: prompt
// rendering, deadline arithmetic, breaker, attempt bookkeeping.
func BenchmarkRouterJudge(b *testing.B) {
	f := upstreamtest.NewMemory(b, upstreamtest.Ollama)
	r, err := router.New(router.Config{
		Tiers: []router.TierConfig{{Tier: router.TierLocal, Model: "mistral", Timeout: 15 * time.Second,
			Provider: router.NewOllama(ollama.New(ollama.Config{BaseURL: f.URL, Model: "mistral", KeepAlive: "30m", NumCtx: 2048}, f.Client()))}},
		MaxRetries: 3, RetryDelay: time.Second, MinTierTime: 250 * time.Millisecond,
		Breaker: router.BreakerConfig{Failures: 5, Cooldown: 30 * time.Second, HalfOpenSuccesses: 2},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	req := request("Acme raises full-year guidance")
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if res := r.Judge(ctx, req); res.Tier != router.TierLocal {
			b.Fatalf("answered by %v", res.Tier)
		}
		d = append(d, time.Since(start))
	}
	p50(b, d)
}

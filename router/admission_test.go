package router_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/limiter"
	"github.com/catalystbot/sentiment/router"
)

func TestQuotaExhaustedSkipsTheTierAtOnce(t *testing.T) {
	quota := limiter.NewMemory(map[string]limiter.Limits{"gemini": {PerMinute: 1}})
	r, u := newRouterWith(t, policy(), false, func(tiers []router.TierConfig) {
		for i := range tiers {
			tiers[i].Quota = quota
		}
	})
	u.local.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if res := r.Judge(ctx, request("Acme beats estimates")); res.Tier != router.TierGemini {
		t.Fatalf("first item: %+v, want gemini", res.Tried)
	}
	start := time.Now()
	res := r.Judge(ctx, request("Acme beats estimates"))
	g := res.Tried[1]
	if res.Tier != router.TierAnthropic || g.Outcome != router.OutcomeRateLimited || g.Calls != 0 ||
		!strings.Contains(g.Detail, "minute quota: next slot in") {
		t.Fatalf("second item: %+v, want gemini rate limited without a call, anthropic answering", res.Tried)
	}
	if u.gemini.Calls() != 1 {
		t.Errorf("gemini saw %d calls, want 1: its quota is one a minute", u.gemini.Calls())
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("waited %v for a slot that was never going to come in time", time.Since(start))
	}
	if s := r.Stats(ctx)[1]; len(s.Quota) != 1 || s.Quota[0].Used != 1 || s.Quota[0].Limit != 1 || s.QuotaBackend != "memory" {
		t.Errorf("gemini quota stats %+v", s)
	}
}

func TestQuotaWaitInsideTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quota := limiter.NewMemory(map[string]limiter.Limits{"gemini": {MinInterval: 2 * time.Second}})
		r, u := newRouterWith(t, policy(), true, func(tiers []router.TierConfig) { tiers[1].Quota = quota })
		req := request("Acme beats estimates")
		req.Allowed = []router.Tier{router.TierGemini}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Judge(ctx, req)
		start := time.Now()
		res := r.Judge(ctx, req)
		if res.Tier != router.TierGemini || u.gemini.Calls() != 2 {
			t.Fatalf("%+v, want gemini to answer after waiting for its slot", res.Tried)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("second call waited %v, want the 2s minimum interval", d)
		}
	})
}

func TestFullGPUQueueSpillsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gpu, err := batcher.New(batcher.Config{MaxConcurrent: 1, QueueSize: 0})
		if err != nil {
			t.Fatal(err)
		}
		r, u := newRouterWith(t, policy(), true, func(tiers []router.TierConfig) { tiers[0].Queue = gpu })
		u.local.Push(upstreamtest.Hang())
		held, release := context.WithCancel(context.Background())
		done := make(chan router.Result)
		go func() { done <- r.Judge(held, request("Acme beats estimates")) }()
		synctest.Wait() // the first item holds the only GPU slot

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		res := r.Judge(ctx, request("Acme beats estimates"))
		if res.Tier != router.TierGemini || res.Tried[0].Outcome != router.OutcomeSkipped || res.Tried[0].Detail != "GPU queue full" {
			t.Fatalf("%+v, want local skipped (GPU queue full) and gemini answering", res.Tried)
		}
		if time.Since(start) != 0 {
			t.Errorf("spilling took %v, want no wait", time.Since(start))
		}
		release()
		<-done
		if s := gpu.Stats(); s.InFlight != 0 {
			t.Errorf("GPU slot still held after the call ended: %+v", s)
		}
	})
}

func TestOverloadHalvesGPUConcurrency(t *testing.T) {
	gpu, err := batcher.New(batcher.Config{MaxConcurrent: 4, QueueSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	r, u := newRouterWith(t, policy(), false, func(tiers []router.TierConfig) { tiers[0].Queue = gpu })
	u.local.Push(upstreamtest.OllamaRunnerTerminated())
	u.local.Push(upstreamtest.Error(404, "model not found"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.Judge(ctx, request("Acme beats estimates"))
	if s := gpu.Stats(); s.Limit != 2 || s.Halvings != 1 {
		t.Fatalf("after a 500 and a 404: %+v, want the limit halved once (the 404 says nothing of load)", s)
	}
}

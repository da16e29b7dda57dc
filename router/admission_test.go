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

// quotas builds a memory limiter with limits (every provider configured,
// unlimited where limits say nothing) and returns its quota of p.
func quotas(t *testing.T, limits map[limiter.Provider]limiter.Limits) func(limiter.Provider) *limiter.Quota {
	t.Helper()
	all := map[limiter.Provider]limiter.Limits{limiter.ProviderLocal: {}, limiter.ProviderGemini: {}, limiter.ProviderAnthropic: {}}
	for p, l := range limits {
		all[p] = l
	}
	l, err := limiter.NewMemory(all)
	if err != nil {
		t.Fatal(err)
	}
	return func(p limiter.Provider) *limiter.Quota {
		q, err := l.For(p)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
}

// withQuotas gives each tier its provider's quota.
func withQuotas(quota func(limiter.Provider) *limiter.Quota) func([]router.TierConfig) {
	return func(tiers []router.TierConfig) {
		for i, p := range []limiter.Provider{limiter.ProviderLocal, limiter.ProviderGemini, limiter.ProviderAnthropic} {
			tiers[i].Quota = quota(p)
		}
	}
}

func TestQuotaExhaustedSkipsTheTierAtOnce(t *testing.T) {
	quota := quotas(t, map[limiter.Provider]limiter.Limits{limiter.ProviderGemini: {PerMinute: 1}})
	r, u := newRouterWith(t, policy(), false, withQuotas(quota))
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
		quota := quotas(t, map[limiter.Provider]limiter.Limits{limiter.ProviderGemini: {MinInterval: 2 * time.Second}})
		r, u := newRouterWith(t, policy(), true, withQuotas(quota))
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

// TestQuotaSlotGivenBackWhenTheGPUQueueRefuses: an item whose quota slot
// was claimed but that the GPU queue turned away made no call, and its slot
// goes back: the local quota of two a minute still serves two calls.
func TestQuotaSlotGivenBackWhenTheGPUQueueRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gpu, err := batcher.New(batcher.Config{MaxConcurrent: 1, QueueSize: 0})
		if err != nil {
			t.Fatal(err)
		}
		quota := quotas(t, map[limiter.Provider]limiter.Limits{limiter.ProviderLocal: {PerMinute: 2}})
		r, u := newRouterWith(t, policy(), true, func(tiers []router.TierConfig) {
			withQuotas(quota)(tiers)
			tiers[0].Queue = gpu
		})
		u.local.Push(upstreamtest.Hang())
		held, release := context.WithCancel(context.Background())
		done := make(chan router.Result)
		go func() { done <- r.Judge(held, request("Acme beats estimates")) }()
		synctest.Wait() // the first item holds the GPU and one quota slot

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if res := r.Judge(ctx, request("Acme beats estimates")); res.Tried[0].Detail != "GPU queue full" {
			t.Fatalf("second item: %+v, want local refused by the full GPU queue", res.Tried)
		}
		release()
		<-done
		if res := r.Judge(ctx, request("Acme beats estimates")); res.Tier != router.TierLocal {
			t.Fatalf("third item: %+v, want the local tier: the refused item's slot was given back", res.Tried)
		}
		if used := quota(limiter.ProviderLocal).Usage(ctx)[0].Used; used != 2 {
			t.Errorf("local minute window holds %d slots, want 2 (two calls made)", used)
		}
	})
}

// TestQuotaSlotGivenBackWhenTheCallerLeaves: a caller that hangs up while
// waiting for its slot gives it back, and the next caller is spaced from
// the last call made, not from the slot nobody used.
func TestQuotaSlotGivenBackWhenTheCallerLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quota := quotas(t, map[limiter.Provider]limiter.Limits{limiter.ProviderGemini: {MinInterval: 2 * time.Second}})
		r, u := newRouterWith(t, policy(), true, withQuotas(quota))
		req := request("Acme beats estimates")
		req.Allowed = []router.Tier{router.TierGemini}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Judge(ctx, req) // a call at 0s

		leaving, leave := context.WithTimeout(context.Background(), 10*time.Second)
		done := make(chan router.Result)
		go func() { done <- r.Judge(leaving, req) }()
		synctest.Wait() // it waits for its slot at 2s
		time.Sleep(time.Second)
		leave()
		if res := <-done; !res.Degraded {
			t.Fatalf("the caller that left: %+v, want no call", res.Tried)
		}
		start := time.Now()
		if res := r.Judge(ctx, req); res.Tier != router.TierGemini {
			t.Fatalf("%+v, want gemini", res.Tried)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("waited %v, want 1s: the next slot is 2s after the call at 0s, not after the one given back", d)
		}
		if u.gemini.Calls() != 2 {
			t.Errorf("gemini saw %d calls, want 2", u.gemini.Calls())
		}
	})
}

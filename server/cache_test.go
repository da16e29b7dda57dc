package server_test

import (
	"testing"
	"time"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/redistest"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/secret"
)

// TestCacheThroughTheService: two replicas on one Redis in front of one
// model server. A release judged by one is a hit on the other, under
// another wire's wording; the opposite news is not; the contract says
// which kind of hit, how alike, and whose answer; Stats counts it all.
func TestCacheThroughTheService(t *testing.T) { onEachRedis(t, testCacheThroughTheService) }

func testCacheThroughTheService(t *testing.T, startRedis func(testing.TB) *redistest.Server) {
	redis := startRedis(t)
	local := upstreamtest.New(t, upstreamtest.Ollama)
	cfg := testConfig()
	cfg.Cache = true
	cfg.RedisURL = secret.Secret(redis.URL())
	cfg.Local.Enabled, cfg.Local.Endpoint = true, local.URL
	a, b := start(t, cfg), start(t, cfg)
	classify := func(s *testServer, id, title string, opts *pb.ClassifyOptions) *pb.Provenance {
		t.Helper()
		resp, err := s.client.Classify(ctxT(t), &pb.ClassifyRequest{Item: &pb.NewsItem{Id: id, Ticker: "ACME", Title: title}, Options: opts})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetProvenance()
	}

	if p := classify(a, "pr-1", "Acme Inc. Receives FDA Approval for Its Cancer Drug", nil); p.GetCacheHit() != pb.CacheHit_CACHE_HIT_MISS || p.GetTier() != pb.Tier_TIER_LOCAL {
		t.Fatalf("first: %v, want a miss judged by the local model", p)
	}
	waitFor(t, func() bool { return cacheStats(t, a).GetStored() == 1 })
	p := classify(b, "pr-2", "PRESS RELEASE: Acme Inc. (NASDAQ: ACME) Receives FDA Approval for Its Cancer Drug", nil)
	if p.GetCacheHit() != pb.CacheHit_CACHE_HIT_EXACT || p.GetCacheSourceId() != "pr-1" || p.GetCacheSimilarity() != 1 || p.GetTier() != pb.Tier_TIER_LOCAL || p.GetAttempts() != 0 {
		t.Fatalf("replica b, another wire: %v, want an exact hit on pr-1's answer with no call", p)
	}
	p = classify(b, "pr-3", "Acme receives FDA approval for cancer drug", nil)
	if p.GetCacheHit() != pb.CacheHit_CACHE_HIT_NEAR || p.GetCacheSourceId() != "pr-1" || p.GetCacheSimilarity() < 0.95 {
		t.Fatalf("replica b, a dropped word: %v, want a near hit on pr-1's answer", p)
	}
	if p := classify(b, "pr-4", "FDA rejects Acme's cancer drug", nil); p.GetCacheHit() != pb.CacheHit_CACHE_HIT_MISS {
		t.Fatalf("the opposite news: %v, want a miss", p)
	}
	if p := classify(b, "pr-5", "Acme Inc. Receives FDA Approval for Its Cancer Drug", &pb.ClassifyOptions{SkipCache: true}); p.GetCacheHit() != pb.CacheHit_CACHE_HIT_UNSPECIFIED || p.GetTier() != pb.Tier_TIER_LOCAL {
		t.Fatalf("skip_cache: %v, want a fresh judgement, the cache not consulted", p)
	}
	if local.Calls() != 3 {
		t.Errorf("%d model calls, want 3 (pr-1, the opposite news, skip_cache)", local.Calls())
	}
	if s := cacheStats(t, b); s.GetBackend() != "redis" || s.GetExactHits() != 1 || s.GetNearHits() != 1 || s.GetMisses() != 1 {
		t.Errorf("replica b's cache stats %v", s)
	}
}

func cacheStats(t *testing.T, s *testServer) *pb.CacheStats {
	t.Helper()
	st, err := s.client.Stats(ctxT(t), &pb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st.GetCache()
}

// waitFor polls cond, within a bound, for what happens in the background
// (an answer's write to Redis).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package server_test

import (
	"strings"
	"testing"

	"github.com/catalystbot/sentiment/config"
	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/redistest"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/secret"
)

// TestReplicasShareTheDailyQuota runs two servers on one Redis against one
// Gemini: together they stop at Gemini's daily quota. Then Redis dies and
// both keep answering, each from its local share of the quota.
func TestReplicasShareTheDailyQuota(t *testing.T) {
	const rpd = 15
	redis := redistest.Start(t)
	gemini := upstreamtest.New(t, upstreamtest.Gemini)
	cfg := testConfig()
	cfg.RedisURL = secret.Secret(redis.URL())
	cfg.Gemini.APIKey, cfg.Gemini.BaseURL = "gemini-key", gemini.URL
	cfg.Gemini.Quota = config.Quota{RPD: rpd}
	cfg.MinInterval = 0
	a, b := start(t, cfg), start(t, cfg)
	req := &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme raises full-year guidance after record orders"}}

	byGemini, rateLimited := 0, 0
	for i := range 2 * rpd {
		for _, s := range []*testServer{a, b} {
			resp, err := s.client.Classify(ctxT(t), req)
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			switch p := resp.GetProvenance(); {
			case p.GetTier() == pb.Tier_TIER_GEMINI:
				byGemini++
			case p.GetDegraded() && p.GetTiers()[1].GetOutcome() == pb.Outcome_OUTCOME_RATE_LIMITED:
				rateLimited++
				if !strings.Contains(p.GetTiers()[1].GetDetail(), "day quota") {
					t.Errorf("rate-limit detail %q does not name the daily window", p.GetTiers()[1].GetDetail())
				}
			default:
				t.Fatalf("unexpected answer %v", p)
			}
		}
	}
	if byGemini != rpd || gemini.Calls() != rpd || rateLimited != 4*rpd-rpd {
		t.Fatalf("gemini answered %d (%d calls), %d rate limited; want exactly %d between the two replicas", byGemini, gemini.Calls(), rateLimited, rpd)
	}
	st, err := a.client.Stats(ctxT(t), &pb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	g := st.GetTiers()[2]
	if g.GetQuotaBackend() != "redis" || len(g.GetQuotas()) != 1 || g.GetQuotas()[0].GetUsed() != rpd || !g.GetQuotas()[0].GetShared() {
		t.Fatalf("gemini stats on replica a: %v, want the shared day window full", g)
	}

	redis.Stop()
	for _, s := range []*testServer{a, b} {
		resp, err := s.client.Classify(ctxT(t), req)
		if err != nil || resp.GetLabel() != pb.Label_LABEL_BULLISH {
			t.Fatalf("with Redis down: %v %v, want an answer", resp, err)
		}
		st, err := s.client.Stats(ctxT(t), &pb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if backend := st.GetTiers()[2].GetQuotaBackend(); !strings.HasPrefix(backend, "memory (redis unreachable") || strings.Contains(backend, redis.Addr()) {
			t.Errorf("quota backend %q, want it to say Redis is unreachable, without the address", backend)
		}
	}
	if gemini.Calls() != rpd {
		t.Errorf("gemini saw %d calls after Redis died; each replica's local share starts from what it used", gemini.Calls())
	}
}

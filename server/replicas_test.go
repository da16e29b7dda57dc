package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestReplicasShareTheGPU: three replicas, each allowed 4 calls at once,
// in front of one model server with 4 slots (a fifth call crashes its
// runner): a burst split across them never overloads it, and every item
// gets the model's answer.
func TestReplicasShareTheGPU(t *testing.T) {
	const slots, perReplica = 4, 40
	redis := redistest.Start(t)
	local := upstreamtest.New(t, upstreamtest.Ollama)
	gpu := upstreamtest.NewSlots(slots, 20*time.Millisecond)
	local.SetDefault(gpu.Behavior())
	cfg := testConfig()
	cfg.RedisURL = secret.Secret(redis.URL())
	cfg.Local.Enabled, cfg.Local.Endpoint, cfg.Local.MaxConcurrent = true, local.URL, slots
	replicas := []*testServer{start(t, cfg), start(t, cfg), start(t, cfg)}
	var wg sync.WaitGroup
	for r, s := range replicas {
		for i := range perReplica {
			wg.Go(func() {
				resp, err := s.client.Classify(ctxT(t), &pb.ClassifyRequest{
					Item:    &pb.NewsItem{Id: fmt.Sprint(r, "-", i), Title: fmt.Sprintf("Acme wins order %d-%d and raises guidance", r, i)},
					Options: &pb.ClassifyOptions{SkipCache: true},
				})
				if err != nil {
					t.Error(err)
					return
				}
				if p := resp.GetProvenance(); p.GetTier() != pb.Tier_TIER_LOCAL {
					t.Errorf("replica %d item %d: %v; want the model's answer", r, i, p)
				}
			})
		}
	}
	wg.Wait()
	peak, crashes, served := gpu.Counts()
	if peak > slots || crashes != 0 || served != 3*perReplica {
		t.Errorf("the model server saw %d calls at once, %d crashes, %d served; want at most %d, none, %d", peak, crashes, served, slots, 3*perReplica)
	}
}

package server_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/secret"
)

// TestTieredAnswers drives the whole request path against fake upstreams
// speaking each provider's wire format: local failing, then every tier
// failing, then local back, all without a restart.
func TestTieredAnswers(t *testing.T) {
	local := upstreamtest.New(t, upstreamtest.Ollama)
	gemini := upstreamtest.New(t, upstreamtest.Gemini)
	anthropic := upstreamtest.New(t, upstreamtest.Anthropic)
	cfg := testConfig()
	cfg.Local.Enabled, cfg.Local.Endpoint, cfg.RetryDelay = true, local.URL, 0
	cfg.Gemini.APIKey, cfg.Gemini.BaseURL = secret.Secret("gemini-secret-key"), gemini.URL
	cfg.Anthropic.APIKey, cfg.Anthropic.BaseURL = secret.Secret("anthropic-secret-key"), anthropic.URL
	cfg.Breaker.Failures = 50 // breaker transitions have their own tests
	ts := start(t, cfg)
	gemini.RequireKey("gemini-secret-key")
	anthropic.RequireKey("anthropic-secret-key")
	req := &pb.ClassifyRequest{Item: &pb.NewsItem{Id: "n1", Ticker: "ACME", Title: "Acme raises full-year guidance"}}

	// The local server fails every call: Gemini answers.
	local.SetDefault(upstreamtest.OllamaRunnerTerminated())
	resp, err := ts.client.Classify(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.GetProvenance()
	if p.GetTier() != pb.Tier_TIER_GEMINI || p.GetDegraded() || resp.GetLabel() != pb.Label_LABEL_BULLISH {
		t.Fatalf("answer %v, want Gemini's bullish answer", resp)
	}
	tiers := p.GetTiers()
	if len(tiers) != 2 || tiers[0].GetTier() != pb.Tier_TIER_LOCAL || tiers[0].GetOutcome() != pb.Outcome_OUTCOME_ERROR ||
		tiers[0].GetAttempts() != 2 || !strings.Contains(tiers[0].GetDetail(), "llama runner process has terminated") ||
		tiers[1].GetOutcome() != pb.Outcome_OUTCOME_OK || tiers[1].GetModel() != "gemini-2.5-flash" {
		t.Fatalf("tiers %v, want local failing twice, then gemini OK", tiers)
	}
	if p.GetAttempts() != 3 || p.GetTokensIn() != upstreamtest.TokensIn || p.GetCostUsd() <= 0 || p.GetPromptVersion() != "v1" {
		t.Errorf("provenance %v, want 3 attempts, Gemini's tokens, a cost and the prompt version", p)
	}
	if resp.GetPrescore().GetScore() == 0 || resp.GetRationale() == "" {
		t.Errorf("answer %v lacks the prescore or the model's rationale", resp)
	}

	// Every tier fails: the lexicon answers, degraded, with the reasons.
	gemini.SetDefault(upstreamtest.GeminiUnavailable())
	anthropic.SetDefault(upstreamtest.AnthropicOverloaded())
	resp, err = ts.client.Classify(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	p = resp.GetProvenance()
	if p.GetTier() != pb.Tier_TIER_LEXICON || !p.GetDegraded() || resp.GetLabel() != pb.Label_LABEL_BULLISH {
		t.Fatalf("answer %v, want the lexicon's, degraded", resp)
	}
	for _, want := range []string{"local: error (http 500: llama runner process has terminated", "gemini: error (http 503: UNAVAILABLE", "anthropic: error (http 529: overloaded_error"} {
		if !strings.Contains(p.GetReason(), want) {
			t.Errorf("reason %q does not contain %q", p.GetReason(), want)
		}
	}
	if strings.Contains(p.GetReason(), "secret-key") {
		t.Errorf("reason %q shows an API key", p.GetReason())
	}

	// The caller who requires a model gets UNAVAILABLE with the same reason.
	_, err = ts.client.Classify(ctxT(t), &pb.ClassifyRequest{Item: req.GetItem(), Options: &pb.ClassifyOptions{RequireLlm: true}})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "gemini: error") {
		t.Fatalf("require_llm: %v, want UNAVAILABLE with the reasons", err)
	}

	// The local server recovers: it serves again, no restart needed.
	local.SetDefault(upstreamtest.Answer(upstreamtest.BearishJSON))
	resp, err = ts.client.Classify(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetProvenance().GetTier() != pb.Tier_TIER_LOCAL || resp.GetLabel() != pb.Label_LABEL_BEARISH {
		t.Fatalf("after recovery: %v, want the local tier's bearish answer", resp)
	}

	st, err := ts.client.Stats(ctxT(t), &pb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	byTier := map[pb.Tier]*pb.TierStats{}
	for _, ts := range st.GetTiers() {
		byTier[ts.GetTier()] = ts
	}
	if l := byTier[pb.Tier_TIER_LOCAL]; !l.GetEnabled() || l.GetAnswered() != 1 || l.GetErrorsLastHour()["http_500"] != 6 || l.GetConsecutiveFailures() != 0 {
		t.Errorf("local stats %v, want 1 answered, 6 http_500 in the last hour, no failures since", l)
	}
	if g := byTier[pb.Tier_TIER_GEMINI]; g.GetAnswered() != 1 || g.GetErrorsLastHour()["http_503"] != 4 {
		t.Errorf("gemini stats %v, want 1 answered and 4 http_503", g)
	}
	if r := st.GetRequests(); r.GetDegraded() != 1 || r.GetFailed() != 1 {
		t.Errorf("requests %v, want 1 degraded answer and 1 failed call (require_llm)", r)
	}
}

func TestPrefilter(t *testing.T) {
	neutral := &pb.NewsItem{Title: "Acme will publish its third-quarter report on October 24"}
	strong := &pb.NewsItem{Title: "Acme raises full-year guidance after record orders"}
	minPre := func(v float64) *float64 { return &v }
	const (
		above   = pb.PrefilterDecision_PREFILTER_DECISION_ABOVE_THRESHOLD
		below   = pb.PrefilterDecision_PREFILTER_DECISION_SENT_ON_BELOW_THRESHOLD
		skipped = pb.PrefilterDecision_PREFILTER_DECISION_SKIPPED_BY_THRESHOLD
		exempt  = pb.PrefilterDecision_PREFILTER_DECISION_EXEMPT
	)
	type call struct {
		name     string
		item     *pb.NewsItem
		opts     *pb.ClassifyOptions
		decision pb.PrefilterDecision
	}
	for _, mode := range []struct {
		name  string
		calls []call
	}{
		{"fixed", []call{
			{"neutral item answered by the lexicon", neutral, nil, skipped},
			{"strong item goes to the model", strong, nil, above},
			{"threshold 0 sends everything on", neutral, &pb.ClassifyOptions{MinPrescore: minPre(0)}, above},
			{"a high threshold keeps even strong items", strong, &pb.ClassifyOptions{MinPrescore: minPre(0.99)}, skipped},
			{"require_llm is never prefiltered", neutral, &pb.ClassifyOptions{RequireLlm: true}, exempt},
		}},
		{"adaptive", []call{
			{"neutral item goes to the idle local model", neutral, nil, below},
			{"strong item goes to the model", strong, nil, above},
			{"threshold 0 sends everything on", neutral, &pb.ClassifyOptions{MinPrescore: minPre(0)}, above},
			{"a high threshold still lets the local model judge", strong, &pb.ClassifyOptions{MinPrescore: minPre(0.99)}, below},
			{"a weak item never goes to a cloud tier alone", neutral, &pb.ClassifyOptions{AllowedTiers: []pb.Tier{pb.Tier_TIER_GEMINI}}, skipped},
			{"require_llm is never prefiltered", neutral, &pb.ClassifyOptions{RequireLlm: true}, exempt},
		}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			local := upstreamtest.New(t, upstreamtest.Ollama)
			cfg := testConfig()
			cfg.Local.Enabled, cfg.Local.Endpoint = true, local.URL
			cfg.Prefilter = mode.name
			ts := start(t, cfg)
			counts := map[pb.PrefilterDecision]uint64{}
			for _, c := range mode.calls {
				before := local.Calls()
				resp, err := ts.client.Classify(ctxT(t), &pb.ClassifyRequest{Item: c.item, Options: c.opts})
				if err != nil {
					t.Fatal(err)
				}
				p := resp.GetProvenance()
				called := local.Calls() - before
				counts[p.GetPrefilter()]++
				prefiltered := c.decision == skipped
				if p.GetPrefilter() != c.decision || p.GetPrefiltered() != prefiltered || p.GetDegraded() {
					t.Fatalf("%s: decision %v prefiltered %v degraded %v; want %v", c.name, p.GetPrefilter(), p.GetPrefiltered(), p.GetDegraded(), c.decision)
				}
				if prefiltered && (called != 0 || p.GetTier() != pb.Tier_TIER_LEXICON || !strings.Contains(p.GetReason(), "under the threshold")) {
					t.Errorf("%s: prefiltered item reached the model (%d calls, tier %v, reason %q)", c.name, called, p.GetTier(), p.GetReason())
				}
				if !prefiltered && (called != 1 || p.GetTier() != pb.Tier_TIER_LOCAL) {
					t.Errorf("%s: %d local calls, tier %v; want one call and the local answer", c.name, called, p.GetTier())
				}
			}
			st, err := ts.client.Stats(ctxT(t), &pb.StatsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			pf := st.GetPrefilter()
			n := uint64(len(mode.calls))
			if pf.GetSeen() != n || pf.GetSkipped() != counts[skipped] || pf.GetSentOn() != n-counts[skipped] ||
				pf.GetSentOnBelowThreshold() != counts[below] || pf.GetSkippedByThreshold() != counts[skipped] || pf.GetMode() != mode.name {
				t.Errorf("prefilter stats %v, want %d seen, decisions %v", pf, n, counts)
			}
		})
	}
}

package router_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/router"
	"github.com/catalystbot/sentiment/upstream"
)

// upstreams are one fake per model tier, in policy order.
type upstreams struct {
	local, gemini, anthropic *upstreamtest.Fake
}

func (u upstreams) calls() [3]int {
	return [3]int{u.local.Calls(), u.gemini.Calls(), u.anthropic.Calls()}
}

// policy is a fast policy for tests: tiny backoff with no jitter, a
// breaker that does not open unless a test asks.
func policy() router.Config {
	return router.Config{
		MaxRetries:  3,
		RetryDelay:  time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
		MinTierTime: 250 * time.Millisecond,
		Breaker:     router.BreakerConfig{Failures: 100, Cooldown: 30 * time.Second, HalfOpenSuccesses: 1},
	}
}

// newRouter builds a router over three fakes: over loopback, or in memory
// for tests inside a synctest bubble.
func newRouter(t *testing.T, cfg router.Config, memory bool, opts ...router.Option) (*router.Router, upstreams) {
	t.Helper()
	return newRouterWith(t, cfg, memory, nil, opts...)
}

// newRouterWith lets a test add admission (quota, GPU queue, gate) to the
// tiers before the router is built.
func newRouterWith(t *testing.T, cfg router.Config, memory bool, tweak func([]router.TierConfig), opts ...router.Option) (*router.Router, upstreams) {
	t.Helper()
	mk := upstreamtest.New
	if memory {
		mk = upstreamtest.NewMemory
	}
	u := upstreams{mk(t, upstreamtest.Ollama), mk(t, upstreamtest.Gemini), mk(t, upstreamtest.Anthropic)}
	client := func(f *upstreamtest.Fake) *http.Client {
		if memory {
			return f.Client()
		}
		return upstream.NewHTTPClient(4)
	}
	cfg.Tiers = []router.TierConfig{
		{Tier: router.TierLocal, Model: "mistral", Timeout: 15 * time.Second, MaxChars: 200,
			Provider: router.NewOllama(ollama.New(ollama.Config{BaseURL: u.local.URL, Model: "mistral", KeepAlive: "30m", NumCtx: 2048, Seed: 42}, client(u.local)))},
		{Tier: router.TierGemini, Model: "gemini-2.5-flash", Timeout: 20 * time.Second, Price: router.Price{InputPerM: 0.30, OutputPerM: 2.50},
			Provider: router.NewGemini(router.GeminiConfig{BaseURL: u.gemini.URL, Model: "gemini-2.5-flash", APIKey: "gk"}, client(u.gemini))},
		{Tier: router.TierAnthropic, Model: "claude-haiku-4-5", Timeout: 20 * time.Second, Price: router.Price{InputPerM: 1, OutputPerM: 5},
			Provider: router.NewAnthropic(router.AnthropicConfig{BaseURL: u.anthropic.URL, Model: "claude-haiku-4-5", APIKey: "ak"}, client(u.anthropic))},
	}
	if tweak != nil {
		tweak(cfg.Tiers)
	}
	opts = append([]router.Option{router.WithJitter(func() float64 { return 0 })}, opts...)
	r, err := router.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*upstreamtest.Fake{u.local, u.gemini, u.anthropic} {
		if !memory {
			t.Cleanup(func() { f.Close() })
		}
	}
	return r, u
}

func request(title string) router.Request {
	pre := lexicon.Prescore{Score: 0.5, Compound: 0.4, Keyword: 0.6, Hits: []lexicon.Hit{{Phrase: "raises guidance", Weight: 0.6}}}
	return router.Request{Item: router.Item{Ticker: "ACME", Title: title}, Prescore: pre}
}

func outcomes(res router.Result) []router.Outcome {
	var out []router.Outcome
	for _, a := range res.Tried {
		out = append(out, a.Outcome)
	}
	return out
}

func TestRoutingMatrix(t *testing.T) {
	const (
		ok      = router.OutcomeOK
		failed  = router.OutcomeError
		invalid = router.OutcomeInvalidAnswer
		skipped = router.OutcomeSkipped
	)
	tests := []struct {
		name                     string
		local, gemini, anthropic []upstreamtest.Behavior // queued per call; the default answers bullish
		setup                    func(upstreams)
		req                      func(*router.Request)
		wantTier                 router.Tier
		wantLabel                lexicon.Label
		wantOutcomes             []router.Outcome
		wantCalls                [3]int
		wantDetail               string // in the first tier's detail
	}{
		{name: "local answers", wantTier: router.TierLocal, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{ok}, wantCalls: [3]int{1, 0, 0}},
		{name: "local 500 twice then gemini",
			local:    []upstreamtest.Behavior{upstreamtest.OllamaRunnerTerminated(), upstreamtest.OllamaRunnerTerminated()},
			wantTier: router.TierGemini, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{failed, ok}, wantCalls: [3]int{2, 1, 0}, wantDetail: "llama runner process has terminated"},
		{name: "high priority gets three attempts",
			local:    []upstreamtest.Behavior{upstreamtest.OllamaRunnerTerminated(), upstreamtest.OllamaBusy()},
			req:      func(r *router.Request) { r.Priority = router.PriorityHigh },
			wantTier: router.TierLocal, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{ok}, wantCalls: [3]int{3, 0, 0}},
		{name: "busy local recovers on the retry",
			local:    []upstreamtest.Behavior{upstreamtest.OllamaBusy()},
			wantTier: router.TierLocal, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{ok}, wantCalls: [3]int{2, 0, 0}},
		{name: "404 is not retried",
			local:    []upstreamtest.Behavior{upstreamtest.OllamaModelNotFound("mistral")},
			wantTier: router.TierGemini, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{failed, ok}, wantCalls: [3]int{1, 1, 0}, wantDetail: "http 404"},
		{name: "local down counts like a 5xx",
			setup:    func(u upstreams) { u.local.Close() },
			wantTier: router.TierGemini, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{failed, ok}, wantCalls: [3]int{0, 1, 0}, wantDetail: "connection"},
		{name: "reset connections are retried, then gemini",
			local:    []upstreamtest.Behavior{upstreamtest.Reset(), upstreamtest.Reset()},
			wantTier: router.TierGemini, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{failed, ok}, wantCalls: [3]int{2, 1, 0}},
		{name: "local and gemini fail, anthropic answers",
			setup: func(u upstreams) {
				u.local.SetDefault(upstreamtest.OllamaRunnerTerminated())
				u.gemini.SetDefault(upstreamtest.GeminiUnavailable())
			},
			anthropic: []upstreamtest.Behavior{upstreamtest.Answer(upstreamtest.BearishJSON)},
			wantTier:  router.TierAnthropic, wantLabel: lexicon.LabelBearish,
			wantOutcomes: []router.Outcome{failed, failed, ok}, wantCalls: [3]int{2, 2, 1}},
		{name: "two invalid answers stop the tier even at high priority",
			local:    []upstreamtest.Behavior{upstreamtest.Answer("I think it is good news."), upstreamtest.Answer(`{"label":"sideways"}`)},
			req:      func(r *router.Request) { r.Priority = router.PriorityHigh },
			wantTier: router.TierGemini, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{invalid, ok}, wantCalls: [3]int{2, 1, 0}},
		{name: "prose around the JSON is repaired",
			local:    []upstreamtest.Behavior{upstreamtest.Answer(upstreamtest.Prose(upstreamtest.BearishJSON))},
			wantTier: router.TierLocal, wantLabel: lexicon.LabelBearish,
			wantOutcomes: []router.Outcome{ok}, wantCalls: [3]int{1, 0, 0}},
		{name: "gemini 400 is not retried",
			setup:    func(u upstreams) { u.local.SetDefault(upstreamtest.OllamaRunnerTerminated()) },
			gemini:   []upstreamtest.Behavior{upstreamtest.Error(400, "Request contains an invalid argument.")},
			wantTier: router.TierAnthropic, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{failed, failed, ok}, wantCalls: [3]int{2, 1, 1}},
		{name: "blocked prompt is not retried",
			setup:    func(u upstreams) { u.local.Close() },
			gemini:   []upstreamtest.Behavior{upstreamtest.GeminiBlocked("SAFETY")},
			wantTier: router.TierAnthropic, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{failed, failed, ok}, wantCalls: [3]int{0, 1, 1}},
		{name: "long text skips local",
			req:      func(r *router.Request) { r.Item.Summary = strings.Repeat("Acme expands. ", 20) },
			wantTier: router.TierGemini, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{skipped, ok}, wantCalls: [3]int{0, 1, 0}, wantDetail: "over its limit of 200"},
		{name: "allowed tiers",
			req:      func(r *router.Request) { r.Allowed = []router.Tier{router.TierAnthropic} },
			wantTier: router.TierAnthropic, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{skipped, skipped, ok}, wantCalls: [3]int{0, 0, 1}, wantDetail: "not in allowed_tiers"},
		{name: "every tier fails: the lexicon answers, degraded",
			setup: func(u upstreams) {
				u.local.SetDefault(upstreamtest.OllamaRunnerTerminated())
				u.gemini.SetDefault(upstreamtest.GeminiRateLimited("0s", upstreamtest.GeminiPerMinuteQuota))
				u.anthropic.SetDefault(upstreamtest.AnthropicOverloaded())
			},
			wantTier: router.TierLexicon, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{failed, failed, failed}, wantCalls: [3]int{2, 2, 2}},
		{name: "only the lexicon allowed",
			req:      func(r *router.Request) { r.Allowed = []router.Tier{router.TierLexicon} },
			wantTier: router.TierLexicon, wantLabel: lexicon.LabelBullish,
			wantOutcomes: []router.Outcome{skipped, skipped, skipped}, wantCalls: [3]int{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, u := newRouter(t, policy(), false)
			if tt.setup != nil {
				tt.setup(u)
			}
			u.local.Push(tt.local...)
			u.gemini.Push(tt.gemini...)
			u.anthropic.Push(tt.anthropic...)
			req := request("Acme raises full-year guidance")
			if tt.req != nil {
				tt.req(&req)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			res := r.Judge(ctx, req)
			if res.Tier != tt.wantTier || res.Answer.Label != tt.wantLabel {
				t.Errorf("answered by %v with %v, want %v with %v (tried %+v)", res.Tier, res.Answer.Label, tt.wantTier, tt.wantLabel, res.Tried)
			}
			if got := outcomes(res); !slices.Equal(got, tt.wantOutcomes) {
				t.Errorf("outcomes %v, want %v (tried %+v)", got, tt.wantOutcomes, res.Tried)
			}
			if got := u.calls(); got != tt.wantCalls {
				t.Errorf("calls per tier %v, want %v", got, tt.wantCalls)
			}
			if tt.wantDetail != "" && !strings.Contains(res.Tried[0].Detail, tt.wantDetail) {
				t.Errorf("first tier's detail %q, want it to mention %q", res.Tried[0].Detail, tt.wantDetail)
			}
			degraded := tt.wantTier == router.TierLexicon
			if res.Degraded != degraded {
				t.Errorf("degraded = %v, want %v", res.Degraded, degraded)
			}
			if degraded {
				for _, tier := range []string{"local: ", "gemini: ", "anthropic: "} {
					if !strings.Contains(res.Reason, tier) {
						t.Errorf("reason %q does not say what happened at %q", res.Reason, tier)
					}
				}
				if res.Answer.Rationale == "" || res.Answer.Score != req.Prescore.Score {
					t.Errorf("degraded answer %+v is not the lexicon's", res.Answer)
				}
			}
			if res.PromptVersion != router.PromptVersion {
				t.Errorf("prompt version %q", res.PromptVersion)
			}
		})
	}
}

func TestUsageAndCost(t *testing.T) {
	r, u := newRouter(t, policy(), false)
	u.local.SetDefault(upstreamtest.OllamaRunnerTerminated())
	u.gemini.Push(upstreamtest.AnswerUsage(upstreamtest.BullishJSON, 1000, 200))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := r.Judge(ctx, request("Acme wins a contract"))
	if res.Tier != router.TierGemini || res.Usage != (router.Usage{TokensIn: 1000, TokensOut: 200}) {
		t.Fatalf("tier %v usage %+v, want gemini with 1000 in, 200 out", res.Tier, res.Usage)
	}
	if want := (1000*0.30 + 200*2.50) / 1e6; res.CostUSD != want {
		t.Errorf("cost %g, want %g", res.CostUSD, want)
	}
	if res.Calls != 3 {
		t.Errorf("calls %d, want 3 (two at local, one at gemini)", res.Calls)
	}
}

// TestBreakerOpensAndRecovers runs in a synctest bubble: the cool-down
// passes on the bubble's fake clock.
func TestBreakerOpensAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := policy()
		cfg.MaxRetries = 1
		cfg.Breaker = router.BreakerConfig{Failures: 2, Cooldown: 30 * time.Second, HalfOpenSuccesses: 1}
		r, u := newRouter(t, cfg, true)
		u.local.Close() // the local server is down: connection refused
		judge := func() router.Result {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return r.Judge(ctx, request("Acme beats estimates"))
		}
		localState := func() router.TierStats { return r.Stats(context.Background())[0] }

		for range 2 {
			if res := judge(); res.Tier != router.TierGemini || res.Tried[0].Outcome != router.OutcomeError {
				t.Fatalf("while local is down: %+v, want gemini after a local error", res.Tried)
			}
		}
		if s := localState(); s.Breaker != "open" || s.BreakerTransitions != 1 || s.ErrorsLastHour["connection"] != 2 {
			t.Fatalf("local after 2 refused connections: %+v, want an open breaker and 2 connection errors", s)
		}

		u.local.Restart() // back, but the breaker does not know yet
		res := judge()
		if res.Tried[0].Outcome != router.OutcomeBreakerOpen || res.Tried[0].Calls != 0 || u.local.Calls() != 0 {
			t.Fatalf("open breaker: %+v with %d calls at local, want breaker open and no call", res.Tried[0], u.local.Calls())
		}
		if d := res.Tried[0].Detail; d != "next probe in 30s" {
			t.Errorf("open breaker's detail %q, want when it probes next", d)
		}
		u.gemini.SetDefault(upstreamtest.GeminiUnavailable())
		u.anthropic.SetDefault(upstreamtest.AnthropicOverloaded())
		if res := judge(); !strings.Contains(res.Reason, "local: breaker open (next probe in 30s); gemini: error") {
			t.Errorf("degraded reason %q, want the breaker named once with when it probes next", res.Reason)
		}
		u.gemini.SetDefault(upstreamtest.Answer(upstreamtest.BullishJSON))
		u.anthropic.SetDefault(upstreamtest.Answer(upstreamtest.BullishJSON))

		time.Sleep(29 * time.Second)
		if res := judge(); res.Tried[0].Outcome != router.OutcomeBreakerOpen {
			t.Fatalf("before the cool-down ends: %+v, want still open", res.Tried[0])
		}
		time.Sleep(2 * time.Second)
		if res := judge(); res.Tier != router.TierLocal || res.Tried[0].Calls != 1 {
			t.Fatalf("after the cool-down: %+v, want the local tier to serve again", res.Tried)
		}
		if s := localState(); s.Breaker != "closed" || s.BreakerTransitions != 3 || s.ConsecutiveFailures != 0 {
			t.Fatalf("local after recovery: %+v, want closed after open -> half-open -> closed", s)
		}
	})
}

func TestHalfOpenFailureReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := policy()
		cfg.MaxRetries = 1
		cfg.Breaker = router.BreakerConfig{Failures: 1, Cooldown: 10 * time.Second, HalfOpenSuccesses: 2}
		r, u := newRouter(t, cfg, true)
		u.local.SetDefault(upstreamtest.OllamaRunnerTerminated())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r.Judge(ctx, request("Acme beats estimates"))
		time.Sleep(11 * time.Second)
		r.Judge(ctx, request("Acme beats estimates")) // the half-open probe fails
		if s := r.Stats(context.Background())[0]; s.Breaker != "open" || s.BreakerTransitions != 3 {
			t.Fatalf("after a failed probe: %+v, want open again (closed->open->half-open->open)", s)
		}
		if u.local.Calls() != 2 {
			t.Fatalf("local calls %d, want 2", u.local.Calls())
		}
	})
}

// TestNoAttemptOutlivesTheDeadline: every upstream hangs; the router gives
// each tier a share of the caller's deadline and returns by it, and the
// timeouts it cut below a fair budget are not held against the tiers.
func TestNoAttemptOutlivesTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := policy()
		cfg.TierReserve = time.Second
		r, u := newRouter(t, cfg, true)
		for _, f := range []*upstreamtest.Fake{u.local, u.gemini, u.anthropic} {
			f.SetDefault(upstreamtest.Hang())
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2400*time.Millisecond)
		defer cancel()
		res := r.Judge(ctx, request("Acme beats estimates"))
		elapsed := time.Since(start)
		synctest.Wait()

		if elapsed > 2400*time.Millisecond {
			t.Errorf("Judge took %v of a 2.4s deadline", elapsed)
		}
		if !res.Degraded || len(res.Tried) != 3 {
			t.Fatalf("result %+v, want degraded after trying all three tiers", res)
		}
		// 2.4s cannot keep 1s for each later tier and leave the first its
		// share: the reserve shrinks, and each tier gets a third.
		for _, a := range res.Tried {
			if a.Latency != 800*time.Millisecond {
				t.Errorf("%v attempt ran %v, want 0.8s", a.Tier, a.Latency)
			}
		}
		for _, a := range res.Tried {
			if a.Outcome != router.OutcomeError || !strings.Contains(a.Detail, "timeout") || a.Calls != 1 {
				t.Errorf("%v: %+v, want one call that timed out", a.Tier, a)
			}
		}
		for i, f := range []*upstreamtest.Fake{u.local, u.gemini, u.anthropic} {
			if f.InFlight() != 0 {
				t.Errorf("tier %d still has a call in flight after Judge returned", i)
			}
		}
		for _, s := range r.Stats(context.Background()) {
			if s.ConsecutiveFailures != 0 {
				t.Errorf("%v: %d failures counted for timeouts after 0.8s: the caller's deadline left no fair budget", s.Tier, s.ConsecutiveFailures)
			}
		}
	})
}

// TestShortDeadlinesAreSharedFairly: the reserve kept for later tiers
// shrinks in proportion to a short deadline, so a hung local server leaves
// the healthy cloud tier a real chance to answer.
func TestShortDeadlinesAreSharedFairly(t *testing.T) {
	tests := []struct {
		name        string
		deadline    time.Duration
		reserve     time.Duration
		geminiHangs bool
		twoTiers    bool            // allow local and gemini only
		want        []time.Duration // latency per tier tried
		wantTier    router.Tier
	}{
		{name: "3s, gemini healthy", deadline: 3 * time.Second, reserve: 2 * time.Second, twoTiers: true,
			want: []time.Duration{1500 * time.Millisecond, 0}, wantTier: router.TierGemini},
		{name: "3s, gemini hangs too", deadline: 3 * time.Second, reserve: 2 * time.Second, geminiHangs: true,
			want: []time.Duration{time.Second, time.Second, 0}, wantTier: router.TierAnthropic},
		{name: "3s, three tiers, gemini healthy", deadline: 3 * time.Second, reserve: 2 * time.Second,
			want: []time.Duration{time.Second, 0}, wantTier: router.TierGemini},
		{name: "1s, gemini healthy", deadline: time.Second, reserve: 2 * time.Second, twoTiers: true,
			want: []time.Duration{500 * time.Millisecond, 0}, wantTier: router.TierGemini},
		{name: "10s keeps the full reserve", deadline: 10 * time.Second, reserve: 2 * time.Second, geminiHangs: true,
			want: []time.Duration{6 * time.Second, 2 * time.Second, 0}, wantTier: router.TierAnthropic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := policy()
				cfg.MaxRetries, cfg.TierReserve = 1, tt.reserve
				r, u := newRouter(t, cfg, true)
				u.local.SetDefault(upstreamtest.Hang())
				if tt.geminiHangs {
					u.gemini.SetDefault(upstreamtest.Hang())
				}
				ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
				defer cancel()
				req := request("Acme beats estimates")
				if tt.twoTiers {
					req.Allowed = []router.Tier{router.TierLocal, router.TierGemini}
				}
				res := r.Judge(ctx, req)
				if res.Tier != tt.wantTier || res.Degraded {
					t.Fatalf("answered by %v (degraded %v, tried %+v), want %v", res.Tier, res.Degraded, res.Tried, tt.wantTier)
				}
				var got []time.Duration
				for _, a := range res.Tried {
					got = append(got, a.Latency)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("time per tier %v, want %v", got, tt.want)
				}
			})
		})
	}
}

// TestHungLocalWithAFairBudgetCounts: the owner's frozen GPU. A local
// server that hangs through a fair share of a short deadline counts
// against its breaker, and the cloud tier still gets its reserve.
func TestHungLocalWithAFairBudgetCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := policy()
		cfg.MaxRetries, cfg.TierReserve = 1, 2*time.Second
		r, u := newRouter(t, cfg, true)
		u.local.SetDefault(upstreamtest.Hang())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res := r.Judge(ctx, request("Acme beats estimates"))
		if res.Tier != router.TierGemini || res.Tried[0].Latency != 6*time.Second {
			t.Fatalf("%+v, want local to give up after 6s (10s less 2s for each later tier) and gemini to answer", res.Tried)
		}
		if s := r.Stats(context.Background())[0]; s.ConsecutiveFailures != 1 {
			t.Fatalf("local stats %+v, want the hang counted", s)
		}
	})
}

func TestDailyQuotaPausesTheTier(t *testing.T) {
	r, u := newRouter(t, policy(), false)
	u.local.Close()
	u.gemini.Push(upstreamtest.GeminiRateLimited("10s", upstreamtest.GeminiPerDayQuota))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res := r.Judge(ctx, request("Acme beats estimates")); res.Tier != router.TierAnthropic || res.Tried[1].Calls != 1 {
		t.Fatalf("%+v, want one call at gemini (daily quota gone), then anthropic", res.Tried)
	}
	for range 3 {
		res := r.Judge(ctx, request("Acme beats estimates"))
		if g := res.Tried[1]; g.Outcome != router.OutcomeRateLimited || !strings.Contains(g.Detail, "no calls until") || res.Tier != router.TierAnthropic {
			t.Fatalf("%+v, want gemini skipped as rate limited until its quota resets", res.Tried)
		}
	}
	if u.gemini.Calls() != 1 {
		t.Errorf("gemini saw %d calls, want 1: its daily quota was gone", u.gemini.Calls())
	}
	if s := r.Stats(ctx)[1]; s.ConsecutiveFailures != 0 {
		t.Errorf("gemini: %d failures counted for a quota 429", s.ConsecutiveFailures)
	}
}

func TestRefusalsDoNotOpenTheBreaker(t *testing.T) {
	cfg := policy()
	cfg.Breaker.Failures = 2
	r, u := newRouter(t, cfg, false)
	u.local.Close()
	u.gemini.SetDefault(upstreamtest.GeminiBlocked("SAFETY"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 4 {
		r.Judge(ctx, request("Acme beats estimates"))
	}
	if s := r.Stats(ctx)[1]; s.Breaker != "closed" || u.gemini.Calls() != 4 {
		t.Fatalf("gemini %+v after 4 blocked prompts (%d calls), want a closed breaker: a refusal is about one item", s, u.gemini.Calls())
	}
}

func TestHangingTierCountsAgainstItsBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := policy()
		cfg.MaxRetries = 1
		r, u := newRouter(t, cfg, true)
		u.local.SetDefault(upstreamtest.Hang())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res := r.Judge(ctx, request("Acme beats estimates"))
		if res.Tier != router.TierGemini || res.Tried[0].Latency != 15*time.Second {
			t.Fatalf("%+v, want local to time out at its own 15s and gemini to answer", res.Tried)
		}
		if s := r.Stats(context.Background())[0]; s.ConsecutiveFailures != 1 || s.ErrorsLastHour["timeout"] != 1 {
			t.Fatalf("local stats %+v, want one timeout counted", s)
		}
	})
}

func TestRetryHonoursServerDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, u := newRouter(t, policy(), true)
		u.gemini.Push(upstreamtest.GeminiRateLimited("2s", upstreamtest.GeminiPerMinuteQuota))
		req := request("Acme beats estimates")
		req.Allowed = []router.Tier{router.TierGemini}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		res := r.Judge(ctx, req)
		if res.Tier != router.TierGemini || res.Tried[1].Calls != 2 {
			t.Fatalf("%+v, want gemini to answer on its second call", res.Tried)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("answered after %v, want exactly the 2s the server asked for", d)
		}
	})
}

func TestNoRetryPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, u := newRouter(t, policy(), true)
		u.gemini.Push(upstreamtest.GeminiRateLimited("10s", upstreamtest.GeminiPerMinuteQuota))
		req := request("Acme beats estimates")
		req.Allowed = []router.Tier{router.TierGemini, router.TierAnthropic}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		res := r.Judge(ctx, req)
		if res.Tier != router.TierAnthropic || !strings.Contains(res.Tried[1].Detail, "no retry") || u.gemini.Calls() != 1 {
			t.Fatalf("%+v, want gemini given up without waiting 10s, anthropic answering", res.Tried)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("took %v, want no wait at all", d)
		}
	})
}

func TestBackoffIsExponentialWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := policy()
		cfg.RetryDelay, cfg.MaxBackoff = time.Second, time.Minute
		// Half jitter: waits of 0.5 × 1s, then 0.5 × 2s.
		r, u := newRouter(t, cfg, true, router.WithJitter(func() float64 { return 0.5 }))
		u.local.Push(upstreamtest.OllamaRunnerTerminated(), upstreamtest.OllamaRunnerTerminated())
		req := request("Acme beats estimates")
		req.Priority = router.PriorityHigh
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		res := r.Judge(ctx, req)
		if res.Tier != router.TierLocal || res.Tried[0].Calls != 3 {
			t.Fatalf("%+v, want local to answer on its third call", res.Tried)
		}
		if d := time.Since(start); d != 1500*time.Millisecond {
			t.Errorf("answered after %v, want 0.5s + 1s of backoff", d)
		}
	})
}

func TestCancelledCallerIsNotTheTiersFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, u := newRouter(t, policy(), true)
		u.local.SetDefault(upstreamtest.Hang())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan router.Result)
		go func() { done <- r.Judge(ctx, request("Acme beats estimates")) }()
		synctest.Wait() // the local call is hanging
		cancel()
		res := <-done
		if !res.Degraded || u.gemini.Calls() != 0 {
			t.Fatalf("%+v, want a degraded answer and no further tier called after the caller left", res.Tried)
		}
		if s := r.Stats(context.Background())[0]; s.ConsecutiveFailures != 0 {
			t.Fatalf("local: %d failures counted for a caller that left", s.ConsecutiveFailures)
		}
	})
}

// TestHungOnlyTierOpensItsBreaker: with no later tier to keep time for,
// a hung local attempt ends with the caller's deadline; having had a fair
// budget, it still counts, and the breaker opens: the calls after it are
// answered at once instead of waiting out every deadline.
func TestHungOnlyTierOpensItsBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := policy()
		cfg.Breaker = router.BreakerConfig{Failures: 3, Cooldown: 30 * time.Second, HalfOpenSuccesses: 1}
		r, u := newRouter(t, cfg, true)
		u.local.SetDefault(upstreamtest.Hang())
		req := request("Acme beats estimates")
		req.Allowed = []router.Tier{router.TierLocal}
		for range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if res := r.Judge(ctx, req); !res.Degraded || res.Tried[0].Latency != 2*time.Second {
				t.Fatalf("%+v, want the hang to take the whole deadline", res.Tried)
			}
			cancel()
		}
		if s := r.Stats(context.Background())[0]; s.Breaker != "open" {
			t.Fatalf("local %+v after 3 hangs of 2s, want an open breaker", s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		if res := r.Judge(ctx, req); res.Tried[0].Outcome != router.OutcomeBreakerOpen || time.Since(start) != 0 {
			t.Fatalf("%+v after %v, want the open breaker to answer at once", res.Tried, time.Since(start))
		}
	})
}

// TestObserverHearsEveryCallOnce: every upstream call is reported once, as
// it ends, with its tier, retry number, outcome, error type, health
// signal, tokens and cost; a tier skipped without a call is not reported.
func TestObserverHearsEveryCallOnce(t *testing.T) {
	var mu sync.Mutex
	var calls []router.Call
	cfg := policy()
	cfg.Observe = func(ctx context.Context, c router.Call) {
		if ctx == nil {
			t.Error("observer got no context")
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c)
	}
	r, u := newRouter(t, cfg, false)
	u.local.Push(upstreamtest.OllamaRunnerTerminated(), upstreamtest.OllamaRunnerTerminated())
	u.gemini.Push(upstreamtest.AnswerUsage(upstreamtest.BullishJSON, 1000, 200))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := request("Acme wins a contract")
	res := r.Judge(ctx, req)

	if len(calls) != res.Calls || len(calls) != 3 {
		t.Fatalf("observer heard %d calls, the result counts %d; want 3 (two at local, one at gemini)", len(calls), res.Calls)
	}
	for i, want := range []router.Call{
		{Tier: router.TierLocal, Model: "mistral", Retry: 0, Outcome: router.OutcomeError, ErrorType: "http_500", Signal: upstream.SignalCrash},
		{Tier: router.TierLocal, Model: "mistral", Retry: 1, Outcome: router.OutcomeError, ErrorType: "http_500", Signal: upstream.SignalCrash},
		{Tier: router.TierGemini, Model: "gemini-2.5-flash", Retry: 0, Outcome: router.OutcomeOK, Signal: upstream.SignalOK,
			Usage: router.Usage{TokensIn: 1000, TokensOut: 200}, CostUSD: (1000*0.30 + 200*2.50) / 1e6},
	} {
		got := calls[i]
		got.Latency = 0
		if got != want {
			t.Errorf("call %d: %+v, want %+v", i, got, want)
		}
	}
	// Tiers skipped without a call (not allowed here) are not reported.
	calls = nil
	req.Allowed = []router.Tier{router.TierLexicon}
	r.Judge(ctx, req)
	if len(calls) != 0 {
		t.Errorf("observer heard %+v for tiers that were not called", calls)
	}
}

package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingScorer is the real lexicon, counting how often it is asked.
type countingScorer struct {
	*lexicon.Scorer
	calls atomic.Int64
}

func (c *countingScorer) Score(text string) lexicon.Prescore {
	c.calls.Add(1)
	return c.Scorer.Score(text)
}

// env is a pipeline over the real lexicon and a real router whose local
// tier is a fake Ollama served in memory.
type env struct {
	p      *pipeline.Pipeline
	local  *upstreamtest.Fake
	scorer *countingScorer
}

func newEnv(t *testing.T, opts ...pipeline.Option) *env {
	t.Helper()
	lex, err := lexicon.New()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{local: upstreamtest.NewMemory(t, upstreamtest.Ollama), scorer: &countingScorer{Scorer: lex}}
	rt, err := router.New(router.Config{
		MaxRetries:  1,
		MinTierTime: 250 * time.Millisecond,
		Breaker:     router.BreakerConfig{Failures: 100, Cooldown: time.Minute, HalfOpenSuccesses: 1},
		Tiers: []router.TierConfig{{Tier: router.TierLocal, Model: "mistral", Timeout: 15 * time.Second,
			Provider: router.NewOllama(ollama.New(ollama.Config{BaseURL: e.local.URL, Model: "mistral"}, e.local.Client()))}},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.p, err = pipeline.New(pipeline.Config{MinPrescore: 0.20, DefaultDeadline: 30 * time.Second, AnswerMargin: 100 * time.Millisecond},
		e.scorer, rt, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const (
	strong = "Acme raises full-year guidance after record orders"
	weak   = "Acme will hold its annual general meeting in Helsinki"
)

func req(title string) pipeline.Request {
	return pipeline.Request{Item: pipeline.Item{ID: "n1", Ticker: "ACME", Title: title}}
}

// recorder is a listener that keeps what it hears.
type recorder struct {
	mu     sync.Mutex
	events []pipeline.Event
}

func (r *recorder) listen(_ context.Context, ev pipeline.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func TestEventsPreliminaryThenFinalWithOnePrescore(t *testing.T) {
	var global, call recorder
	e := newEnv(t, pipeline.WithListener(global.listen))
	e.local.SetDefault(upstreamtest.Answer(upstreamtest.BearishJSON))
	a, err := e.p.Judge(t.Context(), req(strong), call.listen)
	if err != nil {
		t.Fatal(err)
	}
	if a.Provenance.Tier != router.TierLocal || a.Label != lexicon.LabelBearish || a.Phase != pipeline.PhaseFinal {
		t.Fatalf("answer %+v, want the model's bearish final answer", a)
	}
	if n := e.scorer.calls.Load(); n != 1 {
		t.Errorf("the lexicon scored the item %d times, want once", n)
	}
	for name, r := range map[string]*recorder{"pipeline listener": &global, "call listener": &call} {
		if len(r.events) != 2 {
			t.Fatalf("%s heard %d events, want 2", name, len(r.events))
		}
		pre, fin := r.events[0], r.events[1]
		if pre.Answer.Phase != pipeline.PhasePreliminary || pre.Answer.Provenance.Tier != router.TierLexicon || pre.Answer.Label != lexicon.LabelBullish {
			t.Errorf("%s: first event %+v, want the lexicon's bullish preliminary answer", name, pre.Answer)
		}
		if fin.Answer.Phase != pipeline.PhaseFinal || fin.Answer.Label != lexicon.LabelBearish || fin.Err != nil {
			t.Errorf("%s: second event %+v (%v), want the model's final answer", name, fin.Answer, fin.Err)
		}
		if pre.Answer.Prescore.Score != fin.Answer.Prescore.Score || pre.Request.Item.ID != "n1" {
			t.Errorf("%s: prescores %v and %v differ, or the request is not the item's", name, pre.Answer.Prescore, fin.Answer.Prescore)
		}
	}
}

func TestJudgeValidates(t *testing.T) {
	minPre := func(v float64) *float64 { return &v }
	tests := []struct {
		name  string
		mod   func(*pipeline.Request)
		field string
	}{
		{"blank title", func(r *pipeline.Request) { r.Item.Title = " " }, "item.title"},
		{"long title", func(r *pipeline.Request) { r.Item.Title = strings.Repeat("é", 1001) }, "item.title"},
		{"invalid UTF-8", func(r *pipeline.Request) { r.Item.Summary = "a\xffb" }, "item.summary"},
		{"long ticker", func(r *pipeline.Request) { r.Item.Ticker = "ABCDEFGHIJKLMNOPQ" }, "item.ticker"},
		{"repeated tier", func(r *pipeline.Request) {
			r.Options.AllowedTiers = []router.Tier{router.TierLocal, router.TierLocal}
		}, "options.allowed_tiers[1]"},
		{"too many tiers", func(r *pipeline.Request) { r.Options.AllowedTiers = make([]router.Tier, 5) }, "options.allowed_tiers"},
		{"unknown tier", func(r *pipeline.Request) { r.Options.AllowedTiers = []router.Tier{7} }, "options.allowed_tiers[0]"},
		{"min prescore", func(r *pipeline.Request) { r.Options.MinPrescore = minPre(2) }, "options.min_prescore"},
		{"alert channel", func(r *pipeline.Request) { r.Options.Alert = &pipeline.Alert{Channel: strings.Repeat("c", 65)} }, "options.alert.channel"},
		{"alert price", func(r *pipeline.Request) { r.Options.Alert = &pipeline.Alert{LastPrice: -1} }, "options.alert.last_price"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(strong)
			tt.mod(&r)
			_, err := e.p.Judge(t.Context(), r)
			var ferr *pipeline.FieldError
			if !errors.As(err, &ferr) || ferr.Field != tt.field {
				t.Fatalf("error %v, want a *FieldError on %s", err, tt.field)
			}
		})
	}
	if e.local.Calls() != 0 || e.scorer.calls.Load() != 0 {
		t.Errorf("bad input reached the lexicon (%d) or the model (%d)", e.scorer.calls.Load(), e.local.Calls())
	}
	if s := e.p.Stats(); s.Invalid != uint64(len(tests)) {
		t.Errorf("invalid counted %d, want %d", s.Invalid, len(tests))
	}
}

func TestPrefilter(t *testing.T) {
	zero := 0.0
	tests := []struct {
		name        string
		title       string
		opts        pipeline.Options
		prefiltered bool
	}{
		{"weak item answered by the lexicon", weak, pipeline.Options{}, true},
		{"strong item goes to the model", strong, pipeline.Options{}, false},
		{"min_prescore 0 sends a weak item on", weak, pipeline.Options{MinPrescore: &zero}, false},
		{"require_llm is never prefiltered", weak, pipeline.Options{RequireLLM: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := req(tt.title)
			r.Options = tt.opts
			a, err := e.p.Judge(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			called := e.local.Calls() > 0
			if a.Provenance.Prefiltered != tt.prefiltered || called == tt.prefiltered {
				t.Errorf("prefiltered %v with %d model calls, want prefiltered %v", a.Provenance.Prefiltered, e.local.Calls(), tt.prefiltered)
			}
			s := e.p.Stats()
			if s.PrefilterSeen != 1 || (s.PrefilterSkipped == 1) != tt.prefiltered {
				t.Errorf("prefilter counts %+v", s)
			}
		})
	}
}

func TestRequireLLMIsUnavailableWithTheReason(t *testing.T) {
	e := newEnv(t)
	e.local.SetDefault(upstreamtest.OllamaModelNotFound("mistral"))
	r := req(strong)
	r.Options.RequireLLM = true
	_, err := e.p.Judge(t.Context(), r)
	var un *pipeline.UnavailableError
	if !errors.As(err, &un) || !strings.Contains(un.Reason, "local: error (http 404") {
		t.Fatalf("error %v, want an *UnavailableError saying what the local tier did", err)
	}
	r.Options.RequireLLM = false
	a, err := e.p.Judge(t.Context(), r)
	if err != nil || !a.Provenance.Degraded || a.Provenance.Tier != router.TierLexicon {
		t.Fatalf("without require_llm: %+v %v, want the lexicon's answer, degraded", a.Provenance, err)
	}
	if tiers := a.Provenance.Tiers; len(tiers) != 2 || tiers[1].Tier != router.TierLexicon {
		t.Errorf("tiers %+v, want local then the lexicon", tiers)
	}
	if s := e.p.Stats(); s.Failed != 1 || s.Degraded != 1 || s.Answered[router.TierLexicon] != 1 {
		t.Errorf("stats %+v, want one failure (require_llm) and one degraded lexicon answer", s)
	}
}

// mapCache is the smallest cache the seam takes: exact title matches,
// nothing in flight to share.
type mapCache struct {
	mu     sync.Mutex
	m      map[string]pipeline.Answer
	stored int
}

func (c *mapCache) Claim(_ context.Context, r *pipeline.Request, _ lexicon.Prescore, lookup bool) (pipeline.Answer, bool, func(context.Context, pipeline.Answer, bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.m[r.Item.Title]; ok && lookup {
		a.Provenance.CacheHit = pipeline.CacheExact
		return a, true, nil
	}
	return pipeline.Answer{}, false, func(_ context.Context, a pipeline.Answer, keep bool) {
		if keep {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.m[r.Item.Title] = a
			c.stored++
		}
	}
}

func TestCacheSeam(t *testing.T) {
	cache := &mapCache{m: map[string]pipeline.Answer{}}
	e := newEnv(t, pipeline.WithCache(cache))
	e.local.SetDefault(upstreamtest.Answer(upstreamtest.BearishJSON))
	first, err := e.p.Judge(t.Context(), req(strong))
	if err != nil || first.Provenance.CacheHit != pipeline.CacheMiss || cache.stored != 1 {
		t.Fatalf("first: %+v %v (stored %d), want a miss judged by the model and stored", first.Provenance, err, cache.stored)
	}
	r := req(strong)
	r.Item.ID = "n2"
	second, err := e.p.Judge(t.Context(), r)
	if err != nil || second.Provenance.CacheHit != pipeline.CacheExact || second.ID != "n2" || second.Label != lexicon.LabelBearish {
		t.Fatalf("second: %+v %v, want the stored answer under the new id", second, err)
	}
	if e.local.Calls() != 1 {
		t.Errorf("%d model calls, want 1", e.local.Calls())
	}
	r.Options.SkipCache = true
	third, err := e.p.Judge(t.Context(), r)
	if err != nil || third.Provenance.CacheHit != pipeline.CacheNotConsulted || e.local.Calls() != 2 || cache.stored != 2 {
		t.Fatalf("skip_cache: %+v %v with %d calls (stored %d), want a fresh judgement, stored", third.Provenance, err, e.local.Calls(), cache.stored)
	}
	// A degraded answer is never stored.
	e.local.SetDefault(upstreamtest.OllamaModelNotFound("mistral"))
	if _, err := e.p.Judge(t.Context(), req("Acme misses estimates and cuts guidance")); err != nil {
		t.Fatal(err)
	}
	if cache.stored != 2 {
		t.Errorf("stored %d answers, want only the model's two", cache.stored)
	}
}

// TestAbortAnswersAtOnce: when the server's shutdown grace runs out, a call
// waiting on a hung model gets its lexicon answer at once, saying why.
func TestAbortAnswersAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.local.SetDefault(upstreamtest.Hang())
		done := make(chan pipeline.Answer)
		go func() {
			a, _ := e.p.Judge(context.Background(), req(strong))
			done <- a
		}()
		synctest.Wait()
		start := time.Now()
		e.p.Abort()
		a := <-done
		if !a.Provenance.Degraded || !strings.Contains(a.Provenance.Reason, "the server is shutting down") || time.Since(start) != 0 {
			t.Fatalf("%+v after %v, want the lexicon's answer at once, saying the server is shutting down", a.Provenance, time.Since(start))
		}
	})
}

// TestAnswerMargin: with a deadline, the router gets the deadline less the
// margin; with none, the default deadline less the margin, within which
// the tier's own timeout ends the hang first.
func TestAnswerMargin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.local.SetDefault(upstreamtest.Hang())
		for _, tt := range []struct {
			deadline, want time.Duration
		}{
			{2 * time.Second, 1900 * time.Millisecond},
			{300 * time.Millisecond, 0}, // 0.24 s left is under the least time a tier needs
			{0, 15 * time.Second},
		} {
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			start := time.Now()
			a, err := e.p.Judge(ctx, req(strong))
			if err != nil || !a.Provenance.Degraded || time.Since(start) != tt.want {
				t.Errorf("deadline %v: %+v %v after %v, want degraded after %v", tt.deadline, a.Provenance, err, time.Since(start), tt.want)
			}
		}
	})
}

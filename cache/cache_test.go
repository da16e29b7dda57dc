package cache_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/catalystbot/sentiment/cache"
	"github.com/catalystbot/sentiment/internal/clocktest"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var scorer = func() *lexicon.Scorer {
	s, err := lexicon.New()
	if err != nil {
		panic(err)
	}
	return s
}()

// newCache is a memory cache with the production guard.
func newCache(t *testing.T, cfg cache.Config, opts ...cache.Option) *cache.Cache {
	t.Helper()
	if cfg.Similarity == 0 {
		cfg.Similarity = 0.95
	}
	if cfg.TTL == 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "v1|mistral"
	}
	c, err := cache.New(cfg, cache.NewGuard(scorer.Weighs), slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func item(id, ticker, title string) *pipeline.Request {
	return &pipeline.Request{Item: pipeline.Item{ID: id, Ticker: ticker, Title: title}}
}

// answer is a model's answer to r, as the pipeline would hand it over.
func answer(r *pipeline.Request, label lexicon.Label, score float64) pipeline.Answer {
	return pipeline.Answer{ID: r.Item.ID, Label: label, Score: score, Confidence: 0.9, Rationale: "the model's reason",
		Provenance: pipeline.Provenance{Tier: router.TierLocal, Model: "mistral", PromptVersion: "v1"}}
}

// judge claims r; on a miss it "asks the model" (label) and finishes.
func judge(t *testing.T, c *cache.Cache, r *pipeline.Request, label lexicon.Label) (pipeline.Answer, bool) {
	t.Helper()
	pre := scorer.Score(r.Item.Text())
	a, hit, finish := c.Claim(t.Context(), r, pre, true)
	if hit {
		return a, true
	}
	a = answer(r, label, pre.Score)
	finish(t.Context(), a, true)
	return a, false
}

// lookup claims r and, on a miss, finishes with nothing to keep: it
// looks without storing.
func lookup(t *testing.T, c *cache.Cache, r *pipeline.Request) bool {
	t.Helper()
	_, hit, finish := c.Claim(t.Context(), r, scorer.Score(r.Item.Text()), true)
	if !hit {
		finish(t.Context(), pipeline.Answer{}, false)
	}
	return hit
}

func TestExactAndNearHits(t *testing.T) {
	c := newCache(t, cache.Config{})
	first := item("pr-1", "ACME", "Acme Inc. Receives FDA Approval for Its Cancer Drug")
	if _, hit := judge(t, c, first, lexicon.LabelBullish); hit {
		t.Fatal("a hit in an empty cache")
	}
	tests := []struct {
		name  string
		title string
		kind  pipeline.CacheHit
	}{
		{"wire prefix and case", "PRESS RELEASE: ACME INC. RECEIVES FDA APPROVAL FOR ITS CANCER DRUG", pipeline.CacheExact},
		{"newswire tag", "Acme Inc. (NASDAQ: ACME) Receives FDA Approval for Its Cancer Drug", pipeline.CacheExact},
		{"dropped stop word and suffix", "Acme receives FDA approval for cancer drug", pipeline.CacheNear},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, hit := judge(t, c, item("pr-2", "ACME", tt.title), lexicon.LabelBearish)
			if !hit || a.Provenance.CacheHit != tt.kind || a.Label != lexicon.LabelBullish || a.Provenance.CacheSourceID != "pr-1" {
				t.Fatalf("%+v (hit %v), want a %v hit with pr-1's bullish answer", a.Provenance, hit, tt.kind)
			}
			if sim := a.Provenance.CacheSimilarity; (tt.kind == pipeline.CacheExact && sim != 1) || sim < 0.95 {
				t.Errorf("similarity %g for a %v hit", sim, tt.kind)
			}
		})
	}
	// The same words for another ticker are another company's news.
	if _, hit := judge(t, c, item("pr-3", "GLOBX", "Acme Inc. Receives FDA Approval for Its Cancer Drug"), lexicon.LabelBullish); hit {
		t.Error("another ticker hit ACME's answer")
	}
	s := c.Stats()
	if s.ExactHits != 2 || s.NearHits != 1 || s.Misses != 2 || s.Stored != 2 || s.Backend != "memory" {
		t.Errorf("stats %+v", s)
	}
}

// TestOppositeMeaningNeverHits: the texts are as alike as wording gets,
// and the guard still refuses, counted.
func TestOppositeMeaningNeverHits(t *testing.T) {
	pairs := [][2]string{
		{"FDA approves Acme's cancer drug", "FDA rejects Acme's cancer drug"},
		{"Acme operating profit rose to EUR 5.2 mn", "Acme operating profit fell to EUR 3.1 mn"},
		{"Acme beats third-quarter estimates", "Acme misses third-quarter estimates"},
		{"Acme raises full-year guidance", "Acme cuts full-year guidance"},
		{"Acme net sales increased by 12%", "Acme net sales increased by 21%"},
		{"Analyst upgrades Acme to buy", "Analyst downgrades Acme to sell"},
		{"Acme's loss narrowed in the quarter", "Acme's loss widened in the quarter"},
		{"Acme will not cut its dividend", "Acme will cut its dividend"},
	}
	for _, p := range pairs {
		t.Run(p[1], func(t *testing.T) {
			// Even at the lowest threshold allowed, only the guard stands
			// between these pairs.
			c := newCache(t, cache.Config{Similarity: 0.5})
			judge(t, c, item("a", "ACME", p[0]), lexicon.LabelBullish)
			if a, hit := judge(t, c, item("b", "ACME", p[1]), lexicon.LabelBearish); hit {
				t.Fatalf("%q hit the answer stored for %q: %+v", p[1], p[0], a)
			}
		})
	}
}

func TestTTLRunsFromWhenTheAnswerWasMade(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	c := newCache(t, cache.Config{TTL: time.Hour, Now: clock.Now})
	r := item("a", "ACME", "Acme raises full-year guidance")
	judge(t, c, r, lexicon.LabelBullish)
	clock.Advance(59 * time.Minute)
	if _, hit := judge(t, c, r, lexicon.LabelBullish); !hit {
		t.Fatal("no hit 59 minutes into an hour's TTL")
	}
	clock.Advance(time.Minute)
	if _, hit := judge(t, c, r, lexicon.LabelBullish); hit {
		t.Fatal("a hit an hour after the answer was made: the hit at 59 minutes extended it")
	}
}

func TestPerTickerBoundEvictsTheLeastRecentlyUsed(t *testing.T) {
	c := newCache(t, cache.Config{PerTicker: 3})
	titles := []string{"Acme wins Navy contract", "Acme opens Ohio plant", "Acme names new CFO", "Acme prices bond offering"}
	for i, title := range titles[:3] {
		judge(t, c, item(fmt.Sprint(i), "ACME", title), lexicon.LabelNeutral)
	}
	judge(t, c, item("x", "ACME", titles[0]), lexicon.LabelNeutral) // the first is used again
	judge(t, c, item("3", "ACME", titles[3]), lexicon.LabelNeutral) // a fourth evicts the second
	for i, want := range []bool{true, false, true, true} {
		if hit := lookup(t, c, item("q", "ACME", titles[i])); hit != want {
			t.Errorf("%q: hit %v, want %v", titles[i], hit, want)
		}
	}
	if s := c.Stats(); s.Evicted < 1 {
		t.Errorf("evicted %d", s.Evicted)
	}
}

func TestMemoryBounds(t *testing.T) {
	c := newCache(t, cache.Config{MaxEntries: 10})
	for i := range 25 {
		judge(t, c, item(fmt.Sprint(i), fmt.Sprintf("T%d", i), fmt.Sprintf("Company %d wins a contract", i)), lexicon.LabelBullish)
	}
	if s := c.Stats(); s.Entries != 10 || s.Evicted != 15 {
		t.Errorf("stats %+v, want 10 entries kept and 15 evicted", s)
	}
	c = newCache(t, cache.Config{MaxBytes: 4 << 10})
	for i := range 100 {
		judge(t, c, item(fmt.Sprint(i), fmt.Sprintf("T%d", i), fmt.Sprintf("Company %d wins a contract", i)), lexicon.LabelBullish)
	}
	if s := c.Stats(); s.Entries == 0 || s.Entries > 10 {
		t.Errorf("stats %+v, want the 4 KiB bound to hold a few entries", s)
	}
}

func TestSkipCacheStoresWithoutLookingUp(t *testing.T) {
	c := newCache(t, cache.Config{})
	r := item("a", "ACME", "Acme raises full-year guidance")
	judge(t, c, r, lexicon.LabelBullish)
	pre := scorer.Score(r.Item.Text())
	_, hit, finish := c.Claim(t.Context(), r, pre, false)
	if hit || finish == nil {
		t.Fatalf("skip_cache: hit %v, want a miss with a finish to store the fresh answer", hit)
	}
	finish(t.Context(), answer(r, lexicon.LabelBearish, -0.5), true)
	if a, hit := judge(t, c, r, lexicon.LabelBullish); !hit || a.Label != lexicon.LabelBearish {
		t.Errorf("after skip_cache: %+v, want the fresh answer stored", a)
	}
}

// pipelineOver is the real request path with the cache, over a router
// whose local tier is a fake Ollama in memory.
func pipelineOver(t *testing.T, c *cache.Cache) (*pipeline.Pipeline, *upstreamtest.Fake) {
	t.Helper()
	local := upstreamtest.NewMemory(t, upstreamtest.Ollama)
	rt, err := router.New(router.Config{
		MaxRetries: 1, MinTierTime: 250 * time.Millisecond,
		Breaker: router.BreakerConfig{Failures: 100, Cooldown: time.Minute, HalfOpenSuccesses: 1},
		Tiers: []router.TierConfig{{Tier: router.TierLocal, Model: "mistral", Timeout: 15 * time.Second,
			Provider: router.NewOllama(ollama.New(ollama.Config{BaseURL: local.URL, Model: "mistral"}, local.Client()))}},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Config{MinPrescore: 0.2, DefaultDeadline: 30 * time.Second, AnswerMargin: 100 * time.Millisecond},
		scorer, rt, pipeline.WithCache(c))
	if err != nil {
		t.Fatal(err)
	}
	return p, local
}

// burstVariants are one release as twenty wires and feeds send it.
var burstVariants = []string{
	"Acme Receives FDA Approval for Its Cancer Drug",
	"PRESS RELEASE: Acme Receives FDA Approval for Its Cancer Drug",
	"Acme Receives FDA Approval for Its Cancer Drug (GLOBE NEWSWIRE)",
	"Acme Inc. Receives FDA Approval for Its Cancer Drug",
	"Acme Inc. (NASDAQ: ACME) Receives FDA Approval for Its Cancer Drug",
	"ACME RECEIVES FDA APPROVAL FOR ITS CANCER DRUG",
	"Acme receives FDA approval for its cancer drug.",
	"Acme receives FDA approval for cancer drug",
	"Acme Receives FDA Approval for Its Cancer Drug - Reuters",
	"UPDATE: Acme Receives FDA Approval for Its Cancer Drug",
	"Acme Receives FDA Approval For Its Cancer Drug | Bloomberg",
	"NEWS RELEASE - Acme Receives FDA Approval for Its Cancer Drug",
	"Acme Corp. receives FDA approval for its cancer drug",
	"Acme receives the FDA approval for its cancer drug",
	"acme receives fda approval for its cancer drug",
	"Acme Receives FDA Approval for its Cancer Drug!",
	"Acme (NYSE:ACME) receives FDA approval for its cancer drug",
	"BREAKING: Acme receives FDA approval for its cancer drug",
	"Acme receives FDA approval for its cancer drug -- Business Wire",
	"Acme Receives FDA Approval for Its Cancer Drug (Reuters)",
}

// TestABurstCostsOneModelCall: the owner's burst, as the issue of the
// cache states it: the same release at once from twenty wires, and the
// same request fifty times at once. Each costs one model call.
func TestABurstCostsOneModelCall(t *testing.T) {
	run := func(t *testing.T, titles []string) (calls int, hits map[pipeline.CacheHit]int, joined uint64) {
		c := newCache(t, cache.Config{})
		p, local := pipelineOver(t, c)
		local.SetDefault(upstreamtest.Delay(time.Second, upstreamtest.Answer(upstreamtest.BullishJSON)))
		var wg sync.WaitGroup
		var mu sync.Mutex
		hits = map[pipeline.CacheHit]int{}
		for i, title := range titles {
			wg.Go(func() {
				a, err := p.Judge(context.Background(), pipeline.Request{Item: pipeline.Item{ID: fmt.Sprint(i), Ticker: "ACME", Title: title}})
				if err != nil || a.Label != lexicon.LabelBullish || a.Provenance.Degraded {
					t.Errorf("item %d (%q): %+v %v", i, title, a.Provenance, err)
				}
				mu.Lock()
				hits[a.Provenance.CacheHit]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return local.Calls(), hits, c.Stats().Joined
	}
	t.Run("twenty wires", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			calls, hits, joined := run(t, burstVariants)
			if calls != 1 || hits[pipeline.CacheMiss] != 1 || hits[pipeline.CacheExact]+hits[pipeline.CacheNear] != 19 || joined != 19 {
				t.Fatalf("%d model calls, answers by cache outcome %v, %d joined; want 1 call, 1 miss and 19 hits", calls, hits, joined)
			}
		})
	})
	t.Run("fifty identical", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			titles := make([]string, 50)
			for i := range titles {
				titles[i] = burstVariants[0]
			}
			calls, hits, _ := run(t, titles)
			if calls != 1 || hits[pipeline.CacheExact] != 49 {
				t.Fatalf("%d model calls, answers by cache outcome %v; want 1 call and 49 exact hits", calls, hits)
			}
		})
	})
}

// TestAWaiterWhoseDeadlineEndsGetsTheDegradedAnswer: a call waiting on
// another's model call gets the lexicon's answer by its own deadline,
// never an error.
func TestAWaiterWhoseDeadlineEndsGetsTheDegradedAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, cache.Config{})
		p, local := pipelineOver(t, c)
		local.SetDefault(upstreamtest.Delay(5*time.Second, upstreamtest.Answer(upstreamtest.BullishJSON)))
		title := "Acme raises full-year guidance"
		go func() {
			_, _ = p.Judge(context.Background(), pipeline.Request{Item: pipeline.Item{ID: "leader", Ticker: "ACME", Title: title}})
		}()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		a, err := p.Judge(ctx, pipeline.Request{Item: pipeline.Item{ID: "waiter", Ticker: "ACME", Title: title}})
		if err != nil || !a.Provenance.Degraded || time.Since(start) >= time.Second {
			t.Fatalf("%+v %v after %v, want the lexicon's answer, degraded, inside the second", a.Provenance, err, time.Since(start))
		}
		synctest.Wait()
		time.Sleep(5 * time.Second) // the leader's call ends
	})
}

// TestWaitersJudgeThemselvesWhenTheLeaderFails: no answer worth keeping
// came from the call they waited on, so each makes its own.
func TestWaitersJudgeThemselvesWhenTheLeaderFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, cache.Config{})
		p, local := pipelineOver(t, c)
		local.Push(upstreamtest.Delay(time.Second, upstreamtest.OllamaModelNotFound("mistral")))
		local.SetDefault(upstreamtest.Answer(upstreamtest.BullishJSON))
		var wg sync.WaitGroup
		results := make([]pipeline.Answer, 3)
		for i := range 3 {
			wg.Go(func() {
				results[i], _ = p.Judge(context.Background(), pipeline.Request{Item: pipeline.Item{ID: fmt.Sprint(i), Ticker: "ACME", Title: "Acme raises full-year guidance"}})
			})
			if i == 0 {
				synctest.Wait() // the first leads
			}
		}
		wg.Wait()
		degraded := 0
		for _, a := range results {
			if a.Provenance.Degraded {
				degraded++
			}
		}
		if degraded != 1 || local.Calls() < 2 {
			t.Errorf("%d degraded answers with %d model calls, want only the leader's degraded and the waiters answered by the model", degraded, local.Calls())
		}
		if s := c.Stats(); s.Stored == 0 || strings.Contains(fmt.Sprint(s), "-") {
			t.Errorf("stats %+v, want the waiters' answer stored", s)
		}
	})
}

// TestEmbedderDecidesSimilarity: with an embedding model configured,
// near-duplicates are measured by the cosine of embeddings (Ollama's
// /api/embed, faked); the meaning guard still refuses the opposite news;
// and when the embedding call fails, word shingles decide.
func TestEmbedderDecidesSimilarity(t *testing.T) {
	fake := upstreamtest.New(t, upstreamtest.Ollama)
	emb := ollama.Embedder{Client: ollama.New(ollama.Config{BaseURL: fake.URL}, fake.Client()), Model: "nomic-embed-text"}
	c := newCache(t, cache.Config{Embedder: emb, Similarity: 0.9})
	judge(t, c, item("a", "ACME", "Acme wins large Navy contract for radar systems"), lexicon.LabelBullish)
	// One content word dropped: 0.9 alike by embedding, under 0.9 by shingles.
	r := item("b", "ACME", "Acme wins Navy contract for radar systems")
	a, hit := judge(t, c, r, lexicon.LabelBearish)
	if !hit || a.Provenance.CacheHit != pipeline.CacheNear || a.Label != lexicon.LabelBullish {
		t.Fatalf("%+v (hit %v), want a near hit by embedding", a.Provenance, hit)
	}
	if jac := shingleSimilarity("Acme wins large Navy contract for radar systems", "Acme wins Navy contract for radar systems"); jac >= 0.9 {
		t.Fatalf("shingles say %g: the case does not tell the embedder from them", jac)
	}
	if _, hit := judge(t, c, item("c", "ACME", "Acme loses large Navy contract for radar systems"), lexicon.LabelBearish); hit {
		t.Fatal("the opposite news hit through the embedder")
	}
	fake.Close() // the embedder fails: shingles decide, and the exact key still hits
	if _, hit := judge(t, c, item("d", "ACME", "PRESS RELEASE: Acme wins large Navy contract for radar systems"), lexicon.LabelBearish); !hit {
		t.Fatal("no exact hit while the embedder is down")
	}
}

func shingleSimilarity(a, b string) float64 {
	ta, tb := cache.Read(a, ""), cache.Read(b, "")
	return cache.Similarity(&ta, &tb)
}

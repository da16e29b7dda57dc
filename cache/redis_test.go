package cache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/cache"
	"github.com/catalystbot/sentiment/internal/clocktest"
	"github.com/catalystbot/sentiment/internal/redistest"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/pipeline"
)

// redisClient is a client of srv set up as the service sets up its own,
// closed when tb ends.
func redisClient(tb testing.TB, srv *redistest.Server) *redis.Client {
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
	tb.Cleanup(func() { client.Close() })
	return client
}

// replica is one cache on its own client of srv, as one replica has.
func replica(t *testing.T, srv *redistest.Server, cfg cache.Config, opts ...cache.RedisOption) *cache.Cache {
	t.Helper()
	return newCache(t, cfg, cache.WithRedis(redisClient(t, srv), "test:cache", opts...))
}

func TestRedisReplicasShareHits(t *testing.T) {
	srv := redistest.Start(t)
	a, b := replica(t, srv, cache.Config{}), replica(t, srv, cache.Config{})
	judge(t, a, item("pr-1", "ACME", "Acme Inc. Receives FDA Approval for Its Cancer Drug"), lexicon.LabelBullish)
	a.Flush()
	got, hit := judge(t, b, item("pr-2", "ACME", "PRESS RELEASE: Acme Inc. Receives FDA Approval for Its Cancer Drug"), lexicon.LabelBearish)
	if !hit || got.Provenance.CacheHit != pipeline.CacheExact || got.Label != lexicon.LabelBullish || got.Provenance.CacheSourceID != "pr-1" {
		t.Fatalf("replica b: %+v (hit %v), want replica a's answer", got.Provenance, hit)
	}
	got, hit = judge(t, b, item("pr-3", "ACME", "Acme receives FDA approval for cancer drug"), lexicon.LabelBearish)
	if !hit || got.Label != lexicon.LabelBullish {
		t.Fatalf("near hit on replica b: %+v (hit %v)", got.Provenance, hit)
	}
	if _, hit := judge(t, b, item("pr-4", "ACME", "FDA rejects Acme's cancer drug"), lexicon.LabelBearish); hit {
		t.Fatal("the opposite news hit")
	}
	if s := b.Stats(); s.Backend != "redis" || s.ExactHits != 1 || s.NearHits != 1 {
		t.Errorf("replica b stats %+v", s)
	}
}

func TestRedisTTL(t *testing.T) {
	srv := redistest.Start(t)
	clock := clocktest.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	cfg := cache.Config{TTL: time.Hour, Now: clock.Now}
	a, b := replica(t, srv, cfg), replica(t, srv, cfg)
	r := item("a", "ACME", "Acme raises full-year guidance")
	judge(t, a, r, lexicon.LabelBullish)
	a.Flush()
	clock.Advance(59 * time.Minute)
	if !lookup(t, b, r) {
		t.Fatal("no hit 59 minutes into an hour's TTL")
	}
	b.Flush()
	clock.Advance(time.Minute)
	if lookup(t, b, r) {
		t.Fatal("a hit an hour after the answer was made")
	}
}

func TestRedisPerTickerBound(t *testing.T) {
	srv := redistest.Start(t)
	clock := clocktest.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	c := replica(t, srv, cache.Config{PerTicker: 3, Now: clock.Now})
	titles := []string{"Acme wins Navy contract", "Acme opens Ohio plant", "Acme names new CFO", "Acme prices bond offering"}
	for i, title := range titles[:3] {
		judge(t, c, item(string(rune('a'+i)), "ACME", title), lexicon.LabelNeutral)
		c.Flush()
		clock.Advance(time.Second)
	}
	lookup(t, c, item("x", "ACME", titles[0])) // used again: the second is now the oldest
	c.Flush()
	clock.Advance(time.Second)
	judge(t, c, item("d", "ACME", titles[3]), lexicon.LabelNeutral)
	c.Flush()
	for i, want := range []bool{true, false, true, true} {
		if hit := lookup(t, c, item("q", "ACME", titles[i])); hit != want {
			t.Errorf("%q: hit %v, want %v", titles[i], hit, want)
		}
	}
}

// TestRedisOutage: Redis goes away mid-test. Requests go on, answered and
// stored in memory; Stats says so; once Redis is back, answers are shared
// again.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	clock := clocktest.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	c := replica(t, srv, cache.Config{Now: clock.Now}, cache.WithRetryBackoff(time.Minute))
	judge(t, c, item("a", "ACME", "Acme raises full-year guidance"), lexicon.LabelBullish)
	c.Flush()

	srv.Stop()
	r := item("b", "ACME", "Acme wins Navy contract")
	if _, hit := judge(t, c, r, lexicon.LabelBullish); hit {
		t.Fatal("a hit for news never judged")
	}
	c.Flush()
	if s := c.Stats(); !strings.HasPrefix(s.Backend, "memory (redis unreachable: ") {
		t.Fatalf("backend %q while Redis is down", s.Backend)
	}
	if !lookup(t, c, r) {
		t.Fatal("the answer made during the outage was not kept in memory")
	}

	srv.Start()
	clock.Advance(time.Minute) // the back-off has passed: the next call probes Redis
	judge(t, c, item("c", "ACME", "Acme names new CFO"), lexicon.LabelNeutral)
	c.Flush()
	if s := c.Stats(); s.Backend != "redis" {
		t.Fatalf("backend %q after Redis came back", s.Backend)
	}
	other := replica(t, srv, cache.Config{Now: clock.Now})
	if !lookup(t, other, item("q", "ACME", "Acme names new CFO")) {
		t.Error("an answer stored after the outage is not shared")
	}
}

// TestRedisSharesEmbeddings: the embedding stored beside an answer lets
// another replica find it by cosine.
func TestRedisSharesEmbeddings(t *testing.T) {
	srv := redistest.Start(t)
	fake := upstreamtest.New(t, upstreamtest.Ollama)
	emb := ollama.Embedder{Client: ollama.New(ollama.Config{BaseURL: fake.URL}, fake.Client()), Model: "nomic-embed-text"}
	cfg := cache.Config{Embedder: emb, Similarity: 0.9}
	a, b := replica(t, srv, cfg), replica(t, srv, cfg)
	judge(t, a, item("a", "ACME", "Acme wins large Navy contract for radar systems"), lexicon.LabelBullish)
	a.Flush()
	got, hit := judge(t, b, item("b", "ACME", "Acme wins Navy contract for radar systems"), lexicon.LabelBearish)
	if !hit || got.Provenance.CacheHit != pipeline.CacheNear || got.Provenance.CacheSimilarity < 0.9 {
		t.Fatalf("replica b: %+v (hit %v), want a near hit by the embedding replica a stored", got.Provenance, hit)
	}
}

// TestNamespaceSeparatesModelsAndPrompts: replicas that judge with another
// model or prompt share a Redis but never each other's answers.
func TestNamespaceSeparatesModelsAndPrompts(t *testing.T) {
	srv := redistest.Start(t)
	v1 := replica(t, srv, cache.Config{Namespace: "v1|local=mistral"})
	v2 := replica(t, srv, cache.Config{Namespace: "v2|local=mistral"})
	other := replica(t, srv, cache.Config{Namespace: "v1|local=qwen3"})
	same := replica(t, srv, cache.Config{Namespace: "v1|local=mistral"})
	r := item("a", "ACME", "Acme raises full-year guidance")
	judge(t, v1, r, lexicon.LabelBullish)
	v1.Flush()
	if lookup(t, v2, r) || lookup(t, other, r) {
		t.Fatal("an answer crossed to another prompt or model")
	}
	if !lookup(t, same, r) {
		t.Fatal("no hit in the same namespace")
	}
}

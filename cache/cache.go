// Package cache keeps the models' answers so that a press release, sent
// again by another wire a little differently worded, is judged once.
//
// A lookup tries the exact key first: the ticker, the item's text with the
// wires' boilerplate, case and punctuation gone (Read), and a namespace
// naming the models and the prompt version, so that a new model or prompt
// never serves old answers. Then, within the same ticker, the nearest
// stored text whose similarity reaches the threshold (Similarity: exact
// Jaccard over word shingles; headlines are short and a ticker holds at
// most a hundred answers, so no sketch is needed). A near hit must also
// pass the meaning guard (Guard): two texts that differ in a number, a
// negation, an opposed financial term or any word that carries sentiment,
// or whose prescores disagree in sign, never share an answer, however
// alike they look.
//
// Concurrent calls for the same or a near-identical item share one model
// call: the first claims the item, the others wait for its answer (within
// their own deadlines) instead of calling the model too.
//
// Only a model's answer is stored, never a degraded or prefiltered one.
// An answer lives for the TTL from when it was made; a hit never extends
// it. Answers live in memory, bounded by entries, bytes and a hundred per
// ticker (least recently used first out), or with Redis in Redis, shared
// by every replica; while Redis cannot be reached the memory store
// answers, and Redis is tried again after a short back-off.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
)

// Config is the cache's policy.
type Config struct {
	// Similarity is the least similarity (0.5 to 1) of a near hit
	// (LLM_CACHE_SIMILARITY).
	Similarity float64
	// TTL is how long an answer lives after it was made (LLM_CACHE_TTL).
	TTL time.Duration
	// PerTicker bounds the answers kept for one ticker [100].
	PerTicker int
	// MaxEntries and MaxBytes bound the memory store [100,000, 64 MiB].
	MaxEntries int
	MaxBytes   int64
	// Namespace names what produced the answers (the models and the
	// prompt version): answers of another namespace are never served.
	Namespace string
	// Now is the clock of answers' ages; nil is time.Now.
	Now func() time.Time
	// Embedder, when set, measures near-duplicates by the cosine of
	// embeddings instead of word shingles (the meaning guard applies
	// either way). A lookup then costs an embedding call; when it fails,
	// the shingles decide.
	Embedder Embedder
}

// Embedder turns a text into a vector: an embedding model (Ollama's
// /api/embed).
type Embedder interface {
	Embed(ctx context.Context, text string) ([]float32, error)
}

// Defaults of the bounds.
const (
	DefaultPerTicker  = 100
	DefaultMaxEntries = 100_000
	DefaultMaxBytes   = 64 << 20
)

// Cache implements the pipeline's cache. It is safe for concurrent use.
type Cache struct {
	cfg   Config
	guard *Guard
	log   *slog.Logger
	mem   *memStore
	rdb   *redisStore // nil without Redis
	fl    flights
	stats counters
	// bg tracks the writes to Redis that run after the answer has gone.
	bg sync.WaitGroup
}

// Option adjusts a Cache.
type Option func(*Cache)

// WithRedis keeps the answers in Redis under prefix, shared by every
// replica that uses the same Redis and prefix. The client stays the
// caller's.
func WithRedis(client redis.UniversalClient, prefix string, opts ...RedisOption) Option {
	return func(c *Cache) { c.rdb = newRedisStore(client, prefix, c, opts...) }
}

// New builds the cache. guard decides near hits.
func New(cfg Config, guard *Guard, log *slog.Logger, opts ...Option) (*Cache, error) {
	if guard == nil {
		return nil, errors.New("cache: a meaning guard is required")
	}
	if !(cfg.Similarity >= 0.5 && cfg.Similarity <= 1) {
		return nil, fmt.Errorf("cache: Similarity=%g: must be from 0.5 to 1", cfg.Similarity)
	}
	if cfg.TTL <= 0 {
		return nil, fmt.Errorf("cache: TTL=%v: must be positive", cfg.TTL)
	}
	setDefault(&cfg.PerTicker, DefaultPerTicker)
	setDefault(&cfg.MaxEntries, DefaultMaxEntries)
	setDefault(&cfg.MaxBytes, DefaultMaxBytes)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{cfg: cfg, guard: guard, log: log}
	c.mem = newMemStore(&c.cfg, &c.stats)
	c.fl.byKey = make(map[string]*flight)
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

func setDefault[T int | int64](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}

// Flush waits for the writes to Redis still running (stores and
// last-use marks, which run after the answer has gone). The cache stays
// usable.
func (c *Cache) Flush() { c.bg.Wait() }

// Close flushes the cache before the process stops.
func (c *Cache) Close() { c.Flush() }

// entry is one stored answer with what a lookup compares it by.
type entry struct {
	// key is the exact key's hash.
	key  string
	text Text
	// vec is the text's embedding, when an Embedder is configured.
	vec []float32
	// pre is the prescore of the item whose answer this is.
	pre float64
	ans stored
}

// stored is an answer as it is kept.
type stored struct {
	// SourceID is the id of the item the answer was made for.
	SourceID      string        `json:"id,omitempty"`
	Label         lexicon.Label `json:"l"`
	Score         float64       `json:"s"`
	Confidence    float64       `json:"c"`
	Rationale     string        `json:"r,omitempty"`
	Tier          router.Tier   `json:"t"`
	Model         string        `json:"m"`
	PromptVersion string        `json:"p,omitempty"`
	// Made is when the answer was made, in Unix nanoseconds: the TTL runs
	// from it.
	Made int64 `json:"at"`
}

// size is an entry's bytes, for the memory bound: the text and the
// answer's strings plus a fixed overhead.
func (e *entry) size() int64 {
	n := 256 + len(e.key) + len(e.text.Key) + len(e.ans.SourceID) + len(e.ans.Rationale) + len(e.ans.Model) + len(e.ans.PromptVersion)
	for _, t := range e.text.Tokens {
		n += 16 + len(t)
	}
	return int64(n)
}

// expired reports whether the answer has outlived the TTL at now.
func (c *Cache) expired(s *stored, now time.Time) bool {
	return now.Sub(time.Unix(0, s.Made)) >= c.cfg.TTL
}

// match is a lookup's result.
type match struct {
	e     *entry
	exact bool
	sim   float64 // 1 for an exact hit
	// refused counts near candidates the guard turned away.
	refused int
}

// nearest picks, among candidates of the request's ticker, the most
// similar one at or above the threshold that the guard lets stand. With
// vectors on both sides they decide the similarity; else the shingles,
// whose prefix filter turns most candidates away unmeasured.
func (c *Cache) nearest(q *query, candidates []*entry, now time.Time) match {
	var best match
	born := now.Add(-c.cfg.TTL).UnixNano() // made at or before it: expired
	for _, e := range candidates {
		if e.ans.Made <= born {
			continue
		}
		sim, ok := c.similarity(q, &e.text, e.vec)
		if !ok || sim < c.cfg.Similarity || sim <= best.sim {
			continue
		}
		if why := c.guard.Check(&q.text, &e.text, q.pre, e.pre); why != "" {
			best.refused++
			continue
		}
		best.e, best.sim = e, sim
	}
	return best
}

// similarity measures q against a stored text and its vector; ok is false
// when the prefix filter already knows they are not alike enough.
func (c *Cache) similarity(q *query, t *Text, vec []float32) (float64, bool) {
	if q.vec != nil && vec != nil {
		return cosine(q.vec, vec), true
	}
	if !mayReach(&q.text, t, c.cfg.Similarity) {
		return 0, false
	}
	return Similarity(&q.text, t), true
}

// query is one lookup's item read for the cache.
type query struct {
	ticker, key string
	text        Text
	pre         float64
	vec         []float32 // nil without an Embedder, or when it failed
}

func cosine(a, b []float32) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// Claim implements pipeline.Cache.
func (c *Cache) Claim(ctx context.Context, req *pipeline.Request, pre lexicon.Prescore, lookup bool) (pipeline.Answer, bool, func(context.Context, pipeline.Answer, bool)) {
	q := &query{ticker: strings.ToUpper(strings.TrimSpace(req.Item.Ticker)), text: Read(req.Item.Title, req.Item.Summary), pre: pre.Score}
	q.key = c.key(q.ticker, &q.text)
	if c.cfg.Embedder != nil {
		if vec, err := c.cfg.Embedder.Embed(ctx, q.text.Key); err == nil {
			q.vec = vec
		} else {
			c.log.DebugContext(ctx, "cache: embedding failed; word shingles decide", "err", err)
		}
	}
	if !lookup {
		return pipeline.Answer{}, false, c.finisher(nil, q)
	}
	for {
		if m := c.lookup(ctx, q); m.e != nil {
			return c.hit(&m), true, nil
		}
		f, leader := c.fl.claim(q, c)
		if leader {
			c.stats.misses.Add(1)
			return pipeline.Answer{}, false, c.finisher(f, q)
		}
		c.stats.joined.Add(1)
		select {
		case <-f.done:
			if f.keep {
				m := match{e: &entry{ans: f.ans}, exact: f.q.key == q.key, sim: 1}
				if !m.exact {
					m.sim, _ = c.similarity(q, &f.q.text, f.q.vec)
				}
				return c.hit(&m), true, nil
			}
			// The call this one waited for made no answer worth keeping:
			// this one judges the item itself.
			return pipeline.Answer{}, false, c.finisher(nil, q)
		case <-ctx.Done():
			// Its own deadline ended first: the pipeline answers from the
			// lexicon, degraded.
			return pipeline.Answer{}, false, nil
		}
	}
}

// hit turns a match into the answer served, counting it.
func (c *Cache) hit(m *match) pipeline.Answer {
	kind := pipeline.CacheExact
	if m.exact {
		c.stats.exactHits.Add(1)
	} else {
		kind = pipeline.CacheNear
		c.stats.nearHits.Add(1)
	}
	s := &m.e.ans
	return pipeline.Answer{
		Label:      s.Label,
		Score:      s.Score,
		Confidence: s.Confidence,
		Rationale:  s.Rationale,
		Provenance: pipeline.Provenance{
			Tier:            s.Tier,
			Model:           s.Model,
			CacheHit:        kind,
			CacheSimilarity: m.sim,
			CacheSourceID:   s.SourceID,
			PromptVersion:   s.PromptVersion,
		},
	}
}

// lookup finds a stored answer: Redis when it is up, else memory.
func (c *Cache) lookup(ctx context.Context, q *query) match {
	var m match
	if c.rdb != nil && c.rdb.usable() {
		var err error
		if m, err = c.rdb.lookup(ctx, q); err != nil {
			m = c.mem.lookup(q, c)
		}
	} else {
		m = c.mem.lookup(q, c)
	}
	if m.refused > 0 {
		c.stats.refusals.Add(uint64(m.refused))
	}
	return m
}

// finisher returns the function that ends a claim: it stores an answer
// worth keeping and wakes the calls that waited on f (nil: none could).
func (c *Cache) finisher(f *flight, q *query) func(context.Context, pipeline.Answer, bool) {
	var once sync.Once
	return func(ctx context.Context, a pipeline.Answer, keep bool) {
		once.Do(func() {
			var s stored
			if keep {
				p := &a.Provenance
				s = stored{SourceID: a.ID, Label: a.Label, Score: a.Score, Confidence: a.Confidence, Rationale: a.Rationale,
					Tier: p.Tier, Model: p.Model, PromptVersion: p.PromptVersion, Made: c.cfg.Now().UnixNano()}
			}
			if f != nil {
				c.fl.finish(f, s, keep)
			}
			if keep {
				c.store(ctx, &entry{key: q.key, text: q.text, vec: q.vec, pre: q.pre, ans: s}, q.ticker)
			}
		})
	}
}

// store keeps e in memory at once and in Redis in the background, so that
// the answer's way back to the caller waits for neither.
func (c *Cache) store(ctx context.Context, e *entry, ticker string) {
	if c.rdb == nil || !c.rdb.usable() {
		c.mem.store(ticker, e)
		c.stats.stored.Add(1)
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		if err := c.rdb.store(context.WithoutCancel(ctx), ticker, e); err != nil {
			c.mem.store(ticker, e)
		}
		c.stats.stored.Add(1)
	}()
}

// key is the exact key's hash: the namespace, the ticker and the text.
func (c *Cache) key(ticker string, t *Text) string {
	h := sha256.New()
	h.Write([]byte(c.cfg.Namespace))
	h.Write([]byte{0})
	h.Write([]byte(ticker))
	h.Write([]byte{0})
	h.Write([]byte(t.Key))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// counters are what Stats reports.
type counters struct {
	exactHits, nearHits, misses, joined, refusals, stored, evicted atomic.Uint64
}

// Stats is what the cache has done since it started.
type Stats struct {
	// Backend says where answers live now: "memory", "redis", or
	// "memory (redis unreachable: <why>)".
	Backend                                                        string
	ExactHits, NearHits, Misses, Joined, Refusals, Stored, Evicted uint64
	// Entries are the answers in this replica's memory store.
	Entries uint64
}

// Stats returns a snapshot.
func (c *Cache) Stats() Stats {
	s := Stats{
		Backend:   "memory",
		ExactHits: c.stats.exactHits.Load(),
		NearHits:  c.stats.nearHits.Load(),
		Misses:    c.stats.misses.Load(),
		Joined:    c.stats.joined.Load(),
		Refusals:  c.stats.refusals.Load(),
		Stored:    c.stats.stored.Load(),
		Evicted:   c.stats.evicted.Load(),
		Entries:   uint64(c.mem.len()),
	}
	if c.rdb != nil {
		s.Backend = c.rdb.backend()
	}
	return s
}

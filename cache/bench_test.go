package cache_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/cache"
	"github.com/catalystbot/sentiment/internal/redistest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/pipeline"
)

// benchTitle is the i-th stored release of a ticker: a different event
// each, so a lookup that misses compares with all of them.
func benchTitle(ticker string, i int) string {
	return fmt.Sprintf("%s Inc. announces %d new supply agreements with partners in region %d", ticker, i+2, i)
}

// fill stores 100 tickers × 100 answers: 10,000 in all.
func fill(b *testing.B, c *cache.Cache) {
	b.Helper()
	for tk := range 100 {
		ticker := fmt.Sprintf("T%03d", tk)
		for i := range 100 {
			r := &pipeline.Request{Item: pipeline.Item{ID: fmt.Sprint(i), Ticker: ticker, Title: benchTitle(ticker, i)}}
			pre := scorer.Score(r.Item.Text())
			_, hit, finish := c.Claim(b.Context(), r, pre, true)
			if hit {
				b.Fatal("hit while filling")
			}
			finish(b.Context(), pipeline.Answer{ID: r.Item.ID, Label: lexicon.LabelBullish, Score: 0.5}, true)
		}
	}
	c.Flush()
}

// benchLookups times lookups of requests made by mk, reporting p50 and p99.
func benchLookups(b *testing.B, c *cache.Cache, wantHit bool, mk func(i int) *pipeline.Request) {
	reqs := make([]*pipeline.Request, 1000)
	pres := make([]lexicon.Prescore, len(reqs))
	for i := range reqs {
		reqs[i] = mk(i)
		pres[i] = scorer.Score(reqs[i].Item.Text())
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := reqs[i%len(reqs)]
		start := time.Now()
		_, hit, finish := c.Claim(b.Context(), r, pres[i%len(reqs)], true)
		lat = append(lat, time.Since(start))
		if hit != wantHit {
			b.Fatalf("hit %v, want %v", hit, wantHit)
		}
		if finish != nil {
			finish(b.Context(), pipeline.Answer{}, false)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkLookup: 10,000 answers, 100 per ticker. An exact hit reads one
// key; a miss compares the request with all 100 of its ticker's answers.
func BenchmarkLookup(b *testing.B) {
	backends := map[string]func(b *testing.B) *cache.Cache{
		"memory": func(b *testing.B) *cache.Cache {
			c, err := cache.New(cache.Config{Similarity: 0.95, TTL: time.Hour, Namespace: "v1"}, cache.NewGuard(scorer.Weighs), nil)
			if err != nil {
				b.Fatal(err)
			}
			return c
		},
		"redis": func(b *testing.B) *cache.Cache {
			srv := redistest.Start(b)
			client := redisClient(b, srv)
			c, err := cache.New(cache.Config{Similarity: 0.95, TTL: time.Hour, Namespace: "v1"}, cache.NewGuard(scorer.Weighs), nil,
				cache.WithRedis(client, "bench:cache"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			return c
		},
	}
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			c := backends[name](b)
			fill(b, c)
			b.Run("exact-hit", func(b *testing.B) {
				benchLookups(b, c, true, func(i int) *pipeline.Request {
					ticker := fmt.Sprintf("T%03d", i%100)
					return &pipeline.Request{Item: pipeline.Item{Ticker: ticker, Title: "PRESS RELEASE: " + benchTitle(ticker, i%100)}}
				})
			})
			b.Run("miss", func(b *testing.B) {
				benchLookups(b, c, false, func(i int) *pipeline.Request {
					ticker := fmt.Sprintf("T%03d", i%100)
					return &pipeline.Request{Item: pipeline.Item{Ticker: ticker, Title: ticker + " Inc. names a new chief financial officer"}}
				})
			})
			c.Flush()
		})
	}
}

package batcher_test

import (
	"flag"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/upstream"
)

// burstItems is the burst BenchmarkBurstThroughput sends: the old bot's 136
// headlines, several times over. -batcher.burst overrides it (200 for a
// quick run: the waves case needs about 2.4 s per 5 items).
const burstItems = 1000

var burstFlag = flag.Int("batcher.burst", burstItems, "items per burst in BenchmarkBurstThroughput")

// BenchmarkBurstThroughput sends a burst of items at once, in real time, to
// a fake GPU with 4 slots and 200 ms per call that answers 500 to a fifth
// call in flight, through an Adaptive queue of MaxConcurrent 4 and through
// the old pacing (waves of 5 with 2 s between them, under the same limit).
// It reports items/s over the whole burst and the server's 500s per burst.
// Run it once: go test -run '^$' -bench BurstThroughput -benchtime=1x ./batcher/
func BenchmarkBurstThroughput(b *testing.B) {
	const (
		slots   = 4
		service = 200 * time.Millisecond
	)
	items := *burstFlag
	for _, bc := range []struct {
		name string
		cfg  batcher.Config
	}{
		{"adaptive", batcher.Config{MaxConcurrent: slots, QueueSize: items}},
		{"waves", batcher.Config{MaxConcurrent: slots, QueueSize: items, Pacing: batcher.Waves, WaveSize: 5, WaveDelay: 2 * time.Second}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := newGPUServer(b, slots, service)
			var done, crashes int
			var elapsed time.Duration
			for b.Loop() {
				q, err := batcher.New(bc.cfg)
				if err != nil {
					b.Fatal(err)
				}
				_, before := g.counts()
				r := burst(b.Context(), q, g, items, time.Hour)
				_, after := g.counts()
				if r.refused != 0 {
					b.Fatalf("%d items refused", r.refused)
				}
				done += r.ok
				crashes += after - before
				elapsed += r.elapsed
			}
			b.ReportMetric(float64(done)/elapsed.Seconds(), "items/s")
			b.ReportMetric(float64(crashes)/float64(b.N), "http500/op")
		})
	}
}

// BenchmarkAcquireRelease is the queue's own cost on the request path: a
// slot taken and given back with no contention, and from every P at once
// under a limit that makes them wait.
func BenchmarkAcquireRelease(b *testing.B) {
	b.Run("free", func(b *testing.B) {
		q, err := batcher.New(batcher.Config{MaxConcurrent: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			rel, err := q.Acquire(b.Context(), 0)
			if err != nil {
				b.Fatal(err)
			}
			rel(upstream.SignalOK)
		}
	})
	b.Run("contended", func(b *testing.B) {
		q, err := batcher.New(batcher.Config{MaxConcurrent: 2, QueueSize: 1 << 16})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetParallelism(4) // more goroutines than slots
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rel, err := q.Acquire(b.Context(), time.Minute)
				if err != nil {
					b.Error(err)
					return
				}
				rel(upstream.SignalOK)
			}
		})
	})
}

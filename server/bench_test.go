package server_test

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// BenchmarkClassifyLoopback is one Classify on the lexicon tier through the
// whole server (interceptors included) over a loopback connection, with
// logging at its production default.
// BenchmarkClassifyLoopback is a lexicon-path Classify over loopback,
// with the metrics and the usage log off and on: what they cost the
// request path.
func BenchmarkClassifyLoopback(b *testing.B) {
	for _, bc := range []struct {
		name    string
		metrics bool
	}{{"observability-off", false}, {"observability-on", true}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig()
			cfg.MetricsAddr, cfg.UsageLogPath = "", ""
			if bc.metrics {
				cfg.MetricsAddr, cfg.UsageLogPath = "127.0.0.1:0", filepath.Join(b.TempDir(), "usage.jsonl")
			}
			ts := startB(b, cfg)
			req := &pb.ClassifyRequest{Item: &pb.NewsItem{Id: "1", Ticker: "ACME", Title: "Acme soars after FDA approval of its cancer drug"}}
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(p *testing.PB) {
				for p.Next() {
					if _, err := ts.client.Classify(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkBatchStreamMemory sends 100,000 items on one ClassifyBatch
// stream while reading the answers, sampling the heap of the process
// (client and server together) as it goes; memory must stay flat.
func BenchmarkBatchStreamMemory(b *testing.B) {
	const items = 100_000
	ts := startB(b, testConfig())
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := ts.client.ClassifyBatch(ctx)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for i := range items {
				req := &pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: strconv.Itoa(i), Title: "Acme raises full-year guidance after record orders"}}
				if err := stream.Send(req); err != nil {
					return
				}
			}
			_ = stream.CloseSend()
		}()
		var peak uint64
		var ms runtime.MemStats
		for n := 0; ; n++ {
			if _, err := stream.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				if n != items {
					b.Fatalf("%d answers for %d items", n, items)
				}
				break
			}
			if n%5000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		cancel()
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	}
	b.ReportMetric(float64(items), "items/op")
}

// BenchmarkBatchThroughputGPU streams a batch through ClassifyBatch to a
// fake GPU server with 4 slots and 200 ms per call, which answers 500 when
// more than 4 calls are in flight: the slots' limit is 20 items/s. It
// reports items/s and the 500s provoked, for the adaptive queue and for the
// old pacing (5 items, then a 2 s pause). Real time: run with -benchtime=1x.
func BenchmarkBatchThroughputGPU(b *testing.B) {
	for _, bc := range []struct {
		name   string
		pacing string
		items  int
	}{
		{"adaptive", "adaptive", 1000},
		{"waves-5x2s", "waves", 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const slots = 4
			local, gpuSlots := fakeGPU(b, slots, 200*time.Millisecond)
			cfg := testConfig()
			cfg.Local.Enabled, cfg.Local.Endpoint, cfg.Local.MaxConcurrent = true, local.URL, slots
			cfg.GPUPacing, cfg.BatchSize, cfg.BatchDelay = bc.pacing, 5, 2*time.Second
			cfg.DefaultDeadline = 10 * time.Minute
			ts := startB(b, cfg)
			for b.Loop() {
				start := time.Now()
				stream, err := ts.client.ClassifyBatch(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for i := range bc.items {
						if err := stream.Send(&pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: strconv.Itoa(i), Title: "Acme raises full-year guidance after record orders"}}); err != nil {
							return
						}
					}
					_ = stream.CloseSend()
				}()
				local0 := 0
				for {
					resp, err := stream.Recv()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if resp.GetResult().GetProvenance().GetTier() == pb.Tier_TIER_LOCAL {
						local0++
					}
				}
				elapsed := time.Since(start)
				b.ReportMetric(float64(bc.items)/elapsed.Seconds(), "items/s")
				b.ReportMetric(float64(local0), "by-local")
				peak, crashes, _ := gpuSlots.Counts()
				b.ReportMetric(float64(crashes), "500s")
				b.ReportMetric(float64(peak), "max-in-flight")
			}
		})
	}
}

package server_test

import (
	"context"
	"io"
	"runtime"
	"strconv"
	"testing"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// BenchmarkClassifyLoopback is one Classify on the lexicon tier through the
// whole server (interceptors included) over a loopback connection, with
// logging at its production default.
func BenchmarkClassifyLoopback(b *testing.B) {
	cfg := testConfig()
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

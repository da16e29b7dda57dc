package server_test

import (
	"context"
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
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ts.client.Classify(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
)

// TestBurstNeverOverloadsTheGPU sends a burst of 1,000 items through
// ClassifyBatch to a fake GPU server with 4 slots that answers 500, as a
// crashing runner does, whenever more than 4 calls are in flight.
func TestBurstNeverOverloadsTheGPU(t *testing.T) {
	const slots, items = 4, 1000
	local, gpuSlots := fakeGPU(t, slots, 2*time.Millisecond)
	cfg := testConfig()
	cfg.Local.Enabled, cfg.Local.Endpoint, cfg.Local.MaxConcurrent = true, local.URL, slots
	cfg.BatchConcurrency = 64
	ts := start(t, cfg)

	stream, err := ts.client.ClassifyBatch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range items {
			// Three different releases: the same one would share one call.
			title := fmt.Sprintf("Acme raises full-year guidance after %d record orders", i+2)
			if err := stream.Send(&pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: fmt.Sprint(i), Title: title}}); err != nil {
				return
			}
		}
		_ = stream.CloseSend()
	}()
	answered, byLocal := map[string]bool{}, 0
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if answered[resp.GetId()] {
			t.Fatalf("%s answered twice", resp.GetId())
		}
		answered[resp.GetId()] = true
		if resp.GetResult().GetProvenance().GetTier() == pb.Tier_TIER_LOCAL {
			byLocal++
		}
	}
	if len(answered) != items {
		t.Errorf("%d of %d items answered", len(answered), items)
	}
	if peak, n, _ := gpuSlots.Counts(); n != 0 || peak > slots {
		t.Errorf("the GPU server saw %d calls at once and answered %d 500s; want at most %d and none", peak, n, slots)
	}
	if byLocal != items {
		t.Errorf("%d of %d items judged by the local model; the queue should have held the rest, not spilled them", byLocal, items)
	}
}

// TestCancelledStreamCancelsUpstreamCalls: the calls a batch stream has
// in flight at the model end when the client cancels the stream.
func TestCancelledStreamCancelsUpstreamCalls(t *testing.T) {
	local := upstreamtest.New(t, upstreamtest.Ollama)
	entered := make(chan struct{}, 3)
	ended := make(chan struct{}, 3)
	local.SetDefault(upstreamtest.Func(func(c *upstreamtest.Call) {
		entered <- struct{}{}
		upstreamtest.Hang()(c)
		ended <- struct{}{}
	}))
	cfg := testConfig()
	cfg.Local.Enabled, cfg.Local.Endpoint = true, local.URL
	ts := start(t, cfg)
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := ts.client.ClassifyBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// Three different releases: the same one would share one call.
		title := fmt.Sprintf("Acme raises full-year guidance after %d record orders", i+2)
		if err := stream.Send(&pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: fmt.Sprint(i), Title: title}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatal("the three calls never all reached the model")
		}
	}
	cancel()
	for range 3 {
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("an upstream call outlived the cancelled stream")
		}
	}
}

// fakeGPU is a local model server with slots parallel slots and the given
// latency that, like the owner's GPU, fails with a runner crash (HTTP 500)
// when a call finds every slot taken (upstreamtest.Slots).
func fakeGPU(t testing.TB, slots int, latency time.Duration) (*upstreamtest.Fake, *upstreamtest.Slots) {
	local := upstreamtest.New(t, upstreamtest.Ollama)
	s := upstreamtest.NewSlots(slots, latency)
	local.SetDefault(s.Behavior())
	return local, s
}

package server_test

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
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
	local := upstreamtest.New(t, upstreamtest.Ollama)
	var overloads atomic.Int64
	local.SetDefault(upstreamtest.Func(func(c *upstreamtest.Call) {
		if local.InFlight() > slots {
			overloads.Add(1)
			upstreamtest.OllamaRunnerTerminated()(c)
			return
		}
		upstreamtest.Delay(2*time.Millisecond, upstreamtest.Answer(upstreamtest.BullishJSON))(c)
	}))
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
			if err := stream.Send(&pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: fmt.Sprint(i), Title: "Acme raises full-year guidance after record orders"}}); err != nil {
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
	if n := overloads.Load(); n != 0 || local.MaxInFlight() > slots {
		t.Errorf("the GPU server saw %d calls at once and answered %d 500s; want at most %d and none", local.MaxInFlight(), n, slots)
	}
	if byLocal != items {
		t.Errorf("%d of %d items judged by the local model; the queue should have held the rest, not spilled them", byLocal, items)
	}
}

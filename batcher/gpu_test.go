package batcher_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/upstream"
)

// gpuServer is the shared slotted fake GPU (upstreamtest.Slots) on a fake
// Ollama over loopback, and a client of it.
type gpuServer struct {
	fake   *upstreamtest.Fake
	slots  *upstreamtest.Slots
	client *http.Client
}

func newGPUServer(tb testing.TB, slots int, service time.Duration) *gpuServer {
	tb.Helper()
	g := &gpuServer{fake: upstreamtest.New(tb, upstreamtest.Ollama), slots: upstreamtest.NewSlots(slots, service)}
	g.fake.SetDefault(g.slots.Behavior())
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	g.client = &http.Client{Transport: tr}
	tb.Cleanup(tr.CloseIdleConnections)
	return g
}

// counts returns the most calls served at once and the 500s answered.
func (g *gpuServer) counts() (peak, crashes int) {
	peak, crashes, _ = g.slots.Counts()
	return peak, crashes
}

var generateBody = []byte(`{"model":"mistral","prompt":"Acme raises full-year guidance","stream":false,"format":"json"}`)

// generate makes one /api/generate call and says what became of it, as the
// router's Ollama client classifies it.
func (g *gpuServer) generate(ctx context.Context) upstream.Signal {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.fake.URL+"/api/generate", bytes.NewReader(generateBody))
	if err != nil {
		return upstream.SignalBadAnswer
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return upstream.SignalServerError
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	switch {
	case resp.StatusCode == http.StatusOK:
		return upstream.SignalOK
	case resp.StatusCode == http.StatusInternalServerError, resp.StatusCode == http.StatusServiceUnavailable:
		return upstream.SignalServerError
	default:
		return upstream.SignalBadAnswer
	}
}

// burstResult is what a burst did.
type burstResult struct {
	ok, overloads, refused int
	elapsed                time.Duration
}

// burst sends items at once through q to g, each item one call, and waits
// for all of them.
func burst(ctx context.Context, q *batcher.Queue, g *gpuServer, items int, maxWait time.Duration) burstResult {
	var ok, over, refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range items {
		wg.Go(func() {
			rel, err := q.Acquire(ctx, maxWait)
			if err != nil {
				refused.Add(1)
				return
			}
			o := g.generate(ctx)
			rel(o)
			switch o {
			case upstream.SignalOK:
				ok.Add(1)
			case upstream.SignalServerError:
				over.Add(1)
			}
		})
	}
	wg.Wait()
	return burstResult{int(ok.Load()), int(over.Load()), int(refused.Load()), time.Since(start)}
}

// TestBurstAgainstGPUServer sends a burst of 500 items through the queue to
// a fake GPU with K slots that answers 500 to a call beyond them.
//
// What the assertions rest on. The server frees a slot before it answers,
// so the calls it is serving are always among those holding a queue slot.
// The queue starts a call only while fewer than min(limit, ceiling) are in
// flight, so a call can be refused only if it started while the limit was
// above K. Then:
//   - MaxConcurrent = K: never a 500.
//   - MaxConcurrent = 2K, no growth during the burst: a refused call holds
//     its queue slot until it is released, and the first such release (an
//     Overload of the first round) is the one cut: 2K -> K. Before it, each
//     refusal finds K calls being served and every earlier refused call still
//     holding its slot, all within 2K slots, so at most K are refused. After
//     it nothing starts until fewer than K are in flight (and the limit never
//     goes back above K), so a later refusal can only be a first-round call
//     still on its way, which again needs K first-round calls being served
//     beside it: the total stays at most 2K - K = K. The other refusals are
//     of the cut round, so there is exactly one halving, and the limit ends
//     at K.
//   - MaxConcurrent = 2K with the default growth: every cut leaves the limit
//     at most K (half of at most 2K), and another 500 needs the limit above K
//     again, so halvings <= 1 + grows. How many 500s each probe above K
//     costs depends on timing; the test reports it rather than asserting it.
func TestBurstAgainstGPUServer(t *testing.T) {
	const (
		k       = 4
		items   = 500
		service = 2 * time.Millisecond
	)
	for _, tc := range []struct {
		name string
		max  int
		grow int
	}{
		{"MaxConcurrent=K", k, 0},
		{"MaxConcurrent=2K, no growth during the burst", 2 * k, items + 1},
		{"MaxConcurrent=2K, default growth", 2 * k, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGPUServer(t, k, service)
			q := newQueue(t, batcher.Config{MaxConcurrent: tc.max, QueueSize: items, SuccessesToGrow: tc.grow})
			r := burst(t.Context(), q, g, items, time.Minute)
			peak, crashes := g.counts()
			s := q.Stats()
			t.Logf("%d ok, %d HTTP 500, %d refused in %v; server peak %d; limit %d after %d halvings, %d grows",
				r.ok, r.overloads, r.refused, r.elapsed, peak, s.Limit, s.Halvings, s.Grows)

			if r.refused != 0 || r.ok+r.overloads != items {
				t.Fatalf("%d refused, %d ok + %d overloads of %d: every item should have had its call", r.refused, r.ok, r.overloads, items)
			}
			if crashes != r.overloads {
				t.Fatalf("server answered %d 500s, clients saw %d overloads", crashes, r.overloads)
			}
			if s.InFlight != 0 || s.Waiting != 0 {
				t.Fatalf("after the burst: %d in flight, %d waiting", s.InFlight, s.Waiting)
			}
			switch tc.max {
			case k:
				if crashes != 0 || peak > k || s.Halvings != 0 {
					t.Fatalf("MaxConcurrent = slots: %d 500s, server peak %d, %d halvings; want 0, <= %d, 0", crashes, peak, s.Halvings, k)
				}
			default:
				if tc.grow > items {
					if crashes > k {
						t.Fatalf("%d 500s, want at most K = %d (the first burst's excess only)", crashes, k)
					}
					wantHalvings, wantLimit := uint64(0), 2*k
					if crashes > 0 {
						wantHalvings, wantLimit = 1, k
					}
					if s.Halvings != wantHalvings || s.Limit != wantLimit || s.Grows != 0 {
						t.Fatalf("%d halvings, limit %d, %d grows; want %d, %d, 0", s.Halvings, s.Limit, s.Grows, wantHalvings, wantLimit)
					}
					return
				}
				if s.Halvings > 1+s.Grows {
					t.Fatalf("%d halvings with %d grows: a cut leaves the limit <= K, so each later cut needs a grow first", s.Halvings, s.Grows)
				}
				if crashes > 0 && s.Halvings == 0 {
					t.Fatalf("%d 500s and no halving", crashes)
				}
			}
		})
	}
}

package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/app"
)

// heldClock is the server's clock. While armed, the next reading blocks
// until released: judging an item starts with a reading, so a test can
// hold an item in flight and order events with channels, not sleeps.
type heldClock struct {
	mu      sync.Mutex
	t       time.Time
	hold    chan struct{}
	entered chan struct{}
}

func newHeldClock() *heldClock {
	return &heldClock{t: time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)}
}

func (c *heldClock) now() time.Time {
	c.mu.Lock()
	hold, entered, t := c.hold, c.entered, c.t
	c.hold, c.entered = nil, nil
	c.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	return t
}

// holdNext arms the clock: the next reading signals entered and blocks
// until release is called.
func (c *heldClock) holdNext() (entered <-chan struct{}, release func()) {
	h, e := make(chan struct{}), make(chan struct{})
	c.mu.Lock()
	c.hold, c.entered = h, e
	c.mu.Unlock()
	return e, func() { close(h) }
}

func (c *heldClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func batchItem(id, title string) *pb.ClassifyBatchRequest {
	return &pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: id, Ticker: "ACME", Title: title}}
}

func TestClassifyBatchAnswersEveryItemOnce(t *testing.T) {
	cfg := testConfig()
	cfg.BatchConcurrency = 8
	ts := start(t, cfg)
	stream, err := ts.client.ClassifyBatch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}

	const n = 2000
	type want struct {
		prelim  bool
		invalid string // field of the expected error entry
	}
	wants := map[string]want{}
	var reqs []*pb.ClassifyBatchRequest
	for i := range n {
		id := fmt.Sprintf("item-%d", i)
		r := batchItem(id, fmt.Sprintf("Acme %d raises full-year guidance after record orders", i))
		w := want{}
		switch {
		case i%97 == 0:
			r.Item.Title = ""
			w.invalid = "item.title"
		case i%89 == 0:
			r.Item.Ticker = "TOOLONGTICKER-123"
			w.invalid = "item.ticker"
		case i%3 == 0:
			r.Preliminary = true
			w.prelim = true
		}
		wants[id] = w
		reqs = append(reqs, r)
	}
	// One item with no id: its error entry has an empty id.
	reqs = append(reqs, batchItem("", "Acme beats estimates"))

	sendErr := make(chan error, 1)
	go func() {
		for _, r := range reqs {
			if err := stream.Send(r); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()

	type seen struct{ prelim, final, errs int }
	got := map[string]*seen{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		s := got[resp.GetId()]
		if s == nil {
			s = &seen{}
			got[resp.GetId()] = s
		}
		if e := resp.GetError(); e != nil {
			s.errs++
			w := wants[resp.GetId()]
			if resp.GetId() == "" {
				w.invalid = "item.id"
			}
			if e.GetCode() != int32(codes.InvalidArgument) || e.GetField() != w.invalid {
				t.Errorf("%q: error entry %v, want INVALID_ARGUMENT on %q", resp.GetId(), e, w.invalid)
			}
			continue
		}
		switch resp.GetResult().GetPhase() {
		case pb.Phase_PHASE_PRELIMINARY:
			if s.final > 0 {
				t.Errorf("%q: preliminary result after the final one", resp.GetId())
			}
			if resp.GetResult().GetProvenance().GetDegraded() {
				t.Errorf("%q: a preliminary answer is the lexicon's by design, not degraded", resp.GetId())
			}
			s.prelim++
		case pb.Phase_PHASE_FINAL:
			if !resp.GetResult().GetProvenance().GetDegraded() {
				t.Errorf("%q: final lexicon answer not marked degraded", resp.GetId())
			}
			s.final++
		}
		if resp.GetResult().GetId() != resp.GetId() {
			t.Errorf("result id %q inside entry %q", resp.GetResult().GetId(), resp.GetId())
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("Send: %v", err)
	}

	if s := got[""]; s == nil || s.errs != 1 {
		t.Errorf("item without id: %+v, want one error entry", s)
	}
	for id, w := range wants {
		s := got[id]
		if s == nil {
			t.Errorf("%q: never answered", id)
			continue
		}
		wantSeen := seen{final: 1}
		if w.invalid != "" {
			wantSeen = seen{errs: 1}
		} else if w.prelim {
			wantSeen.prelim = 1
		}
		if *s != wantSeen {
			t.Errorf("%q: answered %+v, want %+v", id, *s, wantSeen)
		}
	}
	if len(got) != len(wants)+1 {
		t.Errorf("answers for %d ids, want %d", len(got), len(wants)+1)
	}
}

func TestClassifyBatchRefusesDuplicateIDInFlight(t *testing.T) {
	clock := newHeldClock()
	ts := start(t, testConfig(), app.WithClock(clock.now))
	stream, err := ts.client.ClassifyBatch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}

	entered, release := clock.holdNext()
	if err := stream.Send(batchItem("a", "Acme beats estimates")); err != nil {
		t.Fatal(err)
	}
	<-entered // "a" is being judged and stays so until release
	if err := stream.Send(batchItem("a", "Acme misses estimates")); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if e := resp.GetError(); resp.GetId() != "a" || e.GetField() != "item.id" || e.GetCode() != int32(codes.InvalidArgument) {
		t.Fatalf("first answer %v, want the duplicate's INVALID_ARGUMENT on item.id", resp)
	}
	release()
	resp, err = stream.Recv()
	if err != nil || resp.GetResult().GetPhase() != pb.Phase_PHASE_FINAL || resp.GetId() != "a" {
		t.Fatalf("second answer %v (%v), want the held item's final result", resp, err)
	}

	// Once answered, the id may be used again.
	if err := stream.Send(batchItem("a", "Acme misses estimates")); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetResult() == nil {
		t.Fatalf("reused id: %v (%v), want a result", resp, err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v, want EOF", err)
	}
}

func TestClassifyBatchCancelledByClient(t *testing.T) {
	ts := start(t, testConfig())
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := ts.client.ClassifyBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := stream.Send(batchItem(fmt.Sprint(i), "Acme beats estimates")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for {
		if _, err := stream.Recv(); err != nil {
			if status.Code(err) != codes.Canceled {
				t.Fatalf("after cancel: %v, want CANCELED", err)
			}
			break
		}
	}
	// The server's handler ends on its own: no stream stays open there.
	// (goleak checks for stray goroutines when the package's tests end.)
	waitNoOpenStreams(t, ts)
}

// waitNoOpenStreams waits, within a bound, for the server's batch handlers
// to end after their clients went away.
func waitNoOpenStreams(t *testing.T, ts *testServer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := ts.client.Stats(ctxT(t), &pb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetRequests().GetOpenStreams() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d streams still open on the server after their clients went away", st.GetRequests().GetOpenStreams())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

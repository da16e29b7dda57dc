package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/pipeline"
)

// ClassifyBatch judges a stream of items concurrently and streams each
// result back as it finishes.
//
// Invariants: every accepted item (a valid item read from the stream) is
// answered exactly once, by a result or an error entry; at most
// BatchConcurrency items are judged at once and no further item is read
// until one finishes, so a fast sender is held by gRPC flow control rather
// than buffered here; a bad item is an error entry and the stream goes on;
// when the client cancels, work in flight is cancelled with it.
//
// An item sent to the GPU below the prefilter's threshold (adaptive) gives
// its place back while it waits, to a second, bounded budget of weak
// items: the stream reads on, and the stronger items it reads go ahead of
// the weak ones in the GPU's line instead of waiting to be read.
func (s *Server) ClassifyBatch(stream grpc.BidiStreamingServer[pb.ClassifyBatchRequest, pb.ClassifyBatchResponse]) error {
	s.stats.batchStreams.Add(1)
	s.stats.openStreams.Add(1)
	defer s.stats.openStreams.Add(-1)

	b := &batch{
		srv:       s,
		stream:    stream,
		slots:     make(chan struct{}, s.cfg.BatchConcurrency),
		weakSlots: make(chan struct{}, weakPerSlot*s.cfg.BatchConcurrency),
		jobs:      make(chan job),
		inFlight:  make(map[string]struct{}),
	}
	// Recv blocks and cannot be selected on, so one goroutine reads ahead
	// by at most one message. It ends when Recv fails, which it does once
	// the handler returns and gRPC cancels the stream.
	msgs := make(chan recvResult)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			req, err := stream.Recv()
			select {
			case msgs <- recvResult{req, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	endErr := b.run(msgs)
	close(b.jobs)
	b.wg.Wait()
	if endErr == nil {
		endErr = b.sendErr
	}
	return endErr
}

// job is one accepted item for a worker.
type job struct {
	req         pipeline.Request
	preliminary bool
}

type recvResult struct {
	req *pb.ClassifyBatchRequest
	err error
}

// batch is the state of one ClassifyBatch stream.
type batch struct {
	srv    *Server
	stream grpc.BidiStreamingServer[pb.ClassifyBatchRequest, pb.ClassifyBatchResponse]
	slots  chan struct{}
	// weakSlots holds the places of weak items waiting for the GPU, which
	// gave theirs in slots back.
	weakSlots chan struct{}
	// jobs feeds the stream's workers: at most one per slot, started as
	// items need them and reused for the stream's life, so an item costs
	// no goroutine of its own (nor the growth of a fresh one's stack).
	jobs    chan job
	workers int            // started; run's alone
	wg      sync.WaitGroup // the workers

	idMu     sync.Mutex
	inFlight map[string]struct{} // ids being judged

	sendMu  sync.Mutex // gRPC allows one sender at a time
	sendErr error
}

// weakPerSlot bounds a stream's weak items waiting for the GPU, per slot
// of BatchConcurrency: 4 × 16 is the GPU queue's default length.
const weakPerSlot = 4

// run reads and dispatches items until the client closes its side, the
// stream ends or the server drains. It returns the status the stream ends
// with; items already dispatched are still answered before it is sent.
func (b *batch) run(msgs <-chan recvResult) error {
	ctx := b.stream.Context()
	for {
		// Take a slot before reading, so an item read is an item started.
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-b.srv.draining:
			return errDraining
		}
		var m recvResult
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-b.srv.draining:
			return errDraining
		}
		if errors.Is(m.err, io.EOF) {
			return nil
		}
		if m.err != nil {
			return m.err
		}
		b.srv.stats.batchItems.Add(1)
		r, ok := b.accept(m.req)
		if !ok {
			<-b.slots
			continue
		}
		b.dispatch(job{r, m.req.GetPreliminary()})
	}
}

var errDraining = status.Error(codes.Unavailable, "server is shutting down: items answered so far were accepted, the rest were not; send them again to another server")

// accept validates an item and claims its id; a rejected item gets its
// error entry here. It returns the converted request.
func (b *batch) accept(req *pb.ClassifyBatchRequest) (pipeline.Request, bool) {
	id := req.GetItem().GetId()
	r, ferr := b.srv.requestOf(req, req.GetItem(), req.GetOptions(), true)
	if ferr != nil {
		b.srv.stats.invalid.Add(1)
		b.send(&pb.ClassifyBatchResponse{Id: id, Outcome: &pb.ClassifyBatchResponse_Error{Error: ferr.itemError()}})
		return r, false
	}
	b.idMu.Lock()
	_, dup := b.inFlight[id]
	if !dup {
		b.inFlight[id] = struct{}{}
	}
	b.idMu.Unlock()
	if dup {
		b.srv.stats.invalid.Add(1)
		ferr := newFieldError("item.id", fmt.Sprintf("%q is already being judged on this stream; ids must be unique among items in flight", id))
		b.send(&pb.ClassifyBatchResponse{Id: id, Outcome: &pb.ClassifyBatchResponse_Error{Error: ferr.itemError()}})
		return r, false
	}
	return r, true
}

// dispatch hands j to an idle worker, or starts one while there are fewer
// than one per slot. With every worker started it waits for one: the slot
// j holds leaves at most the others busy, so one is, or is about to be,
// idle. Only run calls it.
func (b *batch) dispatch(j job) {
	if b.workers < cap(b.slots)+cap(b.weakSlots) {
		select {
		case b.jobs <- j:
		default:
			b.workers++
			b.wg.Add(1)
			go b.work(j)
		}
		return
	}
	b.jobs <- j
}

// work judges j, then the jobs that follow, until the stream's reading
// ends.
func (b *batch) work(j job) {
	defer b.wg.Done()
	for {
		b.judge(j.req, j.preliminary)
		var ok bool
		if j, ok = <-b.jobs; !ok {
			return
		}
	}
}

// judge answers one accepted item: its preliminary result when asked for,
// then exactly one final result or error entry.
func (b *batch) judge(r pipeline.Request, preliminary bool) {
	id := r.Item.ID
	var final *pb.ClassifyBatchResponse
	var weak bool // holds a place in weakSlots instead of slots
	defer func() {
		if p := recover(); p != nil {
			b.srv.log.Error("panic judging batch item", "panic", fmt.Sprint(p), "request_id", requestID(b.stream.Context()), "stack", string(stack()))
			final = itemErr(id, status.New(codes.Internal, "internal error"))
		}
		// The id is released before the final answer goes out, so a
		// client that resends an id once it has its answer is never
		// refused as a duplicate.
		b.idMu.Lock()
		delete(b.inFlight, id)
		b.idMu.Unlock()
		b.send(final)
		if weak {
			<-b.weakSlots
		} else {
			<-b.slots
		}
	}()

	a, err := b.srv.pipe.Judge(b.stream.Context(), r, func(_ context.Context, ev pipeline.Event) {
		if ev.Err != nil || ev.Answer.Phase != pipeline.PhasePreliminary {
			return
		}
		if ev.Prefilter == pipeline.PrefilterSentOnBelow {
			// Wait for the GPU in the weak items' budget, when it has room.
			select {
			case b.weakSlots <- struct{}{}:
				<-b.slots
				weak = true
			default:
			}
		}
		if preliminary {
			b.send(&pb.ClassifyBatchResponse{Id: id, Outcome: &pb.ClassifyBatchResponse_Result{Result: answerPB(&ev.Answer)}})
		}
	})
	if err != nil {
		final = itemErr(id, status.Convert(statusOf(err)))
		return
	}
	final = &pb.ClassifyBatchResponse{Id: id, Outcome: &pb.ClassifyBatchResponse_Result{Result: answerPB(&a)}}
}

func itemErr(id string, st *status.Status) *pb.ClassifyBatchResponse {
	return &pb.ClassifyBatchResponse{Id: id, Outcome: &pb.ClassifyBatchResponse_Error{
		Error: &pb.ItemError{Code: int32(st.Code()), Message: st.Message()},
	}}
}

// send writes one response. After the first failure (the client went
// away) nothing more is sent.
func (b *batch) send(r *pb.ClassifyBatchResponse) {
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	if b.sendErr != nil {
		return
	}
	if err := b.stream.Send(r); err != nil {
		b.sendErr = err
	}
}

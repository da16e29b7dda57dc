package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

const batchSynopsis = `sentimentctl batch FILE|- [-o FILE] [--concurrency 64] [--progress auto|bar|plain|none]

Judges every item of FILE (- reads stdin) over one ClassifyBatch stream,
with at most --concurrency items sent and not yet answered (the server's
flow control may hold the stream back further). FILE holds JSON lines of
NewsItem in protojson, {"id":"1","ticker":"ACME","title":"..."}, or CSV
with a header naming the columns, id,ticker,title[,summary]. A file is read
through first: a bad line stops the command (status 2, naming file:line)
before anything is sent.

Each answer, or error entry, is one line of JSON on stdout (or -o FILE):
a ClassifyBatchResponse in protojson with the proto field names, in the
order the answers come. An item the stream ended without answering gets
an error entry too, so every item sent appears exactly once. Progress and
a summary go to stderr; with --json the summary is one JSON object, the
last line on stderr. Status 1 when any item failed or went unanswered.

--progress: auto is a bar on a terminal (not TERM=dumb, CI unset), plain
lines otherwise (none with --json); plain writes a line at every tenth and
every 2s.`

const defaultConcurrency = 64

func (c *cli) batch(ctx context.Context, g *globals, args []string) error {
	fs := commandFlags("batch", g)
	outPath := fs.String("o", "", "write the results to `file` instead of stdout")
	concurrency := fs.Int("concurrency", defaultConcurrency, "items sent and not yet answered, at most")
	mode := fs.String("progress", progressAuto, "progress on stderr: auto, bar, plain or none")
	pos, err := c.parseCommand(fs, g, args, batchSynopsis)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("batch: one input file (or - for stdin) is required, got %d arguments", len(pos))
	}
	if *concurrency < 1 {
		return usageErr("batch: --concurrency %d: must be at least 1", *concurrency)
	}
	switch *mode {
	case progressAuto, progressBar, progressPlain, progressNone:
	default:
		return usageErr("batch: --progress %q: must be auto, bar, plain or none", *mode)
	}

	in, err := openInput(pos[0], c.stdin)
	if err != nil {
		return err
	}
	defer in.close()
	var out io.Writer = c.stdout
	if *outPath != "" {
		f, err := os.Create(*outPath)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		defer f.Close()
		out = f
	}
	conn, client, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	if g.timeoutSet && g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}

	b := &batchRun{
		client:      client,
		addr:        g.addr,
		in:          in,
		concurrency: *concurrency,
		out:         bufio.NewWriter(out),
		flushEach:   *outPath == "",
		rep:         newReporter(*mode, c.stderr, c.getenv, g.json, c.now),
		now:         c.now,
	}
	sum, err := b.run(ctx)
	if err != nil && sum == nil {
		return err
	}
	if err != nil {
		fmt.Fprintln(c.stderr, "sentimentctl:", err)
	}
	if g.json {
		if werr := sum.writeJSON(c.stderr); werr != nil && err == nil {
			err = werr
		}
	} else {
		sum.writeText(c.stderr)
	}
	if err == nil && sum.failed() {
		return &exitError{code: exitFailed, err: errReported}
	}
	if err != nil {
		return &exitError{code: exitCode(err), err: errReported}
	}
	return nil
}

// batchRun is one batch: its input, the stream, the results' writer and
// the progress reporter.
type batchRun struct {
	client      pb.SentimentServiceClient
	addr        string
	in          *input
	concurrency int
	out         *bufio.Writer
	flushEach   bool // stdout: each line as it comes, for pipes
	rep         reporter
	now         func() time.Time
}

// maxResumes bounds how often one batch moves to another replica.
const maxResumes = 5

// run streams the input and writes the answers. With a nil summary the
// stream never started (its error says why); otherwise the summary counts
// what happened and the error, if any, is what stopped the batch: a bad
// input line, a failed write or the stream's end. A stream whose server
// went away (UNAVAILABLE) resumes on a new one, which the channel's
// round-robin sends to another replica: the items sent and not answered
// are sent again, the input goes on where it was, and an item answered
// twice is written once.
func (b *batchRun) run(ctx context.Context) (*summary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := b.now()
	stream, err := b.client.ClassifyBatch(ctx)
	if err != nil {
		// No stream means no connection: nothing reached the server.
		return nil, callErr("batch", b.addr, err, nil)
	}
	sum := newSummary(b.in.total)
	b.rep.Start(b.in.total)

	pending := &pendingSet{ids: make(map[string]int), items: make(map[string]*pb.NewsItem)}
	slots := make(chan struct{}, b.concurrency)
	// One reader for the whole batch: a stream that ends never takes an
	// input line with it.
	next := make(chan nextItem)
	go b.read(ctx, next)

	var streamErr, writeErr, sendErr error
	var resend []*pb.NewsItem
	for {
		sctx, scancel := context.WithCancel(ctx)
		sendDone := make(chan error, 1)
		go func() { sendDone <- b.send(sctx, stream, slots, pending, next, resend) }()
		streamErr, writeErr = b.receive(stream, slots, pending, sum)
		if streamErr == nil && writeErr == nil {
			// The server ended the stream after our side closed: the
			// sender is done.
			sendErr = <-sendDone
			scancel()
			break
		}
		scancel()
		sendErr = <-sendDone // it stops at once: it waits on nothing but sctx
		if sendErr != nil || writeErr != nil || ctx.Err() != nil || status.Code(streamErr) != codes.Unavailable || len(sum.Resumes) >= maxResumes {
			break
		}
		resend = pending.unanswered()
		fresh, err := b.client.ClassifyBatch(ctx)
		if err != nil {
			break
		}
		sum.Resumes = append(sum.Resumes, fmt.Sprintf("%s (%d unanswered items sent again)", status.Convert(streamErr).Message(), len(resend)))
		stream = fresh
	}
	stopped := ctx.Err() // the caller's cancellation or deadline, if any
	cancel()
	b.rep.Finish()

	sum.Sent = pending.sent
	left := pending.left()
	sum.Unanswered = len(left)
	if streamErr != nil {
		sum.StreamError = status.Convert(streamErr).Message()
	}
	if writeErr == nil {
		// Every item sent appears once in the output: those the stream
		// ended without answering get an error entry saying so.
		code, why := codes.Unavailable, "the stream ended without an answer"
		if streamErr != nil {
			code = status.Code(streamErr)
			why = "the stream ended before its answer: " + status.Convert(streamErr).Message()
		}
		for _, id := range left {
			entry := &pb.ClassifyBatchResponse{Id: id, Outcome: &pb.ClassifyBatchResponse_Error{
				Error: &pb.ItemError{Code: int32(code), Message: why},
			}}
			if writeErr = b.write(entry); writeErr != nil {
				break
			}
		}
	}
	if err := b.out.Flush(); err != nil && writeErr == nil {
		writeErr = err
	}
	sum.finish(b.now().Sub(start))

	switch {
	case sendErr != nil:
		return sum, sendErr
	case writeErr != nil:
		return sum, fmt.Errorf("writing the results: %w", writeErr)
	case streamErr != nil && errors.Is(stopped, context.Canceled):
		return sum, errors.New("batch: interrupted")
	case streamErr != nil:
		return sum, fmt.Errorf("batch stream: %s: %s", status.Code(streamErr), status.Convert(streamErr).Message())
	}
	return sum, nil
}

// receive writes the stream's answers until it ends: a nil streamErr when
// the server ended it after our side closed.
func (b *batchRun) receive(stream grpc.BidiStreamingClient[pb.ClassifyBatchRequest, pb.ClassifyBatchResponse], slots <-chan struct{}, pending *pendingSet, sum *summary) (streamErr, writeErr error) {
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
		if !pending.done(resp.GetId()) {
			continue // answered before, by the replica that went away
		}
		select {
		case <-slots:
		default:
		}
		b.rep.Add(sum.add(resp))
		if err := b.write(resp); err != nil {
			return nil, err
		}
	}
}

// nextItem is one input item, or the error that ends the input.
type nextItem struct {
	item *pb.NewsItem
	err  error
}

// read hands the input's items to the senders, one at a time, and closes
// next at the end of the input. It may stay blocked reading stdin, which
// nothing can interrupt, until stdin ends or the process does.
func (b *batchRun) read(ctx context.Context, next chan<- nextItem) {
	for {
		item, err := b.in.items.next()
		if err == io.EOF {
			close(next)
			return
		}
		select {
		case next <- nextItem{item, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// send sends the items to send again, then the input's, holding at most
// cap(slots) unanswered, and closes its side of the stream. Its error is a
// bad input line; a stream that ended is the receiver's to report.
func (b *batchRun) send(ctx context.Context, stream grpc.BidiStreamingClient[pb.ClassifyBatchRequest, pb.ClassifyBatchResponse], slots chan struct{}, pending *pendingSet, next <-chan nextItem, resend []*pb.NewsItem) error {
	defer stream.CloseSend()
	for _, item := range resend { // their slots are still held
		if err := stream.Send(&pb.ClassifyBatchRequest{Item: item}); err != nil {
			return nil
		}
	}
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		var n nextItem
		var ok bool
		select {
		case n, ok = <-next:
		case <-ctx.Done():
			<-slots
			return nil
		}
		if !ok {
			<-slots
			return nil
		}
		if n.err != nil {
			return n.err
		}
		// Pending before it is sent: a stream that ends now leaves it to
		// the next.
		pending.add(n.item)
		if err := stream.Send(&pb.ClassifyBatchRequest{Item: n.item}); err != nil {
			return nil
		}
	}
}

func (b *batchRun) write(r *pb.ClassifyBatchResponse) error {
	line, err := marshalJSON(r)
	if err != nil {
		return err
	}
	b.out.Write(line)
	b.out.WriteByte('\n')
	if b.flushEach {
		return b.out.Flush()
	}
	return nil
}

// pendingSet is the items sent and not yet answered, by id, with the
// order they were sent in.
// pendingSet is the items sent and not yet answered, by id, with the
// order they were sent in.
type pendingSet struct {
	mu    sync.Mutex
	ids   map[string]int
	items map[string]*pb.NewsItem
	sent  int
}

func (p *pendingSet) add(item *pb.NewsItem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids[item.GetId()] = p.sent
	p.items[item.GetId()] = item
	p.sent++
}

// done marks id answered; false when it was not waiting for an answer (an
// answer already written).
func (p *pendingSet) done(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.ids[id]; !ok {
		return false
	}
	delete(p.ids, id)
	delete(p.items, id)
	return true
}

// unanswered is the items still waiting, in the order they were sent.
func (p *pendingSet) unanswered() []*pb.NewsItem {
	ids := p.left()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*pb.NewsItem, len(ids))
	for i, id := range ids {
		out[i] = p.items[id]
	}
	return out
}

// left is the ids still unanswered, in the order they were sent.
func (p *pendingSet) left() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.ids))
	for id := range p.ids {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return p.ids[a] - p.ids[b] })
	return ids
}

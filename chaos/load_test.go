package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// --- news items ---------------------------------------------------------

var companies = []struct{ name, ticker string }{
	{"Acme", "ACME"}, {"Globex", "GLBX"}, {"Initech", "INTC"}, {"Umbrella", "UMBR"}, {"Hooli", "HOOL"},
	{"Stark Industries", "STRK"}, {"Wayne Enterprises", "WAYN"}, {"Wonka", "WONK"}, {"Tyrell", "TYRL"},
	{"Cyberdyne", "CYBD"}, {"Soylent", "SOYL"}, {"Vandelay", "VAND"}, {"Massive Dynamic", "MSDY"}, {"Nakatomi", "NAKA"},
}

// headlines carry direction in a metric and a verb, as financial news
// does; the numbers make each one new.
var headlines = []string{
	"%s raises full-year guidance after record orders, revenue up %d%%",
	"%s operating profit rose %d%% to EUR %d.%d mn",
	"%s beats estimates as quarterly sales jump %d%% to $%d.%d billion",
	"%s wins $%d.%d million defence contract, order book up %d%%",
	"%s cuts guidance as net sales decreased %d%% to EUR %d.%d mn",
	"%s net loss widened to EUR %d.%d mn from a profit of EUR %d mn",
	"%s shares plunge after revenue misses forecasts by %d%%, dividend suspended %d",
	"%s warns of a %d%% drop in profit and plans %d.%d thousand job cuts",
	"%s to hold its annual general meeting on May %d at %d.%d",
	"%s appoints new chief financial officer effective %d June, board of %d",
	"%s loss narrowed to EUR %d.%d mn while sales grew %d%%",
	"%s recalls %d,%d00 vehicles over faulty brakes, costs of $%d million",
}

// item is one news item of a job, with its id.
type item struct {
	id  string
	req *pb.ClassifyRequest
}

// newItem draws an item; one in ten repeats an earlier text (under a new
// id) so that the cache answers some.
func newItem(rng *rand.Rand, id string, recent *[]*pb.NewsItem) *pb.ClassifyRequest {
	var news *pb.NewsItem
	if len(*recent) > 0 && rng.IntN(10) == 0 {
		prev := (*recent)[rng.IntN(len(*recent))]
		news = proto.Clone(prev).(*pb.NewsItem)
	} else {
		c := companies[rng.IntN(len(companies))]
		h := headlines[rng.IntN(len(headlines))]
		news = &pb.NewsItem{Ticker: c.ticker, Source: "chaos", Title: fmt.Sprintf(h, c.name, 2+rng.IntN(60), 1+rng.IntN(900), rng.IntN(10), 1+rng.IntN(90))}
		if len(*recent) < 200 {
			*recent = append(*recent, news)
		} else {
			(*recent)[rng.IntN(len(*recent))] = news
		}
	}
	news.Id = id
	opts := &pb.ClassifyOptions{}
	if rng.IntN(10) < 8 {
		// Below the prefilter's threshold too: most items reach a model.
		zero := 0.0
		opts.MinPrescore = &zero
	}
	if rng.IntN(5) == 0 {
		opts.Priority = pb.Priority_PRIORITY_HIGH
	}
	return &pb.ClassifyRequest{Item: news, Options: opts}
}

// --- outcomes -----------------------------------------------------------

// outcome is what became of one request (a unary call or a batch item).
type outcome struct {
	batch    bool
	replica  string // who answered (a#1, b#1)
	tier     pb.Tier
	cacheHit bool
	degraded bool
	prefilt  bool
	latency  time.Duration
	// explained counts the UNAVAILABLE answers of a draining replica this
	// request met (and was then answered elsewhere).
	explained int
	// problem is why the request counts as an unexplained error; empty
	// when it was answered as promised.
	problem string
}

// recorder collects the outcomes of one phase.
type recorder struct {
	mu   sync.Mutex
	outs []outcome
	// drained counts batch streams a draining replica ended with
	// UNAVAILABLE (their unanswered items were sent elsewhere).
	drained atomic.Int64
}

func (rc *recorder) add(o outcome) {
	rc.mu.Lock()
	rc.outs = append(rc.outs, o)
	rc.mu.Unlock()
}

// judgeAnswer checks one answer and fills o from it.
func judgeAnswer(o *outcome, resp *pb.ClassifyResponse, id string) {
	p := resp.GetProvenance()
	o.tier, o.degraded, o.prefilt = p.GetTier(), p.GetDegraded(), p.GetPrefiltered()
	o.cacheHit = p.GetCacheHit() == pb.CacheHit_CACHE_HIT_EXACT || p.GetCacheHit() == pb.CacheHit_CACHE_HIT_NEAR
	switch {
	case resp.GetId() != id:
		o.problem = fmt.Sprintf("answer for id %q, sent %q", resp.GetId(), id)
	case resp.GetLabel() == pb.Label_LABEL_UNSPECIFIED:
		o.problem = "answer without a label"
	case resp.GetPhase() != pb.Phase_PHASE_FINAL:
		o.problem = "final answer with phase " + resp.GetPhase().String()
	case p.GetTier() == pb.Tier_TIER_LEXICON && !p.GetDegraded() && !p.GetPrefiltered():
		o.problem = "a lexicon answer neither degraded nor prefiltered"
	case p.GetDegraded() && p.GetReason() == "":
		o.problem = "a degraded answer without a reason"
	case p.GetDegraded() && p.GetTier() != pb.Tier_TIER_LEXICON:
		o.problem = "a degraded answer from tier " + p.GetTier().String()
	case p.GetTier() == pb.Tier_TIER_UNSPECIFIED:
		o.problem = "an answer without a tier"
	}
}

// --- the replicas as a client sees them ---------------------------------

// pool is the two replica slots; a restarted replica takes its slot's
// place.
type pool struct {
	slots [2]atomic.Pointer[replica]
}

// pick returns an up replica, slot n first; nil when none is up.
func (p *pool) pick(n int) *replica {
	for k := range 2 {
		if r := p.slots[(n+k)%2].Load(); r != nil && r.state.Load() == stateUp {
			return r
		}
	}
	return nil
}

// other returns an up replica that is not r.
func (p *pool) other(r *replica) *replica {
	for k := range 2 {
		if o := p.slots[k].Load(); o != nil && o != r && o.state.Load() == stateUp {
			return o
		}
	}
	return nil
}

// drainedAway reports whether err is the UNAVAILABLE of a replica that was
// told to stop: the one error a client is expected to see, and to answer
// by sending the request to another replica.
func drainedAway(r *replica, err error) bool {
	return status.Code(err) == codes.Unavailable && r.state.Load() != stateUp
}

// --- jobs ---------------------------------------------------------------

// job is one unit of load: a unary call or a batch stream.
type job struct {
	at       time.Duration // from the phase's start
	slot     int           // the replica slot tried first
	deadline time.Duration // unary: the call's; batch: the stream's
	items    []item
	batch    bool
	// victim marks the stream that is open when its replica gets SIGTERM:
	// it sends slowly and says on halfway once a third is answered.
	victim   bool
	halfway  chan<- struct{}
	stepSend time.Duration
}

// runUnary makes one Classify call; an UNAVAILABLE from a draining
// replica is retried on the other one within the same deadline.
func runUnary(p *pool, j job, rec *recorder) {
	it := j.items[0]
	ctx, cancel := context.WithTimeout(context.Background(), j.deadline)
	defer cancel()
	start := time.Now()
	o := outcome{}
	r := p.pick(j.slot)
	for tries := 0; ; tries++ {
		if r == nil {
			o.problem = "no replica up to send to"
			break
		}
		resp, err := r.client.Classify(ctx, it.req)
		if err == nil {
			o.replica = r.label()
			judgeAnswer(&o, resp, it.id)
			break
		}
		if drainedAway(r, err) && tries < 2 {
			o.explained++
			r = p.other(r)
			continue
		}
		o.problem = fmt.Sprintf("Classify on %s: %v", r.label(), err)
		break
	}
	o.latency = time.Since(start)
	if o.problem == "" && o.latency > j.deadline {
		o.problem = fmt.Sprintf("answered after %s, deadline %s", o.latency, j.deadline)
	}
	rec.add(o)
}

// batchLedger counts every answer each item of one batch gets, over every
// stream it was sent on.
type batchLedger struct {
	mu      sync.Mutex
	answers map[string]int
}

// runBatch sends the job's items on a stream and, when the replica drains
// mid-stream, sends those it did not answer to the other replica, as a
// client would. Each item must be answered exactly once in all.
func runBatch(p *pool, j job, rec *recorder, victimLog func(string)) {
	ledger := &batchLedger{answers: map[string]int{}}
	pending := j.items
	r := p.pick(j.slot)
	if j.victim {
		r = p.slots[j.slot].Load()
	}
	explained := 0
	for tries := 0; len(pending) > 0; tries++ {
		if r == nil || tries > 2 {
			for _, it := range pending {
				rec.add(outcome{batch: true, problem: fmt.Sprintf("item %s: no replica left to answer it", it.id)})
			}
			return
		}
		rest, endErr := streamOnce(r, j, pending, ledger, rec, tries == 0 && j.victim)
		if endErr == nil && len(rest) == 0 {
			break
		}
		if endErr != nil && drainedAway(r, endErr) {
			if victimLog != nil && j.victim {
				victimLog(fmt.Sprintf("%s ended the stream with %v after answering %d of %d; %d resent",
					r.label(), status.Code(endErr), len(pending)-len(rest), len(pending), len(rest)))
			}
			explained++
			pending = rest
			r = p.other(r)
			continue
		}
		msg := fmt.Sprintf("stream on %s ended with %v, %d items unanswered", r.label(), endErr, len(rest))
		if endErr == nil {
			msg = fmt.Sprintf("stream on %s ended cleanly with %d items unanswered", r.label(), len(rest))
		}
		for _, it := range rest {
			rec.add(outcome{batch: true, problem: fmt.Sprintf("item %s: %s", it.id, msg)})
		}
		break
	}
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	for _, it := range j.items {
		if n := ledger.answers[it.id]; n > 1 {
			rec.add(outcome{batch: true, problem: fmt.Sprintf("item %s answered %d times", it.id, n)})
		}
	}
	rec.drained.Add(int64(explained))
}

// streamOnce sends items on one ClassifyBatch stream to r and records each
// answer. It returns the items not answered and how the stream ended (nil
// after every item was answered and the server closed its side).
func streamOnce(r *replica, j job, items []item, ledger *batchLedger, rec *recorder, victim bool) ([]item, error) {
	ctx, cancel := context.WithTimeout(context.Background(), j.deadline)
	defer cancel()
	stream, err := r.client.ClassifyBatch(ctx)
	if err != nil {
		return items, err
	}
	var mu sync.Mutex
	sentAt := make(map[string]time.Time, len(items))
	answered := make(map[string]bool, len(items))
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for _, it := range items {
			mu.Lock()
			sentAt[it.id] = time.Now()
			mu.Unlock()
			if err := stream.Send(&pb.ClassifyBatchRequest{Item: it.req.GetItem(), Options: it.req.GetOptions()}); err != nil {
				return // the stream ended; Recv says how
			}
			if j.stepSend > 0 {
				select {
				case <-time.After(j.stepSend):
				case <-ctx.Done():
					return
				}
			}
		}
		_ = stream.CloseSend()
	}()
	ids := make(map[string]bool, len(items))
	for _, it := range items {
		ids[it.id] = true
	}
	var endErr error
	halfwaySaid := false
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			endErr = err
			break
		}
		id := resp.GetId()
		o := outcome{batch: true, replica: r.label()}
		mu.Lock()
		if t, ok := sentAt[id]; ok {
			o.latency = time.Since(t)
		}
		mu.Unlock()
		ledger.mu.Lock()
		ledger.answers[id]++
		ledger.mu.Unlock()
		switch {
		case !ids[id]:
			o.problem = fmt.Sprintf("answer for id %q, never sent on this stream", id)
		case answered[id]:
			o.problem = fmt.Sprintf("item %s answered twice on one stream", id)
		case resp.GetError() != nil:
			o.problem = fmt.Sprintf("item %s: error entry %d %s", id, resp.GetError().GetCode(), resp.GetError().GetMessage())
		default:
			judgeAnswer(&o, resp.GetResult(), id)
		}
		answered[id] = true
		rec.add(o)
		if victim && !halfwaySaid && len(answered)*3 >= len(items) {
			halfwaySaid = true
			j.halfway <- struct{}{}
		}
	}
	cancel()
	<-sendDone
	if victim && !halfwaySaid {
		j.halfway <- struct{}{} // never leave the test waiting
	}
	var rest []item
	for _, it := range items {
		if !answered[it.id] {
			rest = append(rest, it)
		}
	}
	return rest, endErr
}

// runJobs starts each job at its time, at most limit at once, and returns
// when every one has ended (each is bounded by its deadline).
func runJobs(p *pool, jobs []job, limit int, rec *recorder, victimLog func(string)) {
	start := time.Now()
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for _, j := range jobs {
		if d := time.Until(start.Add(j.at)); d > 0 {
			time.Sleep(d) // the load's timeline, not an ordering
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if j.batch {
				runBatch(p, j, rec, victimLog)
			} else {
				runUnary(p, j, rec)
			}
		}()
	}
	wg.Wait()
}

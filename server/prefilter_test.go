package server_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
)

// titlePool are headlines from no direction to plenty; the tests sort
// them into weak and strong by the service's own lexicon, so a change of
// the lexicon changes the sorting, not the tests' logic.
var titlePool = []string{
	"Acme will publish its third-quarter report on October 24",
	"Acme holds its annual meeting in Helsinki",
	"Acme names a new chief financial officer",
	"Acme to present at an investor conference",
	"Acme plans a new plant",
	"Acme admits a small mistake in its filing",
	"Acme is cautious about the outlook",
	"Acme agrees to review its pricing",
	"Acme calls the quarter okay",
	"Acme shares slipped a little",
	"Acme raises full-year guidance after record orders",
	"Acme beats estimates and raises its dividend",
	"Acme plunges after it cuts guidance and warns on profit",
	"Acme files for bankruptcy protection",
	"Acme soars after FDA approval of its cancer drug",
}

// sortedTitles splits the pool at the threshold and returns each title's
// |prescore|, as the service reads it. It fails the test unless the weak
// titles carry several distinct strengths: the burst test orders by them.
func sortedTitles(t *testing.T, threshold float64) (weak, strong []string, strength map[string]float64) {
	t.Helper()
	sc, err := lexicon.New()
	if err != nil {
		t.Fatal(err)
	}
	strength = map[string]float64{}
	distinct := map[float64]bool{}
	for _, title := range titlePool {
		s := math.Abs(sc.Score(title).Score)
		strength[title] = s
		switch {
		case s < threshold:
			weak = append(weak, title)
			distinct[s] = true
		case s >= threshold+0.1:
			strong = append(strong, title)
		}
	}
	if len(distinct) < 4 || len(strong) < 3 {
		t.Fatalf("the title pool has %d distinct weak strengths and %d strong titles; add titles so there are at least 4 and 3", len(distinct), len(strong))
	}
	return weak, strong, strength
}

// titleOf finds which title a model call judged.
func titleOf(r upstreamtest.Request, titles map[string]float64) string {
	for title := range titles {
		if strings.Contains(string(r.Raw), title) {
			return title
		}
	}
	return ""
}

// TestWeakItemsReachAnIdleModel: off-peak, every item under the
// threshold is judged by the local model, none answered from the lexicon
// because of the threshold.
func TestWeakItemsReachAnIdleModel(t *testing.T) {
	local := upstreamtest.New(t, upstreamtest.Ollama)
	cfg := testConfig()
	cfg.Local.Enabled, cfg.Local.Endpoint = true, local.URL
	ts := start(t, cfg)
	weakTitles, _, _ := sortedTitles(t, cfg.MinPrescore)
	for i := range 100 {
		title := weakTitles[i%len(weakTitles)]
		resp, err := ts.client.Classify(ctxT(t), &pb.ClassifyRequest{Item: &pb.NewsItem{Id: fmt.Sprint(i), Title: title}})
		if err != nil {
			t.Fatal(err)
		}
		if p := resp.GetProvenance(); p.GetTier() != pb.Tier_TIER_LOCAL || p.GetPrefiltered() ||
			p.GetPrefilter() != pb.PrefilterDecision_PREFILTER_DECISION_SENT_ON_BELOW_THRESHOLD {
			t.Fatalf("item %d: %v; want the local model's answer", i, p)
		}
	}
	if n := local.Calls(); n != 100 {
		t.Errorf("%d model calls, want 100", n)
	}
}

// TestBurstStrongestFirst: 1,000 items, mostly weak, against a GPU of 4
// slots at 200 ms, each with a 5 s deadline, Gemini behind it. Every item
// is answered in time, nothing overloads the GPU, every strong item gets
// a model's answer, and the weak ones reach the model strongest first
// until the time runs out; the rest are shed, and none of them is
// stronger than a weak item the model judged from the queue.
func TestBurstStrongestFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			items    = 1000
			strongN  = 30
			slots    = 4
			deadline = 5 * time.Second
		)
		cfg := testConfig()
		cfg.Local.Enabled, cfg.Local.MaxConcurrent = true, slots
		cfg.GPU.Warmup = false
		// Gemini takes the strong items the GPU cannot, at once and
		// without a quota: what is measured is the GPU's line.
		cfg.Gemini.APIKey = "gemini-key"
		cfg.Gemini.RPM, cfg.Gemini.RPH, cfg.Gemini.RPD, cfg.MinInterval = 0, 0, 0, 0
		b := startBubble(t, cfg)
		defer b.stop(t)
		gpu := upstreamtest.NewSlots(slots, 200*time.Millisecond)
		// The GPU starts work once the whole burst has arrived, so that
		// the order it judges in is the queue's, not the transport's.
		open := make(chan struct{})
		serve := gpu.Behavior()
		// Calls granted at the same instant reach the fake in any order:
		// the order to check is between instants.
		type judged struct {
			at    time.Duration
			title string
		}
		var mu sync.Mutex
		var log []judged
		t0 := time.Now()
		b.local.SetDefault(upstreamtest.Func(func(c *upstreamtest.Call) {
			<-open
			mu.Lock()
			log = append(log, judged{time.Since(t0), string(c.Request.Raw)})
			mu.Unlock()
			serve(c)
		}))
		weakTitles, strongTitles, str := sortedTitles(t, cfg.MinPrescore)

		type result struct {
			title   string
			strong  bool
			resp    *pb.ClassifyResponse
			err     error
			elapsed time.Duration
		}
		results := make([]result, items)
		var wg sync.WaitGroup
		for i := range items {
			title, strong := weakTitles[i%len(weakTitles)], false
			if i%(items/strongN) == 0 {
				title, strong = strongTitles[i%len(strongTitles)], true
			}
			results[i] = result{title: title, strong: strong}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				start := time.Now()
				resp, err := b.client.Classify(ctx, &pb.ClassifyRequest{
					Item:    &pb.NewsItem{Id: fmt.Sprint(i), Ticker: "ACME", Title: title},
					Options: &pb.ClassifyOptions{SkipCache: true},
				})
				results[i].resp, results[i].err, results[i].elapsed = resp, err, time.Since(start)
			})
		}
		synctest.Wait()
		st, err := b.client.Stats(context.Background(), &pb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if n := st.GetPrefilter().GetSeen(); n != items {
			t.Fatalf("%d of %d items arrived before the GPU started", n, items)
		}
		close(open)
		wg.Wait()

		shedMax := 0.0
		for i, r := range results {
			if r.err != nil || r.elapsed >= deadline {
				t.Fatalf("item %d (%q): %v after %v; want an answer within %v", i, r.title, r.err, r.elapsed, deadline)
			}
			p := r.resp.GetProvenance()
			switch {
			case r.strong && (p.GetTier() != pb.Tier_TIER_LOCAL && p.GetTier() != pb.Tier_TIER_GEMINI || p.GetDegraded()):
				t.Errorf("strong item %d: %v; want a model's answer", i, p)
			case !r.strong && p.GetTier() == pb.Tier_TIER_GEMINI:
				t.Errorf("weak item %d went to Gemini", i)
			case !r.strong && p.GetPrefilter() == pb.PrefilterDecision_PREFILTER_DECISION_SHED_UNDER_LOAD:
				if !p.GetPrefiltered() || p.GetDegraded() || !strings.HasPrefix(p.GetReason(), "shed under load") {
					t.Errorf("shed item %d: %v", i, p)
				}
				shedMax = max(shedMax, str[r.title])
			case !r.strong && p.GetTier() != pb.Tier_TIER_LOCAL:
				t.Errorf("weak item %d: %v; want the local model's answer or shed", i, p)
			}
		}
		peak, crashes, served := gpu.Counts()
		if peak > slots || crashes != 0 {
			t.Errorf("GPU: %d calls at once, %d 500s; want at most %d and none", peak, crashes, slots)
		}
		// The first calls took the free slots as the burst arrived; after
		// them the queue decides, instant by instant: every call at one
		// instant is at most as strong as every call at the instant before.
		if len(log) != served || served < 50 {
			t.Fatalf("%d model calls logged, %d served; want the GPU busy for the whole burst", len(log), served)
		}
		var instants [][]float64
		for i, j := range log {
			title := ""
			for cand := range str {
				if strings.Contains(j.title, cand) {
					title = cand
				}
			}
			if title == "" {
				t.Fatalf("call %d judged no known title", i)
			}
			if j.at == 0 {
				continue
			}
			if len(instants) == 0 || j.at != log[i-1].at {
				instants = append(instants, nil)
			}
			instants[len(instants)-1] = append(instants[len(instants)-1], str[title])
		}
		lastWeak := 1.0
		for k := 1; k < len(instants); k++ {
			if prev, cur := slices.Min(instants[k-1]), slices.Max(instants[k]); cur > prev+1e-9 {
				t.Errorf("instant %d judged |prescore| up to %.3f after instant %d judged one of %.3f: not strongest first", k, cur, k-1, prev)
			}
		}
		for _, in := range instants {
			for _, s := range in {
				if s < cfg.MinPrescore {
					lastWeak = min(lastWeak, s)
				}
			}
		}
		if lastWeak == 1.0 {
			t.Fatal("no weak item reached the model from the queue: the burst did not test the order")
		}
		if shedMax > lastWeak+1e-9 {
			t.Errorf("a shed item (|prescore| %.3f) was stronger than one the model judged from the queue (%.3f)", shedMax, lastWeak)
		}
		st, err = b.client.Stats(context.Background(), &pb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		pf := st.GetPrefilter()
		t.Logf("prefilter %v; GPU peak %d, served %d", pf, peak, served)
		if pf.GetShedUnderLoad() == 0 || pf.GetSentOnBelowThreshold() == 0 || pf.GetSeen() != items {
			t.Errorf("prefilter stats %v; want some weak items sent on and some shed", pf)
		}
	})
}

// TestBatchStrongItemsOvertakeWeakOnes: on a stream judging two items at
// once, weak items waiting for a one-slot GPU do not keep the stream from
// reading the strong items behind them, which then reach the GPU first.
func TestBatchStrongItemsOvertakeWeakOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Local.Enabled, cfg.Local.MaxConcurrent = true, 1
		cfg.GPU.Warmup = false
		cfg.BatchConcurrency = 2
		b := startBubble(t, cfg)
		defer b.stop(t)
		gpu := upstreamtest.NewSlots(1, 200*time.Millisecond)
		b.local.SetDefault(gpu.Behavior())
		weak, strong, str := sortedTitles(t, cfg.MinPrescore)

		stream, err := b.client.ClassifyBatch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var sent []string
		for i := range 6 {
			sent = append(sent, weak[0])
			if err := stream.Send(&pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: fmt.Sprint("w", i), Title: weak[0]}}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 2 {
			sent = append(sent, strong[i])
			if err := stream.Send(&pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: fmt.Sprint("s", i), Title: strong[i]}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		answered := 0
		for {
			resp, err := stream.Recv()
			if err != nil {
				break
			}
			if resp.GetResult().GetProvenance().GetTier() != pb.Tier_TIER_LOCAL {
				t.Errorf("%s: %v; want the local model's answer (the GPU had time)", resp.GetId(), resp)
			}
			answered++
		}
		if answered != len(sent) {
			t.Fatalf("%d answers for %d items", answered, len(sent))
		}
		var order []float64
		for _, c := range b.local.Requests() {
			order = append(order, str[titleOf(c, str)])
		}
		// The first weak item took the free slot; the strong ones are next.
		if len(order) != len(sent) || order[1] < cfg.MinPrescore || order[2] < cfg.MinPrescore {
			t.Errorf("strengths in the order the GPU judged them: %v; want both strong items right after the first", order)
		}
	})
}

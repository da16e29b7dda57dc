package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/app"
	"github.com/catalystbot/sentiment/internal/clocktest"
	"github.com/catalystbot/sentiment/internal/discordtest"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/secret"
)

// A crossed daily threshold with SENTIMENT_BUDGET_STOP: one notice on the
// alert channel, the paid tier skipped (answers degrade, never fail) for
// the rest of the day, and called again the next day.
func TestBudgetStopDegradesPaidTiersUntilTheNextDay(t *testing.T) {
	gemini := upstreamtest.New(t, upstreamtest.Gemini)
	// A million tokens in: $0.30 at gemini-2.5-flash's price.
	gemini.SetDefault(upstreamtest.AnswerUsage(upstreamtest.BullishJSON, 1_000_000, 0))
	d := discordtest.New(t)
	cfg := alertConfig(d, nil)
	cfg.Gemini.APIKey, cfg.Gemini.BaseURL = secret.Secret("gemini-test-key"), gemini.URL
	cfg.CostAlertDaily, cfg.CostAlertMonthly, cfg.BudgetStop = 0.25, 100, true
	cfg.CostZone = time.UTC
	usageLog := filepath.Join(t.TempDir(), "usage.jsonl")
	cfg.UsageLogPath = usageLog
	clock := clocktest.New(time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC))
	ts := start(t, cfg, append(alertOptions(d, clock), app.WithClock(clock.Now))...)
	ctx := ctxT(t)
	classify := func(id string) *pb.ClassifyResponse {
		t.Helper()
		resp, err := ts.client.Classify(ctx, &pb.ClassifyRequest{
			Item:    &pb.NewsItem{Id: id, Ticker: "ACME", Title: "ACME beats estimates"},
			Options: &pb.ClassifyOptions{MinPrescore: proto.Float64(0)},
		})
		if err != nil {
			t.Fatalf("Classify %s: %v", id, err)
		}
		return resp
	}

	if p := classify("a").GetProvenance(); p.GetTier() != pb.Tier_TIER_GEMINI || p.GetCostUsd() < 0.29 {
		t.Fatalf("first call: %v; want Gemini's paid answer", p)
	}
	// The notice is posted once, in the background.
	if _, err := d.Await(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p := classify(fmt.Sprint("b", i)).GetProvenance()
		if !p.GetDegraded() || !strings.Contains(p.GetReason(), "budget stop") || p.GetTier() != pb.Tier_TIER_LEXICON {
			t.Fatalf("call during the stop: degraded %v, reason %q; want the lexicon, saying why", p.GetDegraded(), p.GetReason())
		}
	}
	if n := gemini.Calls(); n != 1 {
		t.Errorf("%d Gemini calls during the stop, want only the first", n)
	}
	st, err := ts.client.Stats(ctx, &pb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c := st.GetCost()
	if c.GetTodayUsd() < 0.29 || c.GetTodayByProvider()["gemini"] != c.GetTodayUsd() || c.GetStoppedUntil().AsTime() != time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) ||
		!c.GetBudgetStop() || c.GetZone() != "UTC" || c.GetDailyAlertUsd() != 0.25 {
		t.Errorf("cost stats %v", c)
	}
	if u := st.GetUsageLog(); u.GetPath() != usageLog || u.GetWritten()+u.GetDropped() != 1 {
		t.Errorf("usage log stats %v, want the one call", u)
	}
	posts := d.Posts()
	if len(posts) != 1 || !strings.Contains(string(posts[0].Raw), "cost threshold crossed") || !strings.Contains(string(posts[0].Raw), "stopped until 2026-12-02T00:00:00Z") {
		t.Fatalf("%d posts (%s); want one cost notice", len(posts), posts[0].Raw)
	}

	clock.Advance(2 * time.Hour) // the next day
	if p := classify("c").GetProvenance(); p.GetTier() != pb.Tier_TIER_GEMINI || p.GetDegraded() {
		t.Errorf("the next day: %v; want Gemini again", p)
	}
	if n := len(d.Posts()); n != 2 {
		// The new day's first call crossed its threshold again.
		t.Errorf("%d notices after the second day's crossing, want 2", n)
	}
}

// Every model call of a burst is in the usage log once the service has
// shut down.
func TestUsageLogCompleteAfterShutdown(t *testing.T) {
	local := upstreamtest.New(t, upstreamtest.Ollama)
	local.SetDefault(upstreamtest.AnswerUsage(upstreamtest.BullishJSON, 120, 30))
	cfg := testConfig()
	cfg.Local.Enabled, cfg.Local.Endpoint = true, local.URL
	cfg.MetricsAddr = "127.0.0.1:0"
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	cfg.UsageLogPath = path
	s := runService(t, cfg, app.WithoutGPUManager())
	ctx := ctxT(t)
	const calls = 300
	// Sixteen callers at once, within the GPU queue; the service is told
	// to stop halfway, with calls in flight, and the callers keep calling.
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				// Calls after the stop are refused: that is expected.
				_, _ = s.client.Classify(ctx, &pb.ClassifyRequest{
					Item:    &pb.NewsItem{Id: fmt.Sprint(i), Ticker: "ACME", Title: fmt.Sprintf("ACME wins order %d and raises guidance", i)},
					Options: &pb.ClassifyOptions{MinPrescore: proto.Float64(0)},
				})
			}
		})
	}
	stopped := make(chan error, 1)
	for i := range calls {
		if i == calls/2 {
			go func() { stopped <- s.stop() }()
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			RequestID string  `json:"request_id"`
			Tier      string  `json:"tier"`
			Outcome   string  `json:"outcome"`
			TokensIn  int     `json:"tokens_in"`
			LatencyMS float64 `json:"latency_ms"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", lines+1, err)
		}
		if rec.Tier != "local" || rec.Outcome != "ok" || rec.TokensIn != 120 || rec.RequestID == "" || strings.Contains(sc.Text(), "ACME") {
			t.Errorf("line %d: %s", lines+1, sc.Text())
		}
		ids[rec.RequestID] = true
		lines++
	}
	if lines != local.Calls() || lines < calls/2 || len(ids) != lines {
		t.Errorf("%d lines (%d request ids) for %d model calls, want one line per call", lines, len(ids), local.Calls())
	}
}

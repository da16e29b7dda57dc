package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/catalystbot/sentiment/config"
	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/app"
	"github.com/catalystbot/sentiment/internal/clocktest"
	"github.com/catalystbot/sentiment/internal/discordtest"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
)

// running is the service as sentimentd runs it: built by the composition
// root, listening (gRPC and metrics) through Listen, served by Run until
// the test ends.
type running struct {
	client  pb.SentimentServiceClient
	metrics string // the metrics server's base URL
	stop    func() error
}

func runService(t *testing.T, cfg config.Config, opts ...app.Option) *running {
	t.Helper()
	a, err := app.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := a.Listen()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r := &running{client: pb.NewSentimentServiceClient(conn), metrics: "http://" + a.MetricsAddr()}
	var stopped bool
	var runErr error
	r.stop = func() error {
		if !stopped {
			// As SIGTERM does: the server drains its calls, then the
			// client goes.
			stopped = true
			cancel()
			runErr = <-ran
			conn.Close()
		}
		return runErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// scrape reads /metrics as Prometheus would, with the text parser's
// validation scheme set.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value is the sample of family name whose labels include want; ok is
// false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsEndpoint(t *testing.T) {
	local := upstreamtest.New(t, upstreamtest.Ollama)
	d := discordtest.New(t)
	cfg := alertConfig(d, local)
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.Cache = true
	cfg.GPUReader, cfg.GPUSysfsRoot = "sysfs", filepath.Join("..", "gpu", "testdata", "sysfs", "rx6800")
	cfg.GPU.PollInterval = 50 * time.Millisecond
	s := runService(t, cfg, alertOptions(d, clocktest.New(time.Now()))[:2]...)
	ctx := ctxT(t)

	fams := scrape(t, s.metrics)
	// Every method shows from the start, at zero.
	if v, ok := value(fams, "grpc_server_started_total", map[string]string{"grpc_method": "ClassifyBatch"}); !ok || v != 0 {
		t.Errorf("ClassifyBatch not initialised at zero: %v %v", v, ok)
	}
	waitAdmittingClient(t, s.client)
	local.Push(upstreamtest.Error(http.StatusServiceUnavailable, "server busy"))
	req := &pb.ClassifyRequest{Item: &pb.NewsItem{Id: "m1", Ticker: "ACME", Title: "ACME beats estimates and raises guidance"},
		Options: &pb.ClassifyOptions{MinPrescore: proto.Float64(0), Alert: &pb.AlertOptions{}}}
	for range 2 {
		if _, err := s.client.Classify(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.client.Classify(ctx, &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Markets open"}}); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := s.client.Stats(ctx, &pb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetAlerts().GetPending() == 0 && st.GetAlerts().GetPosted() == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the alert never settled")
		case <-time.After(2 * time.Millisecond):
		}
	}

	fams = scrape(t, s.metrics)
	want := []struct {
		name   string
		labels map[string]string
		value  float64 // -1: any value, present
	}{
		{"grpc_server_handled_total", map[string]string{"grpc_method": "Classify", "grpc_code": "OK"}, 3},
		{"grpc_server_handling_seconds", map[string]string{"grpc_method": "Classify"}, 3},
		{"sentiment_upstream_calls_total", map[string]string{"tier": "local", "outcome": "ok"}, 2},
		{"sentiment_upstream_calls_total", map[string]string{"tier": "local", "outcome": "error"}, 1},
		{"sentiment_upstream_errors_total", map[string]string{"tier": "local", "kind": "http_503"}, 1},
		{"sentiment_upstream_retries_total", map[string]string{"tier": "local"}, 1},
		{"sentiment_upstream_call_duration_seconds", map[string]string{"tier": "local"}, 3},
		{"sentiment_upstream_tokens_total", map[string]string{"tier": "local", "direction": "in"}, -1},
		{"sentiment_breaker_state", map[string]string{"tier": "local"}, 0},
		{"sentiment_breaker_state", map[string]string{"tier": "gemini"}, 0},
		{"sentiment_quota_limit", map[string]string{"provider": "anthropic", "window": "minute"}, 50},
		{"sentiment_tier_answered_total", map[string]string{"tier": "local"}, 2},
		{"sentiment_tier_answered_total", map[string]string{"tier": "lexicon"}, 0},
		{"sentiment_prefilter_items_total", map[string]string{"decision": "sent_on_below_threshold"}, 1},
		{"sentiment_cache_hits_total", map[string]string{"kind": "exact"}, 1},
		{"sentiment_cache_misses_total", nil, 2},
		{"sentiment_gpu_vram_total_bytes", map[string]string{"card": "0000:03:00.0"}, 17163091968},
		{"sentiment_gpu_gate_open", nil, 1},
		{"sentiment_gpu_queue_limit", nil, -1},
		{"sentiment_gpu_queue_spills_total", map[string]string{"reason": "full"}, 0},
		{"sentiment_alerts_total", map[string]string{"event": "posted"}, 1},
		{"sentiment_alerts_total", map[string]string{"event": "duplicate"}, 1},
		{"sentiment_alerts_failed_total", map[string]string{"kind": "broken"}, 0},
		{"sentiment_cost_usd_total", map[string]string{"provider": "gemini"}, 0},
	}
	for _, w := range want {
		v, ok := value(fams, w.name, w.labels)
		if !ok || (w.value >= 0 && v != w.value) {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, v, ok, w.value)
		}
	}
	// Bounded labels only: no ticker, id or text anywhere.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); strings.Contains(v, "ACME") || strings.Contains(v, "m1") && l.GetName() != "card" {
					t.Errorf("%s carries %s=%q", name, l.GetName(), v)
				}
			}
		}
	}
	// Stats and the metrics tell the same story.
	st, err := s.client.Stats(ctx, &pb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, s.metrics)
	same := []struct {
		what   string
		stats  float64
		name   string
		labels map[string]string
	}{
		{"classify calls", float64(st.GetRequests().GetClassifyCalls()), "grpc_server_handled_total", map[string]string{"grpc_method": "Classify", "grpc_code": "OK"}},
		{"prefilter skipped", float64(st.GetPrefilter().GetSkippedByThreshold()), "sentiment_prefilter_items_total", map[string]string{"decision": "skipped_by_threshold"}},
		{"prefilter sent on below", float64(st.GetPrefilter().GetSentOnBelowThreshold()), "sentiment_prefilter_items_total", map[string]string{"decision": "sent_on_below_threshold"}},
		{"prefilter sent on", float64(st.GetPrefilter().GetSentOn() - st.GetPrefilter().GetSentOnBelowThreshold()), "sentiment_prefilter_items_total", map[string]string{"decision": "sent_on"}},
		{"degraded", float64(st.GetRequests().GetDegraded()), "sentiment_answers_degraded_total", nil},
		{"exact hits", float64(st.GetCache().GetExactHits()), "sentiment_cache_hits_total", map[string]string{"kind": "exact"}},
		{"misses", float64(st.GetCache().GetMisses()), "sentiment_cache_misses_total", nil},
		{"alerts posted", float64(st.GetAlerts().GetPosted()), "sentiment_alerts_total", map[string]string{"event": "posted"}},
		{"alert duplicates", float64(st.GetAlerts().GetDuplicates()), "sentiment_alerts_total", map[string]string{"event": "duplicate"}},
		{"cost today", st.GetCost().GetTodayUsd(), "sentiment_cost_period_usd", map[string]string{"period": "day", "provider": "local"}},
		{"daily threshold", st.GetCost().GetDailyAlertUsd(), "sentiment_cost_alert_threshold_usd", map[string]string{"period": "day"}},
	}
	for _, tier := range st.GetTiers() {
		name := strings.ToLower(strings.TrimPrefix(tier.GetTier().String(), "TIER_"))
		same = append(same, struct {
			what   string
			stats  float64
			name   string
			labels map[string]string
		}{name + " answered", float64(tier.GetAnswered()), "sentiment_tier_answered_total", map[string]string{"tier": name}})
		for _, w := range tier.GetQuotas() {
			same = append(same, struct {
				what   string
				stats  float64
				name   string
				labels map[string]string
			}{name + " quota " + w.GetWindow(), float64(w.GetLimit()), "sentiment_quota_limit", map[string]string{"provider": name, "window": w.GetWindow()}})
		}
	}
	for _, c := range same {
		if v, ok := value(fams, c.name, c.labels); !ok || v != c.stats {
			t.Errorf("%s: Stats says %v, %s%v says %v (present %v)", c.what, c.stats, c.name, c.labels, v, ok)
		}
	}

	resp, err := http.Get(s.metrics + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}

// waitAdmittingClient waits, within a bound, until the local tier admits
// work (the warm-up at start has loaded the model).
func waitAdmittingClient(t *testing.T, client pb.SentimentServiceClient) {
	t.Helper()
	ctx := ctxT(t)
	for {
		st, err := client.GPUStatus(ctx, &pb.GPUStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetLocalAdmitting() {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the local tier never admitted work")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

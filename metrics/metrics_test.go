package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/cache"
	"github.com/catalystbot/sentiment/cost"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/limiter"
	"github.com/catalystbot/sentiment/metrics"
	"github.com/catalystbot/sentiment/notifier"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
	"github.com/catalystbot/sentiment/usage"
)

// full is every source, as a service with every part running reports it.
func full() metrics.Sources {
	busy := 42.0
	return metrics.Sources{
		Tiers: func(context.Context) []router.TierStats {
			return []router.TierStats{
				{Tier: router.TierLocal, Enabled: true, Breaker: "open", ConsecutiveFailures: 5, Answered: 7,
					ErrorsLastHour: map[string]uint64{"timeout": 3, "Weird Kind!": 1}},
				{Tier: router.TierGemini, Enabled: true, Breaker: "closed", Answered: 2,
					Quota: []limiter.WindowUsage{{Window: "minute", Used: 3, Limit: 15, Shared: true}, {Window: "day", Used: 90, Limit: 1500, Shared: true}}},
				{Tier: router.TierAnthropic, Breaker: "half-open"},
			}
		},
		Pipeline: func() pipeline.Stats {
			return pipeline.Stats{Degraded: 4, Answered: map[router.Tier]uint64{router.TierLexicon: 11}, PrefilterSentOn: 9, PrefilterSentOnBelow: 3,
				PrefilterSkipped: 11, PrefilterSkippedByThreshold: 11}
		},
		Cache: func() cache.Stats {
			return cache.Stats{Backend: "memory (redis unreachable: refused)", ExactHits: 5, NearHits: 2}
		},
		Queue: func() batcher.Stats {
			return batcher.Stats{Limit: 3, Ceiling: 4, SpilledFull: 6, ServiceTime: 1500 * time.Millisecond}
		},
		GPU: func() gpu.Status {
			return gpu.Status{
				Devices:  []gpu.Device{{Index: 0, PCIBusID: "0000:03:00.0", VRAMTotal: 16 << 30, VRAMUsed: 12 << 30, BusyPercent: &busy}, {Index: 1, VRAMTotal: 8 << 30}},
				Pressure: gpu.PressureHigh, Admitting: true, Cleanups: 2,
			}
		},
		Alerts: func() notifier.Stats {
			return notifier.Stats{Posted: 3, Failed: map[string]uint64{"rate_limited": 1}, Broken: []string{"ops"}}
		},
		Cost: func(context.Context) cost.Snapshot {
			return cost.Snapshot{Today: 1.5, TodayBy: map[string]float64{"gemini": 1, "anthropic": 0.25, "someday": 0.25}, DailyAlert: 5, StoppedUntil: time.Now()}
		},
		UsageLog: func() usage.Stats { return usage.Stats{Written: 10, Dropped: 1} },
	}
}

func TestScrapeOfEveryPart(t *testing.T) {
	m := metrics.New(full())
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "kind" && strings.ContainsAny(l.GetValue(), " !") {
					t.Errorf("%s: unbounded kind label %q", f.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, want := range []string{
		"sentiment_breaker_state", "sentiment_quota_used", "sentiment_quota_limit", "sentiment_tier_answered_total",
		"sentiment_gpu_vram_used_bytes", "sentiment_gpu_vram_pressure", "sentiment_gpu_cleanups_total", "sentiment_gpu_gate_open",
		"sentiment_gpu_queue_limit", "sentiment_gpu_queue_halvings_total", "sentiment_gpu_queue_spills_total",
		"sentiment_cache_hits_total", "sentiment_cache_guard_refusals_total", "sentiment_cache_singleflight_joins_total",
		"sentiment_prefilter_items_total", "sentiment_alerts_total", "sentiment_alerts_failed_total",
		"sentiment_cost_period_usd", "sentiment_budget_stopped", "sentiment_usage_log_lines_total",
		"sentiment_upstream_calls_total", "sentiment_upstream_call_duration_seconds", "sentiment_cost_usd_total",
	} {
		if !names[want] {
			t.Errorf("family %s missing", want)
		}
	}
	got := samples(t, m)
	for key, want := range map[string]float64{
		"sentiment_breaker_state,tier=anthropic":                           1,
		"sentiment_breaker_state,tier=gemini":                              0,
		"sentiment_breaker_state,tier=local":                               2,
		"sentiment_tier_answered_total,tier=lexicon":                       11,
		"sentiment_tier_answered_total,tier=local":                         7,
		"sentiment_quota_used,provider=gemini,window=day":                  90,
		"sentiment_quota_shared,provider=gemini":                           1,
		"sentiment_gpu_vram_total_bytes,card=0000:03:00.0":                 16 << 30,
		"sentiment_gpu_vram_total_bytes,card=gpu1":                         8 << 30,
		"sentiment_gpu_busy_percent,card=0000:03:00.0":                     42,
		"sentiment_gpu_vram_pressure":                                      1,
		"sentiment_tier_errors_last_hour,kind=other,tier=local":            1,
		"sentiment_tier_errors_last_hour,kind=timeout,tier=local":          3,
		"sentiment_cache_hits_total,kind=near":                             2,
		"sentiment_cache_redis_fallback":                                   1,
		"sentiment_gpu_queue_spills_total,reason=full":                     6,
		"sentiment_gpu_queue_service_time_seconds":                         1.5,
		"sentiment_alerts_failed_total,kind=rate_limited":                  1,
		"sentiment_alert_channels_broken":                                  1,
		"sentiment_cost_period_usd,period=day,provider=gemini":             1,
		"sentiment_cost_period_usd,period=day,provider=other":              0.25,
		"sentiment_cost_period_usd,period=month,provider=local":            0,
		"sentiment_cost_alert_threshold_usd,period=day":                    5,
		"sentiment_budget_stopped":                                         1,
		"sentiment_usage_log_lines_total,result=dropped":                   1,
		"sentiment_prefilter_items_total,decision=skipped_by_threshold":    11,
		"sentiment_prefilter_items_total,decision=sent_on":                 6,
		"sentiment_prefilter_items_total,decision=sent_on_below_threshold": 3,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}

// samples are the registry's samples by name and labels
// ("name,label=value,..."); a histogram's is its count.
func samples(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mm := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mm.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case mm.Counter != nil:
				got[key] = mm.GetCounter().GetValue()
			case mm.Gauge != nil:
				got[key] = mm.GetGauge().GetValue()
			case mm.Histogram != nil:
				got[key] = float64(mm.GetHistogram().GetSampleCount())
			}
		}
	}
	return got
}

func TestObserveCall(t *testing.T) {
	m := metrics.New(metrics.Sources{})
	m.ObserveCall(context.Background(), router.Call{Tier: router.TierGemini, Outcome: router.OutcomeOK, Latency: 800 * time.Millisecond,
		Usage: router.Usage{TokensIn: 400, TokensOut: 40}, CostUSD: 0.001})
	m.ObserveCall(context.Background(), router.Call{Tier: router.TierGemini, Outcome: router.OutcomeError, ErrorType: "http_429", Retry: 1})
	m.ObserveCall(context.Background(), router.Call{Tier: router.TierLocal, Outcome: router.OutcomeError, ErrorType: "a text that is not a kind"})
	got := samples(t, m)
	for key, want := range map[string]float64{
		"sentiment_upstream_calls_total,outcome=ok,tier=gemini":     1,
		"sentiment_upstream_calls_total,outcome=error,tier=gemini":  1,
		"sentiment_upstream_calls_total,outcome=ok,tier=anthropic":  0,
		"sentiment_upstream_errors_total,kind=http_429,tier=gemini": 1,
		"sentiment_upstream_errors_total,kind=other,tier=local":     1,
		"sentiment_upstream_retries_total,tier=gemini":              1,
		"sentiment_upstream_tokens_total,direction=in,tier=gemini":  400,
		"sentiment_upstream_call_duration_seconds,tier=gemini":      2,
		"sentiment_cost_usd_total,provider=gemini":                  0.001,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}

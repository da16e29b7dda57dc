package metrics

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catalystbot/sentiment/cost"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/router"
)

// snapshots turns the parts' snapshots into metrics at scrape time. It is
// an unchecked collector (Describe sends nothing): which families it has
// depends on the parts the service runs.
type snapshots struct{ src Sources }

func (*snapshots) Describe(chan<- *prometheus.Desc) {}

// emit writes metrics of one family; labels are the label names, and each
// call of the returned function one sample.
type emit func(v float64, labelValues ...string)

func family(ch chan<- prometheus.Metric, name, help string, kind prometheus.ValueType, labels ...string) emit {
	desc := prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	return func(v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(desc, kind, v, lv...)
	}
}

func gauge(ch chan<- prometheus.Metric, name, help string, labels ...string) emit {
	return family(ch, name, help, prometheus.GaugeValue, labels...)
}

func counter(ch chan<- prometheus.Metric, name, help string, labels ...string) emit {
	return family(ch, name, help, prometheus.CounterValue, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (s *snapshots) Collect(ch chan<- prometheus.Metric) {
	var lexicon float64
	if s.src.Pipeline != nil {
		lexicon = s.pipeline(ch)
	}
	if s.src.Tiers != nil {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		s.tiers(ch, s.src.Tiers(ctx), lexicon)
		cancel()
	}
	if s.src.Cache != nil {
		s.cache(ch)
	}
	if s.src.Queue != nil {
		s.queue(ch)
	}
	if s.src.GPU != nil {
		s.gpu(ch, s.src.GPU())
	}
	if s.src.Alerts != nil {
		s.alerts(ch)
	}
	if s.src.Cost != nil {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		s.cost(ch, s.src.Cost(ctx))
		cancel()
	}
	if s.src.UsageLog != nil {
		u := s.src.UsageLog()
		lines := counter(ch, "usage_log_lines_total", "Usage log lines by result: written, dropped (the buffer was full), failed to write.", "result")
		lines(float64(u.Written), "written")
		lines(float64(u.Dropped), "dropped")
		lines(float64(u.WriteErrors), "error")
	}
}

// costProviders always show, at zero before the first paid call.
var costProviders = []string{"local", "gemini", "anthropic"}

func (s *snapshots) cost(ch chan<- prometheus.Metric, c cost.Snapshot) {
	spent := gauge(ch, "cost_period_usd", "USD spent in the current day and month (every replica's when shared through Redis), by provider.", "period", "provider")
	for _, p := range costProviders {
		spent(c.TodayBy[p], "day", p)
		spent(c.MonthBy[p], "month", p)
	}
	for p, v := range c.TodayBy {
		if !slices.Contains(costProviders, p) {
			spent(v, "day", "other")
		}
	}
	for p, v := range c.MonthBy {
		if !slices.Contains(costProviders, p) {
			spent(v, "month", "other")
		}
	}
	th := gauge(ch, "cost_alert_threshold_usd", "The cost that raises an alert, by period (0: none).", "period")
	th(c.DailyAlert, "day")
	th(c.MonthlyAlert, "month")
	gauge(ch, "budget_stopped", "1 while the budget stop keeps paid tiers from being called.")(b2f(!c.StoppedUntil.IsZero()))
	gauge(ch, "cost_redis_fallback", "1 while Redis is configured but unreachable and the cost totals run in memory.")(b2f(strings.Contains(c.Backend, "unreachable")))
}

// breakerLevel orders the breaker's states for a gauge.
var breakerLevel = map[string]float64{"closed": 0, "half-open": 1, "open": 2}

// tiers reports each tier; lexicon is the lexicon's answers, which no
// router tier counts.
func (s *snapshots) tiers(ch chan<- prometheus.Metric, ts []router.TierStats, lexicon float64) {
	answered := counter(ch, "tier_answered_total", "Items each tier answered itself: a model's answer, or the lexicon's (prefiltered or degraded). Cache hits are counted apart.", "tier")
	answered(lexicon, router.TierLexicon.String())
	enabled := gauge(ch, "tier_enabled", "1 when the tier is configured.", "tier")
	state := gauge(ch, "breaker_state", "The tier's breaker: 0 closed, 1 half-open, 2 open.", "tier")
	fails := gauge(ch, "breaker_consecutive_failures", "The tier's failures in a row.", "tier")
	trans := counter(ch, "breaker_transitions_total", "The tier's breaker state changes.", "tier")
	errs := gauge(ch, "tier_errors_last_hour", "The tier's failed calls in the last hour, by kind.", "tier", "kind")
	used := gauge(ch, "quota_used", "Request slots used in the provider's quota window (every replica's when shared).", "provider", "window")
	limit := gauge(ch, "quota_limit", "The provider's quota window's size.", "provider", "window")
	shared := gauge(ch, "quota_shared", "1 when the provider's quota windows are read from Redis.", "provider")
	for _, t := range ts {
		name := t.Tier.String()
		enabled(b2f(t.Enabled), name)
		answered(float64(t.Answered), name)
		state(breakerLevel[t.Breaker], name)
		fails(float64(t.ConsecutiveFailures), name)
		trans(float64(t.BreakerTransitions), name)
		for kind, n := range t.ErrorsLastHour {
			errs(float64(n), name, kindLabel(kind))
		}
		sh := false
		for _, w := range t.Quota {
			used(float64(w.Used), name, w.Window)
			limit(float64(w.Limit), name, w.Window)
			sh = sh || w.Shared
		}
		if len(t.Quota) > 0 {
			shared(b2f(sh), name)
		}
	}
}

// pipeline reports the request path's counters, and returns the
// lexicon's answers for tiers.
func (s *snapshots) pipeline(ch chan<- prometheus.Metric) float64 {
	p := s.src.Pipeline()
	counter(ch, "requests_invalid_total", "Items refused as bad input.")(float64(p.Invalid))
	counter(ch, "requests_failed_total", "Calls that ended in an error other than bad input or the caller's leaving (require_llm with no model, a deadline past on arrival).")(float64(p.Failed))
	counter(ch, "requests_cancelled_total", "Calls whose caller left before the answer.")(float64(p.Cancelled))
	counter(ch, "answers_degraded_total", "Final answers the lexicon gave because no model could.")(float64(p.Degraded))
	pf := counter(ch, "prefilter_items_total", "Items by what the prefilter decided: sent on to the models at or above the threshold (or require_llm); sent to the local model below it because the GPU had room; shed under load; skipped by the threshold.", "decision")
	pf(float64(p.PrefilterSentOn-p.PrefilterSentOnBelow), "sent_on")
	pf(float64(p.PrefilterSentOnBelow), "sent_on_below_threshold")
	pf(float64(p.PrefilterShed), "shed_under_load")
	pf(float64(p.PrefilterSkippedByThreshold), "skipped_by_threshold")
	return float64(p.Answered[router.TierLexicon])
}

func (s *snapshots) cache(ch chan<- prometheus.Metric) {
	c := s.src.Cache()
	hits := counter(ch, "cache_hits_total", "Answers reused from the cache, by kind (exact, near).", "kind")
	hits(float64(c.ExactHits), "exact")
	hits(float64(c.NearHits), "near")
	counter(ch, "cache_misses_total", "Lookups that found no answer.")(float64(c.Misses))
	counter(ch, "cache_guard_refusals_total", "Near-duplicate candidates the meaning guard refused.")(float64(c.Refusals))
	counter(ch, "cache_singleflight_joins_total", "Calls that waited for an identical or near-identical call in flight instead of calling a model.")(float64(c.Joined))
	counter(ch, "cache_stored_total", "Answers stored.")(float64(c.Stored))
	counter(ch, "cache_evicted_total", "Answers pushed out by the bounds.")(float64(c.Evicted))
	gauge(ch, "cache_entries", "Answers in this replica's memory store.")(float64(c.Entries))
	gauge(ch, "cache_redis_fallback", "1 while Redis is configured but unreachable and the cache runs in memory.")(b2f(strings.Contains(c.Backend, "unreachable")))
}

func (s *snapshots) queue(ch chan<- prometheus.Metric) {
	q := s.src.Queue()
	gauge(ch, "gpu_queue_limit", "GPU calls allowed at once by the adaptive limit.")(float64(q.Limit))
	gauge(ch, "gpu_queue_ceiling", "The GPU manager's cap on calls at once (VRAM pressure).")(float64(q.Ceiling))
	gauge(ch, "gpu_queue_in_flight", "GPU calls running.")(float64(q.InFlight))
	gauge(ch, "gpu_queue_waiting", "Items waiting for a GPU slot.")(float64(q.Waiting))
	counter(ch, "gpu_queue_started_total", "GPU slots granted.")(float64(q.Started))
	counter(ch, "gpu_queue_halvings_total", "Times an overloaded model server halved the limit.")(float64(q.Halvings))
	spills := counter(ch, "gpu_queue_spills_total", "Items sent on to the next tier: the queue was full, or no slot would come in time.", "reason")
	spills(float64(q.SpilledFull), "full")
	spills(float64(q.SpilledNoTime), "no_time")
	gauge(ch, "gpu_queue_service_time_seconds", "Moving average of a GPU call's duration.")(q.ServiceTime.Seconds())
	sent := counter(ch, "gpu_queue_sent_away_total", "Waiting items sent away for stronger ones: displaced from a full line, overtaken past their deadline.", "reason")
	sent(float64(q.Displaced), "displaced")
	sent(float64(q.Overtaken), "overtaken")
	if q.Shared != "" {
		counter(ch, "gpu_lease_waits_total", "Items that waited for a GPU slot the other replicas held.")(float64(q.LeaseWaits))
		counter(ch, "gpu_lease_fallbacks_total", "GPU calls started on this replica's local share while Redis could not be asked.")(float64(q.LeaseFallbacks))
		gauge(ch, "gpu_lease_redis_fallback", "1 while the GPU's slots cannot be shared through Redis and this replica runs its local share.")(b2f(strings.Contains(q.Shared, "unreachable")))
	}
}

var pressureLevel = map[gpu.Pressure]float64{gpu.PressureNormal: 0, gpu.PressureHigh: 1, gpu.PressureCritical: 2}

func (s *snapshots) gpu(ch chan<- prometheus.Metric, st gpu.Status) {
	total := gauge(ch, "gpu_vram_total_bytes", "The card's VRAM.", "card")
	used := gauge(ch, "gpu_vram_used_bytes", "VRAM in use.", "card")
	free := gauge(ch, "gpu_vram_free_bytes", "VRAM free.", "card")
	busy := gauge(ch, "gpu_busy_percent", "GPU load.", "card")
	temp := gauge(ch, "gpu_temperature_celsius", "GPU temperature.", "card")
	for _, d := range st.Devices {
		card := d.PCIBusID
		if card == "" {
			card = "gpu" + strconv.Itoa(d.Index)
		}
		total(float64(d.VRAMTotal), card)
		used(float64(d.VRAMUsed), card)
		free(float64(d.VRAMFree), card)
		if d.BusyPercent != nil {
			busy(*d.BusyPercent, card)
		}
		if d.TemperatureC != nil {
			temp(*d.TemperatureC, card)
		}
	}
	gauge(ch, "gpu_vram_pressure", "The watched card's VRAM pressure: 0 normal, 1 high water, 2 critical.")(pressureLevel[st.Pressure])
	gauge(ch, "gpu_vram_used_percent", "The watched card's VRAM use.")(st.PressurePercent)
	counter(ch, "gpu_cleanups_total", "Unload and reload cycles of the local model, periodic ones included.")(float64(st.Cleanups))
	counter(ch, "gpu_restarts_total", "Runs of the model server's restart command.")(float64(st.Restarts))
	gauge(ch, "gpu_gate_open", "1 while the local tier takes work.")(b2f(st.Admitting))
	gauge(ch, "gpu_model_loaded", "1 while the model server lists the local model as loaded.")(b2f(st.Model.Loaded))
	gauge(ch, "gpu_model_warm", "1 while the local model has stayed loaded since its last warm-up.")(b2f(st.Model.Warm))
	gauge(ch, "gpu_model_vram_bytes", "VRAM the local model holds.")(float64(st.Model.SizeVRAM))
	gauge(ch, "gpu_local_consecutive_failures", "Local calls failed in a row, as the GPU manager counts them.")(float64(st.ConsecutiveFailures))
}

func (s *snapshots) alerts(ch chan<- prometheus.Metric) {
	a := s.src.Alerts()
	ev := counter(ch, "alerts_total", "Discord alerts by event: posted, posted complete (no edit needed), edited with the final answer, timed out, not posted again (duplicate).", "event")
	ev(float64(a.Posted), "posted")
	ev(float64(a.Complete), "complete")
	ev(float64(a.Edited), "edited")
	ev(float64(a.TimedOut), "timed_out")
	ev(float64(a.Duplicates), "duplicate")
	ev(float64(a.Notices), "notice")
	failed := counter(ch, "alerts_failed_total", "Failed Discord posts and edits by kind.", "kind")
	for _, kind := range []string{"rate_limited", "broken", "http_5xx", "http_4xx", "timeout", "connection"} {
		failed(float64(a.Failed[kind]), kind)
	}
	gauge(ch, "alerts_pending", "Alerts waiting for their final answer.")(float64(a.Pending))
	gauge(ch, "alert_channels_broken", "Channels whose webhook was deleted or revoked.")(float64(len(a.Broken)))
}

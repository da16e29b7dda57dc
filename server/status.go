package server

import (
	"context"
	"sync/atomic"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/limiter"
	"github.com/catalystbot/sentiment/router"
)

// counters are the calls and streams the adapter sees; what became of
// each item is the pipeline's to count. Atomics, not a mutex: they sit on
// every call's path.
type counters struct {
	classifyCalls atomic.Uint64
	alertCalls    atomic.Uint64
	batchStreams  atomic.Uint64
	batchItems    atomic.Uint64
	// invalid counts requests refused before they reached the pipeline:
	// bytes that were not the message, unknown enum values, bad items of
	// a batch stream.
	invalid     atomic.Uint64
	openStreams atomic.Int64
}

// GPUStatus reports the local model's GPU as the GPU manager sees it.
// Without a manager (no local Ollama tier) it says so rather than report
// zeros.
func (s *Server) GPUStatus(context.Context, *pb.GPUStatusRequest) (*pb.GPUStatusResponse, error) {
	if s.gpu == nil {
		return &pb.GPUStatusResponse{
			Reader:      "none",
			ReaderError: "no GPU reader is configured: the GPU manager runs only with the local Ollama tier (LLM_LOCAL_ENABLED=1, SENTIMENT_LOCAL_API=ollama)",
			GateReason:  "no local Ollama tier",
			ObservedAt:  timestamppb.New(s.now()),
		}, nil
	}
	st := s.gpu.Status()
	resp := &pb.GPUStatusResponse{
		Reader:              st.Reader,
		ReaderError:         st.ReaderError,
		Pressure:            pressureOf(st.Pressure),
		PressurePercent:     st.PressurePercent,
		PressureCard:        st.PressureCard,
		LastCleanupReason:   st.LastCleanupReason,
		Cleanups:            st.Cleanups,
		LocalAdmitting:      st.Admitting,
		GateReason:          st.GateReason,
		VramNotFreed:        st.VRAMNotFreed,
		VramMessage:         st.VRAMMessage,
		Restarts:            st.Restarts,
		GpuConcurrency:      int32(st.Ceiling),
		ConcurrencyCut:      st.CeilingCut,
		Queue:               s.queueStats(),
		RecoveryPhase:       st.Phase,
		ConsecutiveFailures: uint32(st.ConsecutiveFailures),
		Model: &pb.ModelState{
			Name:          st.Model.Name,
			Loaded:        st.Model.Loaded,
			VramBytes:     st.Model.SizeVRAM,
			SizeBytes:     st.Model.Size,
			Warm:          st.Model.Warm,
			ContextLength: int32(st.Model.ContextLength),
			Error:         st.Model.Error,
		},
	}
	if q := resp.Queue; q != nil {
		resp.GpuConcurrency = min(q.Limit, q.Ceiling)
	}
	if st.Model.WarmupLatency > 0 {
		resp.Model.WarmupLatency = durationpb.New(st.Model.WarmupLatency)
	}
	if !st.Model.ExpiresAt.IsZero() {
		resp.Model.ExpiresAt = timestamppb.New(st.Model.ExpiresAt)
	}
	if !st.LastCleanupAt.IsZero() {
		resp.LastCleanupAt = timestamppb.New(st.LastCleanupAt)
	}
	if !st.ObservedAt.IsZero() {
		resp.ObservedAt = timestamppb.New(st.ObservedAt)
	}
	for _, d := range st.Devices {
		resp.Devices = append(resp.Devices, &pb.GPUDevice{
			Index:              int32(d.Index),
			Name:               d.Name,
			Vendor:             d.Vendor,
			VramTotalBytes:     d.VRAMTotal,
			VramUsedBytes:      d.VRAMUsed,
			VramFreeBytes:      d.VRAMFree,
			BusyPercent:        d.BusyPercent,
			TemperatureCelsius: d.TemperatureC,
			Source:             d.Source,
			Integrated:         d.Integrated,
		})
	}
	return resp, nil
}

// queueStats is the GPU queue's state, nil without one.
func (s *Server) queueStats() *pb.GPUQueueStats {
	if s.queue == nil {
		return nil
	}
	q := s.queue.Stats()
	return &pb.GPUQueueStats{
		Limit:          int32(q.Limit),
		Ceiling:        int32(q.Ceiling),
		InFlight:       int32(q.InFlight),
		Waiting:        int32(q.Waiting),
		Started:        q.Started,
		Halvings:       q.Halvings,
		Grows:          q.Grows,
		SpilledFull:    q.SpilledFull,
		SpilledNoTime:  q.SpilledNoTime,
		Canceled:       q.Canceled,
		ServiceTime:    durationpb.New(q.ServiceTime),
		Displaced:      q.Displaced,
		Overtaken:      q.Overtaken,
		Shared:         q.Shared,
		LeaseWaits:     q.LeaseWaits,
		LeaseFallbacks: q.LeaseFallbacks,
	}
}

func pressureOf(p gpu.Pressure) pb.PressureLevel {
	switch p {
	case gpu.PressureNormal:
		return pb.PressureLevel_PRESSURE_LEVEL_NORMAL
	case gpu.PressureHigh:
		return pb.PressureLevel_PRESSURE_LEVEL_HIGH
	case gpu.PressureCritical:
		return pb.PressureLevel_PRESSURE_LEVEL_CRITICAL
	}
	return pb.PressureLevel_PRESSURE_LEVEL_UNSPECIFIED
}

// Stats reports what the service has done since it started.
func (s *Server) Stats(ctx context.Context, _ *pb.StatsRequest) (*pb.StatsResponse, error) {
	now := s.now()
	c := &s.stats
	ps := s.pipe.Stats()
	return &pb.StatsResponse{
		StartedAt: timestamppb.New(s.started),
		Uptime:    durationpb.New(now.Sub(s.started)),
		Version:   Version,
		Requests: &pb.RequestStats{
			ClassifyCalls: c.classifyCalls.Load(),
			AlertCalls:    c.alertCalls.Load(),
			BatchStreams:  c.batchStreams.Load(),
			BatchItems:    c.batchItems.Load(),
			Invalid:       c.invalid.Load() + ps.Invalid,
			Failed:        ps.Failed,
			Cancelled:     ps.Cancelled,
			Degraded:      ps.Degraded,
			OpenStreams:   uint64(max(c.openStreams.Load(), 0)),
		},
		Tiers:  s.tierStats(ctx, ps.Answered[router.TierLexicon]),
		Cache:  s.cacheStats(),
		Alerts: s.alertStats(),
		Prefilter: &pb.PrefilterStats{
			Seen:                 ps.PrefilterSeen,
			SentOn:               ps.PrefilterSentOn,
			Skipped:              ps.PrefilterSkipped,
			SentOnBelowThreshold: ps.PrefilterSentOnBelow,
			ShedUnderLoad:        ps.PrefilterShed,
			SkippedByThreshold:   ps.PrefilterSkippedByThreshold,
			Mode:                 ps.PrefilterMode,
		},
		Cost:     s.costStats(ctx),
		UsageLog: s.usageStats(),
	}, nil
}

// cacheStats are the cache's counts; the backend says "off" without one.
func (s *Server) cacheStats() *pb.CacheStats {
	if s.cache == nil {
		return &pb.CacheStats{Backend: "off"}
	}
	c := s.cache.Stats()
	return &pb.CacheStats{
		Backend:        c.Backend,
		ExactHits:      c.ExactHits,
		NearHits:       c.NearHits,
		Misses:         c.Misses,
		SharedInFlight: c.Joined,
		GuardRefusals:  c.Refusals,
		Stored:         c.Stored,
		Evicted:        c.Evicted,
		Entries:        c.Entries,
	}
}

// tierStats lists the lexicon, which never fails, then each model tier in
// policy order.
func (s *Server) tierStats(ctx context.Context, lexiconAnswered uint64) []*pb.TierStats {
	rs := s.tiers.Stats(ctx)
	out := make([]*pb.TierStats, 0, len(rs)+1)
	out = append(out, &pb.TierStats{
		Tier:         pb.Tier_TIER_LEXICON,
		Enabled:      true,
		Model:        "lexicon",
		BreakerState: pb.BreakerState_BREAKER_STATE_CLOSED,
		Answered:     lexiconAnswered,
	})
	for _, t := range rs {
		out = append(out, &pb.TierStats{
			Tier:                tierPB(t.Tier),
			Enabled:             t.Enabled,
			Model:               t.Model,
			BreakerState:        breakerOf(t.Breaker),
			ConsecutiveFailures: t.ConsecutiveFailures,
			ErrorsLastHour:      t.ErrorsLastHour,
			Answered:            t.Answered,
			BreakerTransitions:  t.BreakerTransitions,
			Quotas:              quotasOf(t.Quota),
			QuotaBackend:        t.QuotaBackend,
		})
	}
	return out
}

func breakerOf(state string) pb.BreakerState {
	switch state {
	case "closed":
		return pb.BreakerState_BREAKER_STATE_CLOSED
	case "half-open":
		return pb.BreakerState_BREAKER_STATE_HALF_OPEN
	case "open":
		return pb.BreakerState_BREAKER_STATE_OPEN
	}
	return pb.BreakerState_BREAKER_STATE_UNSPECIFIED
}

func quotasOf(ws []limiter.WindowUsage) []*pb.QuotaWindow {
	out := make([]*pb.QuotaWindow, 0, len(ws))
	for _, w := range ws {
		out = append(out, &pb.QuotaWindow{
			Window:   w.Window,
			Used:     w.Used,
			Limit:    w.Limit,
			ResetsAt: timestamppb.New(w.ResetsAt),
			Shared:   w.Shared,
		})
	}
	return out
}

// costStats reports the cost totals against their thresholds.
func (s *Server) costStats(ctx context.Context) *pb.CostStats {
	if s.cost == nil {
		return &pb.CostStats{DailyAlertUsd: s.cfg.CostAlertDaily, MonthlyAlertUsd: s.cfg.CostAlertMonthly}
	}
	c := s.cost.Snapshot(ctx)
	out := &pb.CostStats{
		TodayUsd:        c.Today,
		MonthUsd:        c.Month,
		DailyAlertUsd:   c.DailyAlert,
		MonthlyAlertUsd: c.MonthlyAlert,
		TodayByProvider: c.TodayBy,
		MonthByProvider: c.MonthBy,
		Zone:            c.Zone,
		DayStartedAt:    timestamppb.New(c.DayStart),
		MonthStartedAt:  timestamppb.New(c.MonthStart),
		BudgetStop:      c.BudgetStop,
		Backend:         c.Backend,
	}
	if !c.StoppedUntil.IsZero() {
		out.StoppedUntil = timestamppb.New(c.StoppedUntil)
	}
	return out
}

// usageStats reports the usage log's lines; nil without one.
func (s *Server) usageStats() *pb.UsageLogStats {
	if s.usage == nil {
		return nil
	}
	u := s.usage.Stats()
	return &pb.UsageLogStats{Path: u.Path, Written: u.Written, Dropped: u.Dropped, WriteErrors: u.WriteErrors}
}

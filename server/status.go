package server

import (
	"context"
	"sync/atomic"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/limiter"
)

// counters are the request counters Stats reports. Atomics, not a mutex:
// they sit on every call's path.
type counters struct {
	classifyCalls atomic.Uint64
	batchStreams  atomic.Uint64
	batchItems    atomic.Uint64
	invalid       atomic.Uint64
	failed        atomic.Uint64
	cancelled     atomic.Uint64
	degraded      atomic.Uint64
	openStreams   atomic.Int64

	prefilterSeen    atomic.Uint64
	prefilterSentOn  atomic.Uint64
	prefilterSkipped atomic.Uint64
	// answered counts final answers by the tier that gave them, indexed
	// by pb.Tier.
	answered [pb.Tier_TIER_ANTHROPIC + 1]atomic.Uint64
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
	return &pb.StatsResponse{
		StartedAt: timestamppb.New(s.started),
		Uptime:    durationpb.New(now.Sub(s.started)),
		Version:   Version,
		Requests: &pb.RequestStats{
			ClassifyCalls: c.classifyCalls.Load(),
			BatchStreams:  c.batchStreams.Load(),
			BatchItems:    c.batchItems.Load(),
			Invalid:       c.invalid.Load(),
			Failed:        c.failed.Load(),
			Cancelled:     c.cancelled.Load(),
			Degraded:      c.degraded.Load(),
			OpenStreams:   uint64(max(c.openStreams.Load(), 0)),
		},
		Tiers: s.tierStats(ctx),
		Prefilter: &pb.PrefilterStats{
			Seen:    c.prefilterSeen.Load(),
			SentOn:  c.prefilterSentOn.Load(),
			Skipped: c.prefilterSkipped.Load(),
		},
		Cost: &pb.CostStats{
			DailyAlertUsd:   s.cfg.CostAlertDaily,
			MonthlyAlertUsd: s.cfg.CostAlertMonthly,
		},
	}, nil
}

// tierStats lists the lexicon, which never fails, then each model tier in
// policy order.
func (s *Server) tierStats(ctx context.Context) []*pb.TierStats {
	rs := s.router.Stats(ctx)
	out := make([]*pb.TierStats, 0, len(rs)+1)
	out = append(out, &pb.TierStats{
		Tier:         pb.Tier_TIER_LEXICON,
		Enabled:      true,
		Model:        "lexicon",
		BreakerState: pb.BreakerState_BREAKER_STATE_CLOSED,
		Answered:     s.stats.answered[pb.Tier_TIER_LEXICON].Load(),
	})
	for _, t := range rs {
		out = append(out, &pb.TierStats{
			Tier:                tierOf(t.Tier),
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

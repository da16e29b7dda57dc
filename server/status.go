package server

import (
	"context"
	"sync/atomic"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
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
	degraded      atomic.Uint64
	openStreams   atomic.Int64

	prefilterSeen    atomic.Uint64
	prefilterSentOn  atomic.Uint64
	prefilterSkipped atomic.Uint64
	// answered counts final answers by the tier that gave them, indexed
	// by pb.Tier.
	answered [pb.Tier_TIER_ANTHROPIC + 1]atomic.Uint64
}

// GPUStatus reports the local model's GPU. No VRAM reader is part of this
// build yet, and the answer says so rather than reporting zeros.
func (s *Server) GPUStatus(context.Context, *pb.GPUStatusRequest) (*pb.GPUStatusResponse, error) {
	return &pb.GPUStatusResponse{
		Reader:         "none",
		ReaderError:    "no GPU reader is configured: this build has no VRAM readers yet (SENTIMENT_GPU_READER=" + s.cfg.GPUReader + " is not acted on)",
		Pressure:       pb.PressureLevel_PRESSURE_LEVEL_UNSPECIFIED,
		LocalAdmitting: false,
		GateReason:     "no local model tier in this build",
		ObservedAt:     timestamppb.New(s.now()),
	}, nil
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

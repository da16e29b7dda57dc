package router

import (
	"context"

	"github.com/catalystbot/sentiment/limiter"
)

// TierStats is one tier's state for Stats.
type TierStats struct {
	Tier    Tier
	Enabled bool
	Model   string
	// Breaker is "closed", "half-open" or "open".
	Breaker             string
	ConsecutiveFailures uint32
	// BreakerTransitions counts state changes since start.
	BreakerTransitions uint64
	ErrorsLastHour     map[string]uint64
	Answered           uint64
	// Quota is the provider's windows; QuotaBackend says where they live.
	Quota        []limiter.WindowUsage
	QuotaBackend string
}

// Stats reports every tier in policy order.
func (r *Router) Stats(ctx context.Context) []TierStats {
	out := make([]TierStats, 0, len(r.tiers))
	for _, t := range r.tiers {
		s := TierStats{
			Tier:                t.Tier,
			Enabled:             t.Provider != nil,
			Model:               t.Model,
			Breaker:             t.breaker.State().String(),
			ConsecutiveFailures: t.breaker.Counts().ConsecutiveFailures,
			BreakerTransitions:  t.transitions.Load(),
			ErrorsLastHour:      t.errs.lastHour(),
			Answered:            t.answered.Load(),
		}
		if t.Quota != nil {
			s.Quota = t.Quota.Usage(ctx)
			s.QuotaBackend = t.Quota.Backend()
		}
		out = append(out, s)
	}
	return out
}

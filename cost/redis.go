package cost

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/internal/rediserr"
)

// totalField is the hash field holding a period's total across providers.
const totalField = "total"

// sendPart is what one exchange sends for one period.
type sendPart struct {
	label      string
	key        string
	alertedKey string
	ttl        time.Duration
	add        amounts
	// markAlerted sets the alerted key: the crossing was handled while
	// Redis was away, and the other replicas must not alert again.
	markAlerted bool
}

// candidate is a crossing to settle with SET NX before it is fired.
type candidate struct {
	Crossing
	label, key string
	ttl        time.Duration
}

func (t *Totals) key(kind Period, label string) string {
	return t.o.prefix + ":" + string(kind) + ":" + label
}

func (t *Totals) alertedKey(kind Period, label string) string {
	return t.o.prefix + ":alerted:" + string(kind) + ":" + label
}

func ttlOf(kind Period) time.Duration {
	if kind == PeriodMonth {
		return monthTTL
	}
	return dayTTL
}

// useRedisLocked says whether to call Redis now: while it is up, and once
// per back-off while it is down (that call is the probe).
func (t *Totals) useRedisLocked(now time.Time) (use, probe bool) {
	if t.up {
		return true, false
	}
	if t.probing || now.Before(t.retryAt) {
		return false, false
	}
	t.probing = true
	return true, true
}

// exchange sends what this replica counted and Redis does not have yet
// (the amounts of an Add, and anything counted in memory during an
// outage), and reads both periods' totals back, in one transaction. On
// success the view becomes Redis's figures and the crossings they show are
// settled; on failure the amounts go back to memory, to be sent by a later
// exchange. Only a failure that is not ctx's own marks Redis down.
func (t *Totals) exchange(ctx context.Context, now time.Time, probe bool) error {
	t.mu.Lock()
	periods := [2]*period{&t.day, &t.month}
	var parts [2]sendPart
	for i, p := range periods {
		parts[i] = sendPart{label: p.label, key: t.key(p.kind, p.label), alertedKey: t.alertedKey(p.kind, p.label),
			ttl: ttlOf(p.kind), add: p.local, markAlerted: p.alert == alertLocal}
		p.sending.merge(p.local)
		p.local = amounts{}
	}
	t.inflight++
	t.lastRead.Store(now.UnixNano())
	t.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, t.o.timeout)
	read, err := t.send(cctx, parts)
	cancel()

	t.mu.Lock()
	if probe {
		t.probing = false
	}
	t.inflight--
	for i, p := range periods {
		if p.label != parts[i].label {
			continue // the period ended meanwhile: its figures no longer matter
		}
		p.sending.sub(parts[i].add)
		if err != nil {
			p.local.merge(parts[i].add)
			continue
		}
		p.shared = read[i]
		if parts[i].markAlerted && p.alert == alertLocal {
			p.alert = alertShared
		}
	}
	if t.inflight == 0 {
		// Drop the rounding left by adding and taking back the same sums.
		t.day.sending, t.month.sending = amounts{}, amounts{}
	}
	if err != nil {
		if ctx.Err() == nil || probe {
			t.markDownLocked(now, err)
		}
		fire := t.crossLocked(crossFire)
		t.updateStopLocked(now)
		t.mu.Unlock()
		t.fire(ctx, fire)
		return fmt.Errorf("cost: updating the shared totals: %w", err)
	}
	t.markUpLocked()
	var cands []candidate
	for _, c := range t.crossLocked(crossClaim) {
		label := t.day.label
		if c.Period == PeriodMonth {
			label = t.month.label
		}
		cands = append(cands, candidate{Crossing: c, label: label, key: t.alertedKey(c.Period, label), ttl: ttlOf(c.Period)})
	}
	t.updateStopLocked(now)
	t.mu.Unlock()
	t.settle(ctx, cands)
	return nil
}

// send runs the exchange's transaction and parses the totals read back.
func (t *Totals) send(ctx context.Context, parts [2]sendPart) ([2]amounts, error) {
	var reads [2]*redis.MapStringStringCmd
	_, err := t.o.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, part := range parts {
			if !part.add.empty() {
				for provider, usd := range part.add.by {
					pipe.HIncrByFloat(ctx, part.key, provider, usd)
				}
				pipe.HIncrByFloat(ctx, part.key, totalField, part.add.total)
				pipe.Expire(ctx, part.key, part.ttl)
			}
			if part.markAlerted {
				pipe.SetNX(ctx, part.alertedKey, "1", part.ttl)
			}
			reads[i] = pipe.HGetAll(ctx, part.key)
		}
		return nil
	})
	var out [2]amounts
	if err != nil {
		return out, err
	}
	for i, cmd := range reads {
		out[i] = parseHash(cmd.Val())
	}
	return out, nil
}

// parseHash turns a period's hash into amounts; a field that is not a
// number (written by hand) is left out.
func parseHash(h map[string]string) amounts {
	var a amounts
	for field, s := range h {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		if field == totalField {
			a.total = v
			continue
		}
		if a.by == nil {
			a.by = make(map[string]float64, len(h))
		}
		a.by[field] = v
	}
	return a
}

// settle claims each crossing's alerted key: the replica that sets it
// fires the crossing; the others know another replica did. When Redis
// fails here the crossing fires all the same (an alert twice is better
// than none), and the next exchange sets the key.
func (t *Totals) settle(ctx context.Context, cands []candidate) {
	for _, c := range cands {
		cctx, cancel := context.WithTimeout(ctx, t.o.timeout)
		won, err := t.o.rdb.SetNX(cctx, c.key, "1", c.ttl).Result()
		cancel()
		t.mu.Lock()
		p := &t.day
		if c.Period == PeriodMonth {
			p = &t.month
		}
		if p.label == c.label && p.alert == alertClaiming {
			p.alert = alertShared
			if err != nil {
				p.alert = alertLocal
			}
		}
		t.mu.Unlock()
		if err != nil {
			t.o.log.Warn("cost: could not claim a threshold's alert in redis; alerting from this replica",
				"period", string(c.Period), "reason", rediserr.Describe(err))
			t.fire(ctx, []Crossing{c.Crossing})
			continue
		}
		if won {
			t.fire(ctx, []Crossing{c.Crossing})
		} else {
			t.o.log.Debug("cost threshold crossed; another replica alerted", "period", string(c.Period))
		}
	}
}

// markDownLocked takes Redis as unreachable for the back-off, counting the
// failure and logging the outage once.
func (t *Totals) markDownLocked(now time.Time, err error) {
	t.redisErrors.Add(1)
	t.reason = rediserr.Describe(err)
	t.retryAt = now.Add(t.o.backoff)
	if t.up {
		t.o.log.Warn("cost totals: redis unreachable, counting in memory until it answers",
			"reason", t.reason, "retry_in", t.o.backoff)
	}
	t.up = false
}

func (t *Totals) markUpLocked() {
	if !t.up {
		t.o.log.Info("cost totals: redis reachable again; what was counted in memory is written back")
	}
	t.up, t.reason = true, ""
}

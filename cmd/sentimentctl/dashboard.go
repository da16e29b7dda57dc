package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// meterWidth is the cells of a dashboard bar.
const meterWidth = 10

// meter draws used against limit as "[#####-----]": a cell per tenth,
// rounded down, but one at least once anything is used, so that only a
// full window looks full and a used one never looks empty. Over the limit
// the bar is full and ends in '!'. A limit of 0 (or less) is no limit.
func meter(used, limit float64) string {
	if limit <= 0 {
		return "[" + center("no limit", meterWidth) + "]"
	}
	n := min(int(used*meterWidth/limit), meterWidth)
	if used > 0 && n == 0 {
		n = 1
	}
	bar := strings.Repeat("#", n) + strings.Repeat("-", meterWidth-n)
	if used > limit {
		bar = bar[:meterWidth-1] + "!"
	}
	return "[" + bar + "]"
}

func center(s string, width int) string {
	pad := max(width-len(s), 0)
	return strings.Repeat(" ", pad/2) + s + strings.Repeat(" ", pad-pad/2)
}

// quotaLine is one quota window: "[#####-----] 50/100 minute, resets in 12s".
func quotaLine(q *pb.QuotaWindow, now time.Time) string {
	var s string
	if q.GetLimit() == 0 {
		s = fmt.Sprintf("%s %d %s, no limit", meter(0, 0), q.GetUsed(), q.GetWindow())
	} else {
		s = fmt.Sprintf("%s %d/%d %s", meter(float64(q.GetUsed()), float64(q.GetLimit())), q.GetUsed(), q.GetLimit(), q.GetWindow())
		if q.GetUsed() > q.GetLimit() {
			s += " (over the limit)"
		}
	}
	if r := q.GetResetsAt(); r != nil && r.AsTime().After(now) && q.GetUsed() > 0 {
		s += ", resets in " + roundDur(r.AsTime().Sub(now))
	}
	if q.GetShared() {
		s += ", shared"
	}
	return s
}

// costLine is one period's spending against its alert threshold.
func costLine(period string, spent, threshold float64) string {
	if threshold <= 0 {
		return fmt.Sprintf("%-6s %s $%.2f, no threshold", period, meter(spent, 0), spent)
	}
	s := fmt.Sprintf("%-6s %s $%.2f of $%.2f", period, meter(spent, threshold), spent, threshold)
	if spent > threshold {
		s += " (over the threshold)"
	}
	return s
}

// memoryLine is a card's VRAM: "[#####-----] 8.0 GiB / 16.0 GiB (50%)".
func memoryLine(used, total uint64) string {
	if total == 0 {
		return fmt.Sprintf("%s %s used, total unknown", meter(0, 0), bytesWords(used))
	}
	return fmt.Sprintf("%s %s / %s (%.0f%%)", meter(float64(used), float64(total)),
		bytesWords(used), bytesWords(total), float64(used)*100/float64(total))
}

// writeDashboard writes everything Stats and GPUStatus say, section by
// section. gs is nil when GPUStatus failed with gpuErr.
func writeDashboard(w io.Writer, st *pb.StatsResponse, gs *pb.GPUStatusResponse, gpuErr error, now time.Time) {
	writeHeader(w, st, now)
	writeTiers(w, st.GetTiers())
	writeQuotas(w, st.GetTiers(), now)
	if gs != nil {
		writeGPU(w, gs, now)
	} else {
		fmt.Fprintf(w, "GPU\n  unavailable: %v\n", gpuErr)
	}
	writeCache(w, st.GetCache())
	writePrefilter(w, st.GetPrefilter())
	writeAlerts(w, st.GetAlerts())
	writeCost(w, st.GetCost(), now)
	writeUsageLog(w, st.GetUsageLog())
}

func writeHeader(w io.Writer, st *pb.StatsResponse, now time.Time) {
	fmt.Fprintf(w, "catalyst-sentiment %s, up %s, at %s\n", orDash(st.GetVersion()),
		roundDur(st.GetUptime().AsDuration()), now.Format(time.DateTime))
	r := st.GetRequests()
	fmt.Fprintf(w, "Requests: classify %d, batch items %d in %d streams (%d open), alerts %d; invalid %d, degraded %d, failed %d, cancelled %d\n",
		r.GetClassifyCalls(), r.GetBatchItems(), r.GetBatchStreams(), r.GetOpenStreams(), r.GetAlertCalls(),
		r.GetInvalid(), r.GetDegraded(), r.GetFailed(), r.GetCancelled())
}

func writeTiers(w io.Writer, tiers []*pb.TierStats) {
	fmt.Fprintln(w, "Tiers")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  tier\tstate\tbreaker\tfailures in a row\tanswered\terrors last hour\tmodel")
	for _, t := range tiers {
		state := "on"
		if !t.GetEnabled() {
			state = "off"
		}
		errs := t.GetErrorsLastHour()
		var total uint64
		for _, n := range errs {
			total += n
		}
		errWords := "0"
		if total > 0 {
			parts := make([]string, 0, len(errs))
			for _, k := range slices.Sorted(maps.Keys(errs)) {
				parts = append(parts, fmt.Sprintf("%s=%d", k, errs[k]))
			}
			errWords = fmt.Sprintf("%d (%s)", total, strings.Join(parts, " "))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%s\t%s\n",
			tierName(t.GetTier()), state, breakerName(t.GetBreakerState()), t.GetConsecutiveFailures(),
			t.GetAnswered(), errWords, orDash(t.GetModel()))
	}
	tw.Flush()
}

func writeQuotas(w io.Writer, tiers []*pb.TierStats, now time.Time) {
	backend := ""
	for _, t := range tiers {
		if b := t.GetQuotaBackend(); b != "" {
			backend = " (" + b + ")"
			break
		}
	}
	fmt.Fprintf(w, "Quotas%s\n", backend)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	some := false
	for _, t := range tiers {
		for _, q := range t.GetQuotas() {
			some = true
			fmt.Fprintf(tw, "  %s\t%s\n", tierName(t.GetTier()), quotaLine(q, now))
		}
	}
	tw.Flush()
	if !some {
		fmt.Fprintln(w, "  none")
	}
}

// writeGPU writes GPUStatus: the cards' memory, pressure, the local model,
// the gate, the last cleanup and the GPU queue.
func writeGPU(w io.Writer, gs *pb.GPUStatusResponse, now time.Time) {
	fmt.Fprintf(w, "GPU (reader %s)\n", orDash(gs.GetReader()))
	if gs.GetReaderError() != "" {
		fmt.Fprintf(w, "  no readings: %s\n", gs.GetReaderError())
	}
	for _, d := range gs.GetDevices() {
		var extra []string
		if d.BusyPercent != nil {
			extra = append(extra, fmt.Sprintf("busy %.0f%%", d.GetBusyPercent()))
		}
		if d.TemperatureCelsius != nil {
			extra = append(extra, fmt.Sprintf("%.0f°C", d.GetTemperatureCelsius()))
		}
		if d.GetIntegrated() {
			extra = append(extra, "integrated")
		}
		fmt.Fprintf(w, "  card %d %s (%s)  VRAM %s  %s\n", d.GetIndex(), orDash(d.GetName()), orDash(d.GetVendor()),
			memoryLine(d.GetVramUsedBytes(), d.GetVramTotalBytes()), strings.Join(extra, "  "))
	}
	if gs.GetPressure() != pb.PressureLevel_PRESSURE_LEVEL_UNSPECIFIED {
		fmt.Fprintf(w, "  pressure %s, %.1f%% of %s\n", pressureName(gs.GetPressure()), gs.GetPressurePercent(), orDash(gs.GetPressureCard()))
	} else {
		fmt.Fprintln(w, "  pressure unknown")
	}
	writeModel(w, gs.GetModel())
	gate := "admitting"
	if !gs.GetLocalAdmitting() {
		gate = "not admitting"
		if gs.GetGateReason() != "" {
			gate += ": " + gs.GetGateReason()
		}
	}
	fmt.Fprintf(w, "  local tier %s; recovery %s; %d failures in a row\n", gate, orDash(gs.GetRecoveryPhase()), gs.GetConsecutiveFailures())
	if at := gs.GetLastCleanupAt(); at != nil {
		fmt.Fprintf(w, "  last cleanup %s ago: %s (%d cleanups, %d restarts)\n",
			roundDur(now.Sub(at.AsTime())), orDash(gs.GetLastCleanupReason()), gs.GetCleanups(), gs.GetRestarts())
	} else {
		fmt.Fprintf(w, "  last cleanup: none yet (%d restarts)\n", gs.GetRestarts())
	}
	if gs.GetVramNotFreed() {
		fmt.Fprintf(w, "  VRAM not freed by the last unload: %s\n", orDash(gs.GetVramMessage()))
	}
	if q := gs.GetQueue(); q != nil {
		cut := ""
		if gs.GetConcurrencyCut() {
			cut = " (cut: high VRAM)"
		}
		fmt.Fprintf(w, "  queue: concurrency %d%s, limit %d, ceiling %d, in flight %d, waiting %d; started %d, spilled %d full + %d no time, halved %d, grown %d, service time %s\n",
			gs.GetGpuConcurrency(), cut, q.GetLimit(), q.GetCeiling(), q.GetInFlight(), q.GetWaiting(), q.GetStarted(),
			q.GetSpilledFull(), q.GetSpilledNoTime(), q.GetHalvings(), q.GetGrows(), q.GetServiceTime().AsDuration().Round(time.Millisecond))
	}
}

func writeModel(w io.Writer, m *pb.ModelState) {
	if m.GetName() == "" {
		fmt.Fprintln(w, "  model: none")
		return
	}
	words := []string{"not loaded"}
	if m.GetLoaded() {
		words = []string{"loaded"}
	}
	if m.GetWarm() {
		warm := "warm"
		if d := m.GetWarmupLatency().AsDuration(); d > 0 {
			warm += " (warm-up " + d.Round(time.Millisecond).String() + ")"
		}
		words = append(words, warm)
	} else {
		words = append(words, "cold")
	}
	if m.GetVramBytes() > 0 {
		words = append(words, bytesWords(m.GetVramBytes())+" VRAM")
	}
	if m.GetError() != "" {
		words = append(words, "why: "+m.GetError())
	}
	fmt.Fprintf(w, "  model %s: %s\n", m.GetName(), strings.Join(words, ", "))
}

func writeCache(w io.Writer, c *pb.CacheStats) {
	fmt.Fprintf(w, "Cache (%s): hits %d (exact %d, near %d), misses %d; shared in flight %d, guard refusals %d, stored %d, evicted %d, entries %d\n",
		orDash(c.GetBackend()), c.GetExactHits()+c.GetNearHits(), c.GetExactHits(), c.GetNearHits(), c.GetMisses(),
		c.GetSharedInFlight(), c.GetGuardRefusals(), c.GetStored(), c.GetEvicted(), c.GetEntries())
}

func writePrefilter(w io.Writer, p *pb.PrefilterStats) {
	fmt.Fprintf(w, "Prefilter: seen %d, sent on %d, answered by the lexicon %d\n", p.GetSeen(), p.GetSentOn(), p.GetSkipped())
}

func writeAlerts(w io.Writer, a *pb.AlertStats) {
	failed := "none"
	if f := a.GetFailed(); len(f) > 0 {
		parts := make([]string, 0, len(f))
		for _, k := range slices.Sorted(maps.Keys(f)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, f[k]))
		}
		failed = strings.Join(parts, " ")
	}
	broken := "none"
	if b := a.GetBrokenChannels(); len(b) > 0 {
		broken = strings.Join(b, ", ")
	}
	fmt.Fprintf(w, "Alerts: posted %d (complete %d), edited %d, timed out %d, duplicates %d, pending %d; failed %s; broken channels %s\n",
		a.GetPosted(), a.GetComplete(), a.GetEdited(), a.GetTimedOut(), a.GetDuplicates(), a.GetPending(), failed, broken)
}

func writeCost(w io.Writer, c *pb.CostStats, now time.Time) {
	var where []string
	for _, s := range []string{c.GetZone(), c.GetBackend()} {
		if s != "" {
			where = append(where, s)
		}
	}
	if len(where) > 0 {
		fmt.Fprintf(w, "Cost (%s)\n", strings.Join(where, ", "))
	} else {
		fmt.Fprintln(w, "Cost")
	}
	fmt.Fprintf(w, "  %s%s\n", costLine("today", c.GetTodayUsd(), c.GetDailyAlertUsd()), byProvider(c.GetTodayByProvider()))
	fmt.Fprintf(w, "  %s%s\n", costLine("month", c.GetMonthUsd(), c.GetMonthlyAlertUsd()), byProvider(c.GetMonthByProvider()))
	switch {
	case !c.GetBudgetStop():
		fmt.Fprintln(w, "  budget stop off: a crossed threshold only alerts")
	case c.GetStoppedUntil() != nil && c.GetStoppedUntil().AsTime().After(now):
		fmt.Fprintf(w, "  budget stop ON: paid tiers stopped until %s (in %s)\n",
			c.GetStoppedUntil().AsTime().In(now.Location()).Format(time.DateTime), roundDur(c.GetStoppedUntil().AsTime().Sub(now)))
	default:
		fmt.Fprintln(w, "  budget stop on: paid tiers stop when a threshold is crossed; not stopped")
	}
}

func byProvider(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s $%.2f", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func writeUsageLog(w io.Writer, u *pb.UsageLogStats) {
	if u.GetPath() == "" {
		fmt.Fprintln(w, "Usage log: off")
		return
	}
	fmt.Fprintf(w, "Usage log %s: written %d, dropped %d, write errors %d\n", u.GetPath(), u.GetWritten(), u.GetDropped(), u.GetWriteErrors())
}

// bytesWords is a size in GiB, or MiB below one GiB.
func bytesWords(b uint64) string {
	const mib, gib = 1 << 20, 1 << 30
	if b < gib {
		return fmt.Sprintf("%.0f MiB", float64(b)/mib)
	}
	return fmt.Sprintf("%.1f GiB", float64(b)/gib)
}

// roundDur is a duration to the second, or to the millisecond under one.
func roundDur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

package chaos

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// phaseGPU is what llmsim's Ollama saw in a phase.
type phaseGPU struct {
	maxInFlight int
	crash       int64
}

// row is one phase of one round.
type row struct {
	round    int
	phase    string
	elapsed  time.Duration
	requests int
	answered int
	byTier   map[pb.Tier]int
	cache    int
	degraded int
	prefilt  int
	// explained: UNAVAILABLE answers of a draining replica, each followed
	// by the request being answered elsewhere; unexplained: everything
	// that broke the promise.
	explained   int
	unexplained int
	p50, p99    time.Duration
	transitions map[pb.Tier]uint64
	gpu         phaseGPU
	cloudCalls  int64
	redis       string
	rss         float64
	goroutines  int
	note        string
}

// roundRow is what a round ended with.
type roundRow struct {
	round                   int
	transitions             map[pb.Tier]uint64
	breakers                string
	heldByQuota             []string
	gpu                     phaseGPU
	quota                   []quotaRow
	goroutines, aGoroutines int
	rss, aRSS               float64
}

// quotaRow is the most calls a provider got in any sliding minute:
// clear of Redis outages (against the quota) and spanning one (against
// the looser bound the local shares allow).
type quotaRow struct {
	provider               string
	limit, clear, spanning int
}

// summarize counts a phase's outcomes; requests is how many were sent.
func summarize(rec *recorder, requests int) row {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := row{requests: requests, byTier: map[pb.Tier]int{}, explained: int(rec.drained.Load())}
	var lat []time.Duration
	for _, o := range rec.outs {
		r.explained += o.explained
		if o.problem != "" {
			r.unexplained++
			continue
		}
		r.answered++
		lat = append(lat, o.latency)
		switch {
		case o.degraded:
			r.degraded++
		case o.prefilt:
			r.prefilt++
		default:
			r.byTier[o.tier]++
		}
		if o.cacheHit {
			r.cache++
		}
	}
	slices.Sort(lat)
	r.p50, r.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return r
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// report prints the table: one line per phase of each round, then one
// per round with what it ended with.
func (c *chaos) report() {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\tphase\ttime\treq\tlocal\tgemini\tanthropic\tcache\tprefiltered\tdegraded\texplained\tunexplained\tp50\tp99\tbreaker Δ l/g/a\tGPU max\tcloud calls\tredis\tb RSS MiB\tb goroutines\t")
	totals := row{byTier: map[pb.Tier]int{}}
	for _, r := range c.rows {
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d/%d/%d\t%d\t%d\t%s\t%.1f\t%d\t\n",
			r.round, r.phase, r.elapsed.Round(100*time.Millisecond), r.requests,
			r.byTier[pb.Tier_TIER_LOCAL], r.byTier[pb.Tier_TIER_GEMINI], r.byTier[pb.Tier_TIER_ANTHROPIC],
			r.cache, r.prefilt, r.degraded, r.explained, r.unexplained,
			ms(r.p50), ms(r.p99),
			r.transitions[pb.Tier_TIER_LOCAL], r.transitions[pb.Tier_TIER_GEMINI], r.transitions[pb.Tier_TIER_ANTHROPIC],
			r.gpu.maxInFlight, r.cloudCalls, r.redis, r.rss, r.goroutines)
		totals.requests += r.requests
		for k, v := range r.byTier {
			totals.byTier[k] += v
		}
		totals.cache += r.cache
		totals.prefilt += r.prefilt
		totals.degraded += r.degraded
		totals.explained += r.explained
		totals.unexplained += r.unexplained
	}
	fmt.Fprintf(w, "all\t\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\t\t\t\t\t\t\t\t\n",
		totals.requests, totals.byTier[pb.Tier_TIER_LOCAL], totals.byTier[pb.Tier_TIER_GEMINI], totals.byTier[pb.Tier_TIER_ANTHROPIC],
		totals.cache, totals.prefilt, totals.degraded, totals.explained, totals.unexplained)
	w.Flush()

	b.WriteString("\n")
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "round\tbreaker transitions l/g/a\tbreakers at the end\tGPU max in flight (slots %d)\tcalls beyond slots\tgemini max/min clear|outage (quota %d)\tanthropic max/min clear|outage (quota %d)\tb goroutines quiet\tb RSS MiB quiet\ta goroutines\ta RSS MiB\t\n",
		ollamaSlots, geminiRPM, anthropicRPM)
	for _, r := range c.rounds {
		q := map[string]string{}
		for _, x := range r.quota {
			q[x.provider] = fmt.Sprintf("%d|%d", x.clear, x.spanning)
		}
		fmt.Fprintf(w, "%d\t%d/%d/%d\t%s\t%d\t%d\t%s\t%s\t%d\t%.1f\t%d\t%.1f\t\n",
			r.round, r.transitions[pb.Tier_TIER_LOCAL], r.transitions[pb.Tier_TIER_GEMINI], r.transitions[pb.Tier_TIER_ANTHROPIC],
			r.breakers, r.gpu.maxInFlight, r.gpu.crash, q["gemini"], q["anthropic"], r.goroutines, r.rss, r.aGoroutines, r.aRSS)
	}
	w.Flush()
	var notes []string
	for _, r := range c.rows {
		if strings.Trim(r.note, "; ") != "" {
			notes = append(notes, fmt.Sprintf("round %d %s: %s", r.round, r.phase, strings.Trim(r.note, "; ")))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	c.t.Log("\n" + b.String())
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%dms", d.Milliseconds())
}

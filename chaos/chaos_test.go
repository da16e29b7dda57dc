package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/redistest"
)

// The short round (go test ./chaos/, inside make test) is the default;
// make chaos passes -chaos.requests=10000 -chaos.rounds=5 and a longer
// phase.
var (
	flagRequests    = flag.Int("chaos.requests", 1200, "requests in all (unary calls plus batch items), spread evenly over the rounds and phases")
	flagRounds      = flag.Int("chaos.rounds", 2, "rounds; growth is checked from the second round on against the first")
	flagPhase       = flag.Duration("chaos.phase", 3*time.Second, "length of each of a round's six phases")
	flagSeed        = flag.Uint64("chaos.seed", 0, "seed of every random draw (0: from the clock); printed, so a run can be repeated")
	flagConcurrency = flag.Int("chaos.concurrency", 48, "jobs (unary calls and batch streams) in flight at most")
)

// The simulated card and the quotas. Two replicas share one card, so each
// may send it half its slots (LLM_MAX_CONCURRENT is per process); llmsim
// runs with no queue and crash_when_full, so one call more than the slots
// is a crashed runner it counts. Each replica could instead be allowed
// every slot, with the Redis leases keeping the two together under them:
// calls running under leases count against the local share while Redis is
// away, and renew their leases into a Redis back empty, but a replica that
// never saw the outage can still lease a slot in the moment between
// Redis's return and the other's first renewal (50 ms at most). This run
// kills Redis every round, so it keeps the card safe by construction.
const (
	ollamaSlots  = 4
	replicaSlots = ollamaSlots / 2
	geminiRPM    = 40
	anthropicRPM = 60
	// quotaSlack shortens the minute the quota check counts in: a call
	// reaches the provider a little after the limiter handed out its slot,
	// and that delay differs from call to call, so calls whose slots are a
	// minute apart may arrive a bit less than a minute apart. A second
	// bounds that delay on a loaded two-core machine many times over.
	quotaSlack = time.Second
	// outageReach is how long after Redis is back a quota window still
	// counts as spanning the outage: a replica that made no call writes
	// its outage claims back only at its next call, and its claims matter
	// for a minute. Inside such windows the shares are an estimate (see
	// checkQuotas); outside them the quota is exact.
	outageReach = time.Minute
	// localShare is SENTIMENT_REDIS_LOCAL_SHARE: each of the two replicas
	// allows itself this share of what was left while Redis is away.
	localShare = 0.5
	// Growth tolerances, against the first round's quiet reading of the
	// replica that lives through every round. Goroutines: idle upstream
	// and Redis connections (two goroutines each) come and go with the
	// load's peaks; 25 covers a dozen of them, while a leak of one per
	// request or per stream would add hundreds per round. RSS: the Go heap
	// is returned to the system lazily, so a quiet reading moves by a few
	// MiB either way; 16 MiB is what a leak of 1-2 KiB per request would
	// show after one round of the full run.
	goroutineTolerance = 25
	rssToleranceMiB    = 16.0
)

// baseScenario is llmsim when nothing goes wrong (the seed comes from the
// flag). Phases patch it.
const baseScenario = `{
  "ollama": {"latency": "20ms-80ms", "load_latency": "100ms", "slots": 4, "queue": 0, "crash_when_full": true},
  "gemini": {"latency": "30ms-120ms", "api_key": "sim-gemini-key", "retry_after": "1s"},
  "anthropic": {"latency": "40ms-150ms", "api_key": "sim-anthropic-key", "retry_after": "1s"}
}`

// phaseSpec is one stretch of a round: what llmsim does, and what happens
// to Redis and the replicas in its middle.
type phaseSpec struct {
	name  string
	patch func(d time.Duration) string // over baseScenario; nil for none
	redis string                       // "stop" or "start" halfway through; "" for nothing
	// sigterm sends SIGTERM to replica a while a batch stream is open on
	// it, then starts it again. It comes after Redis is back: a replica
	// started while Redis is down knows nothing of the quota used before.
	sigterm bool
}

var phases = []phaseSpec{
	{name: "healthy"},
	{name: "ollama 500 storm", patch: func(time.Duration) string { return `{"ollama":{"errors":{"500":1}}}` }, redis: "stop"},
	{name: "ollama hangs", patch: func(time.Duration) string { return `{"ollama":{"errors":{"hang":1}}}` }},
	{name: "gemini 429 storm", patch: func(d time.Duration) string {
		return fmt.Sprintf(`{"gemini":{"storm":%q},"anthropic":{"errors":{"429":0.3}}}`, d.String())
	}, redis: "start"},
	{name: "malformed output", patch: func(time.Duration) string {
		return `{"ollama":{"errors":{"malformed":0.6}},"gemini":{"errors":{"malformed":0.5}},"anthropic":{"errors":{"malformed":0.3,"prose":0.3}}}`
	}, sigterm: true},
	{name: "healthy"},
}

var tiers = []pb.Tier{pb.Tier_TIER_LOCAL, pb.Tier_TIER_GEMINI, pb.Tier_TIER_ANTHROPIC}

// chaos is one run: the world and what was seen of it.
type chaos struct {
	t        *testing.T
	rng      *rand.Rand
	dir      string
	bin      string
	env      map[string]string
	sim      *simWorld
	proxy    *cloudProxy
	redis    *redistest.Server
	redisUp  bool
	outages  []outage
	pool     pool
	gens     [2]int
	retired  []*replica
	recent   []*pb.NewsItem
	rows     []row
	rounds   []roundRow
	problems []string
}

func TestChaos(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rounds, perPhase := *flagRounds, *flagRequests/(max(*flagRounds, 1)*len(phases))
	if rounds < 1 || perPhase < 20 {
		t.Fatalf("-chaos.rounds=%d -chaos.requests=%d: need at least one round and 20 requests per phase", rounds, *flagRequests)
	}
	t.Logf("seed %d (repeat with -chaos.seed=%d); %d rounds of %d phases of %s, %d requests per phase",
		seed, seed, rounds, len(phases), *flagPhase, perPhase)

	sentimentd, llmsim := binaries(t)
	c := &chaos{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), dir: t.TempDir(), bin: sentimentd}
	t.Cleanup(c.keepLogs)
	c.redis = redistest.Start(t)
	c.redisUp = true
	var err error
	if c.sim, err = startSim(llmsim, c.dir, seed, baseScenario); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.sim.proc.stop(10 * time.Second) })
	if c.proxy, err = startCloudProxy(c.sim.base); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.proxy.close)
	c.env = map[string]string{
		"SENTIMENT_GRPC_ADDR": "127.0.0.1:0", "SENTIMENT_METRICS_ADDR": "127.0.0.1:0",
		"SENTIMENT_LOG_FORMAT": "json", "SENTIMENT_LOG_LEVEL": "info",
		"LLM_ENDPOINT_URL":          c.sim.base,
		"SENTIMENT_GEMINI_BASE_URL": c.proxy.url, "GEMINI_API_KEY": "sim-gemini-key",
		"SENTIMENT_ANTHROPIC_BASE_URL": c.proxy.url, "ANTHROPIC_API_KEY": "sim-anthropic-key",
		"REDIS_URL": c.redis.URL(), "SENTIMENT_REDIS_LOCAL_SHARE": strconv.FormatFloat(localShare, 'f', -1, 64),
		"SENTIMENT_GPU_READER": "sysfs", "SENTIMENT_GPU_SYSFS_ROOT": c.sim.sysfs,
		"SENTIMENT_GPU_POLL_INTERVAL": "0.5", "GPU_CLEANUP_INTERVAL_SEC": "0", "SENTIMENT_GPU_DRAIN_TIMEOUT": "2",
		"LLM_MAX_CONCURRENT": strconv.Itoa(replicaSlots),
		"LLM_TIMEOUT_SECS":   "3", "SENTIMENT_CLOUD_TIMEOUT": "5",
		"LLM_GEMINI_RPM": strconv.Itoa(geminiRPM), "SENTIMENT_ANTHROPIC_RPM": strconv.Itoa(anthropicRPM),
		"LLM_MIN_INTERVAL_SEC": "0", "LLM_RETRY_DELAY": "0.2",
		"SENTIMENT_BREAKER_COOLDOWN": "1",
		"SENTIMENT_SHUTDOWN_GRACE":   "5",
		// A little more than the default margin: the answers cross a
		// loaded two-core machine to a client built with -race.
		"SENTIMENT_ANSWER_MARGIN": "0.25",
		// A small memory cache reaches its bound in the first round, so
		// that what grows after it is not the cache filling up.
		"SENTIMENT_CACHE_MAX_ENTRIES": "500",
		"LLM_COST_ALERT_DAILY":        "0", "LLM_COST_ALERT_MONTHLY": "0",
		"SENTIMENT_SEED": strconv.FormatUint(seed%(1<<31), 10),
	}
	for slot, name := range []string{"a", "b"} {
		c.startReplica(slot, name, true)
	}
	t.Cleanup(func() {
		for k := range 2 {
			if r := c.pool.slots[k].Load(); r != nil {
				r.proc.stop(15 * time.Second)
				r.conn.Close()
			}
		}
		for _, r := range c.retired {
			r.conn.Close()
		}
	})

	// Every round runs even after one found problems: the table then shows
	// whether they last.
	for round := 1; round <= rounds; round++ {
		c.runRound(round, perPhase)
	}
	// Breakers must have opened somewhere in the run. Not in every round:
	// a round that starts with the quotas spent by the last one, and the
	// GPU gate closed by a cleanup, may not call a tier often enough to
	// trip it.
	var opened uint64
	for _, rr := range c.rounds {
		for _, tr := range tiers {
			opened += rr.transitions[tr]
		}
	}
	if opened == 0 {
		t.Error("no breaker changed state in the whole run, though every tier failed for a phase")
	}
	c.report()
	for k := range 2 {
		if r := c.pool.slots[k].Load(); r != nil && !t.Failed() {
			if err := r.terminate(20 * time.Second); err != nil {
				t.Error(err)
			}
		}
	}
}

// startReplica starts the next incarnation of the replica in slot.
func (c *chaos) startReplica(slot int, name string, needLocal bool) {
	c.t.Helper()
	c.gens[slot]++
	r, err := startReplica(c.bin, c.dir, name, c.gens[slot], c.env, needLocal)
	if err != nil {
		c.t.Fatal(err)
	}
	c.pool.slots[slot].Store(r)
}

// runRound runs the phases, settles, then checks the round.
func (c *chaos) runRound(round, perPhase int) {
	t := c.t
	rr := roundRow{round: round, transitions: map[pb.Tier]uint64{}}
	var gpu phaseGPU
	for i, ph := range phases {
		row := c.runPhase(round, i, ph, perPhase)
		gpu.maxInFlight = max(gpu.maxInFlight, row.gpu.maxInFlight)
		gpu.crash += row.gpu.crash
		for _, tr := range tiers {
			rr.transitions[tr] += row.transitions[tr]
		}
		c.rows = append(c.rows, row)
	}

	// Breakers: the failing phases opened some; after the last healthy
	// phase each must be closed again. Probes (each tier alone) bring a
	// cloud tier the healthy load never reaches through its half-open
	// state; one held back by its quota cannot be probed until the quota
	// has room, which is said, not failed, when it is still full.
	rr.breakers, rr.heldByQuota = c.settleBreakers(max(15*time.Second, 2**flagPhase))

	// Growth: the replica in slot b lives through every round.
	b := c.pool.slots[1].Load()
	g, rss, err := b.quiet(10 * time.Second)
	if err != nil {
		c.problem("round %d: reading %s: %v", round, b.label(), err)
	}
	rr.goroutines, rr.rss = g, rss
	if a := c.pool.slots[0].Load(); a != nil {
		rr.aGoroutines, rr.aRSS, _ = a.quiet(5 * time.Second)
	}
	if round > 1 && len(c.rounds) > 0 {
		base := c.rounds[0]
		if g > base.goroutines+goroutineTolerance {
			c.problem("round %d: %s has %d goroutines when quiet, round 1 had %d (tolerance +%d)", round, b.label(), g, base.goroutines, goroutineTolerance)
		}
		if rss > base.rss+rssToleranceMiB {
			c.problem("round %d: %s RSS %.1f MiB when quiet, round 1 %.1f MiB (tolerance +%.0f MiB)", round, b.label(), rss, base.rss, rssToleranceMiB)
		}
	}

	// The GPU and the quotas.
	rr.gpu = gpu
	if gpu.maxInFlight > ollamaSlots || gpu.crash > 0 {
		c.problem("round %d: the GPU saw %d calls at once (slots %d) and %d calls beyond its slots (crash_when_full)", round, gpu.maxInFlight, ollamaSlots, gpu.crash)
	}
	c.checkQuotas(round, &rr)

	// Replicas retired this round have drained: their connections go.
	for _, r := range c.retired {
		r.conn.Close()
	}
	c.retired = nil
	c.rounds = append(c.rounds, rr)
	if len(c.problems) > 0 {
		shown := c.problems
		if len(shown) > 30 {
			shown = shown[:30]
		}
		t.Errorf("round %d: %d problems:\n  %s", round, len(c.problems), strings.Join(shown, "\n  "))
		c.problems = nil
	}
}

func (c *chaos) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// runPhase puts the phase's scenario in force, runs its load with its
// events, and reads what the world saw.
func (c *chaos) runPhase(round, idx int, ph phaseSpec, n int) row {
	t := c.t
	d := *flagPhase
	if err := c.sim.control("PUT", "/_sim/scenario", baseScenario, nil); err != nil {
		t.Fatal(err)
	}
	if ph.patch != nil {
		if err := c.sim.control("PATCH", "/_sim/scenario", ph.patch(d), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.sim.control("POST", "/_sim/reset", "", nil); err != nil {
		t.Fatal(err)
	}
	redisBefore := c.redisUp

	var halfway chan struct{}
	jobs := c.jobs(round, idx, n, d)
	if ph.sigterm {
		halfway = make(chan struct{}, 1)
		victim := c.victimJob(round, idx, d, halfway)
		jobs = append([]job{victim}, jobs...)
		n += len(victim.items)
	}
	rec := &recorder{}
	var victimNote []string
	victimLog := func(s string) { victimNote = append(victimNote, s) }
	done := make(chan struct{})
	started := time.Now()
	go func() {
		runJobs(&c.pool, jobs, *flagConcurrency, rec, victimLog)
		close(done)
	}()

	sigtermNote := ""
	switch {
	case ph.redis != "":
		select {
		case <-time.After(d / 2):
		case <-done:
		}
		if ph.redis == "stop" {
			c.redis.Stop()
			c.redisUp = false
			c.outages = append(c.outages, outage{from: time.Now()})
		} else {
			c.redis.Start()
			c.redisUp = true
			c.outages[len(c.outages)-1].to = time.Now()
		}
	case ph.sigterm:
		select {
		case <-halfway:
		case <-time.After(d + 30*time.Second):
			t.Fatal("the stream meant to be cut by SIGTERM never got a third of its answers")
		}
		a := c.pool.slots[0].Load()
		if err := a.terminate(20 * time.Second); err != nil {
			c.problem("round %d: %v\n%s", round, err, tail(a.proc.logPath, 20))
		}
		c.retired = append(c.retired, a)
		c.startReplica(0, "a", false)
		sigtermNote = fmt.Sprintf("SIGTERM %s, started %s", a.label(), c.pool.slots[0].Load().label())
	}
	<-done
	elapsed := time.Since(started)
	if ph.sigterm {
		if len(victimNote) == 0 {
			c.problem("round %d: SIGTERM did not land mid-stream: the victim stream was never cut", round)
		}
	}

	st, err := c.sim.state()
	if err != nil {
		t.Fatal(err)
	}
	r := summarize(rec, n)
	r.round, r.phase, r.elapsed = round, ph.name, elapsed
	r.redis = redisLabel(redisBefore, c.redisUp)
	r.note = strings.Join(append(victimNote, sigtermNote), "; ")
	o := st.Upstreams["ollama"]
	r.gpu = phaseGPU{maxInFlight: o.MaxInFlight, crash: o.Errors["crash"]}
	r.cloudCalls = st.Upstreams["gemini"].Requests + st.Upstreams["anthropic"].Requests
	r.transitions = map[pb.Tier]uint64{}
	for k := range 2 {
		rep := c.pool.slots[k].Load()
		if rep == nil || rep.state.Load() != stateUp {
			continue
		}
		s, err := rep.stats()
		if err != nil {
			c.problem("round %d %s: Stats on %s: %v", round, ph.name, rep.label(), err)
			continue
		}
		for _, ts := range s.GetTiers() {
			if ts.GetTier() == pb.Tier_TIER_LEXICON {
				continue
			}
			cur := ts.GetBreakerTransitions()
			r.transitions[ts.GetTier()] += cur - rep.last[ts.GetTier()]
			rep.last[ts.GetTier()] = cur
		}
		if k == 1 {
			r.goroutines, _ = rep.goroutines()
			r.rss, _ = rep.rssMiB()
		}
	}
	for _, p := range rec.outs {
		if p.problem != "" {
			c.problem("round %d %s: %s", round, ph.name, p.problem)
		}
	}
	if r.answered < n {
		c.problem("round %d %s: %d of %d requests answered", round, ph.name, r.answered, n)
	}
	return r
}

func redisLabel(before, after bool) string {
	switch {
	case before && after:
		return "up"
	case before:
		return "killed"
	case after:
		return "restarted"
	}
	return "down"
}

// jobs draws a phase's load: n requests spread over d, a quarter of them
// as batch streams of 5 to 25 items with deadlines of 4 to 8 s, the rest
// as unary calls with deadlines of 2 to 5 s.
func (c *chaos) jobs(round, phase, n int, d time.Duration) []job {
	var js []job
	for left, k := n, 0; left > 0; k++ {
		j := job{slot: c.rng.IntN(2)}
		if c.rng.IntN(4) == 0 && left >= 5 {
			size := min(left, 5+c.rng.IntN(21))
			// A stream's deadline covers all its items: long enough for
			// a quota slot a few seconds off, short enough that a phase
			// of hangs ends soon after its load.
			j.batch, j.deadline = true, 4*time.Second+time.Duration(c.rng.Int64N(int64(4*time.Second)))
			for i := range size {
				j.items = append(j.items, c.item(fmt.Sprintf("r%d-p%d-j%d-i%d", round, phase, k, i)))
			}
		} else {
			j.deadline = 2*time.Second + time.Duration(c.rng.Int64N(int64(3*time.Second)))
			j.items = []item{c.item(fmt.Sprintf("r%d-p%d-j%d", round, phase, k))}
		}
		left -= len(j.items)
		js = append(js, j)
	}
	for k := range js {
		// Evenly over the phase, each a little early or late.
		step := d / time.Duration(len(js))
		js[k].at = time.Duration(k)*step + time.Duration(c.rng.Int64N(int64(step)+1))
	}
	return js
}

// victimJob is the stream open on replica a when it gets SIGTERM: sent
// slowly, so that it is still sending when the signal comes.
func (c *chaos) victimJob(round, phase int, d time.Duration, halfway chan<- struct{}) job {
	j := job{at: d / 4, slot: 0, batch: true, victim: true, halfway: halfway, deadline: 15 * time.Second, stepSend: 15 * time.Millisecond}
	for i := range 120 {
		j.items = append(j.items, c.item(fmt.Sprintf("r%d-p%d-victim-i%d", round, phase, i)))
	}
	return j
}

func (c *chaos) item(id string) item {
	return item{id: id, req: newItem(c.rng, id, &c.recent)}
}

// settleBreakers waits, bounded, until every breaker on every replica is
// closed, probing the tiers that are not with calls allowed only that
// tier. It returns the states it ended with and the tiers still not
// closed because their quota was full.
func (c *chaos) settleBreakers(bound time.Duration) (string, []string) {
	deadline := time.Now().Add(bound)
	probe := 0
	for {
		var open, held []string
		for k := range 2 {
			rep := c.pool.slots[k].Load()
			s, err := rep.stats()
			if err != nil {
				c.problem("Stats on %s: %v", rep.label(), err)
				return "?", nil
			}
			for _, ts := range s.GetTiers() {
				if ts.GetTier() == pb.Tier_TIER_LEXICON || ts.GetBreakerState() == pb.BreakerState_BREAKER_STATE_CLOSED {
					continue
				}
				name := fmt.Sprintf("%s %s %s", rep.label(), tierName(ts.GetTier()), breakerName(ts.GetBreakerState()))
				if quotaFull(ts) {
					held = append(held, name)
					continue
				}
				probe++
				req := newItem(c.rng, fmt.Sprintf("probe-%d", probe), &c.recent)
				req.Options.AllowedTiers = []pb.Tier{ts.GetTier()}
				req.Options.SkipCache = true
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				resp, err := rep.client.Classify(ctx, req)
				cancel()
				// A probe the quota turned away (no slot within its
				// deadline), or the GPU gate (the GPU manager is still
				// backing off after its cleanups), could not test the
				// tier: held, not open.
				if err == nil && slices.ContainsFunc(resp.GetProvenance().GetTiers(), func(a *pb.TierAttempt) bool {
					return a.GetTier() == ts.GetTier() && (a.GetOutcome() == pb.Outcome_OUTCOME_RATE_LIMITED ||
						a.GetOutcome() == pb.Outcome_OUTCOME_SKIPPED && strings.Contains(a.GetDetail(), "GPU gate closed"))
				}) {
					held = append(held, name)
					continue
				}
				open = append(open, name)
			}
		}
		if len(open) == 0 {
			if len(held) == 0 {
				return "all closed", nil
			}
			return "closed but " + strings.Join(held, ", "), held
		}
		if time.Now().After(deadline) {
			c.problem("breakers not closed %s after the healthy phase: %s", bound, strings.Join(append(open, held...), ", "))
			return "not closed: " + strings.Join(append(open, held...), ", "), held
		}
		time.Sleep(200 * time.Millisecond) // poll, bounded by deadline
	}
}

// quotaFull reports whether one of the tier's quota windows is used up.
func quotaFull(ts *pb.TierStats) bool {
	return slices.ContainsFunc(ts.GetQuotas(), func(q *pb.QuotaWindow) bool {
		return q.GetLimit() > 0 && q.GetUsed() >= q.GetLimit()
	})
}

func tierName(t pb.Tier) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "TIER_"))
}

func breakerName(s pb.BreakerState) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s.String(), "BREAKER_STATE_"), "_", "-"))
}

// keepLogs copies the children's logs to $CHAOS_KEEP when set.
func (c *chaos) keepLogs() {
	dst := os.Getenv("CHAOS_KEEP")
	if dst == "" {
		return
	}
	_ = os.MkdirAll(dst, 0o755)
	matches, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	for _, m := range matches {
		if b, err := os.ReadFile(m); err == nil {
			_ = os.WriteFile(filepath.Join(dst, filepath.Base(m)), b, 0o644)
		}
	}
}

// outage is a stretch with Redis down; to is zero while it lasts.
type outage struct{ from, to time.Time }

// quotaLimits are the per-minute quotas the replicas share.
var quotaLimits = []struct {
	provider string
	limit    int
}{{"gemini", geminiRPM}, {"anthropic", anthropicRPM}}

// checkQuotas counts the calls each cloud provider got in every sliding
// minute (both replicas together) and checks them against the quota.
//
// A minute clear of Redis outages must hold no more than the quota: the
// shared window logs are exact. A minute that meets an outage (or the
// outageReach after it) is held to a looser bound, because there the
// replicas count apart: each allows itself localShare of what it last saw
// left in the shared windows, not knowing what the other claimed since;
// a Redis restarted empty learns a replica's claims only at that
// replica's next call, and never those of a replica stopped before it;
// so per outage the two shares may add up to the quota once more, and
// the forgotten claims once more again. That bound catches a fallback
// that is not bounded at all (the load here would send hundreds a
// minute); the table shows how far past the quota the shares went.
func (c *chaos) checkQuotas(round int, rr *roundRow) {
	w := time.Minute - quotaSlack
	for _, q := range quotaLimits {
		ts := c.proxy.arrivals(q.provider)
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		clear, spanning, clearAt := 0, 0, time.Time{}
		j := 0
		for i := range ts {
			for j < len(ts) && ts[j].Before(ts[i].Add(w)) {
				j++
			}
			n := j - i
			if k := c.outagesMet(ts[i], ts[i].Add(w)); k > 0 {
				spanning = max(spanning, n)
				if bound := q.limit * (1 + 2*k); n > bound {
					c.problem("round %d: %s got %d calls in the %s from %s, which meets %d Redis outages; even then at most %d (quota %d)",
						round, q.provider, n, w, ts[i].Format("15:04:05.000"), k, bound, q.limit)
				}
			} else if n > clear {
				clear, clearAt = n, ts[i]
			}
		}
		rr.quota = append(rr.quota, quotaRow{provider: q.provider, limit: q.limit, clear: clear, spanning: spanning})
		if clear > q.limit {
			c.problem("round %d: %s got %d calls in the %s from %s, clear of any Redis outage; quota %d per minute (both replicas together)",
				round, q.provider, clear, w, clearAt.Format("15:04:05.000"), q.limit)
		}
	}
}

// outagesMet counts the Redis outages that [from, to) meets, each with
// the outageReach after it.
func (c *chaos) outagesMet(from, to time.Time) int {
	n := 0
	for _, o := range c.outages {
		end := o.to
		if end.IsZero() {
			end = time.Now()
		}
		if from.Before(end.Add(outageReach)) && o.from.Before(to) {
			n++
		}
	}
	return n
}

// Package pipeline is the request path: every entry point (the unary call,
// each item of a batch stream, an alert) judges an item here, the same
// way.
//
//	validate -> prescore (lexicon, once per item) -> preliminary event
//	  -> prefilter: |prescore| under the threshold? adaptive: the local
//	     model only, while the GPU has room, else shed to the lexicon;
//	     fixed: the lexicon answers
//	  -> cache (a seam: a stored answer for the same item answers)
//	  -> router, tier by tier, inside the caller's deadline less the margin
//	     the answer needs to reach the caller
//	  -> every model failed or was skipped: the lexicon's answer, degraded,
//	     with the reason (or an *UnavailableError for require_llm)
//	  -> record: counters, the cache, the final event
//
// The package knows nothing of gRPC: its types are plain Go, and the
// server converts them. Listeners (the batch stream's preliminary
// answers now; the alert notifier, the usage log and metrics next) hear
// each answer as it becomes known.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/router"
)

// Config is the request path's policy.
type Config struct {
	// MinPrescore is the prefilter threshold (LLM_MIN_PRESCALE_SCORE): an
	// item whose |prescore| is under it is answered by the lexicon.
	MinPrescore float64
	// DefaultDeadline bounds a call that brings no deadline.
	DefaultDeadline time.Duration
	// AnswerMargin is kept from every deadline for the answer itself:
	// upstream attempts end this long before the caller's deadline, at
	// most a fifth of a short deadline.
	AnswerMargin time.Duration
	// Prefilter is what becomes of an item under the threshold:
	// Adaptive sends it to the local model while the GPU has room (and
	// sheds it to the lexicon when the GPU cannot take it in time), Fixed
	// answers it from the lexicon always.
	Prefilter PrefilterMode
	// LocalTier says a local model tier is configured: without one,
	// adaptive has nowhere to send a weak item and answers as fixed does.
	LocalTier bool
}

// PrefilterMode is SENTIMENT_PREFILTER.
type PrefilterMode int

// Prefilter modes; the zero value is adaptive.
const (
	Adaptive PrefilterMode = iota
	Fixed
)

func (m PrefilterMode) String() string {
	if m == Fixed {
		return "fixed"
	}
	return "adaptive"
}

// ParsePrefilterMode reads SENTIMENT_PREFILTER's values.
func ParsePrefilterMode(s string) (PrefilterMode, error) {
	switch s {
	case "adaptive":
		return Adaptive, nil
	case "fixed":
		return Fixed, nil
	}
	return 0, fmt.Errorf("pipeline: prefilter %q: must be adaptive or fixed", s)
}

// Prescorer reads a text's sentiment in microseconds: the lexicon.
type Prescorer interface {
	Score(text string) lexicon.Prescore
}

// Router judges with the model tiers; it always answers, degraded with the
// lexicon's answer when no model could.
type Router interface {
	Judge(ctx context.Context, req router.Request) router.Result
}

// Cache is where stored answers plug in, between the prefilter and the
// router.
type Cache interface {
	// Claim returns an answer stored for an item like req's, or one a
	// concurrent call of the same or a near-identical item is making,
	// waited for within ctx (lookup false skips both: skip_cache). When
	// there is none the caller judges the item itself and must call
	// finish with its final answer and whether it is worth keeping (a
	// model's answer; not a degraded one), so that it is stored and the
	// calls waiting for it get it.
	Claim(ctx context.Context, req *Request, pre lexicon.Prescore, lookup bool) (a Answer, hit bool, finish func(ctx context.Context, a Answer, keep bool))
}

// Listener hears every answer as it becomes known. It runs on the
// caller's goroutine and must not block.
type Listener func(context.Context, Event)

// Option adjusts a Pipeline.
type Option func(*Pipeline)

// WithCache plugs a cache in.
func WithCache(c Cache) Option { return func(p *Pipeline) { p.cache = c } }

// WithListener adds a listener of every call's events.
func WithListener(l Listener) Option {
	return func(p *Pipeline) { p.listeners = append(p.listeners, l) }
}

// WithClock replaces the clock answers' latencies are read from.
func WithClock(now func() time.Time) Option { return func(p *Pipeline) { p.now = now } }

// Pipeline runs the request path. It is safe for concurrent use.
type Pipeline struct {
	cfg       Config
	scorer    Prescorer
	router    Router
	cache     Cache
	listeners []Listener
	now       func() time.Time
	// abort is cancelled when the server's shutdown grace runs out:
	// every call still waiting for a model is answered at once.
	abort       context.Context
	abortCancel context.CancelCauseFunc
	stats       counters
}

// New builds the pipeline.
func New(cfg Config, scorer Prescorer, rt Router, opts ...Option) (*Pipeline, error) {
	if scorer == nil || rt == nil {
		return nil, errors.New("pipeline: a lexicon scorer and a router are required")
	}
	if cfg.DefaultDeadline <= 0 {
		return nil, fmt.Errorf("pipeline: DefaultDeadline=%v: must be positive", cfg.DefaultDeadline)
	}
	p := &Pipeline{cfg: cfg, scorer: scorer, router: rt, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	p.abort, p.abortCancel = context.WithCancelCause(context.Background())
	return p, nil
}

// ErrShuttingDown is the cause given to the calls in flight when the
// shutdown grace runs out (Abort): they are answered at once from the
// lexicon.
var ErrShuttingDown = errors.New("the server is shutting down")

// UnavailableError is the answer to a require_llm call that no model could
// judge: it says why every tier failed or was skipped.
type UnavailableError struct{ Reason string }

func (e *UnavailableError) Error() string { return "require_llm: " + e.Reason }

// Abort answers every call still waiting for a model at once, from the
// lexicon, marked degraded because the server is shutting down. The
// server calls it when its shutdown grace runs out.
func (p *Pipeline) Abort() { p.abortCancel(ErrShuttingDown) }

// Judge answers one request: the final answer, or an error: a
// *FieldError for bad input, an *UnavailableError for a require_llm call
// no model could judge, or the context's error when the caller left
// first. also hear this call's events besides the pipeline's listeners.
func (p *Pipeline) Judge(ctx context.Context, req Request, also ...Listener) (Answer, error) {
	if ferr := Validate(&req, false); ferr != nil {
		p.stats.invalid.Add(1)
		return Answer{}, ferr
	}
	if err := ctx.Err(); err != nil {
		return Answer{}, p.ended(ctx)
	}
	start := p.now()
	pre := p.scorer.Score(req.Item.Text())
	decision := p.prefilter(pre, &req)
	if len(p.listeners)+len(also) > 0 {
		pa := lexiconAnswer(&req, pre, PhasePreliminary)
		pa.Provenance.Latency = p.now().Sub(start)
		p.emit(ctx, also, Event{Request: &req, Answer: pa, Prefilter: decision})
	}
	a, err := p.judge(ctx, &req, pre, decision, start)
	p.emit(ctx, also, Event{Request: &req, Answer: a, Err: err, Prefilter: decision})
	return a, err
}

func (p *Pipeline) emit(ctx context.Context, also []Listener, ev Event) {
	for _, l := range p.listeners {
		l(ctx, ev)
	}
	for _, l := range also {
		l(ctx, ev)
	}
}

// judge runs the path after the prescore and returns the final answer.
func (p *Pipeline) judge(ctx context.Context, req *Request, pre lexicon.Prescore, decision PrefilterDecision, start time.Time) (Answer, error) {
	// kept is the answer handed to the cache, and keep whether it is worth
	// storing: only a model's answer is.
	var kept Answer
	var keep bool
	if decision == PrefilterSkipped {
		p.stats.answered[router.TierLexicon].Add(1)
		a := lexiconAnswer(req, pre, PhaseFinal)
		a.Provenance.Prefiltered, a.Provenance.Prefilter = true, PrefilterSkipped
		a.Provenance.Reason = fmt.Sprintf("|prescore| %.2f under the threshold %.2f: %s", math.Abs(pre.Score), p.threshold(&req.Options), p.skipWhy())
		a.Provenance.Latency = p.now().Sub(start)
		return a, nil
	}
	w := p.startWork(ctx)
	defer w.end()
	work := w.ctx
	var finish func(context.Context, Answer, bool)
	if p.cache != nil {
		a, hit, fin := p.cache.Claim(work, req, pre, !req.Options.SkipCache)
		if hit {
			p.stats.answered[a.Provenance.Tier].Add(1)
			p.countSentOn(decision)
			a.ID, a.Prescore, a.Phase = req.Item.ID, pre, PhaseFinal
			a.Provenance.Prefilter = decision
			a.Provenance.Latency = p.now().Sub(start)
			return a, nil
		}
		finish = fin
	}
	allowed := modelTiers(req.Options.AllowedTiers)
	if decision == PrefilterSentOnBelow {
		// A weak item is worth the idle GPU, never a paid call.
		allowed = []router.Tier{router.TierLocal}
	}
	res := p.router.Judge(work, router.Request{
		Item:     router.Item{Ticker: req.Item.Ticker, Title: req.Item.Title, Summary: req.Item.Summary},
		Prescore: pre,
		Priority: req.Options.Priority,
		Allowed:  allowed,
	})
	shutdown := w.aborted.Load()
	if finish != nil {
		// Whatever happens next, the calls waiting on this one must hear.
		defer func() { finish(ctx, kept, keep) }()
	}
	if decision == PrefilterSentOnBelow && res.Degraded {
		// The GPU could not take it in time: the weakest are shed first,
		// and answered from the lexicon, not degraded: a weak item was
		// never owed a model.
		p.stats.shed.Add(1)
		p.stats.prefilterSkipped.Add(1)
		p.stats.answered[router.TierLexicon].Add(1)
		a := lexiconAnswer(req, pre, PhaseFinal)
		a.Provenance.Prefiltered, a.Provenance.Prefilter = true, PrefilterShed
		a.Provenance.Reason = "shed under load: " + res.Reason
		a.Provenance.Tiers = append(append([]router.Attempt(nil), res.Tried...), lexiconTier)
		a.Provenance.Attempts = res.Calls
		a.Provenance.Latency = p.now().Sub(start)
		return a, nil
	}
	p.countSentOn(decision)
	if ctx.Err() != nil && !shutdown {
		// The caller went away: nobody reads this answer.
		return Answer{}, p.ended(ctx)
	}
	if res.Degraded {
		if shutdown {
			res.Reason = "the server is shutting down: the model's answer was not awaited; " + res.Reason
		}
		if req.Options.RequireLLM {
			p.stats.failed.Add(1)
			return Answer{}, &UnavailableError{Reason: res.Reason}
		}
		p.stats.degraded.Add(1)
	}
	p.stats.answered[res.Tier].Add(1)
	a := answerOf(req, pre, res)
	a.Provenance.Prefilter = decision
	a.Provenance.Latency = p.now().Sub(start)
	if finish != nil {
		if !req.Options.SkipCache {
			a.Provenance.CacheHit = CacheMiss
		}
		kept, keep = a, !res.Degraded
	}
	return a, nil
}

// workCall is the context the router runs under: the caller's deadline,
// or the default one, less the margin the answer needs to reach the
// caller, and cut short by Abort. Every upstream attempt is cut from it,
// so the answer, degraded or not, leaves before the caller stops waiting
// for it.
//
// One context serves both the margin and the shutdown hook: a context
// with a cancel cause under the deadline one cost a second context, its
// registration with the caller's and a closure on every call, and the
// cause was read only here, to tell a shutdown from the caller leaving.
// aborted says it instead.
type workCall struct {
	ctx    context.Context
	cancel context.CancelFunc
	stop   func() bool
	// aborted is set when Abort ended the work while it was live: not
	// when the caller had left or the deadline had passed first.
	aborted atomic.Bool
}

func (p *Pipeline) startWork(ctx context.Context) *workCall {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(p.cfg.DefaultDeadline)
	}
	margin := max(0, min(p.cfg.AnswerMargin, time.Until(deadline)/5))
	w := new(workCall)
	w.ctx, w.cancel = context.WithDeadline(ctx, deadline.Add(-margin))
	w.stop = context.AfterFunc(p.abort, w.abort)
	return w
}

func (w *workCall) abort() {
	if w.ctx.Err() == nil {
		w.aborted.Store(true)
	}
	w.cancel()
}

// end releases the work's context and its shutdown hook.
func (w *workCall) end() {
	w.stop()
	w.cancel()
}

// ended counts a call whose caller left (cancelled, or past its deadline)
// and returns the context's error.
func (p *Pipeline) ended(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		p.stats.cancelled.Add(1)
	} else {
		p.stats.failed.Add(1)
	}
	return ctx.Err()
}

// prefilter decides what becomes of an item: a caller that requires a
// model is exempt; an item whose |prescore| is at or above the threshold
// (the configured one, or the item's min_prescore) goes to every tier;
// one under it carries too little direction to spend a paid call on. In
// adaptive mode it still goes to the local model, which costs nothing
// while the GPU has room; in fixed mode, or with no local tier allowed to
// take it, the lexicon answers it.
func (p *Pipeline) prefilter(pre lexicon.Prescore, req *Request) PrefilterDecision {
	p.stats.prefilterSeen.Add(1)
	o := &req.Options
	switch {
	case o.RequireLLM:
		return PrefilterExempt
	case math.Abs(pre.Score) >= p.threshold(o):
		return PrefilterAbove
	case p.cfg.Prefilter == Adaptive && p.localAllowed(o):
		return PrefilterSentOnBelow
	}
	p.stats.prefilterSkipped.Add(1)
	p.stats.skippedByThreshold.Add(1)
	return PrefilterSkipped
}

// countSentOn counts an item that reached a model's path (the router or
// a cached model answer).
func (p *Pipeline) countSentOn(d PrefilterDecision) {
	p.stats.prefilterSentOn.Add(1)
	if d == PrefilterSentOnBelow {
		p.stats.sentOnBelow.Add(1)
	}
}

func (p *Pipeline) threshold(o *Options) float64 {
	if o.MinPrescore != nil {
		return *o.MinPrescore
	}
	return p.cfg.MinPrescore
}

// localAllowed reports whether a weak item has a local model to go to.
func (p *Pipeline) localAllowed(o *Options) bool {
	return p.cfg.LocalTier && (len(o.AllowedTiers) == 0 || slices.Contains(o.AllowedTiers, router.TierLocal))
}

// skipWhy says why an item under the threshold was not sent on.
func (p *Pipeline) skipWhy() string {
	switch {
	case p.cfg.Prefilter == Fixed:
		return "answered from the lexicon (SENTIMENT_PREFILTER=fixed)"
	case !p.cfg.LocalTier:
		return "no local model to send it to; cloud tiers are kept for stronger signals"
	}
	return "the local tier is not among the allowed tiers; cloud tiers are kept for stronger signals"
}

// modelTiers is the router's view of the allowed tiers: the lexicon is
// always allowed and is not a router tier; the lexicon alone allows no
// model tier.
func modelTiers(ts []router.Tier) []router.Tier {
	if len(ts) == 0 {
		return nil
	}
	out := make([]router.Tier, 0, len(ts))
	for _, t := range ts {
		if t != router.TierLexicon {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return []router.Tier{router.TierLexicon}
	}
	return out
}

// lexiconTier is the lexicon's entry in an answer's list of tiers.
var lexiconTier = router.Attempt{Tier: router.TierLexicon, Model: "lexicon", Outcome: router.OutcomeOK}

// lexiconAnswer is the lexicon's answer: the preliminary one, or the
// final one of a prefiltered item.
func lexiconAnswer(req *Request, pre lexicon.Prescore, phase Phase) Answer {
	return Answer{
		ID:         req.Item.ID,
		Label:      pre.Label(),
		Score:      pre.Score,
		Confidence: pre.Confidence(),
		Rationale:  pre.Explain(),
		Prescore:   pre,
		Phase:      phase,
		Provenance: Provenance{
			Tier:  router.TierLexicon,
			Model: "lexicon",
			Tiers: []router.Attempt{lexiconTier},
		},
	}
}

// answerOf turns the router's result into the final answer.
func answerOf(req *Request, pre lexicon.Prescore, res router.Result) Answer {
	// The result is ours: its attempts are used as they are (the router
	// leaves room for the lexicon's), not copied.
	tiers := res.Tried
	if res.Degraded {
		tiers = append(tiers, lexiconTier)
	}
	return Answer{
		ID:         req.Item.ID,
		Label:      res.Answer.Label,
		Score:      res.Answer.Score,
		Confidence: res.Answer.Confidence,
		Rationale:  res.Answer.Rationale,
		Prescore:   pre,
		Phase:      PhaseFinal,
		Provenance: Provenance{
			Tier:          res.Tier,
			Model:         res.Model,
			Attempts:      res.Calls,
			Tiers:         tiers,
			Degraded:      res.Degraded,
			Reason:        res.Reason,
			TokensIn:      res.Usage.TokensIn,
			TokensOut:     res.Usage.TokensOut,
			CostUSD:       res.CostUSD,
			PromptVersion: res.PromptVersion,
		},
	}
}

// counters are what Stats reports. Atomics, not a mutex: they sit on
// every call's path.
type counters struct {
	invalid, failed, cancelled, degraded             atomic.Uint64
	prefilterSeen, prefilterSentOn, prefilterSkipped atomic.Uint64
	sentOnBelow, shed, skippedByThreshold            atomic.Uint64
	// answered counts final answers by the tier that gave them.
	answered [router.TierAnthropic + 1]atomic.Uint64
}

// Stats is what the pipeline has done since it started.
type Stats struct {
	// Invalid counts requests refused as bad input by Judge.
	Invalid uint64
	// Failed counts calls that ended in an error other than bad input or
	// a caller's cancellation: require_llm with no model, a deadline
	// already past on arrival.
	Failed uint64
	// Cancelled counts calls whose caller left before the answer.
	Cancelled uint64
	// Degraded counts final answers the lexicon gave because no model
	// could.
	Degraded uint64
	// Answered counts final answers by the tier that gave them.
	Answered map[router.Tier]uint64
	// PrefilterSeen, PrefilterSentOn and PrefilterSkipped count the items
	// the prefilter looked at, passed to the models, and answered itself.
	PrefilterSeen, PrefilterSentOn, PrefilterSkipped uint64
	// Of those: sent to the local model below the threshold, shed under
	// load, skipped by the threshold.
	PrefilterSentOnBelow, PrefilterShed, PrefilterSkippedByThreshold uint64
	// PrefilterMode is "adaptive" or "fixed".
	PrefilterMode string
}

// Stats returns a snapshot of the counters.
func (p *Pipeline) Stats() Stats {
	c := &p.stats
	s := Stats{
		Invalid:          c.invalid.Load(),
		Failed:           c.failed.Load(),
		Cancelled:        c.cancelled.Load(),
		Degraded:         c.degraded.Load(),
		Answered:         make(map[router.Tier]uint64, len(c.answered)),
		PrefilterSeen:    c.prefilterSeen.Load(),
		PrefilterSentOn:  c.prefilterSentOn.Load(),
		PrefilterSkipped: c.prefilterSkipped.Load(),

		PrefilterSentOnBelow:        c.sentOnBelow.Load(),
		PrefilterShed:               c.shed.Load(),
		PrefilterSkippedByThreshold: c.skippedByThreshold.Load(),
		PrefilterMode:               p.cfg.Prefilter.String(),
	}
	for t := range c.answered {
		s.Answered[router.Tier(t)] = c.answered[t].Load()
	}
	return s
}

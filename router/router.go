// Package router judges a news item with language models, tier by tier in
// policy order (local, then Gemini, then Anthropic), and never fails the
// caller: when every model tier fails or is skipped the answer is the
// lexicon's, marked degraded with the reason.
//
// Each tier has a circuit breaker (sony/gobreaker) that opens after
// consecutive failures and lets a probe through after a cool-down, so a
// tier that failed comes back by itself. Retries use exponential backoff
// with full jitter, honour server-given delays, and never outlive the
// caller's deadline: every attempt's deadline is cut from what is left,
// and a tier is skipped when too little is left to try it.
//
// The wire formats live a file each (ollama.go, openai.go, gemini.go,
// anthropic.go) behind the small Provider interface.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sony/gobreaker/v2"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/limiter"
	"github.com/catalystbot/sentiment/upstream"
)

// Tier is who answers.
type Tier int

// Tiers, in policy order after the lexicon.
const (
	TierLexicon Tier = iota
	TierLocal
	TierGemini
	TierAnthropic
)

func (t Tier) String() string {
	switch t {
	case TierLexicon:
		return "lexicon"
	case TierLocal:
		return "local"
	case TierGemini:
		return "gemini"
	case TierAnthropic:
		return "anthropic"
	}
	return fmt.Sprintf("Tier(%d)", int(t))
}

// Outcome is what happened when a tier was considered.
type Outcome int

// Outcomes of a tier.
const (
	OutcomeOK Outcome = iota + 1
	OutcomeError
	OutcomeBreakerOpen
	OutcomeRateLimited
	OutcomeSkipped
	OutcomeInvalidAnswer
)

func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeError:
		return "error"
	case OutcomeBreakerOpen:
		return "breaker open"
	case OutcomeRateLimited:
		return "rate limited"
	case OutcomeSkipped:
		return "skipped"
	case OutcomeInvalidAnswer:
		return "invalid answer"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Priority decides how many attempts a tier gets.
type Priority int

// Priorities; the zero value is normal.
const (
	PriorityNormal Priority = iota
	PriorityLow
	PriorityHigh
)

// Price is a model's list price in USD per million tokens.
type Price struct {
	InputPerM  float64
	OutputPerM float64
}

// TierConfig is one tier in policy order.
type TierConfig struct {
	Tier  Tier
	Model string
	// Provider is nil for a tier that is not enabled; DisabledReason then
	// says why, and provenance reports the tier as skipped with it.
	Provider       Provider
	DisabledReason string
	// Timeout caps one attempt; the caller's remaining deadline may cut it
	// shorter.
	Timeout time.Duration
	// MaxChars, when > 0, is the longest text (title and summary, in
	// characters) the tier is given; longer items skip it.
	MaxChars int
	Price    Price
	// Quota, when set, must grant a request slot before every call.
	Quota Quota
	// Queue, when set, must grant a slot before every call: the GPU queue
	// in front of the local model.
	Queue Queue
	// Gate, when set, must admit every call and hears how each went: the
	// GPU manager closes the local tier's while it cleans up the model
	// server; the budget stop closes the paid tiers' for the rest of a
	// day or month whose cost threshold was crossed.
	Gate Gate
}

// Gate admits a tier's calls: the GPU manager for the local tier, the
// budget stop for the paid ones.
type Gate interface {
	// Admit says whether the tier may be called now, and why not: the
	// reason names the gate ("GPU gate closed: ...") and is the tier's
	// detail in the answer's provenance.
	Admit() (ok bool, reason string)
	// Report tells what a call said of the model server's health, with
	// the failure's text for the manager's log and status (empty on
	// success).
	Report(sig upstream.Signal, detail string)
}

// Quota claims request slots of one provider (a limiter.Quota).
type Quota interface {
	// Reserve claims a slot and says how long to wait before calling, or
	// fails with a *limiter.NoSlotError when that wait would exceed
	// maxWait. A slot whose call is not made is given back with Cancel.
	Reserve(ctx context.Context, maxWait time.Duration) (*limiter.Reservation, error)
	// Usage and Backend report the windows for Stats.
	Usage(ctx context.Context) []limiter.WindowUsage
	Backend() string
}

// Queue admits calls to the GPU (the batcher package).
type Queue interface {
	// AcquireRanked returns once a slot is free, the items that rank
	// above this one served first; release must be called with what the
	// call said of the server's health. It fails at once when the queue
	// is full of stronger items or the item cannot start within maxWait.
	AcquireRanked(ctx context.Context, maxWait time.Duration, rank batcher.Rank) (release func(upstream.Signal), err error)
}

// rankOf is an item's place in the GPU queue: its priority, then the
// strength of its signal.
func rankOf(p Priority, pre lexicon.Prescore) batcher.Rank {
	prio := 1
	switch p {
	case PriorityLow:
		prio = 0
	case PriorityHigh:
		prio = 2
	}
	return batcher.Rank{Priority: prio, Strength: math.Abs(pre.Score)}
}

// BreakerConfig sets every tier's circuit breaker.
type BreakerConfig struct {
	// Failures in a row that open the breaker.
	Failures uint32
	// Cooldown is how long an open breaker refuses calls before letting
	// probes through (half-open).
	Cooldown time.Duration
	// HalfOpenSuccesses is how many probes may run while half-open, and
	// how many must succeed in a row to close the breaker again.
	HalfOpenSuccesses uint32
}

// Config is the router's policy.
type Config struct {
	Tiers []TierConfig
	// MaxRetries is the number of attempts a tier gets for a high-priority
	// item (at least 1); other items get at most two (one retry).
	MaxRetries int
	// RetryDelay is the base of the exponential backoff; MaxBackoff caps
	// one wait.
	RetryDelay time.Duration
	MaxBackoff time.Duration
	// MinTierTime is the least time left before the deadline for a tier, or
	// a further attempt, to be tried at all.
	MinTierTime time.Duration
	// TierReserve is the time kept back for each later enabled tier when
	// an attempt's deadline is cut, so that a hung local server cannot
	// leave the cloud tiers a sliver; MinTierTime when 0.
	TierReserve time.Duration
	Breaker     BreakerConfig
	// Observe, when set, hears every upstream call once, as it ends: the
	// seam of metrics, the usage log and cost totals. It runs on the
	// caller's goroutine and must not block.
	Observe Observer
}

// Observer hears one upstream call; ctx is the request's, for its id.
type Observer func(ctx context.Context, c Call)

// Call is one upstream call as it happened.
type Call struct {
	Tier  Tier
	Model string
	// Retry is 0 for a tier's first call for an item, 1 for its first
	// retry, and so on.
	Retry int
	// Outcome is OutcomeOK, OutcomeError or OutcomeInvalidAnswer.
	Outcome Outcome
	// ErrorType is the failure's short name ("http_503", "timeout",
	// "invalid_answer"); empty on success.
	ErrorType string
	// Signal is what the call said of the upstream's health.
	Signal  upstream.Signal
	Latency time.Duration
	Usage   Usage
	CostUSD float64
}

// Router runs the tier policy. It is safe for concurrent use.
type Router struct {
	cfg      Config
	tiers    []*tier
	prompter *Prompter
	log      *slog.Logger
	now      func() time.Time
	jitter   func() float64
	// noModel is the reason of every degraded answer when no tier is
	// enabled (the lexicon-only service): every call skips the same tiers
	// for the same reasons, so it is written once, here, not per call.
	noModel string
}

type tier struct {
	TierConfig
	breaker     *gobreaker.TwoStepCircuitBreaker[struct{}]
	pausedUntil atomic.Int64 // Unix ns before which the provider asked not to be called
	errs        *errWindow
	openedAt    atomic.Int64 // Unix ns of the breaker's last opening
	answered    atomic.Uint64
	transitions atomic.Uint64
}

// Option adjusts a Router; tests use them.
type Option func(*Router)

// WithJitter replaces the source of backoff jitter (values in [0, 1)).
func WithJitter(f func() float64) Option { return func(r *Router) { r.jitter = f } }

// New builds a Router.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Router, error) {
	p, err := NewPrompter()
	if err != nil {
		return nil, err
	}
	if cfg.MaxRetries < 1 {
		cfg.MaxRetries = 1
	}
	if cfg.Breaker.Failures < 1 {
		cfg.Breaker.Failures = 1
	}
	r := &Router{cfg: cfg, prompter: p, log: log, now: time.Now, jitter: rand.Float64}
	for _, o := range opts {
		o(r)
	}
	for _, tc := range cfg.Tiers {
		t := &tier{TierConfig: tc, errs: newErrWindow(r.now)}
		t.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        tc.Tier.String(),
			MaxRequests: cfg.Breaker.HalfOpenSuccesses,
			Timeout:     cfg.Breaker.Cooldown,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Breaker.Failures },
			IsExcluded:  notTiersFault,
			OnStateChange: func(name string, from, to gobreaker.State) {
				t.transitions.Add(1)
				if to == gobreaker.StateOpen {
					t.openedAt.Store(r.now().UnixNano())
				}
				r.log.Warn("breaker state changed", "tier", name, "from", from.String(), "to", to.String())
			},
		})
		r.tiers = append(r.tiers, t)
	}
	disabled := make([]Attempt, 0, len(r.tiers))
	for _, t := range r.tiers {
		if t.Provider != nil {
			disabled = nil
			break
		}
		disabled = append(disabled, Attempt{Tier: t.Tier, Model: t.Model, Outcome: OutcomeSkipped, Detail: t.DisabledReason})
	}
	if disabled != nil {
		r.noModel = degradedReason(disabled)
	}
	return r, nil
}

// Request is one item to judge.
type Request struct {
	Item     Item
	Prescore lexicon.Prescore
	Priority Priority
	// Allowed limits the model tiers; empty allows all.
	Allowed []Tier
}

// Attempt is one tier's part in an answer.
type Attempt struct {
	Tier    Tier
	Model   string
	Outcome Outcome
	Calls   int
	Latency time.Duration
	Detail  string
}

// Result is the router's answer. It always holds an answer: a model's, or
// the lexicon's with Degraded set.
type Result struct {
	Answer        Answer
	Tier          Tier
	Model         string
	Degraded      bool
	Reason        string
	Calls         int
	Tried         []Attempt
	Usage         Usage
	CostUSD       float64
	PromptVersion string
}

// Judge asks the tiers in order until one answers. It returns when an
// answer is found, every tier has failed or been skipped, or ctx ends; in
// the last two cases the answer is the lexicon's, degraded.
func (r *Router) Judge(ctx context.Context, req Request) Result {
	// Room for an attempt per tier and the lexicon's, which the pipeline
	// appends to a degraded answer without copying.
	res := Result{PromptVersion: r.prompter.version, Tried: make([]Attempt, 0, len(r.tiers)+1)}
	// The prompt is rendered when the first tier is about to be called:
	// an item no tier will take costs no template work.
	var prompt Prompt
	rendered := false
	chars := utf8.RuneCountInString(req.Item.Title) + utf8.RuneCountInString(req.Item.Summary)
	for i, t := range r.tiers {
		start := r.now()
		// Why the tier is skipped, if it is; a plain value, not a closure
		// per tier: this loop runs on every call.
		outcome, detail := OutcomeOK, ""
		switch left, ok := r.remaining(ctx); {
		case t.Provider == nil:
			outcome, detail = OutcomeSkipped, t.DisabledReason
		case !allowed(t.Tier, req.Allowed):
			outcome, detail = OutcomeSkipped, "not in allowed_tiers"
		case t.MaxChars > 0 && chars > t.MaxChars:
			outcome, detail = OutcomeSkipped, fmt.Sprintf("text of %d characters is over its limit of %d", chars, t.MaxChars)
		case ctx.Err() != nil:
			outcome, detail = OutcomeSkipped, "the call ended: "+ctx.Err().Error()
		case r.isPaused(t):
			until, _ := r.paused(t)
			outcome, detail = OutcomeRateLimited, "the provider asked for no calls until "+until.UTC().Format(time.RFC3339)
		case ok && left < r.cfg.MinTierTime:
			outcome, detail = OutcomeSkipped, fmt.Sprintf("only %s left before the deadline", left.Round(time.Millisecond))
		}
		if outcome != OutcomeOK {
			res.Tried = append(res.Tried, Attempt{Tier: t.Tier, Model: t.Model, Outcome: outcome, Detail: detail})
			continue
		}
		if !rendered {
			p, err := r.prompter.Render(req.Item)
			if err != nil {
				return r.degrade(res, req, "rendering the prompt: "+err.Error())
			}
			prompt, rendered = p, true
		}
		left, hasDeadline := r.remaining(ctx)
		a, ans, usage := r.try(ctx, t, prompt, req.Priority, rankOf(req.Priority, req.Prescore), r.reserveAfter(i, req, left, hasDeadline))
		a.Latency = r.now().Sub(start)
		res.Tried = append(res.Tried, a)
		res.Calls += a.Calls
		res.Usage.TokensIn += usage.TokensIn
		res.Usage.TokensOut += usage.TokensOut
		res.CostUSD += cost(t.Price, usage)
		if a.Outcome == OutcomeOK {
			t.answered.Add(1)
			res.Answer, res.Tier, res.Model = ans, t.Tier, t.Model
			return res
		}
	}
	return r.degrade(res, req, "")
}

// degrade fills res with the lexicon's answer and says why.
func (r *Router) degrade(res Result, req Request, why string) Result {
	p := req.Prescore
	res.Answer = Answer{Label: p.Label(), Score: p.Score, Confidence: p.Confidence(), Rationale: p.Explain()}
	res.Tier, res.Model, res.Degraded = TierLexicon, "lexicon", true
	if why == "" {
		why = r.noModel
	}
	if why == "" {
		why = degradedReason(res.Tried)
	}
	res.Reason = why
	return res
}

// degradedReason says why no tier answered.
func degradedReason(tried []Attempt) string {
	// One builder for the whole reason: it is written on every degraded
	// answer, the lexicon path's hot path.
	const head = "no language model could judge the item: "
	n := len(head)
	for _, a := range tried {
		n += 16 + len(a.Detail)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(head)
	for i, a := range tried {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.Tier.String())
		b.WriteString(": ")
		outcome := a.Outcome.String()
		b.WriteString(outcome)
		if a.Detail != "" && a.Detail != outcome {
			b.WriteString(" (")
			b.WriteString(a.Detail)
			b.WriteByte(')')
		}
	}
	if len(tried) == 0 {
		b.WriteString("no model tier is configured")
	}
	return b.String()
}

// try runs one tier's attempts: retries with backoff on retryable
// failures, never past the caller's deadline. reserve is time to leave for
// the tiers after this one.
func (r *Router) try(ctx context.Context, t *tier, prompt Prompt, prio Priority, rank batcher.Rank, reserve time.Duration) (Attempt, Answer, Usage) {
	a := Attempt{Tier: t.Tier, Model: t.Model}
	var usage Usage
	attempts := r.attempts(prio)
	invalid := 0
	// stop ends the tier: the first refusal is the tier's outcome, a later
	// one explains why there was no retry.
	stop := func(outcome Outcome, detail string) (Attempt, Answer, Usage) {
		if a.Calls == 0 {
			a.Outcome, a.Detail = outcome, detail
		} else {
			a.Detail += "; no retry: " + detail
		}
		return a, Answer{}, usage
	}
	for n := 1; ; n++ {
		if t.Gate != nil {
			if ok, why := t.Gate.Admit(); !ok {
				return stop(OutcomeSkipped, why)
			}
		}
		// The breaker is asked before admission, so that an open breaker,
		// or a half-open one whose probes are taken, costs no quota.
		done, berr := t.breaker.Allow()
		if berr != nil {
			return stop(OutcomeBreakerOpen, r.breakerDetail(t))
		}
		release, outcome, detail := r.admit(ctx, t, rank, reserve)
		if release == nil {
			done(excluded{err: &upstream.Error{Kind: upstream.KindCanceled, Message: "not called: " + detail}})
			return stop(outcome, detail)
		}
		timeout := t.Timeout
		if left, ok := r.remaining(ctx); ok {
			// Leave the later tiers their share, but never starve this
			// attempt below the minimum a tier needs.
			timeout = min(timeout, max(left-reserve, min(left, r.cfg.MinTierTime)))
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		start := r.now()
		ans, u, err := t.Provider.Judge(actx, prompt)
		latency := r.now().Sub(start)
		cancel()
		if err != nil {
			err = classify(ctx, err, timeout, t.Timeout)
		}
		done(err)
		sig := signalOf(err)
		release(sig)
		if t.Gate != nil && sig != upstream.SignalNone {
			t.Gate.Report(sig, errText(err))
		}
		a.Calls++
		usage.TokensIn += u.TokensIn
		usage.TokensOut += u.TokensOut
		call := Call{Tier: t.Tier, Model: t.Model, Retry: n - 1, Outcome: OutcomeOK, Signal: sig,
			Latency: latency, Usage: u, CostUSD: cost(t.Price, u)}
		if err == nil {
			r.observe(ctx, call)
			a.Outcome, a.Detail = OutcomeOK, ""
			return a, ans, usage
		}
		e := upstream.AsError(err)
		t.errs.add(e.Type())
		a.Outcome, a.Detail = OutcomeError, e.Error()
		if e.Kind == upstream.KindInvalidAnswer {
			a.Outcome = OutcomeInvalidAnswer
			invalid++
		}
		call.Outcome, call.ErrorType = a.Outcome, e.Type()
		r.observe(ctx, call)
		r.log.DebugContext(ctx, "tier attempt failed", "tier", t.Tier.String(), "attempt", n, "err", e.Error())
		if !e.Retryable || invalid >= 2 || n >= attempts || ctx.Err() != nil {
			r.pauseFor(t, e.RetryAfter)
			return a, Answer{}, usage
		}
		wait := r.backoff(n, e.RetryAfter)
		left, hasDeadline := r.remaining(ctx)
		if (hasDeadline && wait+r.cfg.MinTierTime > left-reserve) || (!hasDeadline && r.cfg.MaxBackoff > 0 && wait > r.cfg.MaxBackoff) {
			a.Detail += fmt.Sprintf("; no retry: a %s wait does not fit", wait.Round(time.Millisecond))
			r.pauseFor(t, e.RetryAfter)
			return a, Answer{}, usage
		}
		if !sleep(ctx, wait) {
			return a, Answer{}, usage
		}
	}
}

// breakerDetail says when a refusing breaker will let a call through again.
func (r *Router) breakerDetail(t *tier) string {
	if t.breaker.State() == gobreaker.StateHalfOpen {
		return "half-open: its probe calls are in flight"
	}
	next := time.Unix(0, t.openedAt.Load()).Add(r.cfg.Breaker.Cooldown).Sub(r.now())
	if next <= 0 {
		return "the next call probes it"
	}
	return "next probe in " + (next + time.Second - 1).Truncate(time.Second).String()
}

func (r *Router) observe(ctx context.Context, c Call) {
	if r.cfg.Observe != nil {
		r.cfg.Observe(ctx, c)
	}
}

// pauseFor honours a wait the provider asked for but that this call could
// not spend (a daily quota until midnight, a per-minute quota past the
// deadline): the tier is skipped, rate limited, until then instead of
// being asked again by every item.
func (r *Router) pauseFor(t *tier, d time.Duration) {
	if d <= 0 {
		return
	}
	until := r.now().Add(d).UnixNano()
	for {
		cur := t.pausedUntil.Load()
		if cur >= until || t.pausedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (r *Router) isPaused(t *tier) bool {
	_, p := r.paused(t)
	return p
}

// paused reports whether the provider asked not to be called before some
// time still to come, and until when.
func (r *Router) paused(t *tier) (time.Time, bool) {
	until := time.Unix(0, t.pausedUntil.Load())
	return until, t.pausedUntil.Load() > 0 && r.now().Before(until)
}

// admit waits for the tier's quota slot and GPU slot, within what the
// deadline allows after the later tiers' reserve. On refusal it returns a
// nil release with the outcome and why; a quota slot claimed for a call
// that is then not made (the GPU queue refused the item, or the caller's
// context ended while it waited) is given back.
func (r *Router) admit(ctx context.Context, t *tier, rank batcher.Rank, reserve time.Duration) (release func(upstream.Signal), _ Outcome, detail string) {
	maxWait := func() time.Duration {
		if left, ok := r.remaining(ctx); ok {
			return max(0, left-reserve-r.cfg.MinTierTime)
		}
		return t.Timeout
	}
	var slot *limiter.Reservation
	if t.Quota != nil {
		res, err := t.Quota.Reserve(ctx, maxWait())
		var noSlot *limiter.NoSlotError
		switch {
		case errors.As(err, &noSlot):
			return nil, OutcomeRateLimited, fmt.Sprintf("%s quota: next slot in %s", noSlot.Window, noSlot.Wait.Round(time.Second))
		case err != nil:
			return nil, OutcomeSkipped, "quota: " + err.Error()
		}
		if !sleep(ctx, res.Wait()) {
			res.Cancel(ctx)
			return nil, OutcomeSkipped, "the call ended waiting for a quota slot"
		}
		slot = res
	}
	if t.Queue == nil {
		return func(upstream.Signal) {}, 0, ""
	}
	rel, err := t.Queue.AcquireRanked(ctx, maxWait(), rank)
	if err != nil {
		slot.Cancel(ctx)
	}
	switch {
	case errors.Is(err, batcher.ErrQueueFull):
		return nil, OutcomeSkipped, "GPU queue full"
	case errors.Is(err, batcher.ErrNoTimeToStart):
		return nil, OutcomeSkipped, "GPU busy: no slot before the deadline"
	case err != nil:
		return nil, OutcomeSkipped, "GPU queue: " + err.Error()
	}
	return rel, 0, ""
}

// signalOf reads what a call said of the upstream's health, once, for
// the GPU queue and the GPU manager: nothing when the failure was not the
// tier's (the caller left, its deadline cut the call below a fair budget,
// a refusal of one item, a 429); otherwise the kind of failure.
func signalOf(err error) upstream.Signal {
	if err == nil {
		return upstream.SignalOK
	}
	if notTiersFault(err) {
		return upstream.SignalNone
	}
	e := upstream.AsError(err)
	switch {
	case e.Crash:
		return upstream.SignalCrash
	case e.ConnectionRefused():
		return upstream.SignalDown
	case e.Kind == upstream.KindConnection:
		return upstream.SignalServerError
	case e.Kind == upstream.KindTimeout:
		return upstream.SignalHung
	case e.Kind == upstream.KindHTTP && e.Status == http.StatusServiceUnavailable:
		return upstream.SignalBusy
	case e.Kind == upstream.KindHTTP && e.Status >= 500:
		return upstream.SignalServerError
	case e.Kind == upstream.KindInvalidAnswer, e.Kind == upstream.KindBadResponse:
		return upstream.SignalBadAnswer
	}
	return upstream.SignalRejected
}

// errText is a failure's text for the GPU manager ("" for none).
func errText(err error) string {
	if err == nil {
		return ""
	}
	return upstream.AsError(err).Error()
}

// attempts is how many calls a tier may get for an item.
func (r *Router) attempts(p Priority) int {
	if p == PriorityHigh {
		return r.cfg.MaxRetries
	}
	return min(2, r.cfg.MaxRetries)
}

// backoff is the wait before attempt n+1: full jitter over an exponential
// ceiling, or the server's requested delay when that is longer.
func (r *Router) backoff(n int, retryAfter time.Duration) time.Duration {
	ceiling := float64(r.cfg.RetryDelay) * math.Pow(2, float64(n-1))
	if r.cfg.MaxBackoff > 0 {
		ceiling = min(ceiling, float64(r.cfg.MaxBackoff))
	}
	return max(time.Duration(r.jitter()*ceiling), retryAfter)
}

// reserveAfter is the time to keep for the enabled, allowed tiers after
// tier i, so that a hanging local server cannot eat a cloud tier's chance.
// Each later tier is kept TierReserve, but never more than its fair part of
// what is left: with k later tiers and left before the deadline, this tier
// keeps at least left/(k+1). A short deadline is thus shared in proportion
// instead of the first tier taking all but a sliver.
func (r *Router) reserveAfter(i int, req Request, left time.Duration, hasDeadline bool) time.Duration {
	each := r.cfg.TierReserve
	if each <= 0 {
		each = r.cfg.MinTierTime
	}
	k := 0
	for _, t := range r.tiers[i+1:] {
		if t.Provider != nil && allowed(t.Tier, req.Allowed) && !r.isPaused(t) {
			k++
		}
	}
	reserve := time.Duration(k) * each
	if hasDeadline && k > 0 {
		reserve = min(reserve, left*time.Duration(k)/time.Duration(k+1))
	}
	return reserve
}

func (r *Router) remaining(ctx context.Context) (time.Duration, bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return dl.Sub(r.now()), true
}

func allowed(t Tier, list []Tier) bool {
	if len(list) == 0 {
		return true
	}
	for _, a := range list {
		if a == t {
			return true
		}
	}
	return false
}

func cost(p Price, u Usage) float64 {
	return (float64(u.TokensIn)*p.InputPerM + float64(u.TokensOut)*p.OutputPerM) / 1e6
}

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// excluded marks a failure that says nothing about the tier's health: the
// caller went away, or the caller's deadline cut the attempt shorter than
// the tier's own timeout. The breaker neither counts nor forgives it.
type excluded struct{ err *upstream.Error }

func (e excluded) Error() string { return e.err.Error() }
func (e excluded) Unwrap() error { return e.err }

func notTiersFault(err error) bool {
	var x excluded
	return errors.As(err, &x)
}

// classify turns a provider error into *upstream.Error, marking the ones the
// breaker must not count: the caller went away (or the server is shutting
// down); an attempt cut below a fair budget timed out; the provider
// refused one item (a safety block says nothing of its health); a 429
// (quotas are the limiter's and the pause's business, not the breaker's).
// A tier that hangs with a fair budget in hand does count, even when the
// caller's deadline ended the attempt: with no later tier to keep time
// for, the attempt's deadline is the caller's, and a hung GPU must still
// be found.
func classify(parent context.Context, err error, budget, tierTimeout time.Duration) error {
	e := upstream.AsError(err)
	switch {
	case errors.Is(parent.Err(), context.Canceled),
		e.Kind == upstream.KindCanceled,
		e.Kind == upstream.KindTimeout && budget < min(tierTimeout, fairBudget),
		e.Kind == upstream.KindRefused,
		e.Kind == upstream.KindHTTP && e.Status == 429:
		return excluded{err: e}
	}
	return e
}

// fairBudget is the time an attempt must have had for its timeout to count
// against the tier: a model that cannot answer a headline in a second is
// hung (a warm 7B model answers one in a few hundred milliseconds), while
// one cut to a sliver of the deadline is not proven so. A second, not
// more, so that callers with deadlines of a few seconds, whose local
// attempt gets its share of them, still find a hung GPU.
const fairBudget = time.Second

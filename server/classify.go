package server

import (
	"context"
	"errors"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/router"
)

// Classify judges one item. Validation has already run (unaryValidation).
func (s *Server) Classify(ctx context.Context, req *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	s.stats.classifyCalls.Add(1)
	resp, err := s.judge(ctx, req.GetItem(), req.GetOptions())
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// errShuttingDown is the cause given to the calls in flight when the
// shutdown grace runs out: they are answered at once from the lexicon.
var errShuttingDown = errors.New("the server is shutting down")

// workContext is the context the request path runs under: the caller's
// deadline, or the default one, less the margin the answer needs to reach
// the caller, and cut short when the shutdown grace runs out. Every
// upstream attempt is cut from it, so the answer, degraded or not, leaves
// the server before the caller stops waiting for it.
func (s *Server) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(s.cfg.DefaultDeadline)
	}
	margin := max(0, min(s.cfg.AnswerMargin, time.Until(deadline)/5))
	cctx, cancelCause := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.abort, func() { cancelCause(errShuttingDown) })
	dctx, cancel := context.WithDeadline(cctx, deadline.Add(-margin))
	return dctx, func() {
		cancel()
		stop()
		cancelCause(context.Canceled)
	}
}

// judge runs the request path for one valid item and returns its final
// answer: prescore, then the router, which answers from a model or, when
// none could, from the lexicon marked degraded.
func (s *Server) judge(ctx context.Context, item *pb.NewsItem, opts *pb.ClassifyOptions) (*pb.ClassifyResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.ended(ctx)
	}
	start := s.now()
	pre := s.scorer.Score(itemText(item))
	if s.prefilter(pre, opts) {
		s.stats.answered[pb.Tier_TIER_LEXICON].Add(1)
		resp := lexiconAnswer(item, pre, pb.Phase_PHASE_FINAL)
		resp.Provenance.Prefiltered = true
		resp.Provenance.Latency = durationpb.New(s.now().Sub(start))
		return resp, nil
	}
	work, cancel := s.workContext(ctx)
	defer cancel()
	res := s.router.Judge(work, router.Request{
		Item:     router.Item{Ticker: item.GetTicker(), Title: item.GetTitle(), Summary: item.GetSummary()},
		Prescore: pre,
		Priority: priorityOf(opts.GetPriority()),
		Allowed:  tiersOf(opts.GetAllowedTiers()),
	})
	shutdown := errors.Is(context.Cause(work), errShuttingDown)
	if ctx.Err() != nil && !shutdown {
		// The caller went away: nobody reads this answer.
		return nil, s.ended(ctx)
	}
	if res.Degraded {
		if shutdown {
			res.Reason = "the server is shutting down: the model's answer was not awaited; " + res.Reason
		}
		if opts.GetRequireLlm() {
			s.stats.failed.Add(1)
			return nil, status.Error(codes.Unavailable, "require_llm: "+res.Reason)
		}
		s.stats.degraded.Add(1)
	}
	s.stats.answered[tierOf(res.Tier)].Add(1)
	resp := answerOf(item, pre, res)
	resp.Provenance.Latency = durationpb.New(s.now().Sub(start))
	return resp, nil
}

// ended counts a call whose caller left (cancelled, or past its deadline)
// and returns the status gRPC would give it.
func (s *Server) ended(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		s.stats.cancelled.Add(1)
	} else {
		s.stats.failed.Add(1)
	}
	return status.FromContextError(ctx.Err()).Err()
}

// prefilter reports whether the lexicon alone answers: |prescore| below
// the threshold (LLM_MIN_PRESCALE_SCORE, or the item's min_prescore) means
// the item carries too little direction to spend a model call on. A caller
// that requires a model is never prefiltered.
func (s *Server) prefilter(pre lexicon.Prescore, opts *pb.ClassifyOptions) bool {
	s.stats.prefilterSeen.Add(1)
	threshold := s.cfg.MinPrescore
	if opts != nil && opts.MinPrescore != nil {
		threshold = opts.GetMinPrescore()
	}
	if opts.GetRequireLlm() || math.Abs(pre.Score) >= threshold {
		s.stats.prefilterSentOn.Add(1)
		return false
	}
	s.stats.prefilterSkipped.Add(1)
	return true
}

// preliminary is the lexicon's answer sent ahead of the final one.
func (s *Server) preliminary(item *pb.NewsItem) *pb.ClassifyResponse {
	start := s.now()
	resp := lexiconAnswer(item, s.scorer.Score(itemText(item)), pb.Phase_PHASE_PRELIMINARY)
	resp.Provenance.Latency = durationpb.New(s.now().Sub(start))
	return resp
}

// lexiconAnswer is an answer from the lexicon tier, as the preliminary
// answer or for a prefiltered item.
func lexiconAnswer(item *pb.NewsItem, p lexicon.Prescore, phase pb.Phase) *pb.ClassifyResponse {
	return &pb.ClassifyResponse{
		Id:         item.GetId(),
		Label:      labelOf(p.Label()),
		Score:      p.Score,
		Confidence: p.Confidence(),
		Rationale:  p.Explain(),
		Prescore:   prescoreOf(p),
		Phase:      phase,
		Provenance: &pb.Provenance{
			Tier:  pb.Tier_TIER_LEXICON,
			Model: "lexicon",
			Tiers: []*pb.TierAttempt{{Tier: pb.Tier_TIER_LEXICON, Model: "lexicon", Outcome: pb.Outcome_OUTCOME_OK}},
		},
	}
}

// itemText is what the lexicon reads: the title, then the summary.
func itemText(item *pb.NewsItem) string {
	if item.GetSummary() == "" {
		return item.GetTitle()
	}
	return item.GetTitle() + ". " + item.GetSummary()
}

// answerOf converts the router's result to the final answer.
func answerOf(item *pb.NewsItem, pre lexicon.Prescore, res router.Result) *pb.ClassifyResponse {
	prov := &pb.Provenance{
		Tier:          tierOf(res.Tier),
		Model:         res.Model,
		Attempts:      int32(res.Calls),
		Degraded:      res.Degraded,
		Reason:        res.Reason,
		TokensIn:      res.Usage.TokensIn,
		TokensOut:     res.Usage.TokensOut,
		CostUsd:       res.CostUSD,
		PromptVersion: res.PromptVersion,
		Tiers:         make([]*pb.TierAttempt, 0, len(res.Tried)+1),
	}
	for _, a := range res.Tried {
		prov.Tiers = append(prov.Tiers, &pb.TierAttempt{
			Tier:     tierOf(a.Tier),
			Model:    a.Model,
			Outcome:  outcomeOf(a.Outcome),
			Attempts: int32(a.Calls),
			Latency:  durationpb.New(a.Latency),
			Detail:   a.Detail,
		})
	}
	if res.Degraded {
		prov.Tiers = append(prov.Tiers, &pb.TierAttempt{Tier: pb.Tier_TIER_LEXICON, Model: "lexicon", Outcome: pb.Outcome_OUTCOME_OK})
	}
	return &pb.ClassifyResponse{
		Id:         item.GetId(),
		Label:      labelOf(res.Answer.Label),
		Score:      res.Answer.Score,
		Confidence: res.Answer.Confidence,
		Rationale:  res.Answer.Rationale,
		Prescore:   prescoreOf(pre),
		Phase:      pb.Phase_PHASE_FINAL,
		Provenance: prov,
	}
}

func labelOf(l lexicon.Label) pb.Label {
	switch l {
	case lexicon.LabelBullish:
		return pb.Label_LABEL_BULLISH
	case lexicon.LabelBearish:
		return pb.Label_LABEL_BEARISH
	default:
		return pb.Label_LABEL_NEUTRAL
	}
}

func tierOf(t router.Tier) pb.Tier {
	switch t {
	case router.TierLocal:
		return pb.Tier_TIER_LOCAL
	case router.TierGemini:
		return pb.Tier_TIER_GEMINI
	case router.TierAnthropic:
		return pb.Tier_TIER_ANTHROPIC
	default:
		return pb.Tier_TIER_LEXICON
	}
}

// tiersOf maps the allowed tiers of the options; the lexicon is always
// allowed and not a router tier.
func tiersOf(ts []pb.Tier) []router.Tier {
	if len(ts) == 0 {
		return nil
	}
	out := make([]router.Tier, 0, len(ts))
	for _, t := range ts {
		switch t {
		case pb.Tier_TIER_LOCAL:
			out = append(out, router.TierLocal)
		case pb.Tier_TIER_GEMINI:
			out = append(out, router.TierGemini)
		case pb.Tier_TIER_ANTHROPIC:
			out = append(out, router.TierAnthropic)
		}
	}
	if len(out) == 0 {
		// Only TIER_LEXICON was allowed: no model tier may be used.
		out = append(out, router.TierLexicon)
	}
	return out
}

func priorityOf(p pb.Priority) router.Priority {
	switch p {
	case pb.Priority_PRIORITY_HIGH:
		return router.PriorityHigh
	case pb.Priority_PRIORITY_LOW:
		return router.PriorityLow
	default:
		return router.PriorityNormal
	}
}

func outcomeOf(o router.Outcome) pb.Outcome {
	switch o {
	case router.OutcomeOK:
		return pb.Outcome_OUTCOME_OK
	case router.OutcomeError:
		return pb.Outcome_OUTCOME_ERROR
	case router.OutcomeBreakerOpen:
		return pb.Outcome_OUTCOME_BREAKER_OPEN
	case router.OutcomeRateLimited:
		return pb.Outcome_OUTCOME_RATE_LIMITED
	case router.OutcomeSkipped:
		return pb.Outcome_OUTCOME_SKIPPED
	case router.OutcomeInvalidAnswer:
		return pb.Outcome_OUTCOME_INVALID_ANSWER
	default:
		return pb.Outcome_OUTCOME_UNSPECIFIED
	}
}

func prescoreOf(p lexicon.Prescore) *pb.Prescore {
	out := &pb.Prescore{Compound: p.Compound, KeywordScore: p.Keyword, Score: p.Score}
	if len(p.Hits) > 0 {
		out.Hits = make([]*pb.KeywordHit, len(p.Hits))
		for i, h := range p.Hits {
			out.Hits[i] = &pb.KeywordHit{Phrase: h.Phrase, Weight: h.Weight}
		}
	}
	return out
}

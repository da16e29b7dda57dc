package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
)

// Classify judges one item.
// A call refused as bad input counts as invalid, not as a classify call.
func (s *Server) Classify(ctx context.Context, req *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	r, ferr := s.requestOf(req, req.GetItem(), req.GetOptions(), false)
	if ferr != nil {
		s.stats.invalid.Add(1)
		return nil, ferr.status().Err()
	}
	s.stats.classifyCalls.Add(1)
	a, err := s.pipe.Judge(ctx, r)
	if err != nil {
		return nil, statusOf(err)
	}
	noteAnswer(ctx, &a)
	return answerPB(&a), nil
}

// statusOf maps the pipeline's errors to gRPC status codes, in one place.
func statusOf(err error) error {
	var ferr *pipeline.FieldError
	var unavailable *pipeline.UnavailableError
	switch {
	case errors.As(err, &ferr):
		return (&fieldError{ferr}).status().Err()
	case errors.As(err, &unavailable):
		return status.Error(codes.Unavailable, unavailable.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Internal, "internal error")
}

// requestOf converts and validates a request: what only the wire can get
// wrong here (bytes that were not the message, enum numbers the contract
// does not define, a timestamp out of range), the rest by the pipeline's
// own rules. idRequired is set on batch streams.
func (s *Server) requestOf(msg proto.Message, item *pb.NewsItem, o *pb.ClassifyOptions, idRequired bool) (pipeline.Request, *fieldError) {
	if ferr := codecError(msg); ferr != nil {
		return pipeline.Request{}, ferr
	}
	if item == nil {
		return pipeline.Request{}, newFieldError("item", "is required")
	}
	r := pipeline.Request{Item: pipeline.Item{
		ID: item.GetId(), Ticker: item.GetTicker(), Title: item.GetTitle(), Summary: item.GetSummary(),
		Source: item.GetSource(), URL: item.GetUrl(),
	}}
	if ts := item.GetPublishedAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return pipeline.Request{}, newFieldError("item.published_at", "must be a valid timestamp between years 1 and 9999")
		}
		r.Item.PublishedAt = ts.AsTime()
	}
	if ferr := optionsOf(o, &r.Options); ferr != nil {
		return pipeline.Request{}, ferr
	}
	if ferr := pipeline.Validate(&r, idRequired); ferr != nil {
		return pipeline.Request{}, &fieldError{ferr}
	}
	if a := r.Options.Alert; a != nil {
		ch, ferr := s.channel("options.alert.channel", a.Channel)
		if ferr != nil {
			return pipeline.Request{}, ferr
		}
		a.Channel = ch
	}
	return r, nil
}

// optionsOf converts the options. Enum values the contract does not
// define are refused rather than taken for the default.
func optionsOf(o *pb.ClassifyOptions, out *pipeline.Options) *fieldError {
	if o == nil {
		return nil
	}
	switch o.GetPriority() {
	case pb.Priority_PRIORITY_UNSPECIFIED, pb.Priority_PRIORITY_NORMAL:
		out.Priority = router.PriorityNormal
	case pb.Priority_PRIORITY_LOW:
		out.Priority = router.PriorityLow
	case pb.Priority_PRIORITY_HIGH:
		out.Priority = router.PriorityHigh
	default:
		return newFieldError("options.priority", fmt.Sprintf("unknown value %d; allowed: %s", o.GetPriority(), enumNames(pb.Priority_name)))
	}
	tiers := o.GetAllowedTiers()
	if n := len(tiers); n > pipeline.MaxAllowedTiers {
		return newFieldError("options.allowed_tiers", fmt.Sprintf("has %d entries; the limit is %d, one per tier (%s)", n, pipeline.MaxAllowedTiers, enumNames(pb.Tier_name)))
	}
	for i, t := range tiers {
		rt, ok := tierFromPB(t)
		if !ok {
			field := fmt.Sprintf("options.allowed_tiers[%d]", i)
			if t == pb.Tier_TIER_UNSPECIFIED {
				return newFieldError(field, "TIER_UNSPECIFIED is not a tier; allowed: "+enumNames(pb.Tier_name))
			}
			return newFieldError(field, fmt.Sprintf("unknown value %d; allowed: %s", t, enumNames(pb.Tier_name)))
		}
		out.AllowedTiers = append(out.AllowedTiers, rt)
	}
	out.SkipCache, out.RequireLLM = o.GetSkipCache(), o.GetRequireLlm()
	if o.MinPrescore != nil {
		v := o.GetMinPrescore()
		out.MinPrescore = &v
	}
	if a := o.GetAlert(); a != nil {
		out.Alert = &pipeline.Alert{Channel: a.GetChannel(), LastPrice: a.GetLastPrice(), ChangePct: a.GetChangePct()}
	}
	return nil
}

// enumNames lists an enum's names without its UNSPECIFIED zero value,
// in number order.
func enumNames(m map[int32]string) string {
	names := make([]string, 0, len(m))
	for i := int32(1); i < int32(len(m)); i++ {
		if n, ok := m[i]; ok {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// answerMsgs are the messages of one answer that every answer has,
// allocated together: the lexicon path answers in tens of microseconds,
// and an allocation apiece was a good part of converting its answer.
type answerMsgs struct {
	resp     pb.ClassifyResponse
	prov     pb.Provenance
	prescore pb.Prescore
	latency  durationpb.Duration
}

// answerPB converts an answer for the wire.
func answerPB(a *pipeline.Answer) *pb.ClassifyResponse {
	p := &a.Provenance
	m := new(answerMsgs)
	m.latency.Seconds, m.latency.Nanos = durationParts(p.Latency)
	prov := &m.prov
	prov.Tier = tierPB(p.Tier)
	prov.Model = p.Model
	prov.CacheHit = cacheHitPB(p.CacheHit)
	prov.CacheSimilarity = p.CacheSimilarity
	prov.CacheSourceId = p.CacheSourceID
	prov.Attempts = int32(p.Attempts)
	prov.Degraded = p.Degraded
	prov.Reason = p.Reason
	prov.Prefiltered = p.Prefiltered
	prov.Prefilter = pb.PrefilterDecision(p.Prefilter)
	prov.Latency = &m.latency
	prov.TokensIn = p.TokensIn
	prov.TokensOut = p.TokensOut
	prov.CostUsd = p.CostUSD
	prov.PromptVersion = p.PromptVersion
	// The tiers tried, and the latencies of the model tiers among them,
	// in one allocation each rather than one per message.
	prov.Tiers = make([]*pb.TierAttempt, len(p.Tiers))
	attempts := make([]pb.TierAttempt, len(p.Tiers))
	models := 0
	for _, t := range p.Tiers {
		if t.Tier != router.TierLexicon {
			models++
		}
	}
	latencies := make([]durationpb.Duration, models)
	for i, t := range p.Tiers {
		ta := &attempts[i]
		ta.Tier, ta.Model, ta.Outcome, ta.Attempts, ta.Detail = tierPB(t.Tier), t.Model, outcomePB(t.Outcome), int32(t.Calls), t.Detail
		if t.Tier != router.TierLexicon {
			d := &latencies[0]
			latencies = latencies[1:]
			d.Seconds, d.Nanos = durationParts(t.Latency)
			ta.Latency = d
		}
		prov.Tiers[i] = ta
	}
	phase := pb.Phase_PHASE_FINAL
	if a.Phase == pipeline.PhasePreliminary {
		phase = pb.Phase_PHASE_PRELIMINARY
	}
	prescoreInto(&m.prescore, a.Prescore)
	r := &m.resp
	r.Id = a.ID
	r.Label = labelPB(a.Label)
	r.Score = a.Score
	r.Confidence = a.Confidence
	r.Rationale = a.Rationale
	r.Prescore = &m.prescore
	r.Phase = phase
	r.Provenance = prov
	return r
}

// durationParts splits d as durationpb.New does, without allocating the
// message.
func durationParts(d time.Duration) (seconds int64, nanos int32) {
	nanosTotal := d.Nanoseconds()
	seconds = nanosTotal / 1e9
	nanos = int32(nanosTotal - seconds*1e9)
	return seconds, nanos
}

func labelPB(l lexicon.Label) pb.Label {
	switch l {
	case lexicon.LabelBullish:
		return pb.Label_LABEL_BULLISH
	case lexicon.LabelBearish:
		return pb.Label_LABEL_BEARISH
	default:
		return pb.Label_LABEL_NEUTRAL
	}
}

// tierPB and tierFromPB map the router's tiers to the contract's: the
// contract numbers them from 1, after TIER_UNSPECIFIED.
func tierPB(t router.Tier) pb.Tier {
	if t < router.TierLexicon || t > router.TierAnthropic {
		return pb.Tier_TIER_UNSPECIFIED
	}
	return pb.Tier(t) + pb.Tier_TIER_LEXICON
}

func tierFromPB(t pb.Tier) (router.Tier, bool) {
	if t < pb.Tier_TIER_LEXICON || t > pb.Tier_TIER_ANTHROPIC {
		return 0, false
	}
	return router.Tier(t - pb.Tier_TIER_LEXICON), true
}

func cacheHitPB(h pipeline.CacheHit) pb.CacheHit {
	switch h {
	case pipeline.CacheMiss:
		return pb.CacheHit_CACHE_HIT_MISS
	case pipeline.CacheExact:
		return pb.CacheHit_CACHE_HIT_EXACT
	case pipeline.CacheNear:
		return pb.CacheHit_CACHE_HIT_NEAR
	}
	return pb.CacheHit_CACHE_HIT_UNSPECIFIED
}

func outcomePB(o router.Outcome) pb.Outcome {
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

// prescoreInto fills out, its keyword hits allocated together.
func prescoreInto(out *pb.Prescore, p lexicon.Prescore) {
	out.Compound, out.KeywordScore, out.Score = p.Compound, p.Keyword, p.Score
	if len(p.Hits) > 0 {
		out.Hits = make([]*pb.KeywordHit, len(p.Hits))
		hits := make([]pb.KeywordHit, len(p.Hits))
		for i, h := range p.Hits {
			hits[i].Phrase, hits[i].Weight = h.Phrase, h.Weight
			out.Hits[i] = &hits[i]
		}
	}
}

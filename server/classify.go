package server

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/lexicon"
)

// Classify judges one item. Validation has already run (unaryValidation).
func (s *Server) Classify(ctx context.Context, req *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	s.stats.classifyCalls.Add(1)
	resp, err := s.judge(ctx, req.GetItem(), req.GetOptions())
	if err != nil {
		s.stats.failed.Add(1)
		return nil, err
	}
	return resp, nil
}

// judge runs the request path for one valid item and returns its final
// answer. Today the lexicon is the only tier; the router slots in here.
func (s *Server) judge(ctx context.Context, item *pb.NewsItem, opts *pb.ClassifyOptions) (*pb.ClassifyResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	start := s.now()
	pre := s.scorer.Score(itemText(item))
	if opts.GetRequireLlm() {
		return nil, status.Error(codes.Unavailable, "require_llm: "+noModelReason)
	}
	resp := lexiconAnswer(item, pre, pb.Phase_PHASE_FINAL)
	resp.Provenance.Degraded = true
	resp.Provenance.Reason = noModelReason
	resp.Provenance.Latency = durationpb.New(s.now().Sub(start))
	s.stats.answered[pb.Tier_TIER_LEXICON].Add(1)
	s.stats.degraded.Add(1)
	return resp, nil
}

// noModelReason says why a final answer is the lexicon's: no model tier is
// part of this build yet, so every final answer is degraded and a caller
// that requires a model is refused.
const noModelReason = "no language-model tier could judge the item: none is available in this build; the lexicon answered"

// preliminary is the lexicon's answer sent ahead of the final one.
func (s *Server) preliminary(item *pb.NewsItem) *pb.ClassifyResponse {
	start := s.now()
	resp := lexiconAnswer(item, s.scorer.Score(itemText(item)), pb.Phase_PHASE_PRELIMINARY)
	resp.Provenance.Latency = durationpb.New(s.now().Sub(start))
	return resp
}

// itemText is what the lexicon reads: the title, then the summary.
func itemText(item *pb.NewsItem) string {
	if item.GetSummary() == "" {
		return item.GetTitle()
	}
	return item.GetTitle() + ". " + item.GetSummary()
}

// lexiconAnswer turns a prescore into an answer from the lexicon tier.
func lexiconAnswer(item *pb.NewsItem, p lexicon.Prescore, phase pb.Phase) *pb.ClassifyResponse {
	return &pb.ClassifyResponse{
		Id:         item.GetId(),
		Label:      labelOf(p.Label()),
		Score:      p.Score,
		Confidence: p.Confidence(),
		Rationale:  rationale(p),
		Prescore:   prescoreOf(p),
		Phase:      phase,
		Provenance: &pb.Provenance{
			Tier:  pb.Tier_TIER_LEXICON,
			Model: "lexicon",
			Tiers: []*pb.TierAttempt{{
				Tier:    pb.Tier_TIER_LEXICON,
				Model:   "lexicon",
				Outcome: pb.Outcome_OUTCOME_OK,
			}},
		},
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

// rationale says in words why the lexicon decided as it did.
func rationale(p lexicon.Prescore) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lexicon: score %+.2f (sentiment words %+.2f", p.Score, p.Compound)
	if len(p.Hits) == 0 {
		b.WriteString(", no financial keywords)")
		return b.String()
	}
	b.WriteString(", financial keywords:")
	for i, h := range p.Hits {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %q %+.2f", h.Phrase, h.Weight)
	}
	b.WriteByte(')')
	return b.String()
}

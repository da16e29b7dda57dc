package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

const classifySynopsis = `sentimentctl classify "headline" [--ticker T] [--summary S] [--id ID] [--require-llm] [--skip-cache] [--tiers local,gemini,...]

Judges one news item and prints the label, score, confidence, tier, model,
latency, whether the answer is degraded and why, whether it was prefiltered
and whether it came from the cache. Words after the command that are not
flags are joined into the headline. --tiers names the tiers that may answer
(lexicon, local, gemini, anthropic), comma-separated, in policy order; the
lexicon always may: --tiers lexicon asks for its answer alone.`

func (c *cli) classify(ctx context.Context, g *globals, args []string) error {
	fs := commandFlags("classify", g)
	ticker := fs.String("ticker", "", "the item's `ticker`, e.g. ACME")
	summary := fs.String("summary", "", "the item's summary `text`")
	id := fs.String("id", "", "the item's `id`, echoed in the answer")
	requireLLM := fs.Bool("require-llm", false, "fail (UNAVAILABLE) rather than answer from the lexicon when no model can judge")
	skipCache := fs.Bool("skip-cache", false, "judge again even when the cache holds an answer")
	tierList := fs.String("tiers", "", "the tiers that may answer, comma-separated (lexicon, local, gemini, anthropic); empty: every enabled tier")
	pos, err := c.parseCommand(fs, g, args, classifySynopsis)
	if err != nil {
		return err
	}
	title := strings.TrimSpace(strings.Join(pos, " "))
	if title == "" {
		return usageErr("classify: a headline is required")
	}
	tiers, err := parseTiers(*tierList)
	if err != nil {
		return usageErr("classify: --tiers %q: %v", *tierList, err)
	}

	conn, client, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := g.unaryCtx(ctx)
	defer cancel()
	req := &pb.ClassifyRequest{
		Item:    &pb.NewsItem{Id: *id, Ticker: *ticker, Title: title, Summary: *summary},
		Options: &pb.ClassifyOptions{RequireLlm: *requireLLM, SkipCache: *skipCache, AllowedTiers: tiers},
	}
	var p peer.Peer
	resp, err := client.Classify(ctx, req, grpc.Peer(&p))
	if err != nil {
		return callErr("classify", g.addr, err, &p)
	}
	if g.json {
		return writeJSONLine(c.stdout, resp)
	}
	return writeAnswer(c.stdout, resp)
}

// tierNames are the words --tiers takes, in policy order.
var tierNames = []string{"lexicon", "local", "gemini", "anthropic"}

// parseTiers reads --tiers: tier names, comma-separated, each once. An
// empty list allows every tier.
func parseTiers(s string) ([]pb.Tier, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []pb.Tier
	for part := range strings.SplitSeq(s, ",") {
		name := strings.ToLower(strings.TrimSpace(part))
		v, ok := pb.Tier_value["TIER_"+strings.ToUpper(name)]
		if !ok || v == int32(pb.Tier_TIER_UNSPECIFIED) {
			return nil, fmt.Errorf("%q is not a tier (%s)", part, strings.Join(tierNames, ", "))
		}
		if slices.Contains(out, pb.Tier(v)) {
			return nil, fmt.Errorf("%s is named twice", name)
		}
		out = append(out, pb.Tier(v))
	}
	return out, nil
}

// writeAnswer prints an answer as aligned "field value" lines.
func writeAnswer(w io.Writer, r *pb.ClassifyResponse) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	pv := r.GetProvenance()
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	if r.GetId() != "" {
		row("id", "%s", r.GetId())
	}
	row("label", "%s", labelName(r.GetLabel()))
	row("score", "%+.3f", r.GetScore())
	row("confidence", "%.2f", r.GetConfidence())
	row("tier", "%s", tierName(pv.GetTier()))
	row("model", "%s", orDash(pv.GetModel()))
	row("latency", "%s", pv.GetLatency().AsDuration())
	if pv.GetDegraded() {
		row("degraded", "yes: %s", orDash(pv.GetReason()))
	} else {
		row("degraded", "no")
	}
	row("prefiltered", "%s", yesNo(pv.GetPrefiltered()))
	row("cache", "%s", cacheWords(pv))
	if r.GetRationale() != "" {
		row("rationale", "%s", r.GetRationale())
	}
	if ps := r.GetPrescore(); ps != nil {
		row("prescore", "%+.3f (vader %+.3f, keywords %+.3f%s)", ps.GetScore(), ps.GetCompound(), ps.GetKeywordScore(), hitWords(ps.GetHits()))
	}
	for _, t := range pv.GetTiers() {
		line := fmt.Sprintf("%s %s", tierName(t.GetTier()), outcomeName(t.GetOutcome()))
		if t.GetAttempts() > 0 {
			line += fmt.Sprintf(", %d call(s) in %s", t.GetAttempts(), t.GetLatency().AsDuration())
		}
		if t.GetDetail() != "" {
			line += ": " + t.GetDetail()
		}
		row("tried", "%s", line)
	}
	return tw.Flush()
}

// cacheWords says whether and how the cache answered.
func cacheWords(pv *pb.Provenance) string {
	switch pv.GetCacheHit() {
	case pb.CacheHit_CACHE_HIT_MISS:
		return "miss"
	case pb.CacheHit_CACHE_HIT_EXACT, pb.CacheHit_CACHE_HIT_NEAR:
		s := fmt.Sprintf("%s hit (similarity %.2f", enumWord(pv.GetCacheHit().String(), "CACHE_HIT_"), pv.GetCacheSimilarity())
		if pv.GetCacheSourceId() != "" {
			s += ", answer made for " + pv.GetCacheSourceId()
		}
		return s + ")"
	default:
		return "not consulted"
	}
}

func hitWords(hits []*pb.KeywordHit) string {
	if len(hits) == 0 {
		return ""
	}
	parts := make([]string, 0, len(hits))
	for _, h := range hits {
		parts = append(parts, fmt.Sprintf("%q %+.2f", h.GetPhrase(), h.GetWeight()))
	}
	return ": " + strings.Join(parts, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

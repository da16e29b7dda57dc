package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/catalystbot/sentiment/lexicon"
)

// judge gives the simulated models' answers: a pure function of the news
// in the prompt, so the same headline always gets the same judgement from
// every simulated model, whatever the seed. It reads the headline with the
// service's own lexicon, which makes the answers plausible (a guidance
// raise is bullish, a going-concern doubt bearish) without being a second
// opinion worth measuring.
type judge struct {
	lex *lexicon.Scorer
}

func newJudge() (*judge, error) {
	lex, err := lexicon.New()
	if err != nil {
		return nil, fmt.Errorf("building the lexicon: %w", err)
	}
	return &judge{lex: lex}, nil
}

// verdict is the answer object, in the field order the prompt asks for.
type verdict struct {
	Label      string  `json:"label"`
	Score      float64 `json:"score"`
	Confidence float64 `json:"confidence"`
	Rationale  string  `json:"rationale"`
}

// answer returns the judgement of a prompt as the JSON text a model would
// write, and the token counts a model would report for it: about four
// characters a token, as for English text.
func (j *judge) answer(system, user string) (text string, tokensIn, tokensOut int) {
	p := j.lex.Score(newsOf(user))
	v := verdict{
		Label:      p.Label().String(),
		Score:      round2(p.Score),
		Confidence: round2(0.5 + 0.45*math.Abs(p.Score)),
		Rationale:  rationale(p),
	}
	b, err := json.Marshal(v)
	if err != nil {
		// A struct of strings and finite numbers always encodes.
		panic(fmt.Sprintf("sim: encoding an answer: %v", err))
	}
	return string(b), tokens(system) + tokens(user), tokens(string(b))
}

// newsOf is the news in a prompt rendered from the router's template: the
// Headline and Summary lines. A prompt without them is judged whole.
func newsOf(user string) string {
	var parts []string
	for line := range strings.SplitSeq(user, "\n") {
		for _, key := range []string{"Headline:", "Summary:"} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), key); ok {
				parts = append(parts, strings.TrimSpace(rest))
			}
		}
	}
	if len(parts) == 0 {
		return user
	}
	return strings.Join(parts, ". ")
}

// rationale says in one sentence what the answer rests on: the first
// three financial keywords found, or the tone of the words when none.
func rationale(p lexicon.Prescore) string {
	if len(p.Hits) == 0 {
		return fmt.Sprintf("Simulated: no financial keywords; the wording scores %+.2f.", p.Compound)
	}
	var names []string
	for _, h := range p.Hits[:min(3, len(p.Hits))] {
		names = append(names, fmt.Sprintf("%s (%+.2f)", h.Phrase, h.Weight))
	}
	return "Simulated: " + strings.Join(names, ", ") + "."
}

// round2 rounds to two places; a negative zero becomes zero, which JSON
// would otherwise write as -0.
func round2(v float64) float64 {
	r := math.Round(v*100) / 100
	if r == 0 {
		return 0
	}
	return r
}

func tokens(s string) int { return (len(s) + 3) / 4 }

package lexicon

import (
	"embed"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:embed data/vader_lexicon.tsv data/emoji_utf8_lexicon.tsv data/finance_lexicon.tsv data/finance_phrases.tsv data/finance_terms.tsv
var dataFS embed.FS

// NeutralBand is the half-width of the neutral band of Label: a Prescore with
// |Score| < NeutralBand is neutral. It equals the service's default prefilter
// threshold (LLM_MIN_PRESCALE_SCORE, 0.20), so an item the prefilter answers
// from the lexicon is exactly an item the lexicon calls neutral.
const NeutralBand = 0.20

// Weights of the combined Score; see Scorer.Score.
const (
	keywordWeight        = 0.75 // of Keyword when finance hits exist
	compoundWeightHits   = 0.25 // of Compound when finance hits exist
	compoundWeightNoHits = 0.8  // of Compound alone
)

// Scorer computes prescores. Its tables are built once by New or NewPlain and
// only read afterwards, so one Scorer is safe for concurrent use.
type Scorer struct {
	words map[string]wordInfo // VADER lexicon (plain or finance-adjusted), boosters, negations
	emoji map[rune]string
	fin   *finance // nil for the plain scorer
	// medAfter lists, for a word marked medAfter, the words after which it
	// is neutral in medical news.
	medAfter map[string][]string
	scratch  sync.Pool
}

// Prescore is the lexicon's judgement of one text.
type Prescore struct {
	// Compound is VADER's compound score in [-1,1], computed over the
	// finance-adjusted lexicon (over VADER's own lexicon for NewPlain).
	Compound float64
	// Keyword is the financial keyword score in [-1,1]: tanh of the sum of
	// the Hits' weights; 0 without hits.
	Keyword float64
	// Score in [-1,1] combines the two; it is what the prefilter compares with
	// its threshold and what the lexicon answer reports.
	Score float64
	// Hits are the financial phrases and metric moves found, in order of
	// appearance; nil when none.
	Hits []Hit
}

// Hit is one financial phrase or metric move found in a text.
type Hit struct {
	// Phrase is the canonical name from data/finance_phrases.tsv ("raises
	// guidance"), or a metric and its move ("loss down", "sales up",
	// "margin better") from the metric rules.
	Phrase string
	// Weight is the hit's contribution in good-news terms: > 0 bullish.
	// A negated phrase has half its listed weight with the sign flipped.
	Weight float64
}

// Label is the lexicon's three-way verdict.
type Label int

// Labels; the zero value is neutral.
const (
	LabelNeutral Label = iota
	LabelBearish
	LabelBullish
)

// String returns "neutral", "bearish" or "bullish".
func (l Label) String() string {
	switch l {
	case LabelNeutral:
		return "neutral"
	case LabelBearish:
		return "bearish"
	case LabelBullish:
		return "bullish"
	}
	return "Label(" + strconv.Itoa(int(l)) + ")"
}

// Label maps Score to a verdict: bullish at Score >= NeutralBand, bearish at
// Score <= -NeutralBand, neutral in between.
func (p Prescore) Label() Label {
	switch {
	case p.Score >= NeutralBand:
		return LabelBullish
	case p.Score <= -NeutralBand:
		return LabelBearish
	}
	return LabelNeutral
}

// Confidence in [0,1] grows with |Score| and with the agreement of Compound
// and Keyword: |Score| * (0.5 + 0.5*agreement), where agreement =
// 1 - |Compound-Keyword|/2 is 1 when the two say the same and 0 when they
// are opposite extremes.
func (p Prescore) Confidence() float64 {
	agree := 1 - math.Abs(p.Compound-p.Keyword)/2
	c := math.Abs(p.Score) * (0.5 + 0.5*agree)
	if c != c { // NaN cannot come from Score, but a hand-made Prescore may hold one
		return 0
	}
	return max(0, min(1, c))
}

// New builds the finance-aware Scorer from the data embedded in the binary:
// VADER's rules over its lexicon with the adjustments of
// data/finance_lexicon.tsv, plus the phrases and metric rules of
// data/finance_phrases.tsv and data/finance_terms.tsv.
func New() (*Scorer, error) {
	return build(true)
}

// NewPlain builds a Scorer that is VADER as published (vaderSentiment 3.3.2):
// Compound is the reference's compound score, Keyword is 0, Score equals
// Compound and there are no Hits. It exists to measure the finance layer
// against, and for the parity test.
func NewPlain() (*Scorer, error) {
	return build(false)
}

func build(financeAware bool) (*Scorer, error) {
	read := func(name string) (string, error) {
		b, err := dataFS.ReadFile("data/" + name)
		if err != nil {
			return "", fmt.Errorf("lexicon: read embedded %s: %w", name, err)
		}
		return string(b), nil
	}
	vaderTSV, err := read("vader_lexicon.tsv")
	if err != nil {
		return nil, err
	}
	emojiTSV, err := read("emoji_utf8_lexicon.tsv")
	if err != nil {
		return nil, err
	}
	s := &Scorer{words: make(map[string]wordInfo, 8000), emoji: make(map[rune]string, 1300)}
	err = readTSV("vader_lexicon.tsv", vaderTSV, 2, func(_ int, fl []string) error {
		v, err := strconv.ParseFloat(fl[1], 64)
		if err != nil {
			return err
		}
		s.words[fl[0]] = wordInfo{valence: v, inLex: true}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lexicon: %w", err)
	}
	if len(s.words) < 7000 {
		return nil, fmt.Errorf("lexicon: vader_lexicon.tsv has %d entries, want about 7500", len(s.words))
	}
	err = readTSV("emoji_utf8_lexicon.tsv", emojiTSV, 2, func(_ int, fl []string) error {
		// The reference replaces emoji rune by rune, so only single-rune keys
		// can ever match.
		if r, n := utf8.DecodeRuneInString(fl[0]); n == len(fl[0]) && r != utf8.RuneError {
			s.emoji[r] = fl[1]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lexicon: %w", err)
	}

	if financeAware {
		adjTSV, err := read("finance_lexicon.tsv")
		if err != nil {
			return nil, err
		}
		s.medAfter = map[string][]string{}
		err = readTSV("finance_lexicon.tsv", adjTSV, 2, func(_ int, fl []string) error {
			if rest, ok := strings.CutPrefix(fl[1], "medical"); ok {
				w, ok := s.words[fl[0]]
				if !ok || w.valence == 0 {
					return fmt.Errorf("%q has no valence to drop in medical news", fl[0])
				}
				if after, ok := strings.CutPrefix(rest, " after "); ok {
					w.medAfter = true
					s.medAfter[fl[0]] = strings.Split(after, "|")
				} else if rest == "" {
					w.medical = true
				} else {
					return fmt.Errorf("%q: want \"medical\" or \"medical after a|b\"", fl[1])
				}
				s.words[fl[0]] = w
				return nil
			}
			if fl[1] == "-" {
				if _, ok := s.words[fl[0]]; !ok {
					return fmt.Errorf("%q is not in the VADER lexicon", fl[0])
				}
				delete(s.words, fl[0])
				return nil
			}
			v, err := strconv.ParseFloat(fl[1], 64)
			if err != nil || v < -4 || v > 4 {
				return fmt.Errorf("valence %q: want a number in [-4,4]", fl[1])
			}
			s.words[fl[0]] = wordInfo{valence: v, inLex: true}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("lexicon: %w", err)
		}
		phrases, err := read("finance_phrases.tsv")
		if err != nil {
			return nil, err
		}
		terms, err := read("finance_terms.tsv")
		if err != nil {
			return nil, err
		}
		if s.fin, err = newFinance(phrases, terms); err != nil {
			return nil, fmt.Errorf("lexicon: %w", err)
		}
	}

	for _, b := range boosterWords {
		w := s.words[b.word]
		w.isBooster, w.booster = true, b.scale
		s.words[b.word] = w
	}
	for _, n := range negateWords {
		w := s.words[n]
		w.negation = true
		s.words[n] = w
	}
	s.scratch.New = func() any { return new(scratch) }
	return s, nil
}

// scratch holds the per-call buffers, reused through Scorer.scratch so that
// Score allocates only its result.
type scratch struct {
	vt    []vtok
	vbuf  []byte
	spans [][2]int
	sent  []float64

	ft         []ftok
	fbuf       []byte
	covered    []bool
	usedPhrase []bool
	usedMetric []bool
	occ        []metricOcc
	hits       []posHit
}

// Score judges one text (a headline, or a headline and its summary).
//
// Compound is VADER over the (finance-adjusted) lexicon. Keyword is
// tanh(sum of hit weights). Score is 0.75*Keyword + 0.25*Compound when the
// text has finance hits, and 0.8*Compound when it has none: a text that
// names no financial event or metric move is mostly not news, however warm
// its words.
func (s *Scorer) Score(text string) Prescore {
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)

	vtext := s.replaceEmoji(text)
	var p Prescore
	if s.fin == nil {
		s.tokenizeVADER(sc, strings.TrimSpace(vtext))
		p.Compound = vaderCompound(sc, vtext)
		p.Score = p.Compound
		return p
	}
	s.fin.tokenize(sc, text)
	s.tokenizeVADER(sc, strings.TrimSpace(vtext))
	if s.fin.medical(sc) {
		s.neutralizeMedical(sc)
	}
	p.Compound = vaderCompound(sc, vtext)
	sum := s.fin.score(sc)
	if len(sc.hits) == 0 {
		p.Score = compoundWeightNoHits * p.Compound
		return p
	}
	p.Keyword = math.Tanh(sum)
	p.Score = max(-1, min(1, keywordWeight*p.Keyword+compoundWeightHits*p.Compound))
	// Hits come from two passes (phrases, then metrics): order by position.
	h := sc.hits
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && h[j].pos < h[j-1].pos; j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
	p.Hits = make([]Hit, len(h))
	for i := range h {
		p.Hits[i] = h[i].Hit
	}
	return p
}

// neutralizeMedical drops the valence of the words that are the subject
// matter of drug and trial news rather than sentiment about it: "cancer",
// "tumor", "pain", "death" as a trial endpoint. Words of outcome ("failed",
// "rejects", "halted", "died") keep theirs.
func (s *Scorer) neutralizeMedical(sc *scratch) {
	for k := range sc.vt {
		t := &sc.vt[k]
		drop := t.info.medical
		if t.info.medAfter && k > 0 {
			for _, w := range s.medAfter[string(t.lower)] {
				drop = drop || string(sc.vt[k-1].lower) == w
			}
		}
		if drop {
			t.info.valence, t.info.inLex = 0, false
		}
	}
}

// Weighs reports whether word, lower case, carries sentiment to the
// lexicon: a word of VADER's lexicon with a valence, a negation or a
// booster, or a word of the finance rules (a direction, an evaluation, a
// metric, a unit, a comparison, a word of a phrase) other than the
// grammatical glue some phrases spell out ("to be acquired", "at the
// market offering", "did not meet") and the words that only mark drug
// news ("biotech", "oncology"). Two texts that differ only in words
// that do not weigh read alike; the cache's meaning guard relies on it, so
// glue that a wire may drop or add ("the", "to", "of") must not weigh.
func (s *Scorer) Weighs(word string) bool {
	if w, ok := s.words[word]; ok && (w.valence != 0 || w.negation || w.isBooster) {
		return true
	}
	if s.fin == nil {
		return false
	}
	if id, ok := s.fin.ids[word]; !ok || !s.fin.classes[id].rule {
		// Not in the finance rules, or only a sign of drug news
		// ("biotech", "patients"): that word changes no judgement by
		// itself, and a wire that adds or drops it ("Nu Biotech's") says
		// the same. Where it does change the reading of a medical word,
		// the prescores differ and the guard sees that.
		return false
	}
	switch word {
	case "a", "an", "the", "of", "to", "on", "at", "by", "with", "as", "in", "for", "and", "or",
		"be", "will", "did", "does", "didn", "doesn", "per", "co", "s", "p", "t", "into", "upon":
		return false
	}
	return true
}
